"""`hardneg run`: bring the asset graph for one family × seed up to date on the Dagster instance.

Dagster runs one partitions definition per run, so this walks the steps of
`jobs.selections.RUN_STEPS` (problems → the family's SFT and base eval → everything per
family × seed → report), each as real runs in the instance at `$DAGSTER_HOME` (default
`$HARDNEG_HOME/dagster`; visible in the UI afterwards, with lineage and checks), then
prints the funnel and Table 1. The definitions are built for the profile given on the
command line, so its partitions, code versions and sizes agree by construction.

Incremental (issue 17): a step materializes only what Dagster itself reports as missing
or stale for the partition (`CachingStaleStatusResolver`, the resolver behind the UI's
"Unsynced" badge and "Materialize unsynced"): a new code version (code revision + the
profile sections the stage reads, `partitions.stage_version`) or an upstream whose data
version changed (`hardneg_assets/versions.py`). It runs in waves: the assets stale now,
then those their new data made stale, until nothing is; so an upstream that rewrites
identical rows leaves what is below it alone. `force` re-materializes on purpose;
`dry_run` only prints the plan. Inside a step, DPO and SFT still resume from checkpoints.

Imported only after the command line and the profile were checked (hardneg_assets/cli.py).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Planned:
    """One asset partition a step will materialize, and why."""

    asset: str
    partition: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.asset}{f'[{self.partition}]' if self.partition else ''}: {self.reason}"


@dataclass
class Outcome:
    """What `run_incremental` did: exit code, the runs it launched, what each materialized."""

    code: int
    results: list = field(default_factory=list)
    plan: list[Planned] = field(default_factory=list)

    @property
    def materialized(self) -> list[tuple[str, str | None]]:
        return [
            (m.asset_key.to_user_string(), m.partition)
            for r in self.results
            for m in r.get_asset_materialization_events()
        ]


def stale_resolver(defs: dg.Definitions, instance: dg.DagsterInstance):
    """Dagster's own staleness resolver over `defs` and `instance`, as of now.

    The same class the UI (and `RunRequest(stale_assets_only=True)`) uses, so `hardneg run`
    and "Materialize unsynced" agree. It caches per request: make a new one after each run.
    """
    # Dagster has no public constructor for this yet; these are the imports its own
    # sensor machinery (dagster._scheduler.stale) and test utilities use.
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def why_stale(resolver, key: dg.AssetKey, partition: str | None) -> str | None:
    """`missing`, `code changed`, `upstream changed: X[p]`, ...; None when the partition is up to date."""
    from dagster._core.definitions.data_version import StaleCauseCategory, StaleStatus

    status = resolver.get_status(key, partition)
    if status == StaleStatus.MISSING:
        return "missing"
    if status == StaleStatus.FRESH:
        return None
    reasons = []
    for cause in resolver.get_stale_causes(key, partition):
        if cause.category == StaleCauseCategory.CODE:
            reasons.append("code changed (code revision or the profile sections it reads)")
        elif cause.category == StaleCauseCategory.DATA and cause.dependency is not None:
            dep = cause.dependency
            reasons.append(f"upstream changed: {dep.asset_key.to_user_string()}{f'[{dep.partition_key}]' if dep.partition_key else ''}")
        else:
            reasons.append(cause.reason)
    return "; ".join(dict.fromkeys(reasons)) or "stale"


def plan_step(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: dg.AssetSelection,
    partition: str | None,
    force: frozenset[str] | None = None,
    done: frozenset[str] = frozenset(),
) -> list[Planned]:
    """The assets of `selection` to materialize for `partition` now, in topological order.

    `force`: None (only missing or stale), empty (every asset: `--force`), or asset names
    (those, plus whatever is missing or stale). `done` were already materialized in this
    step and are not planned again.
    """
    graph = defs.resolve_asset_graph()
    keys = selection.resolve(graph)
    resolver = stale_resolver(defs, instance)
    planned = []
    for key in graph.toposorted_asset_keys:
        name = key.to_user_string()
        if key not in keys or name in done:
            continue
        if force is not None and (not force or name in force):
            reason = "forced (--force)"
        else:
            reason = why_stale(resolver, key, partition)
        if reason:
            planned.append(Planned(name, str(partition) if partition is not None else None, reason))
    return close_gaps(graph, planned, keys, partition, done)


def close_gaps(graph, planned: list[Planned], keys, partition, done=frozenset()) -> list[Planned]:
    """Add every asset of the step that lies between two planned ones.

    Staleness is judged before the run: an asset whose upstream is about to be re-materialized
    still looks up to date. Left out, it would be skipped while an asset below it runs on its old
    rows (a new pool, old verifier profiles). Assets only below the planned ones are left to the
    next wave, which sees whether their upstream's data really changed."""
    names = {p.asset for p in planned}
    below: dict[dg.AssetKey, str] = {}
    frontier = [dg.AssetKey.from_user_string(n) for n in names]
    while frontier:
        key = frontier.pop()
        for child in graph.get(key).child_keys:
            if child not in below:
                below[child] = below.get(key, key.to_user_string())
                frontier.append(child)
    above: set[dg.AssetKey] = set()
    frontier = [dg.AssetKey.from_user_string(n) for n in names]
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent not in above:
                above.add(parent)
                frontier.append(parent)
    gaps = {k for k in below if k in above and k in keys and k.to_user_string() not in names | set(done)}
    if not gaps:
        return planned
    part = str(partition) if partition is not None else None
    extra = {k.to_user_string(): Planned(k.to_user_string(), part, f"upstream {below[k]} runs first") for k in gaps}
    order = [k.to_user_string() for k in graph.toposorted_asset_keys]
    merged = {p.asset: p for p in planned} | extra
    return [merged[n] for n in order if n in merged]


