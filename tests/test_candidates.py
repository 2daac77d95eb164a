"""Candidate pool: scoring against hand computation, sampling rows, external ingestion."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from hardneg.candidates import (
    CANDIDATE_COLUMNS,
    PoolConfig,
    answer_char_span,
    confidence_from_probs,
    ingest_external_pool,
    sample_candidates,
    score_completions,
)
from hardneg.generation import GenerationConfig, HFBackend, build_backend
from hardneg.grading import GradingConfig, extract_answer, grade_batch
from hardneg.prompts import training_prompt
from hardneg.warehouse import SCHEMA, Warehouse


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    from tiny_model import sharpened_policy

    return sharpened_policy(tiny_model_dir, seed=1)


def hand_logprobs(model, tokenizer, prompt: str, completion: str) -> tuple[list[int], torch.Tensor]:
    """Completion token ids and their log-probabilities from one unpadded forward pass."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p + c])).logits[0].double()
    logp = logits.log_softmax(-1)
    return c, torch.stack([logp[len(p) - 1 + t, tok] for t, tok in enumerate(c)])


def test_perplexity_is_exp_mean_nll(policy):
    model, tok = policy
    prompt = training_prompt(tok, "Janet has 16 eggs. She eats 3. How many are left?")
    completion = "She has 16 - 3 = 13 eggs left.\nThe answer is: 13"
    _, logp = hand_logprobs(model, tok, prompt, completion)
    expected = math.exp(float(-logp.mean()))
    # Batched with a longer and a shorter example, so left padding is exercised both ways.
    other_prompt = training_prompt(tok, "A robe takes 2 bolts of blue fiber and half that much white fiber. How many?")
    other = "It takes 2/2 = 1 bolt of white fiber. So 2 + 1 = 3 bolts in total. The answer is: 3"
    scores = score_completions(model, tok, [other_prompt, prompt, "x"], [other, completion, "12"], [None] * 3, batch_size=3)
    assert scores[1][0] is None  # no span, no confidence
    assert scores[1][1] == pytest.approx(expected, rel=1e-5)
    _, other_logp = hand_logprobs(model, tok, other_prompt, other)
    assert scores[0][1] == pytest.approx(math.exp(float(-other_logp.mean())), rel=1e-5)
    # Perplexity is far from the uniform-model value, so the check is not vacuous.
    assert abs(expected - len(tok)) > 10


def test_confidence_is_sigmoid_of_mean_answer_token_probability(policy):
    model, tok = policy
    prompt = training_prompt(tok, "What is 6 times 7?")
    completion = "6 * 7 = 42.\nThe answer is: 42"
    span = answer_char_span(completion, extract_answer(completion))
    assert completion[span[0] : span[1]] == "42" and span[0] == completion.rindex("42")
    ids, logp = hand_logprobs(model, tok, prompt, completion)
    # The answer tokens, found independently: the trailing tokens that spell " 42".
    pieces = [tok.decode([i]) for i in ids]
    tail, n = "", 0
    while not tail.strip().startswith("42"):
        n += 1
        tail = "".join(pieces[-n:])
    p_bar = float(logp[-n:].exp().mean())
    expected = 1 / (1 + math.exp(-10 * (p_bar - 0.5)))
    ((conf, _),) = score_completions(model, tok, [prompt], [completion], [span], batch_size=2)
    assert conf == pytest.approx(expected, rel=1e-6)
    assert confidence_from_probs([0.5]) == pytest.approx(0.5)
    assert confidence_from_probs([0.9, 0.7]) == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert confidence_from_probs([]) is None


def test_answer_char_span_follows_the_extractor():
    text = "x = 3, so \\boxed{3}. Then 3 more."
    s = answer_char_span(text, extract_answer(text))
    assert (s[0], text[s[0] : s[1]]) == (text.index("{3}") + 1, "3")
    text = "They paid 1,000 in total.\nThe answer is: 1,000 dollars"
    s = answer_char_span(text, "1000")
    assert text[s[0] : s[1]] == "1,000" and s[0] == text.rindex("1,000")
    assert answer_char_span("no answer here", None) is None
    assert answer_char_span("nothing matches", "17") is None


def test_empty_completion_has_nan_perplexity(policy):
    model, tok = policy
    ((conf, ppl),) = score_completions(model, tok, ["hello"], [""], [None])
    assert conf is None and math.isnan(ppl)
    with pytest.raises(ValueError, match="same length"):
        score_completions(model, tok, ["a", "b"], ["c"], [None])


PROBLEMS = pd.DataFrame(
    {
        "problem_id": ["gsm8k-train-0", "math-test-7"],
        "question": ["Janet has 16 eggs and eats 3. How many are left?", "What is $\\frac{1}{2}+\\frac{1}{2}$?"],
        "reference_answer": ["13", "1"],
        "source": ["gsm8k", "math"],
    }
)


