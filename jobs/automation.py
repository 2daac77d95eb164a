"""Declarative automation: re-verification when the verifier changes, and weekly.

`verifier_profiles`' code version is the verifier's version plus a hash of the profile's
`verifier` section, so editing a verifier weight or threshold in the YAML (or bumping
`VERIFIER_VERSION`) changes it; Dagster then shows every profile downstream as stale, and
`code_version_changed()` re-verifies the partitions that exist. `cron_tick_passed` keeps
the weekly re-verification (Sunday 03:00 UTC). The funnel and the pairs follow an updated
verifier partition (eager, existing partitions only); DPO and evaluation are left to you,
since they cost GPU hours and the UI shows them stale.

This replaces the hand-written schedule (Dagster's partitioned-schedule builder refuses a
static × static multi-partition) and the sensor that compared stored `verifier_version`
values; the `reverify_sensor` below evaluates these conditions (off by default, as the
schedule and sensor were: turn it on under Automation in the UI).
"""

from __future__ import annotations

import dagster as dg

from jobs.selections import REVERIFY

WEEKLY = "0 3 * * 0"

REVERIFY_CONDITION = (
    (dg.AutomationCondition.code_version_changed() | dg.AutomationCondition.cron_tick_passed(WEEKLY))
    & ~dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.any_deps_in_progress()
).with_label("re-verify: verifier changed, or weekly")

FOLLOW_REVERIFY = (dg.AutomationCondition.eager() & ~dg.AutomationCondition.missing()).with_label(
    "follow the verifier (existing partitions)"
)

reverify_sensor = dg.AutomationConditionSensorDefinition(
    "reverify_sensor",
    target=REVERIFY,
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Evaluates the re-verification conditions of the verifier and pairs groups (see jobs/automation.py).",
)