def _executable(defs: dg.Definitions, planned: list[Planned]) -> list[dg.AssetKey]:
    """The planned keys plus the rest of any multi-asset that cannot run a subset (funnel + hard-negative pairs)."""
    graph = defs.resolve_asset_graph()
    keys: set[dg.AssetKey] = set()
    for p in planned:
        keys |= set(graph.get(dg.AssetKey.from_user_string(p.asset)).execution_set_asset_keys)
    return [k for k in graph.toposorted_asset_keys if k in keys]


class UnknownAsset(ValueError):
    """`--force` named an asset the graph does not have."""


def check_force(defs: dg.Definitions, force: Sequence[str] | None) -> frozenset[str] | None:
    """`--force` names checked against the graph (a typo must not silently force nothing)."""
    if force is None:
        return None
    known = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    unknown = sorted(set(force) - known)
    if unknown:
        raise UnknownAsset(f"--force: no asset named {', '.join(unknown)} (assets: {', '.join(sorted(known))})")
    return frozenset(force)


def run_incremental(
    profile_name: str | None,
    family: str,
    seed: int,
    overrides: Sequence[str] = (),
    skip_report: bool = False,
    instance: dg.DagsterInstance | None = None,
    force: Sequence[str] | None = None,
    dry_run: bool = False,
    resources: dict | None = None,
    max_waves: int = 12,
) -> Outcome:
    """Bring every step of RUN_STEPS for `family|seed` up to date; see the module docstring."""
    defs = build_definitions(profile_name, overrides, resources)
    forced = check_force(defs, force)
    instance = instance or instance_at()
    if not dry_run:
        release_dead_runs(instance)
    tags = {DRIVER_TAG: "cli", PID_TAG: str(os.getpid())}
    keys = {"none": None, "family": family, "family_seed": family_seed_key(family, seed)}
    outcome = Outcome(0)
    for label, selection, partitions in RUN_STEPS:
        if skip_report and label == "report":
            continue
        key = keys[partitions]
        heading = f"== {label}{f' {key}' if key else ''}"
        if dry_run:
            planned = plan_step(defs, instance, selection, key, forced)
            outcome.plan += planned
            print(heading, file=sys.stderr)
            for p in planned:
                print(f"   would run {p}", file=sys.stderr)
            if not planned:
                print("   up to date", file=sys.stderr)
            continue
        done: set[str] = set()
        for wave in range(max_waves):
            planned = plan_step(defs, instance, selection, key, forced if wave == 0 else None, frozenset(done))
            if not planned:
                if wave == 0:
                    print(f"{heading}: up to date", file=sys.stderr)
                break
            outcome.plan += planned
            print(heading, file=sys.stderr)
            for p in planned:
                print(f"   {p}", file=sys.stderr)
            selected = _executable(defs, planned)
            result = dg.materialize(
                list(defs.assets),
                selection=selected,
                partition_key=key,
                resources=defs.resources,
                instance=instance,
                tags=tags,
                raise_on_error=False,
            )
            outcome.results.append(result)
            done |= {k.to_user_string() for k in selected}
            for check in result.get_asset_check_evaluations():
                if not check.passed:
                    why = check.metadata.get("failures")
                    detail = f": {' '.join(str(why.value).split())}" if why is not None else ""
                    print(f"check {check.severity.value}: {check.asset_key.to_user_string()} {check.check_name} failed{detail}",
                          file=sys.stderr)
            if not result.success:
                print(f"step '{label}' failed (run {result.run_id}); see `make ui` for the logs", file=sys.stderr)
                outcome.code = 1
                return outcome
        else:
            raise RuntimeError(f"step '{label}' still had stale assets after {max_waves} runs: {planned}")
    if dry_run:
        print(_downstream_note(defs, outcome.plan), file=sys.stderr)
    else:
        print_summary(family, seed)
    return outcome


def _downstream_note(defs: dg.Definitions, plan: list[Planned]) -> str:
    """What a dry run cannot know yet: which assets below the planned ones will follow."""
    graph = defs.resolve_asset_graph()
    planned = {dg.AssetKey.from_user_string(p.asset) for p in plan}
    followers: set[dg.AssetKey] = set()
    frontier = set(planned)
    while frontier:
        nxt = set()
        for k in frontier:
            nxt |= set(graph.get(k).child_keys)
        frontier = nxt - followers - planned
        followers |= frontier
    if not followers:
        return "nothing else follows" if plan else "nothing to do"
    names = ", ".join(k.to_user_string() for k in graph.toposorted_asset_keys if k in followers)
    return f"then, as far as those write new data (not known before they run), what depends on them: {names}"


def print_summary(family: str, seed: int) -> None:
    from hardneg.paths import artifacts_dir
    from hardneg.report import table1_markdown
    from hardneg.warehouse import Warehouse

    wh = Warehouse(warehouse_path())
    funnel = wh.query("SELECT stage, name, n_in, n_out FROM funnel_counts WHERE family = ? AND seed = ? ORDER BY stage", [family, seed])
    runs = wh.query("SELECT stage, strategy, artifact_path FROM training_runs WHERE family = ? ORDER BY stage, strategy", [family])
    print("\nFunnel", f"({family}|{seed})")
    print(funnel.to_markdown(index=False))
    # The report asset's own table1.md (intervals, paired tests, held-out DPO metrics): one source.
    report = artifacts_dir() / "report" / "table1.md"
    if report.exists():
        print("\n" + report.read_text())
        print(f"(report: {report})")
    else:
        print("\nTable 1")
        print(table1_markdown(wh.query("SELECT * FROM eval_summary")))
    print("\nArtifacts")
    print(runs.to_markdown(index=False))
    print(f"\nDuckDB warehouse: {warehouse_path()}")
