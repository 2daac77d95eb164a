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

Which batch B is (SPEC §2.5). The paper normalises over the *training batch*, 4 × 16 pairs:

    ŵ_i = w_i / ((1/B) Σ_{j ∈ batch} w_j)        (eq. 4)
    w̃_i = clip(1 + λ (ŵ_i − 1), w_min, w_max)    (eq. 5-6)
    L   = (1/B) Σ_{i ∈ batch} w̃_i ℓ_DPO,i        (eq. 7)

Here "batch" is the *optimizer* batch: every micro-batch of one gradient-accumulation step on
every process, i.e. exactly the pairs whose gradients one optimizer step averages. The
trainer (`hardneg.dpo_trainer`) computes ``Σ w_j`` and ``B`` once per optimizer step over all
micro-batches (all-reduced across processes) and passes the mean to
`normalize_batch_weights` as `batch_mean`. Normalising each device micro-batch on its own
(4 pairs in `paper`) would keep w̃ inside (1 − λ, 1 + 3λ) so the clip could never fire, and
would lose the relative weight of pairs that sit in different micro-batches of one step.

No TRL here, and torch only inside the batch function, so a profile (which holds a
`WeightingConfig`) loads without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # (annotations only: the module loads without torch)
    import torch

__all__ = [
    "WeightingConfig",
    "raw_weight",
    "validate_raw_weights",
    "normalize_batch_weights",
    "check_batch_params",
]


@dataclass
class WeightingConfig:
    """Per-batch weighting hyper-parameters of the loss (paper eq. 5-6, SPEC §2.5).

    The perplexity normaliser Z of the *raw* weight (eq. 2) is not here: raw weights are a
    property of the pairs, so Z lives with them (`hardneg.pairs.PairsConfig.perplexity_z`, the
    profile's `pairs` section) and changing a DPO knob never rebuilds the pairs.

    Parameters:
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

    lam: float = field(default=0.3, metadata={"help": "λ in [0, 1]: strength of the per-batch weights."})
    w_min: float = field(default=0.5, metadata={"help": "Lower clip bound of the tempered weights."})
    w_max: float = field(default=2.0, metadata={"help": "Upper clip bound of the tempered weights."})

    def __post_init__(self) -> None:
        check_batch_params(self.lam, self.w_min, self.w_max)


def check_batch_params(lam: float, w_min: float, w_max: float) -> None:
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
    w: "torch.Tensor",
    lam: float = 0.3,
    w_min: float = 0.5,
    w_max: float = 2.0,
    batch_mean: "float | torch.Tensor | None" = None,
    validate: bool = True,
) -> "tuple[torch.Tensor, dict]":
    """Per-batch weights of the weighted DPO loss (paper eq. 4-6).

    ``ŵ = w / mean`` (unit mean), ``w̃ = 1 + λ (ŵ − 1)`` (tempering), then clip to ``[w_min, w_max]``.
    Clipping comes last and is not followed by a re-normalisation: that is the paper's order, so the
    mean of the returned weights can drift slightly from 1 when something was clipped.

    Args:
        w: 1-D tensor of raw weights (finite, > 0) of the pairs at hand.
        lam: λ in [0, 1].
        w_min, w_max: clip bounds, ``0 < w_min <= w_max``.
        batch_mean: mean raw weight of the batch the paper normalises over (the optimizer batch, of
            which `w` may be one micro-batch; see the module docstring). None: the mean of `w`.
        validate: check λ and the bounds (the trainer validates them once, in its config, and passes
            False on every batch).

    Returns:
        ``(w_tilde, stats)``: the weights (same dtype/device as `w`, detached: they are data, not
        parameters) and ``{"mean", "min", "max", "n_clipped"}`` of ``w̃`` after clipping, where
        ``n_clipped`` counts the pairs the clip changed.
    """
    import torch

    if validate:
        check_batch_params(lam, w_min, w_max)
    if w.dim() != 1 or w.numel() == 0:
        raise ValueError(f"normalize_batch_weights expects a non-empty 1-D tensor, got shape {tuple(w.shape)}")
    w = w.detach()
    if not torch.is_floating_point(w):
        w = w.to(torch.float32)
    if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
        raise ValueError(f"batch weights must be finite and > 0, got {w.tolist()}")
    mean = w.mean() if batch_mean is None else torch.as_tensor(batch_mean, dtype=w.dtype, device=w.device)
    if not (bool(torch.isfinite(mean)) and float(mean) > 0):
        raise ValueError(f"batch mean weight must be finite and > 0, got {float(mean)!r}")
    w_hat = w / mean
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
