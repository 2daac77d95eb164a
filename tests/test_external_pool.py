"""The external pool read as a stream of shards (`iter_external_pool`), from real JSONL and
Parquet files and a locally built streaming `datasets` dataset, scored by a tiny real model or
taken from the file: shards add up to the one-shot result, a resumed run continues with the same
ids, bad records are quarantined by number and field, and memory holds one shard at a time."""

from __future__ import annotations

import json
import math
import tracemalloc

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hardneg.candidates as cand
from hardneg.candidates import (
    EXTERNAL_COLUMNS,
    ExternalPoolConfig,
    answer_char_span,
    concat_shards,
    ingest_external_pool,
    iter_external_pool,
    pool_source_kind,
    score_completions,
)
from hardneg.grading import extract_answer
from hardneg.prompts import training_prompt
from hardneg.warehouse import Warehouse


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    from tiny_model import sharpened_policy

    return sharpened_policy(tiny_model_dir, seed=3)


def pool_records(n: int = 11) -> list[dict]:
    """n pool records over 4 problems, interleaved so a problem's completions span shards."""
    out = []
    for i in range(n):
        p = i % 4
        a, b = p + 2, i + 1
        right = i % 3 != 0
        out.append(
            {
                "problem_id": f"p{p}",
                "question": f"What is {a} times {b}?",
                "completion": f"{a} * {b} = {a * b if right else a * b + 1}.\nThe answer is: {a * b if right else a * b + 1}",
                "reference_answer": str(a * b) if i % 5 else None,  # some looked up in `problems`
            }
        )
    return out


PROBLEMS = pd.DataFrame({"problem_id": ["p0", "p1", "p2", "p3"], "reference_answer": ["0", "3", "4", "5"]})


def write_jsonl(path, records, extra_lines=()):
    lines = [json.dumps(r) for r in records]
    for at, line in extra_lines:  # (index, raw line) inserted to make bad lines
        lines.insert(at, line)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_parquet(path, records, parts: int = 1):
    if parts == 1:
        pq.write_table(pa.Table.from_pylist(records), path)
        return path
    path.mkdir()
    step = math.ceil(len(records) / parts)
    for k in range(parts):
        # Row group size 2: several batches per part, read in order across part files.
        pq.write_table(pa.Table.from_pylist(records[k * step : (k + 1) * step]), path / f"part-{k}.parquet", row_group_size=2)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "parquet-folder"])
def test_shards_concatenate_to_the_one_shot_result(policy, tmp_path, fmt):
    model, tok = policy
    records = pool_records(11)
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "pool.jsonl", records)
    elif fmt == "parquet":
        path = write_parquet(tmp_path / "pool.parquet", records)
    else:
        path = write_parquet(tmp_path / "pool", records, parts=3)
    assert pool_source_kind(str(path)) == ("jsonl" if fmt == "jsonl" else "parquet")
    config = ExternalPoolConfig(path=str(path))
    kw = dict(model=model, tokenizer=tok, problems=PROBLEMS, batch_size=3)

    (whole,) = list(iter_external_pool(config, "tiny", 2, shard_size=100, **kw))
    shards = list(iter_external_pool(config, "tiny", 2, shard_size=3, **kw))
    assert [s.index for s in shards] == [0, 1, 2, 3]
    assert [s.records for s in shards] == [3, 3, 3, 2]
    assert all(len(s.candidates) <= 3 for s in shards) and all(s.scores == "policy" for s in shards)
    joined, quarantine = concat_shards(shards)
    assert list(joined.columns) == EXTERNAL_COLUMNS and len(quarantine) == 0

    # Ids: j counts each problem's completions in file order, across shard boundaries.
    seen: dict[str, int] = {}
    expected_ids = []
    for r in records:
        expected_ids.append(f"tiny:2:{r['problem_id']}:ext{seen.get(r['problem_id'], 0)}")
        seen[r["problem_id"]] = seen.get(r["problem_id"], 0) + 1
    assert list(joined["candidate_id"]) == expected_ids == list(whole.candidates["candidate_id"])
    assert list(joined["text"]) == [r["completion"] for r in records]
    for col in ("text", "answer", "correct", "reference_answer", "n_tokens", "finish_reason"):
        assert list(joined[col]) == list(whole.candidates[col]), col
    for col in ("confidence", "perplexity"):
        assert list(joined[col]) == pytest.approx(list(whole.candidates[col]), rel=1e-6, abs=1e-6)
    pd.testing.assert_frame_equal(joined.drop(columns=["confidence", "perplexity"]), whole.candidates.drop(columns=["confidence", "perplexity"]))

    # The content is right, not only consistent: answers, grades (own reference, else problems'),
    # and the policy's own scores.
    refs = [r["reference_answer"] or PROBLEMS.set_index("problem_id").at[r["problem_id"], "reference_answer"] for r in records]
    assert list(joined["reference_answer"]) == refs
    assert list(joined["answer"]) == [extract_answer(r["completion"]) for r in records]
    assert list(joined["correct"]) == [extract_answer(r["completion"]) == ref for r, ref in zip(records, refs)]
    assert set(joined["correct"]) == {True, False}
    prompts = [training_prompt(tok, r["question"]) for r in records]
    spans = [answer_char_span(t, a) for t, a in zip(joined["text"], joined["answer"])]
    expected = score_completions(model, tok, prompts, list(joined["text"]), spans)
    assert list(joined["perplexity"]) == pytest.approx([p for _, p in expected], rel=1e-5)
    assert list(joined["confidence"]) == pytest.approx([c for c, _ in expected], rel=1e-5)

    if fmt == "jsonl":  # the one-shot wrapper is the same stream
        rows, bad = ingest_external_pool(str(path), model, tok, "tiny", 2, problems=PROBLEMS, batch_size=3)
        assert len(bad) == 0
        pd.testing.assert_frame_equal(rows.drop(columns=["confidence", "perplexity"]), joined.drop(columns=["confidence", "perplexity"]))


