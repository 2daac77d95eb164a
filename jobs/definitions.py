"""Jobs over asset selections (kept apart from the assets, as in Dagster's project_ml).

Every selection is a group or a tag (`jobs/selections.py`), so this module needs no asset
objects: `jobs/` sits below `hardneg_assets/` and `hardneg_assets.definitions` puts them
together.
"""

from __future__ import annotations

import dagster as dg

from jobs.selections import DATA, EVALUATION, FAMILY_ASSETS, PARTITION_ASSETS, REPORT, REVERIFY

family_job = dg.define_asset_job(
    "family_job", selection=FAMILY_ASSETS, description="Per model family: SFT adapter, then the base evaluation."
)

pipeline_job = dg.define_asset_job(
    "pipeline_job",
    selection=PARTITION_ASSETS,
    description="Per family × seed: candidates → verifier → funnel → pairs → weighted/uniform DPO → evaluation.",
)

reverify_job = dg.define_asset_job(
    "reverify_job",
    selection=REVERIFY,
    description="Re-score the candidate pool with the current verifier, re-run the funnel, pairs and their checks.",
)

evaluation_job = dg.define_asset_job(
    "evaluation_job", selection=EVALUATION, description="Re-evaluate the DPO policies (Step-DPO protocol)."
)

report_job = dg.define_asset_job(
    "report_job", selection=DATA | REPORT, description="Load the bundled problems and lay out Table 1 from eval_summary."
)

JOBS = [family_job, pipeline_job, reverify_job, evaluation_job, report_job]
