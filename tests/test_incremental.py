"""Incremental `hardneg run` (issue 17): a re-run does only what is missing or stale.

The whole smoke graph runs on the tiny model (the external-pool profile of
test_pipeline_e2e), through `hardneg_assets.run.run_incremental`, the function behind
`hardneg run`. What a run did is read from its Dagster materialization events; what is
stale comes from Dagster's own resolver (the UI's "Unsynced"), via the dry-run plan.
"""

from __future__ import annotations

import pytest

from test_pipeline_e2e import e2e_profile

FAMILY, SEED = "smollm2-135m-sft", 0
ALL = {
    "problems", "sft_adapter", "eval_base", "candidate_pool", "verifier_profiles", "funnel", "preference_pairs_hardneg",
    "preference_pairs_random", "dpo_hardneg", "dpo_random", "eval_hardneg", "eval_random", "report",
}
TABLES = {
    "candidates": "candidate_id",
    "verifier_profiles": "candidate_id",
    "funnel_counts": "stage",
    "preference_pairs": "strategy, pair_id",
    "eval_samples": "strategy, benchmark, item_id",
    "eval_summary": "strategy, benchmark",
}


def edit_profile(path: str, **sections) -> None:
    """Change sections of the YAML profile in place, as a user editing it would."""
    import yaml

    from hardneg.configuration import merge

    data = yaml.safe_load(open(path))
    with open(path, "w") as f:
        yaml.safe_dump(merge(data, sections), f)


def run(profile, overrides=(), **kwargs):
    from hardneg_assets.run import run_incremental, instance_at
    from resources import ComputeResource

    return run_incremental(
        profile, FAMILY, SEED, overrides, instance=instance_at(), resources={"compute": ComputeResource(device="cpu")}, **kwargs
    )


def executed(outcome) -> set[str]:
    done = {asset for asset, _ in outcome.materialized}
    print(f"materialized: {sorted(done)}")  # shown with -s / on failure: what each re-run did
    return done


def data_versions(outcome) -> dict[str, str]:
    return {
        m.asset_key.to_user_string(): m.materialization.tags["dagster/data_version"]
        for r in outcome.results
        for m in r.get_asset_materialization_events()
    }


def downstream_of(root: str) -> set[str]:
    """Every asset below `root` in the graph (from the definitions, not a hand-written list)."""
    from hardneg_assets.definitions import build_definitions
    import dagster as dg

    graph = build_definitions("smoke").resolve_asset_graph()
    found, frontier = set(), {dg.AssetKey(root)}
    while frontier:
        frontier = {c for k in frontier for c in graph.get(k).child_keys} - found
        found |= frontier
    return {k.to_user_string() for k in found}


def snapshot(home):
    from hardneg.warehouse import Warehouse

    wh = Warehouse(home / "warehouse.duckdb")
    tables = {t: wh.query(f"SELECT * FROM {t} ORDER BY {order}") for t, order in TABLES.items()}
    tables["training_runs"] = wh.query("SELECT family, seed, stage, strategy FROM training_runs ORDER BY stage, strategy")
    return tables


@pytest.mark.slow
def test_failure_in_dpo_then_rerun_runs_only_dpo_and_below(hardneg_home, tiny_model_dir, monkeypatch, tmp_path):
    import hardneg_assets.assets.dpo as dpo_module

    profile = e2e_profile(hardneg_home, tiny_model_dir)
    real_train = dpo_module.train_dpo

    def crash_weighted(*args, weighted, **kwargs):
        if weighted:
            raise RuntimeError("simulated crash in hard-negative DPO")
        return real_train(*args, weighted=weighted, **kwargs)

    monkeypatch.setattr(dpo_module, "train_dpo", crash_weighted)
    crashed = run(profile)
    assert crashed.code == 1
    assert "dpo_hardneg" not in executed(crashed) and "dpo_random" in executed(crashed)
    monkeypatch.setattr(dpo_module, "train_dpo", real_train)

    rerun = run(profile)
    assert rerun.code == 0
    # the failed step, what depends on it, and nothing that had succeeded
    assert executed(rerun) == {"dpo_hardneg", "eval_hardneg", "report"}
    assert {p.asset: p.reason for p in rerun.plan}["dpo_hardneg"] == "missing"
    resumed = snapshot(hardneg_home)

    # The same profile, uninterrupted, in a fresh home: the same tables.
    fresh_home = tmp_path / "uninterrupted"
    (fresh_home / "dagster").mkdir(parents=True)
    monkeypatch.setenv("HARDNEG_HOME", str(fresh_home))
    monkeypatch.setenv("DAGSTER_HOME", str(fresh_home / "dagster"))
    straight = run(e2e_profile(fresh_home, tiny_model_dir))
    assert straight.code == 0 and executed(straight) == ALL
    expected = snapshot(fresh_home)
    for table, frame in expected.items():
        assert resumed[table].equals(frame), f"{table} differs from the uninterrupted run"
    # the adapters: same weights (their data versions), though trained in two runs in two homes
    versions = {**data_versions(crashed), **data_versions(rerun)}
    for name, version in data_versions(straight).items():
        assert versions[name] == version, name


