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
    """The family's starting policy: base model, plus its SFT adapter when the family has SFT."""
    spec = profile.family(family)
    base = resolve_model(spec.base_model, profile.model_catalogue())
    if not spec.sft:
        return base, []
    adapter = sft_dir(artifacts, family) / "adapter"
    if not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"family {family} needs its SFT adapter at {adapter}: materialize sft_adapter[{family}] first")
    return base, [adapter]


def trained_policy(profile: Profile, family: str, seed: int, strategy: str, artifacts: ArtifactStore) -> tuple[str, list[Path]]:
    """A DPO-trained policy: the family's policy plus the strategy's DPO adapter."""
    base, adapters = family_policy(profile, family, artifacts)
    adapter = dpo_dir(artifacts, strategy, family, seed) / "adapter"
    if not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"no {strategy} DPO adapter at {adapter}: materialize dpo_{strategy}[{family}|{seed}] first")
    return base, [*adapters, adapter]
