"""Uncertainty for Table 1: intervals over items, spreads over seeds, paired tests between models.

A Table 1 cell is an accuracy over a few hundred (smoke: 25) benchmark items, so what a reader
needs besides the number is how far it could move with other items (a 95 % interval), how far
it moves with another training seed (a std, only meaningful with ≥ 2 seeds), and whether two
models evaluated on the *same* items really differ (a paired test: McNemar's exact test on the
items where exactly one of them is right; with identical outputs it is p = 1 by construction).

Pure Python + numpy; no scipy needed (the binomial tail is summed exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["wilson_interval", "mcnemar_exact", "bootstrap_mean_interval", "paired_comparison", "mean_std"]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (proportions in [0, 1]).

    Preferred over the normal ("Wald") interval because it stays inside [0, 1] and keeps its
    coverage at the small n and extreme accuracies of a smoke run (e.g. 0/25 gives [0, 13.3 %]).
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k}, n={n}")
    z = _z(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    # Inverse normal CDF by bisection on erf: exact enough, no scipy.
    target = 1 - (1 - confidence) / 2
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    b: items model A gets right and B wrong; c: the reverse. Under "no difference" each discordant
    item is a fair coin, so p = min(1, 2 · P[Binomial(b + c, ½) ≤ min(b, c)]). No discordant item
    at all (e.g. identical outputs) gives p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2 * tail)


def bootstrap_mean_interval(values: Sequence[float], confidence: float = 0.95, n_boot: int = 2000,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item values (e.g. an item's correctness
    averaged over seeds), resampling items. Deterministic for a seed."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def mean_std(values: Sequence[float]) -> tuple[float, float | None, int]:
    """(mean, sample std or None when there is a single value, n)."""
    x = [float(v) for v in values]
    if not x:
        return (float("nan"), None, 0)
    m = sum(x) / len(x)
    if len(x) < 2:
        return (m, None, 1)
    return (m, math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1)), len(x))


def paired_comparison(correct_a: Sequence[bool], correct_b: Sequence[bool],
                      output_a: Sequence[str] | None = None, output_b: Sequence[str] | None = None) -> dict:
    """Two models on the same items, in the same order: accuracies, discordant counts, McNemar p,
    and the share of items whose output text differs (0 means the models answered identically)."""
    a = [bool(v) for v in correct_a]
    b = [bool(v) for v in correct_b]
    if len(a) != len(b):
        raise ValueError(f"paired_comparison: {len(a)} vs {len(b)} items; pair them by item first")
    n = len(a)
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    out = {
        "n": n,
        "accuracy_a": sum(a) / n if n else float("nan"),
        "accuracy_b": sum(b) / n if n else float("nan"),
        "only_a": only_a,
        "only_b": only_b,
        "p_mcnemar": mcnemar_exact(only_a, only_b),
    }
    if output_a is not None and output_b is not None:
        changed = sum(str(x) != str(y) for x, y in zip(output_a, output_b))
        out["changed_share"] = changed / n if n else float("nan")
    return out
