"""Paper-scale pool plumbing (issue 11): inject shards, resumable Parquet parts, file loads, the DPO gate."""

from __future__ import annotations

import pandas as pd
import pytest

from hardneg.configuration import ConfigError
from hardneg.inject import InjectPoolConfig, inject_shards
from hardneg.pool import PoolParts, pool_key, register_pool_problems
from hardneg.warehouse import Warehouse, WarehouseError

SMALL = InjectPoolConfig(variants_per_reference=4, max_references=6, sources=["gsm8k"])


def test_inject_shards_whole_references_unique_ids_and_a_resumed_tail_equal_to_the_full_run():
    full = list(inject_shards(SMALL, "fam", 3, shard_size=8))  # 8 // 4 = 2 references per shard
    assert [s.index for s in full] == [0, 1, 2]
    ids = [i for s in full for i in s.candidates["candidate_id"]]
    assert len(ids) == len(set(ids)) == 24 and all(i.startswith("fam:3:") for i in ids)
    for shard in full:  # every row of a reference lands in the shard of that reference
        assert set(shard.candidates["problem_id"]) == set(shard.problems["problem_id"])
        assert len(shard.problems) == 2
        assert shard.labels["candidate_id"].tolist() == shard.candidates["candidate_id"].tolist()
    labels = pd.concat([s.labels for s in full])
    assert (labels.loc[labels["variant"] == 0, "error_type"] == "correct").all()
    assert labels.loc[labels["error_type"] == "correct", "error_step"].isna().all()
    assert full[0].candidates["confidence"].isna().all()  # no policy scores on this source

    tail = list(inject_shards(SMALL, "fam", 3, shard_size=8, start_shard=1))
    assert [s.index for s in tail] == [1, 2]
    for a, b in zip(full[1:], tail):
        pd.testing.assert_frame_equal(a.candidates, b.candidates)
    other_seed = next(inject_shards(SMALL, "fam", 4, shard_size=8))
    assert other_seed.candidates["text"].tolist() != full[0].candidates["text"].tolist()


def test_inject_pool_config_names_its_own_fields():
    with pytest.raises(ValueError, match="InjectPoolConfig.sources"):
        InjectPoolConfig(sources=["gsm8k", "math-test"])
    with pytest.raises(ValueError, match="InjectPoolConfig.max_references"):
        InjectPoolConfig(max_references=0)


def test_pool_parts_resume_after_the_last_finished_shard_and_drop_other_builds(tmp_path):
    root = tmp_path / "pool"
    stale = PoolParts(root, "old")
    stale.write(0, {"candidates": pd.DataFrame({"candidate_id": ["x"]})})
    parts = PoolParts(root, pool_key("inject", 1))
    assert not stale.dir.exists()  # another key's parts can never be loaded by mistake
    shards = list(inject_shards(SMALL, "fam", 0, shard_size=8))
    for shard in shards[:2]:
        parts.write(shard.index, {"candidates": shard.candidates, "injected_labels": shard.labels})
    # a shard whose parts were written but not its marker (a kill in between) does not count
    (parts.dir / "candidates-00002.parquet").write_bytes(b"partial")
    again = PoolParts(root, pool_key("inject", 1))
    assert again.next_shard() == 2 and again.rows("candidates") == 16
    assert [p.name for p in again.files("candidates")] == ["candidates-00000.parquet", "candidates-00001.parquet"]
    again.clear()
    assert not again.dir.exists()


