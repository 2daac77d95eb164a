"""Reference-vs-prediction step alignment: d2 (structure) and d3 (order).

Needleman–Wunsch on S_rp with gain `S_rp[i,j] − τ` for aligning reference step i with
predicted step j and free gaps: the monotone alignment that keeps the most similar pairs.
A monotone alignment cannot see a *swap*, though (it would call a swapped step missing
and extra), so unaligned reference steps are then paired greedily with unaligned
predicted steps they match (S ≥ τ) regardless of order: those are reordered, not
missing. d2 counts what stays unmatched (plus near-duplicate predicted steps); d3 ranks
all matched pairs (Spearman ρ) and adds a penalty for inverted *key* steps: reference
steps where the later one uses the result of the earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

__all__ = ["Alignment", "needleman_wunsch", "align_steps", "structure_score", "order_score", "spearman"]


def needleman_wunsch(S: np.ndarray, tau: float) -> list[tuple[int, int]]:
    """Monotone pairs (i, j) maximizing Σ (S[i,j] − tau); gaps cost nothing."""
    n, m = S.shape
    if n == 0 or m == 0:
        return []
    gain = (S - tau).tolist()
    F = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        row, prev, g = F[i], F[i - 1], gain[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + g[j - 1]
            up = prev[j]
            left = row[j - 1]
            row[j] = diag if diag > up and diag > left else (up if up >= left else left)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        g = gain[i - 1][j - 1]
        if g > 0 and F[i][j] == F[i - 1][j - 1] + g and F[i][j] > F[i - 1][j] and F[i][j] > F[i][j - 1]:
            pairs.append((i - 1, j - 1))
            i -= 1
            j -= 1
        elif F[i][j] == F[i - 1][j]:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs


@dataclass
class Alignment:
    pairs: list[tuple[int, int]] = field(default_factory=list)  # monotone NW pairs
    reordered: list[tuple[int, int]] = field(default_factory=list)  # recovered out-of-order pairs
    missing: list[int] = field(default_factory=list)  # reference steps with no partner
    extra: list[int] = field(default_factory=list)  # predicted steps with no partner
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (earlier, later) near-duplicates

    @property
    def matched(self) -> list[tuple[int, int]]:
        return sorted(self.pairs + self.reordered)


def align_steps(S_rp: np.ndarray, S_pp: np.ndarray, tau: float, dup_threshold: float) -> Alignment:
    n, m = S_rp.shape
    al = Alignment()
    al.pairs = needleman_wunsch(S_rp, tau)
    used_r = {i for i, _ in al.pairs}
    used_p = {j for _, j in al.pairs}
    free = [(float(S_rp[i, j]), i, j) for i in range(n) if i not in used_r for j in range(m) if j not in used_p and S_rp[i, j] >= tau]
    for _, i, j in sorted(free, reverse=True):
        if i not in used_r and j not in used_p:
            al.reordered.append((i, j))
            used_r.add(i)
            used_p.add(j)
    al.missing = [i for i in range(n) if i not in used_r]
    al.extra = [j for j in range(m) if j not in used_p]
    for j in range(1, m):
        for k in range(j):
            if S_pp[k, j] > dup_threshold:
                al.duplicates.append((k, j))
                break
    return al


def structure_score(al: Alignment, n_ref: int, n_pred: int, missing_weight: float, extra_weight: float) -> float:
    """d2 = w_m·missing/|r| + w_e·extra/|p|; a near-duplicate counts as extra."""
    if n_ref == 0:
        return 0.0
    if n_pred == 0:
        return min(1.0, missing_weight + extra_weight)
    extra = set(al.extra) | {j for _, j in al.duplicates}
    return float(min(1.0, missing_weight * len(al.missing) / n_ref + extra_weight * len(extra) / n_pred))


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman ρ of two sequences without ties (aligned indices are distinct)."""
    n = len(xs)
    if n < 2:
        return 1.0
    rx = np.argsort(np.argsort(xs))
    ry = np.argsort(np.argsort(ys))
    d2 = float(((rx - ry) ** 2).sum())
    return 1.0 - 6.0 * d2 / (n * (n * n - 1))


def order_score(al: Alignment, ref_depends: dict[int, set[int]], penalty: float, cap: float,
                uses: Optional[Callable[[int, int], bool]] = None) -> tuple[float, list[tuple[int, int]]]:
    """d3 and the inverted key pairs as (reference step used, predicted step that uses it too early).

    `ref_depends[i2]` holds the reference steps whose results step i2 uses. `uses(i1, j)`: does predicted
    step j show a result of reference step i1? An inversion is counted only where it does: a step aligned
    with i2 that holds none of the values i2 takes from i1 does not need i1 (a weak match, as when one
    predicted step holds both i1 and i2 and i2 was aligned with a look-alike elsewhere)."""
    matched = al.matched
    if len(matched) < 2:
        return 0.0, []
    rho = spearman([i for i, _ in matched], [j for _, j in matched])
    base = (1.0 - rho) / 2.0
    where = dict(matched)
    inversions = []
    for i2, deps in ref_depends.items():
        if i2 not in where:
            continue
        for i1 in deps:
            if i1 in where and i1 < i2 and where[i1] > where[i2] and (uses is None or uses(i1, where[i2])):
                inversions.append((i1, where[i2]))
    extra = min(cap, penalty * len(inversions))
    return float(min(1.0, max(0.0, base) + extra)), inversions
