"""Table 1 with intervals, seeds and Math-Verify; paired tests; DPO held-out table (hardneg.report / stats)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from hardneg.report import dpo_heldout, paired_tests, report_markdown, table1_long, table1_markdown
from hardneg.stats import bootstrap_mean_interval, mcnemar_exact, paired_comparison, wilson_interval


def test_wilson_interval_matches_the_formula_and_stays_in_range():
    z = 1.959963984540054
    k, n = 3, 25
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9) and hi == pytest.approx(centre + half, abs=1e-9)
    assert (round(lo, 4), round(hi, 4)) == (0.0417, 0.2996)
    assert wilson_interval(0, 25)[0] == 0.0 and wilson_interval(25, 25)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(26, 25)


def test_mcnemar_exact_by_hand():
    assert mcnemar_exact(0, 0) == 1.0  # identical verdicts: no evidence at all
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 128)
    assert mcnemar_exact(10, 10) == 1.0


def test_bootstrap_interval_contains_the_mean_and_is_deterministic():
    x = [1, 0, 0, 1, 1, 0, 0, 0, 1, 0] * 3
    lo, hi = bootstrap_mean_interval(x)
    assert lo < sum(x) / len(x) < hi
    assert (lo, hi) == bootstrap_mean_interval(x)


def _summary():
    rows = []
    for strategy, seeds, acc, mv in (("base", [0], [0.12], [0.04]), ("random", [0, 1], [0.12, 0.20], [0.04, 0.08]),
                                     ("hardneg", [0], [0.16], [None])):
        for s, a, m in zip(seeds, acc, mv):
            rows.append({"family": "fam", "seed": s, "strategy": strategy, "benchmark": "gsm8k", "n": 25,
                         "accuracy": a, "accuracy_math_verify": m})
            rows.append({"family": "fam", "seed": s, "strategy": strategy, "benchmark": "math/level=1", "n": 3,
                         "accuracy": 1.0, "accuracy_math_verify": 1.0})
    return pd.DataFrame(rows)


def _samples():
    rows = []
    for strategy, seed, right, text in (("base", 0, {0, 1, 2}, "b"), ("random", 0, {0, 1, 2}, "b"),
                                        ("random", 1, {0, 1, 2, 3, 4}, "r"), ("hardneg", 0, {0, 3, 4, 5}, "h")):
        for i in range(25):
            rows.append({"family": "fam", "seed": seed, "strategy": strategy, "benchmark": "gsm8k", "item_id": f"g{i}",
                         # random seed 0 answers exactly as base: identical output
                         "completion": f"{text}{i}" if strategy != "random" or seed else f"b{i}",
                         "correct": i in right, "correct_math_verify": None})
    return pd.DataFrame(rows)


def test_table1_cells_intervals_seeds_and_math_verify():
    summary, samples = _summary(), _samples()
    long = table1_long(summary, samples)
    assert list(long["strategy"]) == ["base", "random", "hardneg"]  # breakdown rows are not cells
    base = long.iloc[0]
    assert base["seeds"] == 1 and pd.isna(base["std"]) and base["ci_method"] == "wilson"
    assert (base["ci_low"], base["ci_high"]) == pytest.approx(tuple(100 * v for v in wilson_interval(3, 25)))
    rnd = long.iloc[1]
    assert rnd["seeds"] == 2 and rnd["mean"] == pytest.approx(16.0) and rnd["std"] == pytest.approx(100 * math.sqrt(0.0032))
    assert rnd["ci_method"] == "bootstrap-items" and rnd["ci_low"] < 16.0 < rnd["ci_high"]
    assert rnd["mean_math_verify"] == pytest.approx(6.0)
    md = table1_markdown(summary, samples)
    lines = md.splitlines()
    assert "GSM8K (25 items)" in lines[0] and "GSM8K Math-Verify" in lines[0]
    base_line = next(line for line in lines if "| base" in line)
    assert "12.0 [" in base_line and "(n = 1)" in base_line and "±" not in base_line and "| 4.0" in base_line
    random_line = next(line for line in lines if "random DPO" in line)
    assert "16.0 ± 5.7 [" in random_line and "(n = 2)" in random_line
    hard_line = next(line for line in lines if "hard-neg DPO" in line)
    assert hard_line.rstrip(" |").endswith("–")  # no Math-Verify verdict: a dash, not 0
    # without samples a multi-seed cell falls back to Wilson on pooled counts
    assert table1_long(summary).iloc[1]["ci_method"] == "wilson-pooled"


def test_paired_tests_identical_outputs_and_real_differences():
    tests = paired_tests(_samples())
    got = {(r.seed, r.comparison): r for r in tests.itertuples()}
    same = got[(0, "random vs base")]
    assert same.changed_share == 0.0 and same.p_mcnemar == 1.0 and same.only_a == same.only_b == 0
    hb = got[(0, "hardneg vs base")]
    assert (hb.only_a, hb.only_b) == (3, 2) and hb.changed_share == 1.0
    assert hb.p_mcnemar == pytest.approx(mcnemar_exact(3, 2))
    # seed 1 random is compared with the seed-independent base (stored under seed 0); no hard-neg on seed 1
    assert (1, "random vs base") in got and (1, "hardneg vs random") not in got
    assert got[(0, "hardneg vs random")].n == 25
    with pytest.raises(ValueError, match="pair them"):
        paired_comparison([True], [True, False])


def test_dpo_heldout_table_and_full_report():
    metrics = {"global_step": 12, "n_train_examples": 10, "n_heldout_pairs": 3,
               "heldout": {"n_pairs": 3,
                           "before": {"reward_margin": 0.0, "reward_accuracy": 0.0, "ref_logp_accuracy": 1 / 3,
                                      "ref_logp_margin": -4.0, "logp_accuracy": 1 / 3, "logp_margin": -4.0},
                           "after": {"reward_margin": 0.21, "reward_accuracy": 1.0, "logp_accuracy": 2 / 3,
                                     "logp_margin": -1.9}}}
    runs = pd.DataFrame([{"family": "fam", "seed": 0, "stage": "dpo", "strategy": "hardneg",
                          "metrics": json.dumps(metrics)}])
    held = dpo_heldout(runs)
    assert held.iloc[0]["reward_margin_after"] == 0.21 and held.iloc[0]["ref_logp_accuracy"] == pytest.approx(1 / 3)
    md = report_markdown(_summary(), _samples(), runs)
    for heading in ("## Table 1", "## Paired tests on the same items", "## DPO on held-out pairs"):
        assert heading in md
    assert "+0.0000 → +0.2100" in md and "33% → 67%" in md and "0 %" in md