@pytest.mark.slow
def test_reruns_follow_changes(hardneg_home, tiny_model_dir):
    profile = e2e_profile(hardneg_home, tiny_model_dir)
    first = run(profile)
    assert first.code == 0 and executed(first) == ALL
    before = data_versions(first)

    # Nothing changed: nothing runs, and the plan says so.
    assert run(profile, dry_run=True).plan == []
    again = run(profile)
    assert again.code == 0 and executed(again) == set() and again.results == []

    # Re-materialized on purpose with identical rows: its data version is unchanged, so nothing below it runs.
    forced = run(profile, force=["candidate_pool"])
    assert executed(forced) == {"candidate_pool"}
    assert data_versions(forced)["candidate_pool"] == before["candidate_pool"]

    # One DPO setting: both DPO assets are stale for their code version; below them only what saw new data.
    edit_profile(profile, dpo={"beta": 0.3})
    plan = run(profile, dry_run=True).plan
    assert {(p.asset, p.reason.split(" (")[0]) for p in plan} == {("dpo_hardneg", "code changed"), ("dpo_random", "code changed")}
    changed = run(profile)
    ran = executed(changed)
    assert {"dpo_hardneg", "dpo_random"} <= ran <= {"dpo_hardneg", "dpo_random", "eval_hardneg", "eval_random", "report"}
    after = data_versions(changed)
    for strategy in ("hardneg", "random"):  # an evaluation runs exactly when its policy changed
        assert (f"eval_{strategy}" in ran) == (after[f"dpo_{strategy}"] != before[f"dpo_{strategy}"])
    evals_changed = any(after.get(f"eval_{s}", before[f"eval_{s}"]) != before[f"eval_{s}"] for s in ("hardneg", "random"))
    assert ("report" in ran) == evals_changed
    assert run(profile, dry_run=True).plan == []

    # A verifier weight: verifier_profiles, then whatever below it got new data; nothing above it.
    weights = {"d_semantic": 0.05, "d_structure": 0.05, "d_order": 0.05, "d_logic": 0.1, "d_numeric": 0.1, "d_answer": 0.65}
    edit_profile(profile, verifier={"wrongness_weights": weights})
    plan = run(profile, dry_run=True).plan
    assert [(p.asset, p.reason.split(" (")[0]) for p in plan] == [("verifier_profiles", "code changed")]
    reverified = run(profile)
    ran = executed(reverified)
    assert "verifier_profiles" in ran and {"funnel", "preference_pairs_hardneg"} <= ran  # W moves every raw weight
    assert ran <= {"verifier_profiles"} | downstream_of("verifier_profiles")
    reasons = {p.asset: p.reason for p in reverified.plan}
    assert reasons["funnel"] == "upstream changed: verifier_profiles[smollm2-135m-sft|0]"
    assert run(profile, dry_run=True).plan == []

    # --force with no names is today's behaviour: every asset of the partition.
    assert executed(run(profile, force=[])) == ALL


def test_rows_version_follows_the_rows_not_their_order(tmp_path):
    import pandas as pd

    from hardneg.warehouse import Warehouse
    from hardneg_assets.versions import rows_version

    wh = Warehouse(tmp_path / "w.duckdb")
    rows = pd.DataFrame({"family": "f", "seed": 0, "stage": [1, 2], "name": ["a", "b"], "n_in": [4, 3], "n_out": [3, 1], "reason": ["x", None]})
    wh.replace_partition("funnel_counts", rows, family="f", seed=0)
    first = rows_version(wh, "funnel_counts", family="f", seed=0)
    wh.replace_partition("funnel_counts", rows.iloc[::-1], family="f", seed=0)  # same rows, other order
    assert rows_version(wh, "funnel_counts", family="f", seed=0) == first
    wh.replace_partition("funnel_counts", rows.assign(seed=1), family="f", seed=1)  # another partition
    assert rows_version(wh, "funnel_counts", family="f", seed=0) == first
    wh.replace_partition("funnel_counts", rows.assign(n_out=[3, 2]), family="f", seed=0)
    assert rows_version(wh, "funnel_counts", family="f", seed=0) != first
    with pytest.raises(KeyError, match="no column"):
        rows_version(wh, "funnel_counts", family="f", sed=0)


def test_force_names_an_existing_asset():
    from hardneg_assets.definitions import build_definitions
    from hardneg_assets.run import UnknownAsset, check_force

    defs = build_definitions("smoke")
    assert check_force(defs, None) is None and check_force(defs, []) == frozenset()
    assert check_force(defs, ["dpo_hardneg"]) == {"dpo_hardneg"}
    with pytest.raises(UnknownAsset, match="dpo_hardnge"):
        check_force(defs, ["dpo_hardnge"])


def test_an_asset_between_two_planned_ones_is_planned_too():
    """A new pool and a changed funnel setting: verifier_profiles looks up to date before the run,
    but skipping it would run the funnel on the old pool's profiles."""
    from hardneg_assets.definitions import build_definitions
    from hardneg_assets.run import Planned, close_gaps

    graph = build_definitions("smoke").resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    planned = [Planned("candidate_pool", "f|0", "code changed"), Planned("funnel", "f|0", "code changed")]
    closed = close_gaps(graph, planned, keys, "f|0")
    assert [p.asset for p in closed] == ["candidate_pool", "verifier_profiles", "funnel"]
    assert closed[1].reason == "upstream candidate_pool runs first"
    # only below: left to the next wave, which knows whether the data really changed
    assert [p.asset for p in close_gaps(graph, planned[:1], keys, "f|0")] == ["candidate_pool"]
    # an asset this step already materialized is not planned again
    assert [p.asset for p in close_gaps(graph, planned, keys, "f|0", done={"verifier_profiles"})] == ["candidate_pool", "funnel"]
