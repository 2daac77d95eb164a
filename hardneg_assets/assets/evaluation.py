"""Evaluation under the Step-DPO protocol (SPEC §2.6) and the Table 1 report.

`eval_base` scores each family's starting policy (after SFT where the family has it);
greedy decoding makes it seed-independent, so it is partitioned by family and stored
under seed 0. `eval_random` / `eval_hardneg` score the DPO policies per family × seed.
`report` lays every `eval_summary` row out as the paper's Table 1.
"""

import time

import dagster as dg
import pandas as pd

from hardneg.data import load_problems
from hardneg.paths import artifacts_dir
from hardneg.evaluation import evaluate
from hardneg.generation import build_backend
from hardneg.plots import accuracy_bars_png
from hardneg.policy import load_merged_policy
from hardneg.report import dpo_heldout, paired_tests, report_markdown, table1_long
from hardneg_assets.checks import EVAL_CHECKS, eval_check_results, eval_check_specs, skipped_results
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import generation_progress, image_metadata, md_table, row_count, table_metadata
from hardneg_assets.partitions import FAMILY, FAMILY_SEED, family_seed, stage_version
from hardneg_assets.policies import family_policy, trained_policy
from hardneg_assets.versions import rows_version, text_version
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource

BENCHMARK_SPLITS = {"gsm8k": ("gsm8k", "test"), "math": ("math", "test"), "math500": ("math500", "test")}


def benchmark_items(name: str, n: int | None) -> pd.DataFrame:
    problems, _ = load_problems(*BENCHMARK_SPLITS[name], limit=n)
    return problems.rename(columns={"problem_id": "item_id", "reference_answer": "reference"})


def run_evaluation(context, profile, family: str, seed: int, strategy: str, base: str, adapters, compute, warehouse) -> dg.MaterializeResult:
    """Greedy-decode every configured benchmark, store samples and summary for this partition."""
    device = compute.resolved_device()
    model, tokenizer = load_merged_policy(base, adapters, device)
    backend = build_backend(
        profile.generation, model, tokenizer, device, base_path=base, adapters=adapters,
        workdir=artifacts_dir() / "eval" / f"{family}-{seed}-{strategy}", log=context.log.info,
    )
    wh = warehouse.get()
    summaries, started = [], time.time()
    n_items, truncated, counts = 0, 0, {}
    for spec in profile.eval.benchmarks:
        items = benchmark_items(spec.name, spec.n)
        n_items += len(items)
        context.log.info(f"eval {strategy} {family}|{seed} on {spec.name}: {len(items)} items")
        samples, summary = evaluate(backend, items, spec.name, profile.eval, progress=generation_progress(context, f"eval {spec.name}"))
        truncated += int((samples["finish_reason"] == "length").sum())
        counts[spec.name] = (len(samples), spec.n)
        run_id = f"{family}|{seed}|{strategy}"
        samples = samples.assign(run_id=run_id, family=family, seed=seed, strategy=strategy)
        summary = summary.assign(family=family, seed=seed, strategy=strategy)
        wh.replace_partition("eval_samples", samples, family=family, seed=seed, strategy=strategy, benchmark=spec.name)
        # Per-subject/level rows share the benchmark's prefix; replace them together.
        wh.replace_where(
            "eval_summary",
            summary,
            "family = ? AND seed = ? AND strategy = ? AND (benchmark = ? OR benchmark LIKE ?)",
            [family, seed, strategy, spec.name, f"{spec.name}/%"],
        )
        summaries.append(summary)
    seconds = time.time() - started
    table = pd.concat(summaries, ignore_index=True)
    overall = table[~table["benchmark"].str.contains("/")]
    return dg.MaterializeResult(
        data_version=rows_version(wh, "eval_samples", family=family, seed=seed, strategy=strategy),
        metadata={
            **{f"accuracy/{r.benchmark}": dg.MetadataValue.float(float(r.accuracy)) for r in overall.itertuples()},
            "items_per_s": dg.MetadataValue.float(n_items / max(seconds, 1e-9)),
            "summary": md_table(table[["benchmark", "n", "accuracy", "accuracy_math_verify"]].round(4)),
            **row_count(wh.count("eval_samples", family=family, seed=seed, strategy=strategy)),
        },
        check_results=eval_check_results(context.asset_key.to_user_string(), truncated, n_items, counts),
    )