def test_replace_partition_from_files_is_one_transaction_and_refuses_foreign_rows(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    shards = list(inject_shards(SMALL, "fam", 0, shard_size=8))
    parts = PoolParts(tmp_path / "pool", "k")
    for shard in shards:
        parts.write(shard.index, {"candidates": shard.candidates})
    assert wh.replace_partition_from_files("candidates", parts.files("candidates"), family="fam", seed=0) == 24
    stored = wh.query("SELECT * FROM candidates ORDER BY candidate_id")
    assert stored["candidate_id"].is_unique and stored["correct"].notna().all()
    # again: replaced, not appended
    assert wh.replace_partition_from_files("candidates", parts.files("candidates"), family="fam", seed=0) == 24
    assert wh.count("candidates") == 24
    foreign = PoolParts(tmp_path / "pool2", "k")
    foreign.write(0, {"candidates": shards[0].candidates.assign(seed=1)})
    with pytest.raises(WarehouseError, match="outside partition"):
        wh.replace_partition_from_files("candidates", foreign.files("candidates"), family="fam", seed=0)
    assert wh.count("candidates", family="fam", seed=0) == 24  # nothing already stored was lost


def test_register_pool_problems_adds_only_missing_ids(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.replace_partition("problems", [{"problem_id": "gsm8k-train-0", "source": "gsm8k", "split": "train",
                                        "question": "bundled", "reference_answer": "1"}], source="gsm8k")
    parts = PoolParts(tmp_path / "pool", "k")
    for shard in inject_shards(SMALL, "fam", 0, shard_size=8):
        parts.write(shard.index, {"problems": shard.problems})
    assert register_pool_problems(wh, parts.files("problems")) == 5
    assert register_pool_problems(wh, parts.files("problems")) == 0  # idempotent
    kept = wh.query("SELECT question, source FROM problems WHERE problem_id = 'gsm8k-train-0'")
    assert kept.values.tolist() == [["bundled", "gsm8k"]]
    assert set(wh.query("SELECT DISTINCT source FROM problems")["source"]) == {"gsm8k", "inject:gsm8k"}


def test_dpo_gate_needs_stored_passing_checks_of_the_funnel_and_the_strategys_pairs(tmp_path):
    from hardneg.pairs import dpo_gate, record_checks

    wh = Warehouse(tmp_path / "wh.duckdb")
    assert len(dpo_gate(wh, "fam", 0, "hardneg")) == 2  # nothing stored: refused, both named
    record_checks(wh, "fam", 0, "funnel", {"funnel_counts_in_range": ["stage 4: 12 outside [40000, 80000]"]})
    record_checks(wh, "fam", 0, "preference_pairs_hardneg", {"pairs_fit_for_dpo": []})
    record_checks(wh, "fam", 0, "preference_pairs_random", {"pairs_fit_for_dpo": []})
    [reason] = dpo_gate(wh, "fam", 0, "random")
    assert "funnel check funnel_counts_in_range failed: stage 4: 12 outside" in reason
    record_checks(wh, "fam", 0, "funnel", {"funnel_counts_in_range": []})  # re-checked: replaced, not added
    assert dpo_gate(wh, "fam", 0, "hardneg") == [] and dpo_gate(wh, "fam", 0, "random") == []
    assert wh.count("blocking_checks", family="fam", seed=0) == 3
    assert dpo_gate(wh, "fam", 1, "hardneg")  # another partition has no results of its own


def test_profiles_choose_pool_sources_and_engines_with_one_line_errors(tmp_path):
    from hardneg.profiles import load_profile, preflight

    mini = load_profile("scale-mini")
    assert (mini.pool.source, mini.verification.engine, mini.verification.workers) == ("inject", "ray", 2)
    assert mini.funnel.min_confidence is None and mini.pairs.missing_scores == "omit_terms"
    scale = load_profile("scale")
    assert scale.pool.inject.variants_per_reference * 14_972 >= 600_000
    paper = load_profile("paper")
    assert paper.pool.source == "external" and paper.pool.external.scores == "policy"
    with pytest.raises(ConfigError, match="pool.source"):
        load_profile("smoke", ["pool.source=sampled"])
    with pytest.raises(ConfigError, match="external.path is not set"):
        load_profile("smoke", ["pool.source=external"])
    with pytest.raises(ConfigError, match="verification.workers"):
        load_profile("smoke", ["verification.workers=0"])
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ConfigError, match="pool.external.path"):
        preflight("smoke", None, ["pool.source=external", f"pool.external.path={missing}"])


def test_in_order_puts_completion_order_back_into_shard_order():
    from types import SimpleNamespace

    from hardneg.engines import in_order

    done = [SimpleNamespace(index=i) for i in (3, 1, 2, 5, 4)]
    assert [r.index for r in in_order(done, start=1)] == [1, 2, 3, 4, 5]
    assert [r.index for r in in_order(done[:2], start=1)] == [1]  # 3 waits for 2, which never came
