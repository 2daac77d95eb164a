"""Small matplotlib figures for the Dagster UI (written as PNG files)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def histograms_png(columns: pd.DataFrame, path: str | Path, title: str, bins: int = 20) -> str | None:
    """One histogram per column, side by side."""
    cols = [c for c in columns.columns if columns[c].notna().any()]
    if not cols:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 2.8), dpi=100, squeeze=False)
    for ax, col in zip(axes[0], cols):
        ax.hist(columns[col].dropna().astype(float), bins=bins, color="#4C72B0")
        ax.set_title(col)
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def funnel_png(counts: pd.DataFrame, path: str | Path, title: str) -> str | None:
    """Bars of the pool size entering stage 1 and leaving each stage."""
    if counts.empty:
        return None
    counts = counts.sort_values("stage")
    labels = ["pool"] + [f"{int(s)}. {n}" for s, n in zip(counts["stage"], counts["name"])]
    values = [int(counts["n_in"].iloc[0])] + [int(v) for v in counts["n_out"]]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3), dpi=100)
    ax.barh(labels[::-1], values[::-1], color="#55A868")
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def accuracy_bars_png(table: pd.DataFrame, path: str | Path, title: str) -> str | None:
    """Grouped bars: rows = model (family / strategy), one bar per benchmark, error bars = std."""
    if table.empty:
        return None
    plt = _pyplot()
    pivot = table.pivot_table(index="model", columns="benchmark", values="mean", sort=False)
    errors = table.pivot_table(index="model", columns="benchmark", values="std", sort=False).reindex_like(pivot)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(pivot)), 3.6), dpi=100)
    pivot.plot.bar(ax=ax, yerr=errors.fillna(0.0), capsize=2, rot=30)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)
