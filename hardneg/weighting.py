"""Per-pair importance weights for weighted DPO (paper eq. 2 and 4-7, SPEC §2.5).

Two separate stages, kept apart on purpose:

- *Raw* weights are a property of a preference pair and are computed once, when pairs are
  built: ``w = W + (1 - c) + PPL / Z`` from the rejected solution's wrongness ``W``,
  confidence ``c`` and perplexity ``PPL`` (eq. 2). They are stored in the warehouse
  (``preference_pairs.raw_weight``) and validated before training, so that a bad value is
  reported with the pair it belongs to instead of surfacing as a NaN loss mid-run.
- *Batch* weights depend on which pairs share a batch, so they can only be computed inside
  the trainer: unit mean (eq. 4), λ-interpolation towards 1 (eq. 5), safety clip (eq. 6).
  The loss is then ``(1/B) Σ w̃_i ℓ_i`` (eq. 7).

Pure numpy/torch: no TRL, so the maths is testable on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "WeightingConfig",
    "raw_weight",
    "validate_raw_weights",
    "normalize_batch_weights",
]


@dataclass
class WeightingConfig:
    """Weighting hyper-parameters (paper §3.2-3.3, SPEC §2.5).

    Parameters:
        z (`float`, defaults to `10.0`):
            Perplexity normaliser Z of eq. 2: ``w = W + (1 - c) + PPL / Z``. Chosen so that PPL / Z has the
            magnitude of the other two terms for the perplexities a small math model produces.
        lam (`float`, defaults to `0.3`):
            λ of eq. 5, in [0, 1]: 0 ignores the weights (every pair weighs 1, plain DPO), 1 uses the
            unit-mean weights at full strength. The paper's `dataset_weight_lambda`.
        w_min (`float`, defaults to `0.5`):
            Lower bound of the safety clip (eq. 6), so that the least informative pairs keep some gradient.
            The paper's `dataset_weight_min`.
        w_max (`float`, defaults to `2.0`):
            Upper bound of the safety clip (eq. 6), so that no pair weighs more than about twice the batch
            average. The paper's `dataset_weight_max`.
    """

    z: float = field(default=10.0, metadata={"help": "Perplexity normaliser Z in w = W + (1 - c) + PPL / Z."})
    lam: float = field(default=0.3, metadata={"help": "λ in [0, 1]: strength of the per-batch weights."})
    w_min: float = field(default=0.5, metadata={"help": "Lower clip bound of the tempered weights."})
    w_max: float = field(default=2.0, metadata={"help": "Upper clip bound of the tempered weights."})

    def __post_init__(self) -> None:
        _check_batch_params(self.lam, self.w_min, self.w_max)
        if not (math.isfinite(self.z) and self.z > 0):
            raise ValueError(f"WeightingConfig.z must be a finite number > 0, got {self.z!r}")


def _check_batch_params(lam: float, w_min: float, w_max: float) -> None:
    if not (0.0 <= lam <= 1.0):
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    if not (math.isfinite(w_min) and math.isfinite(w_max) and 0.0 < w_min <= w_max):
        raise ValueError(f"clip bounds must satisfy 0 < w_min <= w_max (finite), got w_min={w_min!r}, w_max={w_max!r}")


def raw_weight(wrongness: Any, confidence: Any, perplexity: Any, z: float = 10.0) -> float | np.ndarray:
    """Raw importance weight of a pair (paper eq. 2): ``w = W + (1 - c) + PPL / Z``.

    All three signals are those of the pair's *rejected* (hard-negative) solution (SPEC §2.5).
    Scalars give a `float`; arrays (or anything numpy broadcasts) give an array. Non-finite inputs
    propagate as NaN/inf on purpose: `validate_raw_weights` rejects them with the pair id, which is
    more useful than an error here that cannot name the pair.
    """
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a finite number > 0, got {z!r}")
    w = np.asarray(wrongness, dtype=np.float64)
    c = np.asarray(confidence, dtype=np.float64)
    ppl = np.asarray(perplexity, dtype=np.float64)
    out = w + (1.0 - c) + ppl / z
    if out.ndim == 0:
        return float(out)
    return out


def validate_raw_weights(weights: Any, pair_ids: Sequence[Any]) -> None:
    """Reject raw weights that would poison a batch: NaN, ±inf or ≤ 0.

    A non-positive weight breaks the unit-mean normalisation (a batch mean of 0 divides by zero, a
    negative weight flips the DPO gradient), and one NaN turns the whole batch loss into NaN.
    Raises `ValueError` naming the offending pair id(s) (the first 20, and the total count).
    """
    arr = np.asarray(weights, dtype=np.float64).reshape(-1)
    ids = list(pair_ids)
    if len(ids) != arr.shape[0]:
        raise ValueError(f"validate_raw_weights: {arr.shape[0]} weights but {len(ids)} pair ids")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        idx = np.flatnonzero(bad)
        shown = ", ".join(f"{ids[i]!s} (raw_weight={arr[i]!r})" for i in idx[:20])
        more = f" and {len(idx) - 20} more" if len(idx) > 20 else ""
        raise ValueError(
            f"{len(idx)} preference pair(s) have an invalid raw_weight (must be finite and > 0): {shown}{more}"
        )


def normalize_batch_weights(
    w: torch.Tensor, lam: float = 0.3, w_min: float = 0.5, w_max: float = 2.0
) -> tuple[torch.Tensor, dict]:
    """Per-batch weights of the weighted DPO loss (paper eq. 4-6).

    ``ŵ = w / mean(w)`` (unit mean), ``w̃ = 1 + λ (ŵ − 1)`` (tempering), then clip to ``[w_min, w_max]``.
    Clipping comes last and is not followed by a re-normalisation: that is the paper's order, so the
    mean of the returned weights can drift slightly from 1 when something was clipped.

    Args:
        w: 1-D tensor of raw weights (finite, > 0) of the pairs in the batch.
        lam: λ in [0, 1].
        w_min, w_max: clip bounds, ``0 < w_min <= w_max``.

    Returns:
        ``(w_tilde, stats)``: the weights (same dtype/device as `w`, detached: they are data, not
        parameters) and ``{"mean", "min", "max", "n_clipped"}`` of ``w̃`` after clipping, where
        ``n_clipped`` counts the pairs the clip changed.
    """
    _check_batch_params(lam, w_min, w_max)
    if w.dim() != 1 or w.numel() == 0:
        raise ValueError(f"normalize_batch_weights expects a non-empty 1-D tensor, got shape {tuple(w.shape)}")
    w = w.detach()
    if not torch.is_floating_point(w):
        w = w.to(torch.float32)
    if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
        raise ValueError(f"batch weights must be finite and > 0, got {w.tolist()}")
    w_hat = w / w.mean()
    tempered = 1.0 + lam * (w_hat - 1.0)
    clipped = tempered.clamp(min=w_min, max=w_max)
    n_clipped = int(((tempered < w_min) | (tempered > w_max)).sum())
    stats = {
        "mean": float(clipped.mean()),
        "min": float(clipped.min()),
        "max": float(clipped.max()),
        "n_clipped": n_clipped,
    }
    return clipped, stats
