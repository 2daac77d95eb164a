"""`verifier_profiles`: the MathVerifier's six-dimensional error profile of every candidate (SPEC §2.2).

The asset's code version is the verifier's version plus a hash of the profile's
`verifier` section, so changing the verifier or a verifier weight/threshold in the YAML
shows every profile (and everything downstream) as stale in the UI, and the
re-verification automation (`jobs/automation.py`) re-scores the existing partitions.
"""

import json

import dagster as dg

from hardneg.paths import embeddings_dir
from hardneg.plots import histograms_png
from hardneg.verification import verify_partition
from hardneg.verifier import DIMENSIONS, VERIFIER_VERSION
from hardneg_assets.assets.candidates import candidate_pool
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import image_metadata, md_table, row_count, table_metadata
from hardneg_assets.partitions import FAMILY_SEED, family_seed, stage_version
from hardneg_assets.versions import rows_version
from jobs import REVERIFY_CONDITION
from resources import ArtifactStore, ProfileResource, WarehouseResource

SUMMARY_COLUMNS = [*DIMENSIONS, "wrongness", "absurdity"]

PROFILE_SUMMARY_SQL = f"""
SELECT {", ".join(SUMMARY_COLUMNS)} FROM verifier_profiles WHERE family = ? AND seed = ?
"""
CHANNELS_SQL = "SELECT DISTINCT CAST(channels AS VARCHAR) AS channels FROM verifier_profiles WHERE family = ? AND seed = ?"
FLAGGED_SQL = """
SELECT candidate_id, first_error_step, steps FROM verifier_profiles
WHERE family = ? AND seed = ? AND first_error_step IS NOT NULL ORDER BY candidate_id LIMIT 3
"""
COVERAGE_SQL = """
SELECT (SELECT count(*) FROM candidates WHERE family = $f AND seed = $s) AS candidates,
       count(*) AS profiles, count(DISTINCT candidate_id) AS distinct_ids,
       count(*) FILTER (WHERE candidate_id NOT IN (SELECT candidate_id FROM candidates WHERE family = $f AND seed = $s)) AS orphans
FROM verifier_profiles WHERE family = $f AND seed = $s
"""


@asset(
    partitions_def=FAMILY_SEED,
    deps=[candidate_pool],
    metadata=table_metadata("verifier_profiles"),
    automation_condition=REVERIFY_CONDITION,
    group_name="verifier",
    kinds={"pytorch", "duckdb"},
    code_version=stage_version(VERIFIER_VERSION, "verifier"),
    check_specs=[dg.AssetCheckSpec("one_profile_per_candidate", asset="verifier_profiles", blocking=True,
                                   description="Exactly one profile per candidate: none missing, none twice, none orphaned.")],
    description="Six-dimensional error profile, wrongness, absurdity and first error step of every candidate.",
)
def verifier_profiles(
    context: dg.AssetExecutionContext, profile: ProfileResource, warehouse: WarehouseResource, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    prof = profile.load()
    family, seed = family_seed(context)
    wh = warehouse.get()
    if not wh.count("candidates", family=family, seed=seed):
        raise dg.Failure(f"no candidates for {family}|{seed}: materialize candidate_pool first")
    run = verify_partition(
        wh, family, seed, prof.verifier, prof.verification,
        cache_root=embeddings_dir(), log=context.log.info,
    )
    context.log.info(
        f"verified {run.verified} of {run.candidates} candidates in {run.shards_run} shards "
        f"({run.shards_skipped} already stored) in {run.seconds:.1f}s ({run.rate:.1f}/s); "
        f"{run.encoded} texts encoded, {run.cache_hits} from the embedding cache; "
        f"{run.verdicts_computed} SymPy and grading verdicts computed, {run.verdict_hits} from the verdict cache; "
        f"{run.reaggregated} stored profiles re-aggregated with new W/A weights"
    )
    out = wh.query(PROFILE_SUMMARY_SQL, [family, seed])
    written = len(out)
    summary = out[SUMMARY_COLUMNS].describe().T[["count", "mean", "50%", "max"]].round(3).reset_index(names="dimension")
    png = histograms_png(out[["wrongness", "absurdity"]], artifacts.work_dir("plots", family, str(seed)) / "verifier_hist.png", "verifier scores")
    flagged = wh.query(FLAGGED_SQL, [family, seed])
    examples = "\n\n".join(
        f"**{r.candidate_id}** first error at step {int(r.first_error_step)}: "
        + "; ".join(f for s in json.loads(r.steps) for f in s["flags"])[:400]
        for r in flagged.itertuples()
    )
    return dg.MaterializeResult(
        data_version=rows_version(wh, "verifier_profiles", family=family, seed=seed),
        metadata={
            "profiles": written,
            **row_count(written),
            "verifier_version": VERIFIER_VERSION,
            "channels": ", ".join(sorted({c for cs in wh.query(CHANNELS_SQL, [family, seed])["channels"] for c in json.loads(cs)})),
            "engine": prof.verification.describe(),
            "shards": f"{run.shards_run} run, {run.shards_skipped} already stored, {run.shards} in all",
            "candidates_per_s": dg.MetadataValue.float(run.rate),
            "texts_encoded": dg.MetadataValue.int(run.encoded),
            "embedding_cache_hits": dg.MetadataValue.int(run.cache_hits),
            "sympy_verdicts_computed": dg.MetadataValue.int(run.verdicts_computed),
            "sympy_verdict_cache_hits": dg.MetadataValue.int(run.verdict_hits),
            "reaggregated": dg.MetadataValue.int(run.reaggregated),
            "summary": md_table(summary),
            "examples": dg.MetadataValue.md(examples or "_no step flagged_"),
            **image_metadata("histograms", png),
        },
        check_results=[coverage_check(wh, family, seed)],
    )


def coverage_check(wh, family: str, seed: int) -> dg.AssetCheckResult:
    c = wh.query(COVERAGE_SQL, {"f": family, "s": seed}).iloc[0]
    counts = {k: int(c[k]) for k in ("candidates", "profiles", "distinct_ids", "orphans")}
    return dg.AssetCheckResult(
        check_name="one_profile_per_candidate",
        passed=counts["candidates"] == counts["profiles"] == counts["distinct_ids"] and counts["orphans"] == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=counts,
    )
