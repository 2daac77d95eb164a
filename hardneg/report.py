"""The paper's Table 1 with the uncertainty a reader needs, paired tests, and DPO held-out metrics.

Reads the warehouse's `eval_summary` (family, seed, strategy, benchmark, n, accuracy,
accuracy_math_verify), `eval_samples` (per item: correct, completion) and the DPO rows of
`training_runs` (metrics JSON), and writes:

1. **Table 1**: one block of rows per family (base, + random DPO, + hard-neg DPO), one column
   per benchmark with the protocol accuracy and, beside it, Math-Verify's. A cell reads
   ``acc [lo–hi] (n = 1)`` for one seed: the 95 % Wilson interval over the benchmark's items,
   and *no* ± (one seed has no spread); with k ≥ 2 seeds ``mean ± std [lo–hi] (n = k)``: the
   sample std over seeds and a percentile bootstrap interval over items of the per-item
   correctness averaged over seeds.
2. **Paired tests**: each DPO strategy against base and against the other strategy on the same
   items (McNemar's exact test on the discordant items) and the share of items whose output
   text changed. Identical outputs (a DPO that moved no greedy token) show as 0 % changed, p = 1.
3. **DPO on held-out pairs**: reward margin and preference accuracy before and after training.

`pandas` only; the statistics are in `hardneg.stats`.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from hardneg.stats import bootstrap_mean_interval, mean_std, paired_comparison, wilson_interval

STRATEGY_LABELS = {"base": "base", "sft": "+ SFT", "random": "+ random DPO", "hardneg": "+ hard-neg DPO"}
STRATEGY_ORDER = ["base", "sft", "random", "hardneg"]
BENCHMARK_LABELS = {"math": "MATH", "math500": "MATH-500", "gsm8k": "GSM8K"}
BENCHMARK_ORDER = ["math", "math500", "gsm8k"]
LONG_COLUMNS = ["family", "strategy", "benchmark", "mean", "std", "seeds", "n_items", "ci_low", "ci_high", "ci_method",
                "mean_math_verify", "model"]
COMPARISONS = (("hardneg", "base"), ("random", "base"), ("hardneg", "random"))


def _overall(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[~summary["benchmark"].astype(str).str.contains("/")]


def _bench_rank(b: str) -> int:
    return BENCHMARK_ORDER.index(b) if b in BENCHMARK_ORDER else len(BENCHMARK_ORDER)


def table1_long(summary: pd.DataFrame, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (family, strategy, benchmark): accuracy (%) mean, std over seeds (NaN for one
    seed), seeds, items, the 95 % interval and how it was computed, Math-Verify accuracy (%)."""
    overall = _overall(summary)
    if overall.empty:
        return pd.DataFrame(columns=LONG_COLUMNS)
    rows = []
    for (family, strategy, bench), g in overall.groupby(["family", "strategy", "benchmark"], sort=False):
        m, sd, k = mean_std(g["accuracy"].astype(float).tolist())
        n_items = int(g["n"].iloc[0])
        if k == 1:
            lo, hi = wilson_interval(int(round(float(g["accuracy"].iloc[0]) * n_items)), n_items)
            method = "wilson"
        else:
            per_item = _per_item_mean(samples, family, strategy, bench, g["seed"].tolist())
            if per_item is not None:
                lo, hi = bootstrap_mean_interval(per_item)
                method = "bootstrap-items"
            else:  # no samples at hand: Wilson on the pooled counts
                k_all = int(round(sum(float(a) * int(n) for a, n in zip(g["accuracy"], g["n"]))))
                lo, hi = wilson_interval(k_all, int(g["n"].sum()))
                method = "wilson-pooled"
        mv = [float(v) for v in g.get("accuracy_math_verify", pd.Series(dtype=float)).tolist()
              if v is not None and not pd.isna(v)]
        rows.append({
            "family": family, "strategy": strategy, "benchmark": bench,
            "mean": 100.0 * m, "std": None if sd is None else 100.0 * sd, "seeds": k, "n_items": n_items,
            "ci_low": 100.0 * lo, "ci_high": 100.0 * hi, "ci_method": method,
            "mean_math_verify": 100.0 * sum(mv) / len(mv) if mv else None,
        })
    out = pd.DataFrame(rows)
    out["std"] = out["std"].astype(float)
    out["strategy_rank"] = out["strategy"].map({s: i for i, s in enumerate(STRATEGY_ORDER)}).fillna(len(STRATEGY_ORDER))
    out["bench_rank"] = out["benchmark"].map(_bench_rank)
    out = out.sort_values(["family", "strategy_rank", "bench_rank"]).drop(columns=["strategy_rank", "bench_rank"])
    out["model"] = out["family"] + " " + out["strategy"].map(STRATEGY_LABELS).fillna(out["strategy"])
    return out[LONG_COLUMNS].reset_index(drop=True)


