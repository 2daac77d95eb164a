"""The funnel (SPEC §2.4) and the two preference-pair sets it feeds.

`funnel` and `preference_pairs_hardneg` come from one step: stage 4 of the funnel *is*
hard-negative selection and pair construction. `preference_pairs_random` is the
random-uniform baseline with the same number of pairs. Blocking checks stop DPO when a
funnel count leaves the profile's expected range or a pair set is unfit.
"""

import dagster as dg

from hardneg.data import TEST_SPLITS
from hardneg.funnel import check_funnel_counts, run_funnel
from hardneg.pairs import (
    build_hardneg_pairs,
    build_random_pairs,
    check_pairs,
    record_checks,
    export_pairs,
    export_pairs_trl,
    pairs_for_export,
)
from hardneg.plots import funnel_png, histograms_png
from hardneg.prompts import training_prompt
from hardneg.registry import load_tokenizer
from hardneg_assets.assets.verifier import verifier_profiles
from hardneg_assets.deferred import asset, multi_asset, spec
from hardneg_assets.metadata import image_metadata, md_table, row_count, table_metadata
from hardneg_assets.partitions import FAMILY_SEED, family_seed, stage_version
from hardneg_assets.policies import family_policy
from hardneg_assets.versions import rows_version
from jobs import FOLLOW_REVERIFY
from resources import ArtifactStore, ProfileResource, WarehouseResource

TEST_IDS_SQL = f"SELECT problem_id FROM problems WHERE split IN ({', '.join(repr(s) for s in TEST_SPLITS)})"


def _prompt_for(profile, family: str, artifacts: ArtifactStore):
    base, adapters = family_policy(profile, family, artifacts)
    tokenizer = load_tokenizer(str(adapters[-1]) if adapters else base)
    return lambda question: training_prompt(tokenizer, question, profile.sft.system_prompt)


def _pairs_check(wh, pairs, asset_key: str, family: str, seed: int) -> dg.AssetCheckResult:
    test_ids = wh.query(TEST_IDS_SQL)["problem_id"]
    failures = check_pairs(pairs, test_problem_ids=test_ids)
    record_checks(wh, family, seed, asset_key, {"pairs_fit_for_dpo": failures})
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="pairs_fit_for_dpo",
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"pairs": len(pairs), "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures) or "none")},
    )


def _pairs_metadata(pairs, artifacts: ArtifactStore, family: str, seed: int, strategy: str, wh=None, prof=None) -> dict:
    parquet = export_pairs(pairs, artifacts.work_dir("pairs", strategy, family, str(seed)) / "pairs.parquet")
    png = histograms_png(
        pairs[["raw_weight"]], artifacts.work_dir("plots", family, str(seed)) / f"weights_{strategy}.png", f"{strategy} raw weights"
    )
    extra = {}
    if wh is not None and prof is not None and len(pairs):
        # TRL's conversational preference format + dataset card: `datasets.load_dataset(folder)` reads it.
        with wh.connect() as con:
            rows = pairs_for_export(con, family, seed, strategy)
        folder = export_pairs_trl(
            rows, artifacts.work_dir("pairs", strategy, family, str(seed)) / "trl", system_prompt=prof.sft.system_prompt,
            heldout_fraction=prof.pairs.heldout_fraction,
            card={"strategy": strategy, "family": family, "seed": seed, "profile": prof.name, "z": prof.pairs.perplexity_z},
        )
        extra["trl_dataset"] = dg.MetadataValue.path(folder)
    return {"pairs": len(pairs), **row_count(len(pairs)), "parquet": dg.MetadataValue.path(parquet), **extra, **image_metadata("weight_histogram", png)}


