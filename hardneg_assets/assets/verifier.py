"""`verifier_profiles`: the MathVerifier's six-dimensional error profile of every candidate (SPEC §2.2).

The asset's code version is the verifier's version plus a hash of the profile's
`verifier` section, so changing the verifier or a verifier weight/threshold in the YAML
shows every profile (and everything downstream) as stale in the UI, and the
re-verification automation (`jobs/automation.py`) re-scores the existing partitions.
"""

import time

import dagster as dg
import pandas as pd

from hardneg.plots import histograms_png
from hardneg.verifier import DIMENSIONS, VERIFIER_VERSION, MathVerifier, VerifyInput
from hardneg.progress import ProgressReporter
from hardneg_assets.assets.candidates import candidate_pool
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import image_metadata, md_table, row_count, table_metadata
from hardneg_assets.partitions import FAMILY_SEED, family_seed, stage_version
from hardneg_assets.versions import rows_version
from jobs import REVERIFY_CONDITION
from resources import ArtifactStore, ProfileResource, WarehouseResource

SUMMARY_COLUMNS = [*DIMENSIONS, "wrongness", "absurdity"]
VERIFY_CHUNK = 1024  # candidates per progress line; large enough that packing stays efficient

CANDIDATES_SQL = """
SELECT c.candidate_id, p.question, c.text, p.reference_solution, p.reference_answer
FROM candidates c LEFT JOIN problems p USING (problem_id)
WHERE c.family = ? AND c.seed = ?
ORDER BY c.candidate_id
"""


@asset(
    partitions_def=FAMILY_SEED,
    deps=[candidate_pool],
    metadata=table_metadata("verifier_profiles"),
    automation_condition=REVERIFY_CONDITION,
    group_name="verifier",
    kinds={"pytorch", "duckdb"},
    code_version=stage_version(VERIFIER_VERSION, "verifier"),
    description="Six-dimensional error profile, wrongness, absurdity and first error step of every candidate.",
)
def verifier_profiles(
    context: dg.AssetExecutionContext, profile: ProfileResource, warehouse: WarehouseResource, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    prof = profile.load()
    family, seed = family_seed(context)
    wh = warehouse.get()
    rows = wh.query(CANDIDATES_SQL, [family, seed])
    if rows.empty:
        raise dg.Failure(f"no candidates for {family}|{seed}: materialize candidate_pool first")
    items = [
        VerifyInput(
            id=r.candidate_id,
            question=r.question or "",
            candidate=r.text or "",
            reference_solution=r.reference_solution,
            reference_answer=r.reference_answer,
        )
        for r in rows.itertuples()
    ]
    verifier = MathVerifier.from_config(prof.verifier)
    started = time.time()
    # Chunks only so the run log shows done / total, rate and ETA while a large pool verifies;
    # each chunk is still one batched (packed, cached) encoder pass.
    report = ProgressReporter("verify", total=len(items), log=context.log.info, unit="cand")
    profiles = []
    for i in range(0, len(items), VERIFY_CHUNK):
        profiles += verifier.verify_batch(items[i : i + VERIFY_CHUNK])
        report.update(advance=len(items[i : i + VERIFY_CHUNK]))
    seconds = time.time() - started
    context.log.info(f"verified {len(items)} candidates in {seconds:.1f}s ({len(items) / max(seconds, 1e-9):.1f}/s)")

    out = pd.DataFrame([p.to_dict() for p in profiles]).rename(columns={"id": "candidate_id"})
    out["family"], out["seed"], out["verifier_version"] = family, seed, VERIFIER_VERSION
    written = wh.replace_partition("verifier_profiles", out, family=family, seed=seed)

    summary = out[SUMMARY_COLUMNS].describe().T[["count", "mean", "50%", "max"]].round(3).reset_index(names="dimension")
    png = histograms_png(out[["wrongness", "absurdity"]], artifacts.work_dir("plots", family, str(seed)) / "verifier_hist.png", "verifier scores")
    flagged = out[out["first_error_step"].notna()].head(3)
    examples = "\n\n".join(
        f"**{r.candidate_id}** first error at step {int(r.first_error_step)}: "
        + "; ".join(f for s in r.steps for f in s["flags"])[:400]
        for r in flagged.itertuples()
    )
    return dg.MaterializeResult(
        data_version=rows_version(wh, "verifier_profiles", family=family, seed=seed),
        metadata={
            "profiles": written,
            **row_count(written),
            "verifier_version": VERIFIER_VERSION,
            "channels": ", ".join(sorted({c for cs in out["channels"] for c in cs})),
            "candidates_per_s": dg.MetadataValue.float(len(items) / max(seconds, 1e-9)),
            # the embedding encoder is most of the verifier's time: what it did, and how
            "embedding": "packed rows" if getattr(verifier.embedder, "packer", None) is not None else "padded batches",
            "texts_encoded": int(getattr(verifier.embedder, "encoded_texts", 0)),
            "summary": md_table(summary),
            "examples": dg.MetadataValue.md(examples or "_no step flagged_"),
            **image_metadata("histograms", png),
        }
    )