def _per_item_mean(samples, family, strategy, bench, seeds) -> list[float] | None:
    if samples is None or samples.empty:
        return None
    s = samples[(samples["family"] == family) & (samples["strategy"] == strategy) & (samples["benchmark"] == bench)
                & samples["seed"].isin(seeds)]
    if s.empty:
        return None
    return s.groupby("item_id")["correct"].apply(lambda x: float(pd.Series(x).astype(bool).mean())).tolist()


def _cell(r) -> str:
    spread = f" ± {r['std']:.1f}" if r["seeds"] >= 2 and not pd.isna(r["std"]) else ""
    return f"{r['mean']:.1f}{spread} [{r['ci_low']:.1f}–{r['ci_high']:.1f}] (n = {int(r['seeds'])})"


def table1_markdown(summary: pd.DataFrame, samples: pd.DataFrame | None = None) -> str:
    """Markdown Table 1: rows = family × strategy; per benchmark the protocol accuracy cell and Math-Verify's."""
    long = table1_long(summary, samples)
    if long.empty:
        return "_no evaluation results yet_"
    benches = sorted(long["benchmark"].unique(), key=_bench_rank)
    items = long.groupby("benchmark")["n_items"].max().to_dict()
    records = []
    for (family, strategy), g in long.groupby(["family", "strategy"], sort=False):
        rec = {"Model family": family, "Training": STRATEGY_LABELS.get(strategy, strategy)}
        by = {r["benchmark"]: r for _, r in g.iterrows()}
        for b in benches:
            label = f"{BENCHMARK_LABELS.get(b, b)} ({items[b]} items)"
            r = by.get(b)
            rec[label] = _cell(r) if r is not None else "–"
            mv = None if r is None else r["mean_math_verify"]
            rec[f"{BENCHMARK_LABELS.get(b, b)} Math-Verify"] = "–" if mv is None or pd.isna(mv) else f"{mv:.1f}"
        records.append(rec)
    return pd.DataFrame(records).to_markdown(index=False, disable_numparse=True)


def paired_tests(samples: pd.DataFrame) -> pd.DataFrame:
    """Each DPO strategy vs base and vs the other strategy, per family × seed × benchmark, on shared items.

    Base is seed-independent (greedy decoding of the starting policy) and stored under seed 0, so
    every seed's DPO model is compared with it."""
    cols = ["family", "seed", "benchmark", "comparison", "n", "accuracy_a", "accuracy_b", "only_a", "only_b",
            "p_mcnemar", "changed_share"]
    if samples is None or samples.empty:
        return pd.DataFrame(columns=cols)
    s = samples[~samples["benchmark"].astype(str).str.contains("/")]
    rows = []
    for (family, bench), g in s.groupby(["family", "benchmark"], sort=False):
        seeds = sorted(int(x) for x in g.loc[g["strategy"].isin(["random", "hardneg"]), "seed"].unique())
        for seed in seeds:
            for a, b in COMPARISONS:
                sa = g[(g["strategy"] == a) & (g["seed"] == seed)]
                sb = g[(g["strategy"] == b) & (g["seed"] == (0 if b == "base" else seed))]
                if sa.empty or sb.empty:
                    continue
                m = sa.merge(sb, on="item_id", suffixes=("_a", "_b"))
                if m.empty:
                    continue
                res = paired_comparison(m["correct_a"], m["correct_b"], m["completion_a"], m["completion_b"])
                rows.append({"family": family, "seed": seed, "benchmark": bench,
                             "comparison": f"{a} vs {b}", **res})
    out = pd.DataFrame(rows, columns=cols)
    if not out.empty:
        out["bench_rank"] = out["benchmark"].map(_bench_rank)
        out = out.sort_values(["family", "seed", "bench_rank"], kind="stable").drop(columns="bench_rank")
    return out.reset_index(drop=True)


def paired_markdown(tests: pd.DataFrame) -> str:
    if tests.empty:
        return "_no DPO evaluation to compare yet_"
    t = pd.DataFrame({
        "Family": tests["family"], "Seed": tests["seed"],
        "Benchmark": tests["benchmark"].map(lambda b: BENCHMARK_LABELS.get(b, b)),
        "A vs B": tests["comparison"], "Items": tests["n"],
        "Acc A": (100 * tests["accuracy_a"]).map("{:.1f}".format),
        "Acc B": (100 * tests["accuracy_b"]).map("{:.1f}".format),
        "A right, B wrong": tests["only_a"], "B right, A wrong": tests["only_b"],
        "McNemar exact p": tests["p_mcnemar"].map(lambda p: f"{p:.3g}"),
        "Output changed": (100 * tests["changed_share"]).map("{:.0f} %".format),
    })
    return t.to_markdown(index=False, disable_numparse=True)


