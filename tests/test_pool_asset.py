"""candidate_pool with the `inject` source through Dagster: labels, problems, a killed build resumed, then verified."""

from __future__ import annotations

import pytest
from pipeline_support import definitions_for, materialize, tiny_profile

import hardneg.inject as inject

FAMILY, KEY = "smollm2-135m-instruct", "smollm2-135m-instruct|0"
POOL = {"source": "inject", "shard_size": 8, "inject": {"variants_per_reference": 4, "max_references": 3, "propagate": 1.0}}


def test_inject_pool_build_resumes_after_a_failed_shard_and_feeds_the_verifier(hardneg_home, tiny_model_dir, monkeypatch):
    from hardneg.warehouse import Warehouse

    profile = tiny_profile(hardneg_home, tiny_model_dir, pool=POOL, verification={"shard_size": 10})
    defs = definitions_for(profile)
    assert materialize(defs, ["problems"]).success

    # A build that dies in its third shard (8 // 4 = 2 references per shard; 6 references = 3 shards).
    real, calls = inject.inject_reference, []

    def dying(ref, cfg):
        calls.append(ref.problem_id)
        if len(calls) == 5:
            raise RuntimeError("killed")
        return real(ref, cfg)

    monkeypatch.setattr(inject, "inject_reference", dying)
    failed = materialize(defs, ["candidate_pool"], KEY, raise_on_error=False)
    assert not failed.success
    parts = list((hardneg_home / "artifacts" / "candidate_pool").glob(f"{FAMILY}-0/parts-*/shard-*.done"))
    assert len(parts) == 2  # two finished shards survive the failure
    wh = Warehouse(hardneg_home / "warehouse.duckdb")
    assert wh.count("candidates", family=FAMILY, seed=0) == 0  # nothing half-stored

    monkeypatch.setattr(inject, "inject_reference", real)
    calls.clear()
    resumed = materialize(defs, ["candidate_pool"], KEY)
    assert resumed.success
    [mat] = [m for m in resumed.get_asset_materialization_events() if m.asset_key.to_user_string() == "candidate_pool"]
    assert mat.materialization.metadata["source"].value == "inject"
    assert "null" in mat.materialization.metadata["scores"].value

    rows = wh.query("SELECT * FROM candidates WHERE family = ? ORDER BY candidate_id", [FAMILY])
    labels = wh.query("SELECT * FROM injected_labels WHERE family = ? ORDER BY candidate_id", [FAMILY])
    assert len(rows) == 3 * 2 * 4 and rows["candidate_id"].is_unique  # 3 GSM8K + 3 MATH references × 4
    assert rows["candidate_id"].tolist() == labels["candidate_id"].tolist()
    expected = [f"{FAMILY}:0:{r['candidate_id']}" for r in inject.iter_rows(inject.InjectPoolConfig(**POOL["inject"]).inject_config(0))]
    assert sorted(expected) == rows["candidate_id"].tolist()  # resumed = a clean build
    math_ids = set(rows.loc[rows["problem_id"].str.startswith("math-"), "problem_id"])
    registered = wh.query("SELECT problem_id, source, split FROM problems WHERE source LIKE 'inject:%'")
    assert set(registered["problem_id"]) == math_ids and set(registered["split"]) == {"train"}
    assert not list((hardneg_home / "artifacts" / "candidate_pool").glob(f"{FAMILY}-0/parts-*"))  # parts removed once stored

    verified = materialize(defs, ["verifier_profiles"], KEY)
    assert verified.success
    [check] = verified.get_asset_check_evaluations()
    assert check.check_name == "one_profile_per_candidate" and check.passed
    assert wh.count("verifier_profiles", family=FAMILY, seed=0) == len(rows)
    assert wh.count("verifier_shards", family=FAMILY, seed=0) == 3  # 24 candidates in shards of 10


@pytest.mark.parametrize("bad", [{"source": "inject", "inject": {"sources": ["gsm8k-test"]}}, {"source": "sampled"}])
def test_bad_pool_sources_are_refused_before_anything_runs(hardneg_home, tiny_model_dir, bad):
    from hardneg.configuration import ConfigError

    with pytest.raises(ConfigError, match="pool"):
        definitions_for(tiny_profile(hardneg_home, tiny_model_dir, pool=bad))