@pytest.mark.parametrize("engine", ["hf", "native"])
def test_sample_candidates_rows_ids_and_determinism(policy, tmp_path, engine):
    """The same contract from either CPU backend (the native loop is the smoke default)."""
    model, tok = policy
    backend = build_backend(GenerationConfig(backend=engine, dtype="float32"), model, tok)
    assert type(backend).__name__ == {"hf": "HFBackend", "native": "NativeBackend"}[engine]
    config = PoolConfig(k=3, max_new_tokens_gsm8k=6, max_new_tokens_math=9, batch_size=4)
    rows = sample_candidates(PROBLEMS, backend, tok, "tiny", 5, config, progress=False)
    assert list(rows.columns) == CANDIDATE_COLUMNS
    assert set(CANDIDATE_COLUMNS) == set(SCHEMA["candidates"])
    assert len(rows) == 6 and (rows.groupby("problem_id").size() == 3).all()
    assert list(rows["candidate_id"]) == [f"tiny:5:{p}:{k}" for p in PROBLEMS["problem_id"] for k in range(3)]
    assert rows["candidate_id"].is_unique
    # Per-source caps apply.
    assert (rows.loc[rows.problem_id == "gsm8k-train-0", "n_tokens"] <= 6).all()
    assert (rows.loc[rows.problem_id == "math-test-7", "n_tokens"] <= 9).all()
    assert set(rows["finish_reason"]) <= {"eos", "length"}
    assert (rows.loc[rows.finish_reason == "length", "n_tokens"].isin([6, 9])).all()
    refs = dict(zip(PROBLEMS["problem_id"], PROBLEMS["reference_answer"]))
    grades = grade_batch([(t, refs[p]) for t, p in zip(rows["text"], rows["problem_id"])], GradingConfig(math_verify=False))
    for r, g in zip(rows.itertuples(), grades):
        assert r.answer == extract_answer(r.text)
        assert bool(r.correct) == g.correct
        assert pd.isna(r.confidence) == (answer_char_span(r.text, r.answer) is None)
        assert r.perplexity > 1
    # Same seed: same pool. Another seed: another pool.
    again = sample_candidates(PROBLEMS, backend, tok, "tiny", 5, config, progress=False)
    pd.testing.assert_frame_equal(rows, again)
    other = sample_candidates(PROBLEMS, backend, tok, "tiny", 6, config, progress=False)
    assert list(other["text"]) != list(rows["text"])
    # The rows fit the warehouse table as they are.
    wh = Warehouse(tmp_path / "w.duckdb")
    assert wh.replace_partition("candidates", rows, family="tiny", seed=5) == 6
    assert wh.count("candidates", family="tiny", seed=5) == 6


def test_sample_candidates_num_problems_and_bad_input(policy):
    model, tok = policy
    backend = HFBackend(model, tok)
    rows = sample_candidates(PROBLEMS, backend, tok, "tiny", 0, PoolConfig(k=2, max_new_tokens_gsm8k=3, num_problems=1), progress=False)
    assert list(rows["problem_id"].unique()) == ["gsm8k-train-0"] and len(rows) == 2
    with pytest.raises(ValueError, match="source"):
        sample_candidates(PROBLEMS.drop(columns=["source"]), backend, tok, "tiny", 0, PoolConfig(k=1), progress=False)
    bad = PROBLEMS.copy()
    bad.loc[1, "question"] = None
    with pytest.raises(ValueError, match="math-test-7"):
        sample_candidates(bad, backend, tok, "tiny", 0, PoolConfig(k=1), progress=False)


def test_ingest_jsonl_quarantines_bad_lines_and_rescores(policy, tmp_path):
    model, tok = policy
    good_a = {"problem_id": "p1", "question": "What is 6 times 7?", "completion": "6 * 7 = 42.\nThe answer is: 42", "reference_answer": "42"}
    good_b = {"problem_id": "p1", "question": "What is 6 times 7?", "completion": "6 * 7 = 48.\nThe answer is: 48"}
    good_c = {"problem_id": 9, "question": "What is 1+1?", "completion": "It is \\boxed{2}.", "finish_reason": "length"}
    lines = [
        json.dumps(good_a),
        '{"problem_id": "p2", "question": "broken',  # line 2: invalid JSON
        json.dumps(good_b),
        "",  # blank lines are skipped, not quarantined
        json.dumps({"problem_id": "p3", "question": "no completion"}),  # line 5
        json.dumps(["not", "an", "object"]),  # line 6
        json.dumps(good_c),
    ]
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(lines) + "\n")
    problems = pd.DataFrame({"problem_id": ["p1", "9"], "reference_answer": ["99", "3"]})
    rows, quarantine = ingest_external_pool(str(path), model, tok, "tiny", 1, problems=problems)

    assert list(quarantine["line_no"]) == [2, 5, 6]
    assert "invalid JSON" in quarantine.loc[0, "reason"]
    assert "completion" in quarantine.loc[1, "reason"]
    assert "not a JSON object" in quarantine.loc[2, "reason"]
    assert (quarantine["source"] == str(path)).all() and quarantine.loc[0, "raw"].startswith('{"problem_id": "p2"')

    assert list(rows["candidate_id"]) == ["tiny:1:p1:ext0", "tiny:1:p1:ext1", "tiny:1:9:ext0"]
    assert list(rows["answer"]) == ["42", "48", "2"]
    # The line's own reference wins; a missing one is looked up in `problems`.
    assert list(rows["reference_answer"]) == ["42", "99", "3"]
    assert list(rows["correct"]) == [True, False, False]
    assert list(rows["finish_reason"]) == ["external", "external", "length"]
    # Confidence and perplexity are the policy's, exactly as score_completions gives them.
    prompts = [training_prompt(tok, q) for q in rows["question"]]
    spans = [answer_char_span(t, a) for t, a in zip(rows["text"], rows["answer"])]
    expected = score_completions(model, tok, prompts, list(rows["text"]), spans)
    assert [c for c, _ in expected] == pytest.approx(list(rows["confidence"]))
    assert [p for _, p in expected] == pytest.approx(list(rows["perplexity"]))
    assert all(c is not None for c in rows["confidence"])
    assert list(rows["n_tokens"]) == [len(tok(t, add_special_tokens=False)["input_ids"]) for t in rows["text"]]


def test_ingest_hub_dataset_offline_fails_clearly(policy, monkeypatch):
    model, tok = policy
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="numina-deepseek-r1-qwen-7b.*network"):
        ingest_external_pool("HuggingFaceH4/numina-deepseek-r1-qwen-7b", model, tok, "tiny", 0)
