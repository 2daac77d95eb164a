"""Jobs, the re-verification schedule and the stale-verifier sensor.

Dagster runs one partitions definition per job, so the pipeline is three jobs that
`hardneg run` (and `make run`) chains for one `family|seed`: `family_job` (SFT and the
base evaluation, per family), `pipeline_job` (candidates → verifier → funnel → pairs →
DPO → evaluation, per family × seed) and `report_job` (problems and Table 1). In the
UI, "Materialize all" launches the same graph as one backfill across partitions.
"""

from jobs.definitions import (
    evaluation_job,
    family_job,
    pipeline_job,
    report_job,
    reverify_job,
    reverify_schedule,
    stale_verifier_sensor,
)

__all__ = [
    "evaluation_job",
    "family_job",
    "pipeline_job",
    "report_job",
    "reverify_job",
    "reverify_schedule",
    "stale_verifier_sensor",
]