@asset(
    partitions_def=FAMILY,
    deps=["sft_adapter"],
    metadata=table_metadata("eval_samples"),
    check_specs=eval_check_specs("eval_base"),
    group_name="evaluation",
    kinds={"pytorch", "duckdb"},
    pool="gpu",
    code_version=stage_version("1", "eval", "generation"),
    description="The family's starting policy (after SFT where it has one) on GSM8K / MATH, Step-DPO protocol.",
)
def eval_base(
    context: dg.AssetExecutionContext,
    profile: ProfileResource,
    compute: ComputeResource,
    warehouse: WarehouseResource,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    prof = profile.load()
    family = context.partition_key
    base, adapters = family_policy(prof, family, artifacts)
    return run_evaluation(context, prof, family, 0, "base", base, adapters, compute, warehouse)


def build_eval_asset(strategy: str) -> dg.AssetsDefinition:
    @asset(
        name=f"eval_{strategy}",
        metadata=table_metadata("eval_samples"),
        check_specs=eval_check_specs(f"eval_{strategy}"),
        partitions_def=FAMILY_SEED,
        deps=[f"dpo_{strategy}"],
        group_name="evaluation",
        kinds={"pytorch", "duckdb"},
        pool="gpu",
        code_version=stage_version("1", "eval", "generation"),
        description=f"The {strategy}-DPO policy on GSM8K / MATH, Step-DPO protocol.",
    )
    def _eval(
        context: dg.AssetExecutionContext,
        profile: ProfileResource,
        compute: ComputeResource,
        warehouse: WarehouseResource,
        artifacts: ArtifactStore,
    ) -> dg.MaterializeResult:
        prof = profile.load()
        family, seed = family_seed(context)
        if strategy == "hardneg" and not prof.runs_hardneg(seed):
            reason = f"no hard-negative DPO on seed {seed} in profile {prof.name}"
            return dg.MaterializeResult(
                data_version=text_version("skipped", reason),
                metadata={"skipped": reason}, check_results=skipped_results(f"eval_{strategy}", EVAL_CHECKS, reason)
            )
        base, adapters = trained_policy(prof, family, seed, strategy, artifacts)
        return run_evaluation(context, prof, family, seed, strategy, base, adapters, compute, warehouse)

    return _eval


eval_assets = [build_eval_asset(s) for s in ("random", "hardneg")]


REPORT_SAMPLES_SQL = """
SELECT family, seed, strategy, benchmark, item_id, completion, correct, correct_math_verify FROM eval_samples
"""


@asset(
    deps=["eval_base", "eval_random", "eval_hardneg"],
    group_name="report",
    kinds={"duckdb", "pandas"},
    code_version="2",
    description="The paper's Table 1 (base / random DPO / hard-neg DPO per family) with 95 % intervals, Math-Verify "
    "beside the protocol, paired tests on the same items and DPO held-out metrics, as markdown, CSV and a chart.",
)
def report(warehouse: WarehouseResource, artifacts: ArtifactStore) -> dg.MaterializeResult:
    wh = warehouse.get()
    summary = wh.query("SELECT * FROM eval_summary")
    samples = wh.query(REPORT_SAMPLES_SQL)
    runs = wh.query("SELECT family, seed, stage, strategy, metrics FROM training_runs WHERE stage = 'dpo'")
    markdown = report_markdown(summary, samples, runs)
    long = table1_long(summary, samples)
    tests = paired_tests(samples)
    held = dpo_heldout(runs)
    out = artifacts.work_dir("report")
    (out / "table1.md").write_text(markdown)
    long.to_csv(out / "table1.csv", index=False)
    tests.to_csv(out / "paired_tests.csv", index=False)
    held.to_csv(out / "dpo_heldout.csv", index=False)
    png = accuracy_bars_png(long, out / "table1.png", "accuracy by model (error bars: std over seeds where n ≥ 2)")
    numbers = {}
    for r in held.itertuples():
        key = f"{r.family}|{r.seed}|{r.strategy}"
        for col in ("reward_margin_after", "reward_accuracy_after", "ref_logp_accuracy", "logp_accuracy_after"):
            value = getattr(r, col)
            if value is not None and not pd.isna(value):
                numbers[f"dpo_heldout/{key}/{col}"] = dg.MetadataValue.float(float(value))
    for r in tests.itertuples():
        key = f"{r.family}|{r.seed}|{r.benchmark}|{r.comparison.replace(' ', '_')}"
        numbers[f"paired/{key}/p_mcnemar"] = dg.MetadataValue.float(float(r.p_mcnemar))
        numbers[f"paired/{key}/changed_share"] = dg.MetadataValue.float(float(r.changed_share))
    return dg.MaterializeResult(
        data_version=text_version(markdown),
        metadata={
            "table1": dg.MetadataValue.md(markdown),
            "table1_md": dg.MetadataValue.path(str(out / "table1.md")),
            "table1_csv": dg.MetadataValue.path(str(out / "table1.csv")),
            "rows": len(long),
            **numbers,
            **image_metadata("chart", png),
        }
    )
