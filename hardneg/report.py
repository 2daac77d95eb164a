"""The paper's Table 1: per family, base vs random DPO vs hard-negative DPO, mean ± std over seeds.

Reads `eval_summary` rows (family, seed, strategy, benchmark, n, accuracy) and lays
them out with one block of rows per family and one column per benchmark. Accuracies
are shown in percent; std is the sample standard deviation over seeds (0 for one seed).
"""

from __future__ import annotations

import pandas as pd

STRATEGY_LABELS = {"base": "base", "sft": "+ SFT", "random": "+ random DPO", "hardneg": "+ hard-neg DPO"}
STRATEGY_ORDER = ["base", "sft", "random", "hardneg"]
BENCHMARK_LABELS = {"math": "MATH", "math500": "MATH-500", "gsm8k": "GSM8K"}


def table1_long(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, strategy, benchmark): mean and std of accuracy (%) over seeds, and n seeds."""
    overall = summary[~summary["benchmark"].str.contains("/")]
    if overall.empty:
        return pd.DataFrame(columns=["family", "strategy", "benchmark", "mean", "std", "seeds", "model"])
    grouped = overall.groupby(["family", "strategy", "benchmark"], sort=False)["accuracy"]
    out = grouped.agg(mean="mean", std="std", seeds="count").reset_index()
    out["mean"] *= 100.0
    out["std"] = out["std"].fillna(0.0) * 100.0
    out["strategy_rank"] = out["strategy"].map({s: i for i, s in enumerate(STRATEGY_ORDER)}).fillna(len(STRATEGY_ORDER))
    out = out.sort_values(["family", "strategy_rank", "benchmark"]).drop(columns="strategy_rank")
    out["model"] = out["family"] + " " + out["strategy"].map(STRATEGY_LABELS).fillna(out["strategy"])
    return out.reset_index(drop=True)


def table1_markdown(summary: pd.DataFrame) -> str:
    """Markdown Table 1: rows = family × strategy, columns = benchmarks (MATH first, as the paper)."""
    long = table1_long(summary)
    if long.empty:
        return "_no evaluation results yet_"
    long["cell"] = [f"{m:.1f} ± {s:.1f}" + (f" (n={n})" if n > 1 else "") for m, s, n in zip(long["mean"], long["std"], long["seeds"])]
    wide = long.pivot_table(index=["family", "strategy"], columns="benchmark", values="cell", aggfunc="first", sort=False)
    cols = sorted(wide.columns, key=lambda b: ["math", "math500", "gsm8k"].index(b) if b in ("math", "math500", "gsm8k") else 9)
    wide = wide[cols].rename(columns=lambda b: BENCHMARK_LABELS.get(b, b)).reset_index()
    wide["strategy"] = wide["strategy"].map(STRATEGY_LABELS).fillna(wide["strategy"])
    wide = wide.rename(columns={"family": "Model family", "strategy": "Training"}).fillna("–")
    return wide.to_markdown(index=False)
