"""WARN-severity asset checks on evaluation and DPO: signs a run is suspect, not reasons to stop.

They never block downstream assets (the blocking ERROR checks are the funnel's and the
pairs'); they put a yellow mark in the UI where a result deserves a look before it goes
into Table 1:
- evaluation: the share of generations cut at `max_new_tokens` (their answers are
  usually missing, which reads as a wrong answer), and whether every benchmark got the
  number of items the profile asks for;
- DPO: every logged loss finite, and the reward margin moved from its first logged value
  (a margin stuck at its start means the policy did not learn from the pairs).
"""

from __future__ import annotations

import math

import dagster as dg

MAX_TRUNCATION_RATE = 0.2
"""Above this share of truncated generations the accuracy mostly measures the token budget."""

EVAL_CHECKS = ("truncation_rate", "item_counts")
DPO_CHECKS = ("finite_loss", "margin_moved")


def eval_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("truncation_rate", asset=asset, blocking=False,
                          description=f"At most {MAX_TRUNCATION_RATE:.0%} of generations stopped at max_new_tokens."),
        dg.AssetCheckSpec("item_counts", asset=asset, blocking=False,
                          description="Every benchmark evaluated on as many items as the profile asks for."),
    ]


def dpo_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("finite_loss", asset=asset, blocking=False, description="Every logged DPO loss is finite."),
        dg.AssetCheckSpec("margin_moved", asset=asset, blocking=False,
                          description="The reward margin (chosen − rejected) moved from its first logged value."),
    ]


def eval_check_results(asset: str, truncated: int, generated: int, counts: dict[str, tuple[int, int | None]]) -> list[dg.AssetCheckResult]:
    """`counts`: benchmark → (items evaluated, items the profile asks for, None for all)."""
    rate = truncated / generated if generated else 0.0
    short = {b: (n, want) for b, (n, want) in counts.items() if n == 0 or (want is not None and n < want)}
    return [
        dg.AssetCheckResult(
            asset_key=asset, check_name="truncation_rate", passed=rate <= MAX_TRUNCATION_RATE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"truncation_rate": dg.MetadataValue.float(rate), "truncated": truncated, "generations": generated},
        ),
        dg.AssetCheckResult(
            asset_key=asset, check_name="item_counts", passed=not short, severity=dg.AssetCheckSeverity.WARN,
            metadata={"items": str({b: n for b, (n, _) in counts.items()}),
                      "short": str({b: f"{n} of {want}" for b, (n, want) in short.items()}) if short else "none"},
        ),
    ]


def dpo_check_results(asset: str, log_history: list[dict]) -> list[dg.AssetCheckResult]:
    losses = [float(r["loss"]) for r in log_history if "loss" in r]
    margins = [float(r["rewards/margins"]) for r in log_history if "rewards/margins" in r]
    finite = bool(losses) and all(math.isfinite(x) for x in losses)
    moved = len(margins) >= 2 and all(math.isfinite(m) for m in margins) and margins[-1] != margins[0]
    return [
        dg.AssetCheckResult(
            asset_key=asset, check_name="finite_loss", passed=finite, severity=dg.AssetCheckSeverity.WARN,
            metadata={"logged_losses": len(losses), "non_finite": sum(not math.isfinite(x) for x in losses)},
        ),
        dg.AssetCheckResult(
            asset_key=asset, check_name="margin_moved", passed=moved, severity=dg.AssetCheckSeverity.WARN,
            metadata={"first_margin": dg.MetadataValue.float(margins[0] if margins else float("nan")),
                      "last_margin": dg.MetadataValue.float(margins[-1] if margins else float("nan")),
                      "logged_margins": len(margins)},
        ),
    ]


def skipped_results(asset: str, names, reason: str) -> list[dg.AssetCheckResult]:
    """A partition the profile skips (no hard-negative DPO on this seed) passes its checks, saying why."""
    return [
        dg.AssetCheckResult(asset_key=asset, check_name=n, passed=True, severity=dg.AssetCheckSeverity.WARN,
                            metadata={"skipped": reason})
        for n in names
    ]
