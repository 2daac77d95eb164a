"""The one `Definitions` object of the code location: assets, checks, jobs, schedule, sensor, resources."""

from __future__ import annotations

import dagster as dg

from hardneg_assets.assets.candidates import candidate_pool
from hardneg_assets.assets.dpo import dpo_assets
from hardneg_assets.assets.evaluation import eval_assets, eval_base, report
from hardneg_assets.assets.pairs import funnel_and_hardneg_pairs, preference_pairs_random
from hardneg_assets.assets.problems import problems
from hardneg_assets.assets.sft import sft_adapter
from hardneg_assets.assets.verifier import verifier_profiles
from jobs import (
    evaluation_job,
    family_job,
    pipeline_job,
    report_job,
    reverify_job,
    reverify_schedule,
    stale_verifier_sensor,
)
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource

ASSETS = [
    problems,
    sft_adapter,
    candidate_pool,
    verifier_profiles,
    funnel_and_hardneg_pairs,
    preference_pairs_random,
    *dpo_assets,
    eval_base,
    *eval_assets,
    report,
]

RESOURCES = {
    "profile": ProfileResource(),
    "compute": ComputeResource(),
    "warehouse": WarehouseResource(),
    "artifacts": ArtifactStore(),
}

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[family_job, pipeline_job, reverify_job, evaluation_job, report_job],
    schedules=[reverify_schedule],
    sensors=[stale_verifier_sensor],
    resources=RESOURCES,
)