@multi_asset(
    specs=[
        spec(
            "funnel",
            deps=[verifier_profiles],
            metadata=table_metadata("funnel_counts"),
            automation_condition=FOLLOW_REVERIFY,
            code_version=stage_version("2", "funnel"),  # 2: stage 1 drops question echoes
            description="Counts of the four filtering stages (funnel_counts).",
        ),
        spec(
            "preference_pairs_hardneg",
            deps=[verifier_profiles],
            metadata=table_metadata("preference_pairs"),
            automation_condition=FOLLOW_REVERIFY,
            code_version=stage_version("3", "funnel", "pairs"),  # Z and the held-out share live in `pairs`; 3: echoes
            description="Verifier-selected hard-negative pairs with raw weights w = W + (1 − c) + PPL/Z.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec("funnel_counts_in_range", asset="funnel", blocking=True,
                          description="Every stage's count within the profile's expected range, stages chained."),
        dg.AssetCheckSpec("pairs_fit_for_dpo", asset="preference_pairs_hardneg", blocking=True,
                          description="Chosen ≠ rejected, no test-split problem, weights finite and positive."),
    ],
    partitions_def=FAMILY_SEED,
    group_name="pairs",
    can_subset=False,
)
def funnel_and_hardneg_pairs(
    context: dg.AssetExecutionContext, profile: ProfileResource, warehouse: WarehouseResource, artifacts: ArtifactStore
):
    prof = profile.load()
    family, seed = family_seed(context)
    wh = warehouse.get()
    with wh.connect() as con:
        result = run_funnel(con, family, seed, prof.funnel)
    pairs = build_hardneg_pairs(
        result, prompt_for=_prompt_for(prof, family, artifacts), z=prof.pairs.perplexity_z, missing_scores=prof.pairs.missing_scores
    )
    counts = result.counts
    wh.replace_partition("funnel_counts", counts, family=family, seed=seed)
    wh.replace_partition("preference_pairs", pairs, family=family, seed=seed, strategy="hardneg")
    context.log.info("funnel " + " → ".join([str(int(counts["n_in"].iloc[0]))] + [str(int(n)) for n in counts["n_out"]]))

    failures = check_funnel_counts(counts, prof.funnel_expected)
    record_checks(wh, family, seed, "funnel", {"funnel_counts_in_range": failures})
    png = funnel_png(counts, artifacts.work_dir("plots", family, str(seed)) / "funnel.png", f"funnel {family}|{seed}")
    hardest = result.selected.head(3)
    examples = "\n\n".join(
        f"**{r.candidate_id}** W={r.wrongness:.2f} A={r.absurdity:.2f} c={r.confidence:.2f}: {str(r.text)[:300]!r}"
        for r in hardest.itertuples()
    )
    yield dg.MaterializeResult(
        asset_key="funnel",
        data_version=rows_version(wh, "funnel_counts", family=family, seed=seed),
        metadata={
            "funnel": md_table(counts[["stage", "name", "n_in", "n_out", "reason"]]),
            **row_count(len(counts)),
            **image_metadata("funnel_plot", png),
        },
        check_results=[
            dg.AssetCheckResult(
                asset_key="funnel",
                check_name="funnel_counts_in_range",
                passed=not failures,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "expected": str({k: (v.min, v.max) for k, v in prof.funnel_expected.items()}),
                    "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures) or "none"),
                },
            )
        ],
    )
    yield dg.MaterializeResult(
        asset_key="preference_pairs_hardneg",
        data_version=rows_version(wh, "preference_pairs", family=family, seed=seed, strategy="hardneg"),
        metadata={
            **_pairs_metadata(pairs, artifacts, family, seed, "hardneg", wh, prof),
            "hardest_negatives": dg.MetadataValue.md(examples or "_none_"),
        },
        check_results=[_pairs_check(wh, pairs, "preference_pairs_hardneg", family, seed)],
    )


@asset(
    partitions_def=FAMILY_SEED,
    deps=["preference_pairs_hardneg"],
    metadata=table_metadata("preference_pairs"),
    automation_condition=FOLLOW_REVERIFY,
    group_name="pairs",
    kinds={"duckdb"},
    code_version=stage_version("3", "funnel", "pairs"),  # 3: echoes are degenerate here too
    check_specs=[dg.AssetCheckSpec("pairs_fit_for_dpo", asset="preference_pairs_random", blocking=True)],
    description="Random-uniform baseline: as many pairs as the hard-negative set, chosen/rejected by final answer alone, weight 1.",
)
def preference_pairs_random(
    context: dg.AssetExecutionContext, profile: ProfileResource, warehouse: WarehouseResource, artifacts: ArtifactStore
):
    prof = profile.load()
    family, seed = family_seed(context)
    wh = warehouse.get()
    n_pairs = wh.count("preference_pairs", family=family, seed=seed, strategy="hardneg")
    with wh.connect() as con:
        pairs = build_random_pairs(
            con, family, seed, n_pairs, seed_for_rng=seed, prompt_for=_prompt_for(prof, family, artifacts), config=prof.funnel
        )
    wh.replace_partition("preference_pairs", pairs, family=family, seed=seed, strategy="random")
    return dg.MaterializeResult(
        data_version=rows_version(wh, "preference_pairs", family=family, seed=seed, strategy="random"),
        metadata={**_pairs_metadata(pairs, artifacts, family, seed, "random", wh, prof), "matched_hardneg_count": n_pairs},
        check_results=[_pairs_check(wh, pairs, "preference_pairs_random", family, seed)],
    )
