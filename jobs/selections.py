"""Which assets each job, `hardneg run` step and automation targets: by group or tag, never by name.

The definitions factory (`hardneg_assets.definitions.build_definitions`) tags every asset
with its partitions (`hardneg/partitions`: `none`, `family` or `family_seed`), so a new
family × seed asset joins `pipeline_job` and `hardneg run` without being listed anywhere.
"""

from __future__ import annotations

import dagster as dg

PARTITIONS_TAG = "hardneg/partitions"

DATA = dg.AssetSelection.groups("data")
"""The bundled problems: unpartitioned, needed before everything else."""
FAMILY_ASSETS = dg.AssetSelection.tag(PARTITIONS_TAG, "family")
"""Per model family: the SFT adapter and the base evaluation."""
PARTITION_ASSETS = dg.AssetSelection.tag(PARTITIONS_TAG, "family_seed")
"""Per family × seed: candidates → verifier → funnel → pairs → DPO → evaluation."""
REPORT = dg.AssetSelection.groups("report")
"""Table 1 over every evaluated partition."""
REVERIFY = dg.AssetSelection.groups("verifier", "pairs")
"""Re-score the pool and re-select pairs (what a verifier change invalidates, short of DPO)."""
EVALUATION = dg.AssetSelection.groups("evaluation") & PARTITION_ASSETS
"""The DPO policies' evaluations."""

# `hardneg run` for one family|seed: one Dagster run per partitions definition, in this order.
# The third element says which partition key the step takes: none, the family, or family|seed.
RUN_STEPS: list[tuple[str, dg.AssetSelection, str]] = [
    ("problems", DATA, "none"),
    ("family", FAMILY_ASSETS, "family"),
    ("partition", PARTITION_ASSETS, "family_seed"),
    ("report", REPORT, "none"),
]
