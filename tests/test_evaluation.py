"""Evaluation runner: per-sample rows from real greedy generation, and the summary logic."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hardneg.evaluation import BenchmarkSpec, EvalConfig, evaluate, summarize
from hardneg.generation import HFBackend, SamplingParams
from hardneg.grading import extract_answer
from hardneg.prompts import eval_prompt
from hardneg.warehouse import SCHEMA, Warehouse


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return HFBackend(model, tokenizer)


GSM = pd.DataFrame(
    {
        "item_id": ["g0", "g1", "g2"],
        "question": ["Janet has 16 eggs and eats 3. How many are left?", "What is 2 + 5?", "A robe takes 2 bolts of fiber. How many?"],
        # Numbers a junk completion cannot produce by chance.
        "reference": ["-987654.321", "-123456.789", "-555555.125"],
    }
)


def test_evaluate_rows_are_greedy_qwen2_boxed_and_graded(backend, tmp_path):
    config = EvalConfig(benchmarks=[BenchmarkSpec("gsm8k", n=None, max_new_tokens=12)], batch_size=2)
    samples, summary = evaluate(backend, GSM, "gsm8k", config, progress=False)
    assert list(samples["item_id"]) == ["g0", "g1", "g2"]
    assert list(samples["prompt"]) == [eval_prompt(q) for q in GSM["question"]]
    # The completions are the backend's greedy output for those prompts, in item order.
    greedy = backend.generate(list(samples["prompt"]), SamplingParams(max_new_tokens=12), progress=False)
    assert list(samples["completion"]) == [g.text for g in greedy]
    assert (samples["n_tokens"] <= 12).all()
    assert list(samples["extracted"]) == [extract_answer(c) for c in samples["completion"]]
    assert not samples["correct"].any()
    assert summary.to_dict("records")[0]["benchmark"] == "gsm8k"
    assert summary.loc[0, "n"] == 3 and summary.loc[0, "accuracy"] == 0.0
    assert len(summary) == 1  # GSM8K has no subject/level breakdown

    # Same items, references set to what the model did extract: the verdicts flip to correct
    # exactly where an answer was extracted, and the accuracy follows.
    flipped = GSM.copy()
    has = [e is not None for e in samples["extracted"]]
    assert 0 < sum(has)  # the check below needs at least one extracted answer
    flipped["reference"] = [e if h else r for e, h, r in zip(samples["extracted"], has, GSM["reference"])]
    again, summary2 = evaluate(backend, flipped, "gsm8k", config, progress=False)
    assert list(again["correct"]) == has
    assert summary2.loc[0, "accuracy"] == pytest.approx(sum(has) / 3)

    # Rows fit the warehouse tables once the caller adds the partition columns.
    assert set(SCHEMA["eval_samples"]) - set(samples.columns) == {"run_id", "family", "seed", "strategy"}
    wh = Warehouse(tmp_path / "w.duckdb")
    part = dict(family="tiny", seed=0, strategy="base")
    assert wh.replace_partition("eval_samples", samples.assign(run_id="r", **part), **part) == 3
    assert wh.replace_partition("eval_summary", summary.assign(**part), **part) == 1


def test_math_breakdown_and_item_cap(backend):
    items = pd.DataFrame(
        {
            "item_id": ["m0", "m1", "m2", "m3"],
            "question": ["What is $1+1$?", "Solve $x^2=4$.", "Compute $3!$.", "never evaluated"],
            "reference": ["-777.25", "-888.5", "-999.75", "1"],
            "subject": ["Algebra", "Algebra", "Counting & Probability", "Algebra"],
            "level": ["Level 3", "Level 5", 3, "Level 1"],
        }
    )
    config = EvalConfig(benchmarks=[BenchmarkSpec("math", n=3, max_new_tokens=6)], batch_size=4)
    samples, summary = evaluate(backend, items, "math", config, progress=False)
    assert list(samples["item_id"]) == ["m0", "m1", "m2"]
    assert list(samples["level"]) == ["3", "5", "3"]
    assert list(summary["benchmark"]) == [
        "math",
        "math/subject=Algebra",
        "math/subject=Counting & Probability",
        "math/level=3",
        "math/level=5",
    ]
    assert list(summary["n"]) == [3, 2, 1, 2, 1]


def summary_of(correct, mv, subject, level):
    samples = pd.DataFrame({"correct": correct, "correct_math_verify": mv, "subject": subject, "level": level})
    return summarize(samples, "math").set_index("benchmark")


def test_summarize_accuracies_by_hand():
    s = summary_of(
        correct=[True, False, True, True, False],
        mv=[True, None, False, True, None],
        subject=["Algebra", "Algebra", "Geometry", "Geometry", "Geometry"],
        level=["1", "2", "2", "10", None],
    )
    assert s.loc["math", "n"] == 5 and s.loc["math", "accuracy"] == pytest.approx(3 / 5)
    # Math-Verify accuracy is over the samples it gave a verdict on: 2 of 3.
    assert s.loc["math", "accuracy_math_verify"] == pytest.approx(2 / 3)
    assert s.loc["math/subject=Algebra", "accuracy"] == pytest.approx(1 / 2)
    assert s.loc["math/subject=Algebra", "accuracy_math_verify"] == pytest.approx(1.0)
    assert s.loc["math/subject=Geometry", "accuracy"] == pytest.approx(2 / 3)
    assert s.loc["math/level=2", "n"] == 2 and s.loc["math/level=2", "accuracy"] == pytest.approx(1 / 2)
    # Levels sort numerically (2 before 10); a missing level gets no row.
    assert [b for b in s.index if "level=" in b] == ["math/level=1", "math/level=2", "math/level=10"]
    none_mv = summary_of([True], [None], ["Algebra"], ["1"])
    assert none_mv.loc["math", "accuracy_math_verify"] is None or pd.isna(none_mv.loc["math", "accuracy_math_verify"])


def test_bad_items_are_named(backend):
    items = GSM.copy()
    items.loc[1, "reference"] = None
    with pytest.raises(ValueError, match="g1"):
        evaluate(backend, items, "gsm8k", EvalConfig(), progress=False)
    with pytest.raises(ValueError, match="reference"):
        evaluate(backend, GSM.drop(columns=["reference"]), "gsm8k", EvalConfig(), progress=False)
    with pytest.raises(ValueError, match="name"):
        BenchmarkSpec("aime")
