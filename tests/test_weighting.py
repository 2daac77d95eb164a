"""Raw weights (eq. 2), their validation, and the per-batch normalise / temper / clip maths (eq. 4-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hardneg.weighting import WeightingConfig, normalize_batch_weights, raw_weight, validate_raw_weights


def test_raw_weight_scalar_and_array():
    assert raw_weight(0.5, 0.8, 12.0) == pytest.approx(0.5 + 0.2 + 1.2)
    assert isinstance(raw_weight(0.5, 0.8, 12.0), float)
    assert raw_weight(0.5, 0.8, 12.0, z=4.0) == pytest.approx(0.5 + 0.2 + 3.0)
    arr = raw_weight(np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([10.0, 30.0]))
    np.testing.assert_allclose(arr, [0.0 + 0.0 + 1.0, 1.0 + 1.0 + 3.0])
    # more wrong, less confident, more perplexed -> heavier
    assert raw_weight(0.7, 0.5, 20.0) > raw_weight(0.3, 0.9, 5.0)
    with pytest.raises(ValueError):
        raw_weight(0.5, 0.5, 5.0, z=0.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 0.0, -1.0])
def test_validate_raw_weights_names_the_pair(bad):
    ids = ["gsm-1#0", "gsm-2#0", "gsm-3#1"]
    with pytest.raises(ValueError) as err:
        validate_raw_weights([1.2, bad, 0.9], ids)
    msg = str(err.value)
    assert "gsm-2#0" in msg
    assert "gsm-1#0" not in msg and "gsm-3#1" not in msg


def test_validate_raw_weights_reports_all_bad_and_accepts_good():
    validate_raw_weights([0.1, 2.0, 30.0], ["a", "b", "c"])  # no error
    with pytest.raises(ValueError, match=r"2 preference pair.*a .*c "):
        validate_raw_weights([float("nan"), 1.0, float("inf")], ["a", "b", "c"])
    with pytest.raises(ValueError, match="3 weights but 2 pair ids"):
        validate_raw_weights([1.0, 1.0, 1.0], ["a", "b"])


def test_unit_mean_before_clipping_and_tempering_formula():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(16, generator=g, dtype=torch.float64) * 3 + 0.2
    # λ = 1 with bounds wide enough to never clip: exactly the unit-mean weights
    full, stats = normalize_batch_weights(w, lam=1.0, w_min=1e-6, w_max=1e6)
    assert stats["n_clipped"] == 0
    assert float(full.mean()) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(full, w / w.mean())
    # λ = 0.3: pulled towards 1, mean still 1 (no clip), order kept
    tempered, stats = normalize_batch_weights(w, lam=0.3, w_min=1e-6, w_max=1e6)
    torch.testing.assert_close(tempered, 1 + 0.3 * (w / w.mean() - 1))
    assert float(tempered.mean()) == pytest.approx(1.0, abs=1e-12)
    assert torch.equal(torch.argsort(tempered), torch.argsort(w))
    assert float((tempered - 1).abs().max()) < float((full - 1).abs().max())
    # scale invariance: only relative weights matter
    torch.testing.assert_close(normalize_batch_weights(w * 7.5, lam=0.3)[0], normalize_batch_weights(w, lam=0.3)[0])


def test_lambda_zero_gives_all_ones_and_equal_weights_give_ones():
    w = torch.tensor([0.1, 5.0, 40.0, 2.0])
    ones, stats = normalize_batch_weights(w, lam=0.0)
    assert torch.equal(ones, torch.ones(4))
    assert stats == {"mean": 1.0, "min": 1.0, "max": 1.0, "n_clipped": 0}
    same, _ = normalize_batch_weights(torch.full((5,), 3.7), lam=0.3)
    torch.testing.assert_close(same, torch.ones(5))


def test_clip_bounds_and_counts():
    # ŵ = [4/13, 4/13, 4/13, 40/13]; with λ = 1 all four leave [0.5, 2]
    w = torch.tensor([1.0, 1.0, 1.0, 10.0])
    out, stats = normalize_batch_weights(w, lam=1.0, w_min=0.5, w_max=2.0)
    torch.testing.assert_close(out, torch.tensor([0.5, 0.5, 0.5, 2.0]))
    assert stats["n_clipped"] == 4
    assert stats["min"] == 0.5 and stats["max"] == 2.0 and stats["mean"] == pytest.approx(0.875)
    # the paper's λ = 0.3 tames the same batch: nothing clipped
    out, stats = normalize_batch_weights(w, lam=0.3)
    assert stats["n_clipped"] == 0
    torch.testing.assert_close(out, 1 + 0.3 * (w / w.mean() - 1))
    # only the upper one clipped
    out, stats = normalize_batch_weights(torch.tensor([1.0, 1.0, 1.0, 10.0]), lam=0.5, w_min=0.5, w_max=2.0)
    # ŵ-1 = [-9/13]*3, 27/13 -> tempered [0.654, 0.654, 0.654, 2.038]
    assert stats["n_clipped"] == 1
    assert float(out[3]) == 2.0 and float(out[0]) == pytest.approx(1 - 0.5 * 9 / 13)


def test_bounds_respected_on_extreme_batches():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        w = torch.exp(torch.randn(8, generator=g) * 3)  # spans orders of magnitude
        out, stats = normalize_batch_weights(w, lam=1.0)
        assert float(out.min()) >= 0.5 and float(out.max()) <= 2.0
        tempered = 1 + (w / w.mean() - 1)
        assert stats["n_clipped"] == int(((tempered < 0.5) | (tempered > 2.0)).sum())
        assert stats["mean"] == pytest.approx(float(out.mean()))


def test_batch_and_config_validation():
    with pytest.raises(ValueError, match="finite and > 0"):
        normalize_batch_weights(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="finite and > 0"):
        normalize_batch_weights(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="lam"):
        normalize_batch_weights(torch.tensor([1.0, 2.0]), lam=1.5)
    with pytest.raises(ValueError, match="w_min"):
        normalize_batch_weights(torch.tensor([1.0, 2.0]), w_min=3.0, w_max=2.0)
    with pytest.raises(ValueError, match="1-D"):
        normalize_batch_weights(torch.ones(2, 2))
    with pytest.raises(ValueError):
        WeightingConfig(lam=-0.1)
    cfg = WeightingConfig()
    assert (cfg.lam, cfg.w_min, cfg.w_max) == (0.3, 0.5, 2.0)
    # Z is a pairs setting now (a DPO knob must not make the pairs stale)
    from hardneg.pairs import PairsConfig

    assert PairsConfig().perplexity_z == 10.0
    with pytest.raises(ValueError, match="perplexity_z"):
        PairsConfig(perplexity_z=0.0)
    with pytest.raises(ValueError, match="heldout_fraction"):
        PairsConfig(heldout_fraction=1.0)
    with pytest.raises(ValueError, match="batch mean"):
        normalize_batch_weights(torch.tensor([1.0, 2.0]), batch_mean=0.0)


def test_single_pair_batch_is_weight_one():
    out, stats = normalize_batch_weights(torch.tensor([123.0]), lam=1.0)
    assert float(out[0]) == 1.0 and stats["n_clipped"] == 0
    assert not math.isnan(stats["mean"])


def test_optimizer_batch_mean_lets_the_clip_fire():
    """Normalised over its own 2 pairs a micro-batch stays inside the clip; over the optimizer batch it does not.

    Optimizer batch of 8 raw weights, one outlier (SPEC §2.5: B = all micro-batches of a step)."""
    raw = torch.tensor([1.0] * 7 + [100.0])
    micro = raw[6:]  # the micro-batch that holds the outlier
    own, own_stats = normalize_batch_weights(micro, lam=0.3)
    assert own_stats["n_clipped"] == 0 and float(own.max()) < 2.0
    glob, stats = normalize_batch_weights(micro, lam=0.3, batch_mean=raw.mean())
    assert stats["n_clipped"] == 1 and float(glob[1]) == 2.0
    # the other pair of that micro-batch gets its optimizer-batch weight, not its micro-batch one
    assert float(glob[0]) == pytest.approx(1 + 0.3 * (1 / float(raw.mean()) - 1))
    # the whole optimizer batch normalised at once gives the same weights as micro-batch by micro-batch
    whole, _ = normalize_batch_weights(raw, lam=0.3)
    pieces = torch.cat([normalize_batch_weights(raw[i:i + 2], lam=0.3, batch_mean=raw.mean())[0] for i in range(0, 8, 2)])
    torch.testing.assert_close(pieces, whole)
