"""Where a partition's policy lives on disk: base checkpoint plus the adapters to merge.

Artifacts sit at deterministic places in the artifact store's work area
(`sft/<family>/adapter`, `dpo/<strategy>/<family>/<seed>/adapter`), so a downstream
asset finds its upstream's output without a lookup, and a missing one is a clear error.
"""

from __future__ import annotations

from pathlib import Path

from hardneg.profiles import Profile
from hardneg.registry import resolve_model
from resources import ArtifactStore


def sft_dir(artifacts: ArtifactStore, family: str) -> Path:
    return artifacts.work_dir("sft", family)


def dpo_dir(artifacts: ArtifactStore, strategy: str, family: str, seed: int) -> Path:
    return artifacts.work_dir("dpo", strategy, family, str(seed))


def family_policy(profile: Profile, family: str, artifacts: ArtifactStore) -> tuple[str, list[Path]]:
    """The family's starting policy: the base model, or for an SFT family the SFT-merged model
    (`sft/<family>/merged`, written by `sft_adapter`; the base of the family's DPO adapters)."""
    spec = profile.family(family)
    base = resolve_model(spec.base_model, profile.model_catalogue())
    if not spec.sft:
        return base, []
    merged = sft_dir(artifacts, family) / "merged"
    if not (merged / "config.json").exists():
        raise FileNotFoundError(f"family {family} needs its SFT model at {merged}: materialize sft_adapter[{family}] first")
    return str(merged), []


def trained_policy(profile: Profile, family: str, seed: int, strategy: str, artifacts: ArtifactStore) -> tuple[str, list[Path]]:
    """A DPO-trained policy: the family's policy plus the strategy's DPO adapter."""
    base, adapters = family_policy(profile, family, artifacts)
    adapter = dpo_dir(artifacts, strategy, family, seed) / "adapter"
    if not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"no {strategy} DPO adapter at {adapter}: materialize dpo_{strategy}[{family}|{seed}] first")
    return base, [*adapters, adapter]
