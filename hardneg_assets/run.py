"""`hardneg run`: materialize the whole asset graph for one family × seed on the Dagster instance.

Dagster runs one partitions definition per run, so this chains the steps of
`jobs.selections.RUN_STEPS` (problems → the family's SFT and base eval → everything per
family × seed → report), each a real run in the instance at `$DAGSTER_HOME` (default
`$HARDNEG_HOME/dagster`; visible in the UI afterwards, with lineage and checks), then
prints the funnel and Table 1. The definitions are built for the profile given on the
command line, so its partitions, code versions and sizes agree by construction.

Imported only after the command line and the profile were checked (hardneg_assets/cli.py).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from hardneg.paths import REPO_ROOT, dagster_home, warehouse_path
from hardneg_assets.definitions import build_definitions
from hardneg_assets.partitions import family_seed_key
from jobs.selections import RUN_STEPS

DRIVER_TAG, PID_TAG = "hardneg/driver", "hardneg/pid"


def instance_at(home: Path | None = None) -> dg.DagsterInstance:
    """The project's instance: `home` (default `$DAGSTER_HOME`, else `$HARDNEG_HOME/dagster`) with its dagster.yaml.

    The instance is opened from that directory directly, so nothing in the environment is
    changed for code that runs later in this process.
    """
    home = Path(home or os.environ.get("DAGSTER_HOME") or dagster_home())
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = REPO_ROOT / "dagster.yaml"
    if not target.exists() or target.read_text() != source.read_text():
        shutil.copy(source, target)
    return dg.DagsterInstance.from_config(str(home))


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs a killed `hardneg run` left STARTED, and free their `gpu` pool slots.

    In-process runs hold their pool slot in the instance; a SIGKILL never releases it, and
    the next run would wait for that slot forever. The Dagster daemon's run monitoring does
    this for UI-launched runs; this does it for the CLI's own runs, recognised by their tags.
    """
    released = []
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING], tags={DRIVER_TAG: "cli"})
    )
    for record in records:
        run = record.dagster_run
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if pid and not _process_alive(pid):
            instance.report_run_failed(run, f"the `hardneg run` process ({pid}) that ran it is gone")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
            print(f"released run {run.run_id} left behind by a killed `hardneg run`", file=sys.stderr)
    return released


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_pipeline(
    profile_name: str | None,
    family: str,
    seed: int,
    overrides: Sequence[str] = (),
    skip_report: bool = False,
    instance: dg.DagsterInstance | None = None,
) -> int:
    """Run every step of RUN_STEPS for `family|seed`; 0 on success, 1 when a step failed."""
    defs = build_definitions(profile_name, overrides)
    instance = instance or instance_at()
    release_dead_runs(instance)
    tags = {DRIVER_TAG: "cli", PID_TAG: str(os.getpid())}
    keys = {"none": None, "family": family, "family_seed": family_seed_key(family, seed)}
    for label, selection, partitions in RUN_STEPS:
        if skip_report and label == "report":
            continue
        key = keys[partitions]
        print(f"== {label}{f' {key}' if key else ''}", file=sys.stderr)
        result = dg.materialize(
            list(defs.assets),
            selection=selection,
            partition_key=key,
            resources=defs.resources,
            instance=instance,
            tags=tags,
            raise_on_error=False,
        )
        for check in result.get_asset_check_evaluations():
            if not check.passed:
                print(f"check {check.severity.value}: {check.asset_key.to_user_string()} {check.check_name}", file=sys.stderr)
        if not result.success:
            print(f"step '{label}' failed (run {result.run_id}); see `make ui` for the logs", file=sys.stderr)
            return 1
    print_summary(family, seed)
    return 0


def print_summary(family: str, seed: int) -> None:
    from hardneg.report import table1_markdown
    from hardneg.warehouse import Warehouse

    wh = Warehouse(warehouse_path())
    funnel = wh.query("SELECT stage, name, n_in, n_out FROM funnel_counts WHERE family = ? AND seed = ? ORDER BY stage", [family, seed])
    runs = wh.query("SELECT stage, strategy, artifact_path FROM training_runs WHERE family = ? ORDER BY stage, strategy", [family])
    print("\nFunnel", f"({family}|{seed})")
    print(funnel.to_markdown(index=False))
    print("\nTable 1")
    print(table1_markdown(wh.query("SELECT * FROM eval_summary")))
    print("\nArtifacts")
    print(runs.to_markdown(index=False))
    print(f"\nDuckDB warehouse: {warehouse_path()}")
