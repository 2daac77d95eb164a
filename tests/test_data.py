"""Data loading: the bundled benchmarks, MetaMathQA rendering, quarantine of bad lines."""

import json

import pytest

from hardneg.data import (
    DataSource,
    SplitLeakError,
    assert_trainable,
    gsm8k_as_metamath,
    load_problems,
    load_sft_examples,
    read_jsonl,
)


def test_bundled_benchmarks_load_with_answers():
    gsm, bad = load_problems("gsm8k", "test")
    assert len(gsm) == 1319 and not bad
    assert gsm["reference_answer"].str.fullmatch(r"-?[\d.]+").all()
    m500, bad = load_problems("math500", "test")
    assert len(m500) == 500 and not bad and m500["subject"].notna().all()
    math, _ = load_problems("math", "test", limit=50)
    assert len(math) == 50 and math["reference_answer"].notna().all()


def test_gsm8k_rendered_in_metamath_style():
    text = gsm8k_as_metamath("She has 3+4=<<3+4=7>>7 apples.\n#### 1,234")
    assert "<<" not in text
    assert text.endswith("The answer is: 1234")


def test_malformed_lines_are_quarantined_with_line_numbers(tmp_path):
    path = tmp_path / "meta.jsonl"
    path.write_text(
        json.dumps({"query": "q1", "response": "r1"}) + "\n"
        + "{not json\n"
        + json.dumps({"query": "q3"}) + "\n"
        + json.dumps({"query": "q4", "response": "r4", "extra": 1}) + "\n"
    )
    rows, rejected = load_sft_examples(DataSource(kind="jsonl", path=str(path)))
    assert list(rows["query"]) == ["q1", "q4"]
    assert [r["line_no"] for r in rejected] == [2, 3]
    assert "invalid JSON" in rejected[0]["reason"]
    assert "response" in rejected[1]["reason"]


def test_test_split_is_never_training_data():
    test, _ = load_problems("gsm8k", "test", limit=3)
    with pytest.raises(SplitLeakError, match="gsm8k-test-0"):
        assert_trainable(test)
    train, _ = load_problems("gsm8k", "train", limit=3)
    assert_trainable(train)


def test_read_jsonl_requires_non_empty_strings(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": ""}\n{"a": 3}\n{"a": "ok"}\n[1]\n')
    rows, rejected = read_jsonl(path, ["a"])
    assert [r["a"] for r in rows] == ["ok"]
    assert [r["line_no"] for r in rejected] == [1, 2, 4]