def test_resume_at_a_shard_gives_the_remaining_shards_with_the_same_ids(policy, tmp_path, monkeypatch):
    model, tok = policy
    records = pool_records(13)
    # A bad line in shard 0: resuming must count records, not valid rows, to find shard 2.
    path = write_jsonl(tmp_path / "pool.jsonl", records, extra_lines=[(1, "{broken")])
    kw = dict(model=model, tokenizer=tok, problems=PROBLEMS, batch_size=4)
    for limit in (None, 9):
        config = ExternalPoolConfig(path=str(path), limit=limit)
        full = list(iter_external_pool(config, "tiny", 0, shard_size=3, **kw))
        assert [s.index for s in full] == list(range(5 if limit is None else 4))
        assert sum(len(s.candidates) for s in full) == (13 if limit is None else 9)

        scored, graded = [], []
        real_score, real_grade = cand._score_details, cand._correct_batch
        monkeypatch.setattr(cand, "_score_details", lambda m, t, p, c, *a: scored.extend(c) or real_score(m, t, p, c, *a))
        monkeypatch.setattr(cand, "_correct_batch", lambda c, r: graded.extend(c) or real_grade(c, r))
        for k in (1, 2, len(full) - 1, len(full), len(full) + 3):
            scored.clear(), graded.clear()
            rest = list(iter_external_pool(config, "tiny", 0, shard_size=3, start_shard=k, **kw))
            assert [s.index for s in rest] == [s.index for s in full[k:]]
            for got, want in zip(rest, full[k:]):
                assert list(got.candidates["candidate_id"]) == list(want.candidates["candidate_id"])
                pd.testing.assert_frame_equal(got.candidates, want.candidates, rtol=1e-6)
                pd.testing.assert_frame_equal(got.quarantine, want.quarantine)
            # Skipped shards cost neither scoring nor grading.
            remaining = [t for s in full[k:] for t in s.candidates["text"]]
            assert sorted(scored) == sorted(remaining) and graded == remaining
        monkeypatch.undo()
        if limit is None:
            # p1's completions span shards 0, 2, 3: a resumed run numbers them on from the skipped ones.
            p1 = [i for s in full for i in s.candidates["candidate_id"] if ":p1:" in i]
            assert p1 == [f"tiny:0:p1:ext{j}" for j in range(3)]
            assert [s.index for s in full if s.candidates["candidate_id"].str.contains(":p1:").any()] == [0, 2, 3]


