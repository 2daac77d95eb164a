"""`hardneg run`: materialize the whole asset graph for one family × seed on the Dagster instance.

Dagster runs one partitions definition per run, so this chains four runs, each a
real run in `$DAGSTER_HOME` (visible in the UI afterwards, with lineage and checks):
`problems` → the family's `sft_adapter` and `eval_base` → everything per family × seed
→ `report`. It then prints the funnel and Table 1.
"""

from __future__ import annotations

import os
import shutil
import sys

from hardneg.paths import REPO_ROOT, dagster_home, warehouse_path


def prepare_dagster_home() -> str:
    """Point DAGSTER_HOME at `$HARDNEG_HOME/dagster` with the project's dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME") or str(dagster_home())
    os.environ["DAGSTER_HOME"] = home
    os.makedirs(home, exist_ok=True)
    target = os.path.join(home, "dagster.yaml")
    if not os.path.exists(target) or open(target).read() != (REPO_ROOT / "dagster.yaml").read_text():
        shutil.copy(REPO_ROOT / "dagster.yaml", target)
    return home


DRIVER_TAG, PID_TAG = "hardneg/driver", "hardneg/pid"


def release_dead_runs(instance) -> list[str]:
    """Fail the runs a killed `hardneg run` left STARTED, and free their `gpu` pool slots.

    In-process runs hold their pool slot in the instance; a SIGKILL never releases it, and
    the next run would wait for that slot forever. The Dagster daemon's run monitoring does
    this for UI-launched runs; this does it for the CLI's own runs, recognised by their tags.
    """
    import dagster as dg

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


def run_pipeline(profile: str | None = None, partition: str | None = None, skip_report: bool = False) -> int:
    if profile:
        os.environ["HARDNEG_PROFILE"] = profile
    prepare_dagster_home()
    import dagster as dg

    from hardneg_assets.definitions import ASSETS, RESOURCES
    from hardneg_assets.partitions import PROFILE, family_seed_key

    key = partition or PROFILE.default_partition
    family, seed = key.split("|")
    instance = dg.DagsterInstance.get()
    release_dead_runs(instance)
    tags = {DRIVER_TAG: "cli", PID_TAG: str(os.getpid())}
    steps = [
        ("problems", ["problems"], None),
        (f"family {family}", ["sft_adapter", "eval_base"], family),
        (
            f"partition {key}",
            [
                "candidate_pool",
                "verifier_profiles",
                "funnel",
                "preference_pairs_hardneg",
                "preference_pairs_random",
                "dpo_hardneg",
                "dpo_random",
                "eval_hardneg",
                "eval_random",
            ],
            family_seed_key(family, int(seed)),
        ),
    ]
    if not skip_report:
        steps.append(("report", ["report"], None))
    for label, selection, partition_key in steps:
        print(f"== {label}: {', '.join(selection)}", file=sys.stderr)
        result = dg.materialize(
            ASSETS,
            selection=selection,
            partition_key=partition_key,
            resources=RESOURCES,
            instance=instance,
            tags=tags,
            raise_on_error=False,
        )
        failed_checks = [
            e.asset_check_evaluation_data
            for e in result.get_asset_check_evaluations()
            if not e.passed
        ]
        for check in failed_checks:
            print(f"check failed: {check.asset_key.to_user_string()} {check.check_name}", file=sys.stderr)
        if not result.success:
            print(f"step '{label}' failed (run {result.run_id}); see `make ui` for the logs", file=sys.stderr)
            return 1
    print_summary(family, int(seed))
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