def dpo_heldout(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per DPO run (training_runs, stage 'dpo'): held-out reward margin / accuracy before and after."""
    cols = ["family", "seed", "strategy", "steps", "train_pairs", "heldout_pairs", "reward_margin_before",
            "reward_margin_after", "reward_accuracy_before", "reward_accuracy_after", "ref_logp_accuracy",
            "logp_accuracy_after", "ref_logp_margin", "logp_margin_after"]
    rows = []
    if runs is not None and not runs.empty:
        for r in runs.itertuples():
            if getattr(r, "stage", "dpo") != "dpo":
                continue
            m = r.metrics if isinstance(r.metrics, dict) else json.loads(r.metrics or "{}")
            held = m.get("heldout") or {}
            before, after = held.get("before") or {}, held.get("after") or {}
            rows.append({
                "family": r.family, "seed": int(r.seed), "strategy": r.strategy, "steps": m.get("global_step"),
                "train_pairs": m.get("n_train_examples"), "heldout_pairs": m.get("n_heldout_pairs", 0),
                "reward_margin_before": before.get("reward_margin"), "reward_margin_after": after.get("reward_margin"),
                "reward_accuracy_before": before.get("reward_accuracy"),
                "reward_accuracy_after": after.get("reward_accuracy"),
                "ref_logp_accuracy": before.get("ref_logp_accuracy"), "logp_accuracy_after": after.get("logp_accuracy"),
                "ref_logp_margin": before.get("ref_logp_margin"), "logp_margin_after": after.get("logp_margin"),
            })
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["family", "seed", "strategy"]).reset_index(drop=True) if not out.empty else out


def _f(x, fmt="{:.3f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def dpo_markdown(held: pd.DataFrame) -> str:
    if held.empty:
        return "_no DPO run recorded yet_"
    pct = "{:.0%}"
    t = pd.DataFrame({
        "Family": held["family"], "Seed": held["seed"], "Strategy": held["strategy"], "Steps": held["steps"],
        "Train / held-out pairs": [f"{a} / {b}" for a, b in zip(held["train_pairs"], held["heldout_pairs"])],
        "Reward margin before → after": [f"{_f(a, '{:+.4f}')} → {_f(b, '{:+.4f}')}" for a, b in
                                         zip(held["reward_margin_before"], held["reward_margin_after"])],
        "Reward accuracy before → after": [f"{_f(a, pct)} → {_f(b, pct)}" for a, b in
                                           zip(held["reward_accuracy_before"], held["reward_accuracy_after"])],
        "log π(c) > log π(r): reference → policy": [f"{_f(a, pct)} → {_f(b, pct)}" for a, b in
                                                    zip(held["ref_logp_accuracy"], held["logp_accuracy_after"])],
        "log π(c) − log π(r): reference → policy": [f"{_f(a, '{:+.2f}')} → {_f(b, '{:+.2f}')}" for a, b in
                                                    zip(held["ref_logp_margin"], held["logp_margin_after"])],
    })
    return t.to_markdown(index=False, disable_numparse=True)


NOTES = """Cells: protocol accuracy in % with its 95 % interval over the benchmark's items (Wilson for one
seed; percentile bootstrap over items of the seed-averaged correctness for n ≥ 2 seeds); n = number of
seeds, and ± (sample std over seeds) only where n ≥ 2. Math-Verify: the same completions graded by
Math-Verify instead of the Step-DPO protocol (which also accepts x·100 and x/100)."""

PAIRED_NOTES = """Same items, same prompts, greedy decoding. McNemar's exact test on the items exactly one model
gets right (two-sided); "Output changed" is the share of items whose completion text differs at all.
Base is evaluated once (seed-independent) and compared with every seed's DPO model."""

DPO_NOTES = """Held-out pairs: whole problems DPO never trained on (`pairs.heldout_fraction`). Reward margin =
β[(log π − log π_ref)(chosen) − (log π − log π_ref)(rejected)], DPO's implicit reward, and reward
accuracy = share of pairs where it is > 0: both are 0 before training (policy = reference). The last two
columns are the plain log-likelihood preference of the frozen reference and of the trained policy."""


def report_markdown(summary: pd.DataFrame, samples: pd.DataFrame | None = None,
                    runs: pd.DataFrame | None = None) -> str:
    """The whole report: Table 1, paired tests, DPO held-out metrics, each with how to read it."""
    return "\n\n".join([
        "## Table 1", table1_markdown(summary, samples), NOTES,
        "## Paired tests on the same items", paired_markdown(paired_tests(samples)), PAIRED_NOTES,
        "## DPO on held-out pairs", dpo_markdown(dpo_heldout(runs)), DPO_NOTES,
    ]) + "\n"