def test_bad_records_are_quarantined_by_line_and_field_with_file_scores(tmp_path):
    good = {"problem_id": "g", "question": "What is 2+3?", "completion": "2+3=5. The answer is: 5", "reference_answer": "5"}
    lines = [
        json.dumps({**good, "confidence": 0.9, "perplexity": 3.5, "n_tokens": 12}),  # 1 kept
        '{"problem_id": "x", "question": ',  # 2 bad JSON
        json.dumps({"problem_id": "x", "question": "q?", "confidence": 0.5, "perplexity": 2.0}),  # 3 no completion
        json.dumps({**good, "confidence": 0.5}),  # 4 perplexity missing
        json.dumps({**good, "confidence": 0.5, "perplexity": -1.0}),  # 5 negative perplexity
        '{"problem_id": "g", "question": "q?", "completion": "c", "confidence": 0.5, "perplexity": NaN}',  # 6 NaN literal
        json.dumps({**good, "confidence": 1.5, "perplexity": 2.0}),  # 7 confidence out of range
        json.dumps({**good, "perplexity": 2.0}),  # 8 confidence missing
        json.dumps({**good, "completion": "no answer here", "confidence": None, "perplexity": 40.0}),  # 9 kept: null = no answer
        json.dumps({**good, "confidence": 0.2, "perplexity": 1.5, "n_tokens": -3}),  # 10 bad n_tokens
        json.dumps({**good, "problem_id": ["list"], "confidence": 0.2, "perplexity": 1.5}),  # 11 bad id
        json.dumps({**good, "confidence": "0.7", "perplexity": 1.5}),  # 12 confidence as text
        json.dumps({**good, "completion": "2+3=6. The answer is: 6", "confidence": 0.0, "perplexity": 1.0}),  # 13 kept
    ]
    path = tmp_path / "scored.jsonl"
    path.write_text("\n".join(lines) + "\n")
    config = ExternalPoolConfig(path=str(path), scores="file")
    shards = list(iter_external_pool(config, "fam", 4, shard_size=5))  # no model: scores come from the file
    assert [s.records for s in shards] == [5, 5, 3] and {s.scores for s in shards} == {"file"}
    rows, bad = concat_shards(shards)

    reasons = dict(zip(bad["line_no"], bad["reason"]))
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12]
    assert "invalid JSON" in reasons[2] and "NaN" in reasons[6]
    assert "completion" in reasons[3]
    assert "perplexity" in reasons[4] and "missing" in reasons[4]
    assert "perplexity" in reasons[5] and "confidence" not in reasons[5]
    assert "confidence" in reasons[7] and "perplexity" not in reasons[7]
    assert "confidence" in reasons[8] and "missing" in reasons[8]
    assert "n_tokens" in reasons[10] and "problem_id" in reasons[11] and "confidence" in reasons[12]
    assert (bad["source"] == str(path)).all()
    assert json.loads(bad.set_index("line_no").at[7, "raw"])["confidence"] == 1.5

    assert list(rows["candidate_id"]) == ["fam:4:g:ext0", "fam:4:g:ext1", "fam:4:g:ext2"]
    assert list(rows["perplexity"]) == [3.5, 40.0, 1.0]
    assert rows["confidence"].iloc[0] == 0.9 and math.isnan(rows["confidence"].iloc[1]) and rows["confidence"].iloc[2] == 0.0
    assert list(rows["n_tokens"].astype(object).where(rows["n_tokens"].notna(), None)) == [12, None, None]
    assert list(rows["correct"]) == [True, False, False] and list(rows["answer"]) == ["5", None, "6"]
    # The rows fit the warehouse as they come, and the quarantine partition is the pool's path.
    wh = Warehouse(tmp_path / "w.duckdb")
    assert wh.replace_partition("candidates", rows, family="fam", seed=4) == 3
    assert wh.query("SELECT n_tokens FROM candidates ORDER BY candidate_id")["n_tokens"].isna().tolist() == [False, True, True]
    assert wh.replace_partition("quarantine", bad, source=str(path)) == 10


