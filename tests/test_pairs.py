"""Preference pairs: hard-negative pairs and weights, the random baseline, checks, export."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
import torch
from funnel_data import FAMILY, SEED, cand, correct_cand, problem, write_pool

from hardneg.funnel import FunnelConfig, run_funnel
from hardneg.pairs import (
    EXPORT_COLUMNS,
    PAIR_COLUMNS,
    build_hardneg_pairs,
    build_random_pairs,
    check_pairs,
    export_pairs,
    raw_weight,
)


def hard_pool(tmp_path):
    problems = [problem("a"), problem("b"), problem("t", split="test")]
    cands = [
        correct_cand("a-good", "a", W=0.02),
        cand("a-h1", "a", W=0.7, confidence=0.8, perplexity=3.0),
        cand("a-h2", "a", W=0.5, confidence=0.6, perplexity=5.0),
        cand("a-h3", "a", W=0.4),  # third: over the cap of 2
        cand("b-h1", "b", W=0.6, confidence=0.9, perplexity=1.5),  # no correct candidate: reference chosen
        cand("t-h1", "t", W=0.6),  # test split: never paired
    ]
    return write_pool(tmp_path / "w.duckdb", problems, cands)


def funnel(wh, **kw):
    with wh.connect() as con:
        return run_funnel(con, FAMILY, SEED, FunnelConfig(**kw))


def test_hardneg_pairs_rows_weights_and_prompt(tmp_path):
    wh = hard_pool(tmp_path)
    pairs = build_hardneg_pairs(funnel(wh), prompt_for=lambda q: f"<user>{q}</user>")
    assert list(pairs.columns) == PAIR_COLUMNS
    assert pairs["rejected_candidate_id"].tolist() == ["a-h1", "a-h2", "b-h1"]  # by problem, hardest first
    assert (pairs["strategy"] == "hardneg").all() and pairs["pair_id"].is_unique
    assert pairs["prompt"].tolist() == ["<user>Question of a?</user>"] * 2 + ["<user>Question of b?</user>"]
    assert pairs["chosen_candidate_id"].tolist()[:2] == ["a-good", "a-good"]
    assert pd.isna(pairs["chosen_candidate_id"].iloc[2])
    assert pairs["chosen"].iloc[2].startswith("Reference:")  # the reference solution is the fallback
    assert pairs["rejected"].iloc[0].startswith("a-h1:")
    # w = W + (1 - c) + PPL / Z of the rejected, Z = 10
    assert pairs["raw_weight"].tolist() == pytest.approx([0.7 + 0.2 + 0.3, 0.5 + 0.4 + 0.5, 0.6 + 0.1 + 0.15])
    z5 = build_hardneg_pairs(funnel(wh), z=5.0)
    assert z5["raw_weight"].iloc[0] == pytest.approx(0.7 + 0.2 + 0.6)
    assert z5["prompt"].iloc[0] == "Question of a?"  # default prompt: the raw question
    assert check_pairs(pairs, test_problem_ids=["t"]) == []


def test_hardneg_prompt_is_the_rendered_training_prompt(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from hardneg.prompts import training_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs = build_hardneg_pairs(funnel(hard_pool(tmp_path)), prompt_for=lambda q: training_prompt(tok, q))
    first = pairs["prompt"].iloc[0]
    assert first == training_prompt(tok, "Question of a?")
    assert "Question of a?" in first and first.endswith("<|im_start|>assistant\n")


def test_hardneg_bad_rows_are_named(tmp_path):
    problems = [problem("a")]
    wh = write_pool(tmp_path / "w.duckdb", problems, [cand("a-h1", "a", perplexity=float("nan"))])
    with pytest.raises(ValueError, match=r"'a-h1': perplexity is missing or NaN"):
        build_hardneg_pairs(funnel(wh))
    wh = write_pool(tmp_path / "w.duckdb", problems, [cand("a-h1", "a")])

    def broken(q):
        raise KeyError("no template")

    with pytest.raises(ValueError, match=r"problem 'a': prompt_for failed"):
        build_hardneg_pairs(funnel(wh), prompt_for=broken)
    with pytest.raises(ValueError, match="z must be"):
        raw_weight(0.5, 0.5, 2.0, z=0)


def test_no_pairs_gives_an_empty_frame(tmp_path):
    wh = write_pool(tmp_path / "w.duckdb", [problem("a")], [correct_cand("a-good", "a")])
    pairs = build_hardneg_pairs(funnel(wh))
    assert list(pairs.columns) == PAIR_COLUMNS and len(pairs) == 0
    assert check_pairs(pairs) == ["0 pairs, expected at least 1"]


# --------------------------------------------------------------------------- random baseline


def random_pool(tmp_path):
    problems = [problem("r1"), problem("r2"), problem("r3", ref_solution=None), problem("r4", split="test")]
    cands = [
        correct_cand("r1-c1", "r1"), correct_cand("r1-c2", "r1", W=0.5),
        *[cand(f"r1-w{i}", "r1", W=0.95, A=0.95) for i in range(4)],  # verifier-trivially-wrong: random keeps them
        cand("r1-empty", "r1", text=""), cand("r1-trunc", "r1", finish="length", answer=None),
        *[cand(f"r2-w{i}", "r2") for i in range(3)],  # no correct candidate: reference fallback
        cand("r3-w0", "r3"),  # nothing to prefer: ineligible
        cand("r4-w0", "r4"), correct_cand("r4-c", "r4"),  # test split
        cand("r1-unknown", "r1", correct=None),  # correctness unknown: neither side
    ]
    return write_pool(tmp_path / "w.duckdb", problems, cands)


def random_pairs(wh, n, rng_seed, **kw):
    with wh.connect() as con:
        return build_random_pairs(con, FAMILY, SEED, n, rng_seed, **kw)


def test_random_pairs_by_final_answer(tmp_path):
    wh = random_pool(tmp_path)
    pairs = random_pairs(wh, 5, 1)
    assert list(pairs.columns) == PAIR_COLUMNS and len(pairs) == 5
    assert (pairs["strategy"] == "random").all() and (pairs["raw_weight"] == 1.0).all()
    eligible = {f"r1-w{i}" for i in range(4)} | {f"r2-w{i}" for i in range(3)}
    assert set(pairs["rejected_candidate_id"]) <= eligible
    for row in pairs.itertuples():
        if row.problem_id == "r1":
            assert row.chosen_candidate_id in {"r1-c1", "r1-c2"}
            assert row.chosen.startswith(row.chosen_candidate_id + ":")
        else:
            assert pd.isna(row.chosen_candidate_id) and row.chosen.startswith("Reference:")
        assert row.rejected.startswith(row.rejected_candidate_id + ":")
    assert check_pairs(pairs, test_problem_ids=["r4"]) == []
    # all 7 eligible pairs when asked for more, with a warning
    with pytest.warns(UserWarning, match="only 7 of the 20"):
        assert set(random_pairs(wh, 20, 1)["rejected_candidate_id"]) == eligible


def test_random_pairs_deterministic_and_uniform(tmp_path):
    wh = random_pool(tmp_path)
    first = random_pairs(wh, 5, 7)
    pd.testing.assert_frame_equal(first, random_pairs(wh, 5, 7))
    with wh.connect() as con:
        degenerate = run_funnel(con, FAMILY, SEED).degenerate["candidate_id"]
    assert set(degenerate) == {"r1-empty", "r1-trunc"}
    pd.testing.assert_frame_equal(first, random_pairs(wh, 5, 7, degenerate_ids=degenerate))
    # Over many seeds every eligible rejected and both correct candidates get drawn.
    picks: dict[str, int] = {}
    chosen: dict[str, int] = {}
    n_seeds = 40
    with wh.connect() as con:
        for s in range(n_seeds):
            p = build_random_pairs(con, FAMILY, SEED, 5, s, degenerate_ids=degenerate)
            for r in p["rejected_candidate_id"]:
                picks[r] = picks.get(r, 0) + 1
            for c in p["chosen_candidate_id"].dropna():
                chosen[c] = chosen.get(c, 0) + 1
    assert len(picks) == 7
    assert all(0.35 * n_seeds <= v <= n_seeds for v in picks.values())  # each expected 5/7 of the time
    assert set(chosen) == {"r1-c1", "r1-c2"} and min(chosen.values()) >= 0.25 * sum(chosen.values())
    # without stage 1 the degenerate incorrect candidates become eligible
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everything = random_pairs(wh, 50, 1, exclude_degenerate=False)
    assert {"r1-empty", "r1-trunc"} <= set(everything["rejected_candidate_id"])


def test_random_same_count_as_hardneg(tmp_path):
    wh = hard_pool(tmp_path)
    hard = build_hardneg_pairs(funnel(wh))
    rand = random_pairs(wh, len(hard), 0)
    assert len(rand) == len(hard) == 3
    assert "t" not in set(rand["problem_id"])


# --------------------------------------------------------------------------- checks, export, storage


def good_pairs():
    return pd.DataFrame({
        "pair_id": ["x1", "x2", "x3"],
        "problem_id": ["a", "b", "c"],
        "prompt": ["q1", "q2", "q3"],
        "chosen": ["good 1", "good 2", "good 3"],
        "rejected": ["bad 1", "bad 2", "bad 3"],
        "raw_weight": [1.2, 0.9, 1.5],
    })


def test_check_pairs_catches_each_problem():
    assert check_pairs(good_pairs(), test_problem_ids={"t"}) == []
    bad = good_pairs()
    bad.loc[0, "rejected"] = "good 1"
    bad.loc[1, "problem_id"] = "t"
    bad.loc[2, "raw_weight"] = float("nan")
    failures = check_pairs(bad, test_problem_ids={"t"})
    assert failures == [
        "1 pair(s) with identical chosen and rejected text, e.g. ['x1']",
        "1 pair(s) from a test-split problem, e.g. ['x2']",
        "1 pair(s) with a raw_weight that is not finite and > 0, e.g. ['x3']",
    ]
    bad = good_pairs()
    bad.loc[0, "raw_weight"] = 0.0
    bad.loc[1, "raw_weight"] = math.inf
    bad.loc[2, "pair_id"] = "x1"
    bad.loc[2, "prompt"] = "  "
    failures = check_pairs(bad)
    assert any("with a missing or duplicate pair_id" in f and "'x1'" in f for f in failures)
    assert any(f.startswith("2 pair(s) with a raw_weight that is not finite") for f in failures)
    assert any("with an empty prompt" in f for f in failures)
    assert check_pairs(good_pairs().drop(columns=["chosen"])) == ["pairs lack column(s) ['chosen']"]


def test_export_round_trips_through_datasets(tmp_path):
    import datasets

    wh = hard_pool(tmp_path)
    pairs = build_hardneg_pairs(funnel(wh), prompt_for=lambda q: f"P: {q}")
    path = export_pairs(pairs, tmp_path / "out" / "pairs.parquet")
    ds = datasets.load_dataset("parquet", data_files=path, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.column_names == EXPORT_COLUMNS
    assert ds["pair_id"] == pairs["pair_id"].tolist()
    assert ds["prompt"] == pairs["prompt"].tolist()
    assert ds["chosen"] == pairs["chosen"].tolist() and ds["rejected"] == pairs["rejected"].tolist()
    assert ds["weight"] == pytest.approx(pairs["raw_weight"].tolist())
    assert check_pairs(ds.to_pandas()) == []
    with pytest.raises(ValueError, match="lack column"):
        export_pairs(pairs.drop(columns=["raw_weight"]), tmp_path / "x.parquet")


def test_rebuilding_pairs_replaces_the_partition(tmp_path):
    wh = hard_pool(tmp_path)
    for _ in range(2):
        hard = build_hardneg_pairs(funnel(wh))
        wh.replace_partition("preference_pairs", hard, family=FAMILY, seed=SEED, strategy="hardneg")
        rand = random_pairs(wh, len(hard), 3)
        wh.replace_partition("preference_pairs", rand, family=FAMILY, seed=SEED, strategy="random")
    stored = wh.query("SELECT strategy, count(*) AS n, count(DISTINCT pair_id) AS d FROM preference_pairs "
                      "GROUP BY strategy ORDER BY strategy")
    assert stored.values.tolist() == [["hardneg", 3, 3], ["random", 3, 3]]
    back = wh.query("SELECT * FROM preference_pairs WHERE strategy = 'hardneg' ORDER BY pair_id")
    assert back["raw_weight"].tolist() == pytest.approx(hard.sort_values("pair_id")["raw_weight"].tolist())


def test_trl_conversational_export_round_trips_into_plain_trl_dpo(tmp_path, tiny_model_dir):
    """Exported pairs -> datasets.load_dataset(folder) -> plain TRL DPOTrainer, one step."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from hardneg.pairs import export_pairs_trl, heldout_mask, pairs_for_export, pairs_sha256

    wh = hard_pool(tmp_path)
    pairs = build_hardneg_pairs(funnel(wh), prompt_for=lambda q: f"P: {q}")
    wh.replace_partition("preference_pairs", pairs, family=FAMILY, seed=SEED, strategy="hardneg")
    with wh.connect() as con:
        rows = pairs_for_export(con, FAMILY, SEED, "hardneg")
    assert rows["rejected_candidate_id"].tolist() == sorted(pairs["rejected_candidate_id"])  # in pair_id order
    assert rows["wrongness"].tolist() == pytest.approx([0.7, 0.5, 0.6])  # the rejected solution's verifier signals
    folder = export_pairs_trl(rows, tmp_path / "trl", system_prompt="SYS", heldout_fraction=0.3,
                              card={"family": FAMILY, "seed": SEED, "profile": "smoke", "z": 10.0})
    card = (tmp_path / "trl" / "README.md").read_text()
    assert pairs_sha256(pairs) in card and "split: heldout" in card and "`smoke`" in card

    ds = datasets.load_dataset(folder, cache_dir=str(tmp_path / "hf"))
    held = heldout_mask(rows, 0.3)
    assert len(ds["train"]) == int((~held).sum()) and len(ds["heldout"]) == int(held.sum()) >= 1
    assert not set(ds["train"]["problem_id"]) & set(ds["heldout"]["problem_id"])  # whole problems held out
    ex = ds["train"][0]
    assert ex["prompt"] == [{"role": "system", "content": "SYS"}, {"role": "user", "content": ex["prompt"][1]["content"]}]
    assert ex["chosen"][0]["role"] == "assistant" and ex["rejected"][0]["role"] == "assistant"
    for col in ("weight", "wrongness", "absurdity", "confidence", "perplexity", "d_answer", "first_error_step"):
        assert col in ds["train"].column_names, col
    by_id = dict(zip(pairs["pair_id"], pairs["raw_weight"]))
    assert ds["train"]["weight"] == pytest.approx([by_id[p] for p in ds["train"]["pair_id"]])

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2, use_cpu=True,
                       report_to="none", save_strategy="no", max_length=256, learning_rate=1e-3),
        train_dataset=ds["train"],
        processing_class=tok,
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    out = trainer.train()
    assert out.global_step == 1 and math.isfinite(out.training_loss)
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    # the heldout mask is deterministic and order-free
    assert (heldout_mask(rows.iloc[::-1].reset_index(drop=True), 0.3)[::-1] == held).all()


def test_unscored_pool_needs_both_the_funnel_and_the_weight_to_be_told(tmp_path):
    """An `inject` pool has no confidence or perplexity: the default rules refuse it loudly;
    min_confidence=None and missing_scores='omit_terms' use what is there (w = W)."""
    problems = [problem("a")]
    cands = [correct_cand("a-good", "a", W=0.02), cand("a-h1", "a", W=0.7, confidence=None, perplexity=None),
             cand("a-h2", "a", W=0.5, confidence=None, perplexity=None)]
    wh = write_pool(tmp_path / "w.duckdb", problems, cands)
    strict = funnel(wh)
    assert strict.selected.empty  # confidence >= 0.5 cannot hold for a null confidence
    relaxed = funnel(wh, min_confidence=None)
    assert relaxed.selected["candidate_id"].tolist() == ["a-h1", "a-h2"]
    with pytest.raises(ValueError, match="'a-h1': confidence is missing"):
        build_hardneg_pairs(relaxed)
    pairs = build_hardneg_pairs(relaxed, missing_scores="omit_terms")
    assert pairs["raw_weight"].tolist() == pytest.approx([0.7, 0.5])
