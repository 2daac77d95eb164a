"""Jobs, selections and automation: which assets run together, and when.

Dagster runs one partitions definition per job, so the pipeline is three jobs that
`hardneg run` (and `make run`) chains for one `family|seed`: `family_job` (SFT and the
base evaluation, per family), `pipeline_job` (candidates → verifier → funnel → pairs →
DPO → evaluation, per family × seed) and `report_job` (problems and Table 1). In the
UI, "Materialize all" launches the same graph as one backfill across partitions.

Layering: `jobs/` imports `dagster` only (selections by group and tag, automation
conditions); `hardneg_assets/` imports it, never the reverse.
"""

from jobs.automation import FOLLOW_REVERIFY, REVERIFY_CONDITION, reverify_sensor
from jobs.definitions import JOBS, evaluation_job, family_job, pipeline_job, report_job, reverify_job

__all__ = [
    "FOLLOW_REVERIFY",
    "JOBS",
    "REVERIFY_CONDITION",
    "evaluation_job",
    "family_job",
    "pipeline_job",
    "report_job",
    "reverify_job",
    "reverify_sensor",
]