def test_parquet_file_scores_with_nan_and_nulls_are_quarantined_by_row(tmp_path):
    base = {"problem_id": "g", "question": "What is 2+3?", "completion": "The answer is: 5", "reference_answer": "5"}
    records = [
        {**base, "confidence": 0.8, "perplexity": 2.0},  # row 1 kept
        {**base, "confidence": 0.8, "perplexity": float("nan")},  # row 2
        {**base, "confidence": float("nan"), "perplexity": 2.0},  # row 3
        {**base, "confidence": 0.8, "perplexity": None},  # row 4: null perplexity
        {**base, "completion": None, "confidence": 0.8, "perplexity": 2.0},  # row 5
        {**base, "confidence": 0.1, "perplexity": float("inf")},  # row 6
        {**base, "confidence": 0.3, "perplexity": 7.0},  # row 7 kept
    ]
    path = write_parquet(tmp_path / "pool.parquet", records)
    rows, bad = concat_shards(list(iter_external_pool(ExternalPoolConfig(path=str(path), scores="file"), "f", 0, shard_size=4)))
    reasons = dict(zip(bad["line_no"], bad["reason"]))
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert all("perplexity" in reasons[i] for i in (2, 4, 6)) and "confidence" in reasons[3] and "completion" in reasons[5]
    assert list(rows["perplexity"]) == [2.0, 7.0] and list(rows["confidence"]) == [0.8, 0.3]
    assert list(rows["candidate_id"]) == ["f:0:g:ext0", "f:0:g:ext1"]


def test_a_50k_line_pool_streams_one_shard_at_a_time(tmp_path, monkeypatch):
    n, shard = 50_000, 1000
    path = tmp_path / "big.jsonl"
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"problem_id": f"p{i % 997}", "question": f"Q{i}?", "completion": f"The answer is: {i}",
                                "confidence": (i % 100) / 100, "perplexity": 1.0 + i % 7}) + "\n")
    lines_read = [0]  # a count, not a list: the probe must not grow with the file itself
    real_iter = cand.iter_jsonl

    def counting(p):
        for line in real_iter(p):
            lines_read[0] += 1
            yield line

    monkeypatch.setattr(cand, "iter_jsonl", counting)
    config = ExternalPoolConfig(path=str(path), scores="file")
    it = iter_external_pool(config, "f", 0, shard_size=shard)
    assert lines_read == [0]  # nothing is read before the first shard is asked for
    first = next(it)
    assert len(first.candidates) == shard and lines_read == [shard]  # one shard's lines, not the file

    tracemalloc.start()
    try:
        shard_bytes, count, ids, last_id, early_peak = [], len(first.candidates), len(first.candidates), None, None
        del first
        for s in it:
            shard_bytes.append(int(s.candidates.memory_usage(deep=True).sum()))
            count += len(s.candidates)
            last_id = s.candidates["candidate_id"].iloc[-1]
            ids += s.candidates["candidate_id"].nunique()
            if s.index == 5:
                early_peak = tracemalloc.get_traced_memory()[1]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n == lines_read[0] and ids == n
    assert last_id == f"f:0:p{(n - 1) % 997}:ext{(n - 1) // 997}"
    whole = sum(shard_bytes) * n / (n - shard)  # the DataFrame of the whole pool, from its shards
    # Streaming holds one shard and its parsed lines (plus the per-problem id counters), not the
    # pool: the peak after 49 shards is that after 5 (holding them all would be ~9x more), and a
    # fraction of the whole pool's frame (measured: ~1.9 MB against ~18 MB).
    assert peak < 1.5 * early_peak, (peak, early_peak)
    assert peak < whole / 3, (peak, whole)


