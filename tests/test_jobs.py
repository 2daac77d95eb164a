"""Jobs, the re-verify schedule and the stale-verifier sensor, evaluated against real Definitions."""

import datetime as dt

import dagster as dg
import pandas as pd

from hardneg.verifier import VERIFIER_VERSION


def test_definitions_resolve_every_job():
    from hardneg_assets.definitions import defs

    for name in ("family_job", "pipeline_job", "reverify_job", "evaluation_job", "report_job"):
        assert defs.resolve_job_def(name) is not None
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert "dpo_hardneg" in keys and "report" in keys
    upstream = {k.to_user_string() for k in graph.get(dg.AssetKey("dpo_hardneg")).parent_keys}
    assert upstream == {"preference_pairs_hardneg", "sft_adapter"}


def test_reverify_schedule_requests_every_family_seed_partition():
    from hardneg_assets.partitions import FAMILY_SEED
    from jobs import reverify_schedule

    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 29, 3, 0))
    requests = list(reverify_schedule(ctx))
    assert sorted(r.partition_key for r in requests) == sorted(FAMILY_SEED.get_partition_keys())
    assert len({r.run_key for r in requests}) == len(requests)


def test_stale_verifier_sensor_requests_only_stale_partitions(hardneg_home):
    from hardneg.warehouse import Warehouse
    from jobs import stale_verifier_sensor

    wh = Warehouse(hardneg_home / "warehouse.duckdb")
    ctx = dg.build_sensor_context()
    [skip] = list(stale_verifier_sensor(ctx))
    assert isinstance(skip, dg.SkipReason)  # empty warehouse: nothing stale

    rows = pd.DataFrame(
        {"candidate_id": ["a", "b"], "family": ["smollm2-135m-sft", "smollm2-135m-sft"], "seed": [0, 1],
         "verifier_version": ["mv-0.0-old", VERIFIER_VERSION]}
    )
    wh.replace_partition("verifier_profiles", rows.iloc[[0]], family="smollm2-135m-sft", seed=0)
    wh.replace_partition("verifier_profiles", rows.iloc[[1]], family="smollm2-135m-sft", seed=1)
    requests = list(stale_verifier_sensor(ctx))
    assert [r.partition_key for r in requests] == ["smollm2-135m-sft|0"]


def test_code_version_follows_the_profile_sections_a_stage_reads(monkeypatch):
    import dataclasses

    from hardneg_assets import partitions

    before = {s: partitions.stage_version("1", s) for s in ("dpo", "eval")}
    changed = dataclasses.replace(partitions.PROFILE.dpo, learning_rate=partitions.PROFILE.dpo.learning_rate * 2)
    monkeypatch.setattr(partitions.PROFILE, "dpo", changed)
    assert partitions.stage_version("1", "dpo") != before["dpo"]
    assert partitions.stage_version("1", "eval") == before["eval"]
