"""Profiles: one YAML file fixes every size and hyperparameter of a run (SPEC §4).

`profiles/smoke.yaml` (CPU, minutes), `profiles/cpu-small.yaml` (CPU, hours) and
`profiles/paper.yaml` (GPU, the paper's scale) ship with the project. A profile may
`inherit` another and override any key; unknown keys are errors. Pick one with
`$HARDNEG_PROFILE` (a name under `profiles/` or a path to your own YAML).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hardneg.candidates import PoolConfig
from hardneg.configuration import ConfigError, from_dict, merge
from hardneg.dpo_config import DPORunConfig
from hardneg.evaluation import EvalConfig
from hardneg.funnel import FunnelConfig, StageRange
from hardneg.pairs import PairsConfig
from hardneg.paths import REPO_ROOT
from hardneg.registry import MODELS, FamilySpec, ModelSpec
from hardneg.sft import SFTRunConfig
from hardneg.verifier import VerifierConfig

PROFILES_DIR = REPO_ROOT / "profiles"
DEFAULT_PROFILE = "smoke"


@dataclass
class ProblemsConfig:
    """Which problems feed the candidate pool (always a training split)."""

    pool_benchmark: str = "gsm8k"
    """Benchmark whose train split is sampled for candidates."""
    pool_offset: int = 0
    """Skip the first N train problems (e.g. those used for SFT)."""
    external_pool: str | None = None
    """JSONL path or hub dataset id of an external candidate pool (paper: numina-deepseek-r1-qwen-7b);
    its solutions are re-scored under the policy instead of sampling. None: sample from the policy."""


@dataclass
class Profile:
    """Everything one run needs to know."""

    name: str = DEFAULT_PROFILE
    """Profile name, recorded with every training run."""
    families: list[FamilySpec] = field(default_factory=list)
    """Model families (SPEC §4): one Table 1 block each."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds of the family × seed partitions."""
    hardneg_seeds: list[int] | None = None
    """Seeds that also train hard-negative DPO (paper: 3 of the 5 random seeds); None: all seeds."""
    default_partition: str = ""
    """`family|seed` key that `make run` materializes."""
    models: dict[str, ModelSpec] = field(default_factory=dict)
    """Extra or overriding model specs by name (e.g. a local_path for a hub model)."""
    problems: ProblemsConfig = field(default_factory=ProblemsConfig)
    sft: SFTRunConfig = field(default_factory=SFTRunConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    funnel: FunnelConfig = field(default_factory=FunnelConfig)
    funnel_expected: dict[int, StageRange] = field(default_factory=dict)
    """Expected `n_out` per funnel stage (1..4); the asset checks fail outside these ranges."""
    pairs: PairsConfig = field(default_factory=PairsConfig)
    """What the pair sets depend on besides the funnel: Z of the raw weight, the held-out share."""
    dpo: DPORunConfig = field(default_factory=DPORunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def family(self, name: str) -> FamilySpec:
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(f"profile {self.name} has no family {name!r}; families: {[f.name for f in self.families]}")

    def model_catalogue(self) -> dict[str, ModelSpec]:
        return {**MODELS, **self.models}

    def runs_hardneg(self, seed: int) -> bool:
        return self.hardneg_seeds is None or seed in self.hardneg_seeds


def active_profile_name() -> str:
    return os.environ.get("HARDNEG_PROFILE") or DEFAULT_PROFILE


def profile_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = PROFILES_DIR / f"{name}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown profile {name!r}: not a YAML file and not one of {known}")
    return candidate


def load_raw(name: str) -> dict:
    path = profile_path(name)
    data = yaml.safe_load(path.read_text()) or {}
    parent = data.pop("inherit", None)
    if parent:
        data = merge(load_raw(parent), data)
    return data


def load_profile(name: str | None = None) -> Profile:
    name = name or active_profile_name()
    data = load_raw(name)
    profile = from_dict(Profile, data, path=f"profile {name}")
    if not profile.families:
        raise ConfigError(f"profile {name}: `families` is empty")
    if not profile.default_partition:
        profile.default_partition = f"{profile.families[0].name}|{profile.seeds[0]}"
    return profile