def test_hub_dataset_is_streamed_and_mapped(policy, monkeypatch):
    datasets = pytest.importorskip("datasets")
    model, tok = policy
    records = [  # numina's fields: problem, solution (reference = its last \boxed), generation
        {"problem": "What is 6 times 7?", "solution": "6*7 = \\boxed{42}", "generation": "6 * 7 = 42. \\boxed{42}"},
        {"problem": "What is 6 times 7?", "solution": "6*7 = \\boxed{42}", "generation": "6 * 7 = 48. \\boxed{48}"},
        {"problem": "", "solution": "x", "generation": "no question"},  # record 3: quarantined
        {"problem": "Name a prime.", "solution": "Any prime, e.g. 2.", "generation": "\\boxed{2}"},  # no \boxed: ungraded
    ]
    calls = []

    def fake_load(name, split=None, streaming=False, **kw):
        calls.append((name, split, streaming))
        return datasets.Dataset.from_list(records).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    config = ExternalPoolConfig(path="HuggingFaceH4/numina-deepseek-r1-qwen-7b", split="train")
    assert pool_source_kind(config.path) == "hub"
    shards = list(iter_external_pool(config, "tiny", 1, shard_size=2, model=model, tokenizer=tok))
    assert calls == [("HuggingFaceH4/numina-deepseek-r1-qwen-7b", "train", True)] and len(shards) == 2
    rows, bad = concat_shards(shards)
    assert list(bad["line_no"]) == [3] and "question/problem" in bad.loc[0, "reason"]
    assert (bad["source"] == config.path).all()  # the asset's quarantine partition is the pool id
    import hashlib

    h = "h" + hashlib.sha1(b"What is 6 times 7?").hexdigest()[:12]
    h2 = "h" + hashlib.sha1(b"Name a prime.").hexdigest()[:12]
    assert list(rows["candidate_id"]) == [f"tiny:1:{h}:ext0", f"tiny:1:{h}:ext1", f"tiny:1:{h2}:ext0"]
    assert list(rows["reference_answer"]) == ["42", "42", None]
    assert list(rows["correct"]) == [True, False, None]
    assert list(rows["reference_solution"]) == [r["solution"] for r in (records[0], records[1], records[3])]
    assert rows["perplexity"].gt(1).all() and list(rows["finish_reason"]) == ["external"] * 3


def test_hub_style_fields_and_generation_lists_in_a_local_file(tmp_path):
    """A local dump of a hub pool reads the same way: a `generations` list is one candidate per
    entry, with per-entry file scores."""
    recs = [
        {"id": 7, "problem": "What is 1+1?", "answer": 2, "generations": ["\\boxed{2}", "\\boxed{3}"],
         "confidence": [0.9, 0.4], "perplexity": [1.2, 2.5]},
        {"id": 8, "problem": "What is 2+2?", "generations": ["\\boxed{4}", "\\boxed{4}"],
         "confidence": [0.9], "perplexity": [1.2, 2.5]},  # line 2: one confidence for two generations
    ]
    path = tmp_path / "dump.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows, bad = concat_shards(list(iter_external_pool(ExternalPoolConfig(path=str(path), scores="file"), "f", 0, shard_size=1)))
    assert list(rows["candidate_id"]) == ["f:0:7:ext0", "f:0:7:ext1"]
    assert list(rows["correct"]) == [True, False] and list(rows["confidence"]) == [0.9, 0.4]
    assert list(bad["line_no"]) == [2] and "confidence (a list of 2 numbers" in bad.loc[0, "reason"]


def test_config_and_argument_errors_name_the_field(tmp_path, policy):
    for kwargs, field in [
        (dict(scores="model"), "scores"),
        (dict(limit=-1), "limit"),
        (dict(limit=True), "limit"),
        (dict(split=""), "split"),
        (dict(path=""), "path"),
    ]:
        with pytest.raises(ValueError, match=f"ExternalPoolConfig.{field}"):
            ExternalPoolConfig(**kwargs)
    path = write_jsonl(tmp_path / "p.jsonl", pool_records(2))
    cfg = ExternalPoolConfig(path=str(path))
    with pytest.raises(ValueError, match="model="):
        iter_external_pool(cfg, "f", 0, shard_size=10)
    with pytest.raises(ValueError, match="shard_size"):
        iter_external_pool(cfg, "f", 0, shard_size=0, model=policy[0], tokenizer=policy[1])
    with pytest.raises(ValueError, match="start_shard"):
        iter_external_pool(cfg, "f", 0, shard_size=1, start_shard=-1, model=policy[0], tokenizer=policy[1])
    with pytest.raises(ValueError, match="path is not set"):
        iter_external_pool(ExternalPoolConfig(), "f", 0, shard_size=1, model=policy[0], tokenizer=policy[1])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .parquet"):
        pool_source_kind(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError):
        pool_source_kind(str(tmp_path / "missing.parquet"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="bad.parquet.*not readable Parquet"):
        list(iter_external_pool(ExternalPoolConfig(path=str(tmp_path / "bad.parquet"), scores="file"), "f", 0, shard_size=1))
