"""Job, schedule and sensor definitions (kept apart from the assets, as in Dagster's project_ml)."""

from __future__ import annotations

import dagster as dg

from hardneg.verifier import VERIFIER_VERSION
from hardneg_assets.partitions import FAMILY_SEED, PROFILE, family_seed_key

family_job = dg.define_asset_job(
    "family_job",
    selection=dg.AssetSelection.assets("sft_adapter", "eval_base"),
    description="Per model family: SFT adapter, then the base evaluation.",
)

pipeline_job = dg.define_asset_job(
    "pipeline_job",
    selection=dg.AssetSelection.assets(
        "candidate_pool",
        "verifier_profiles",
        "funnel",
        "preference_pairs_hardneg",
        "preference_pairs_random",
        "dpo_hardneg",
        "dpo_random",
        "eval_hardneg",
        "eval_random",
    ),
    description="Per family × seed: candidates → verifier → funnel → pairs → weighted/uniform DPO → evaluation.",
)

reverify_job = dg.define_asset_job(
    "reverify_job",
    selection=dg.AssetSelection.assets("verifier_profiles", "funnel", "preference_pairs_hardneg"),
    description="Re-score the candidate pool with the current verifier, re-run the funnel and its checks.",
)

evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=dg.AssetSelection.assets("eval_hardneg", "eval_random"),
    description="Re-evaluate the DPO policies (Step-DPO protocol).",
)

report_job = dg.define_asset_job(
    "report_job",
    selection=dg.AssetSelection.assets("problems", "report"),
    description="Load the bundled problems and lay out Table 1 from eval_summary.",
)


def all_family_seed_keys() -> list[str]:
    return FAMILY_SEED.get_partition_keys()


@dg.schedule(job=reverify_job, cron_schedule="0 3 * * 0", default_status=dg.DefaultScheduleStatus.STOPPED)
def reverify_schedule(context: dg.ScheduleEvaluationContext):
    """Weekly: re-verify every family × seed partition (one run each).

    Hand-written because Dagster's partitioned-schedule builder refuses a static × static
    multi-partition.
    """
    stamp = context.scheduled_execution_time.strftime("%Y%m%d%H%M") if context.scheduled_execution_time else "manual"
    for key in all_family_seed_keys():
        yield dg.RunRequest(run_key=f"reverify-{key}-{stamp}", partition_key=key)


@dg.sensor(job=reverify_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def stale_verifier_sensor(context: dg.SensorEvaluationContext):
    """Re-verify partitions whose stored profiles came from another verifier version."""
    from resources import WarehouseResource

    wh = WarehouseResource().get()
    stale = wh.query(
        "SELECT DISTINCT family, seed FROM verifier_profiles WHERE verifier_version <> ?", [VERIFIER_VERSION]
    )
    if stale.empty:
        yield dg.SkipReason(f"every stored profile is at verifier {VERIFIER_VERSION}")
        return
    families = {f.name for f in PROFILE.families}
    for r in stale.itertuples():
        if r.family in families and int(r.seed) in PROFILE.seeds:
            key = family_seed_key(r.family, int(r.seed))
            yield dg.RunRequest(run_key=f"stale-{key}-{VERIFIER_VERSION}", partition_key=key)
