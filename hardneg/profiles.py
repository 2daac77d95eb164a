"""Profiles: one YAML file fixes every size and hyperparameter of a run (SPEC §4).

`profiles/smoke.yaml` (CPU, minutes), `profiles/cpu-small.yaml` (CPU, hours) and
`profiles/paper.yaml` (GPU, the paper's scale) ship with the project. A profile may
`inherit` another and override any key; unknown keys are errors. Pick one with
`$HARDNEG_PROFILE` (a name under `profiles/` or a path to your own YAML).

A profile is validated in one pass before anything runs (`load_profile`): YAML syntax, a
mapping at the top, `inherit` chains without cycles, exact types, ranges (each config class's
own checks, see `hardneg.configuration`), and the cross-field rules of `Profile.validate`
(families and base models known, names safe as folder names, seeds unique ints, the default
partition and funnel ranges consistent, benchmarks known). `preflight` adds the chosen
partition and whether every model/dataset the run needs is cached or reachable. Every
failure is one `ConfigError` line naming the file and the dotted key; `hardneg` exits 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hardneg.candidates import PoolConfig, pool_source_kind
from hardneg.configuration import ConfigError, apply_overrides, from_dict, merge
from hardneg.dpo_config import DPORunConfig
from hardneg.evaluation import EvalConfig
from hardneg.funnel import FunnelConfig, StageRange
from hardneg.generation import GenerationConfig
from hardneg.pairs import PairsConfig
from hardneg.paths import REPO_ROOT, safe_component
from hardneg.registry import MODELS, FamilySpec, ModelSpec, hub_availability, model_availability
from hardneg.sft import SFTRunConfig
from hardneg.verification import VerificationConfig
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

    def __post_init__(self) -> None:
        from hardneg.data import BENCHMARK_FILES

        pool = sorted(b for b, split in BENCHMARK_FILES if split == "train")
        if self.pool_benchmark not in pool:
            raise ValueError(f"ProblemsConfig.pool_benchmark must be one of {pool} (a train split), got {self.pool_benchmark!r}")
        if isinstance(self.pool_offset, int) and self.pool_offset < 0:
            raise ValueError(f"ProblemsConfig.pool_offset must be >= 0, got {self.pool_offset}")


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
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    """How the verifier runs (engine local | ray, shard size, workers, embedding cache); never what it computes."""
    funnel: FunnelConfig = field(default_factory=FunnelConfig)
    funnel_expected: dict[int, StageRange] = field(default_factory=dict)
    """Expected `n_out` per funnel stage (1..4); the asset checks fail outside these ranges."""
    pairs: PairsConfig = field(default_factory=PairsConfig)
    """What the pair sets depend on besides the funnel: Z of the raw weight, the held-out share."""
    dpo: DPORunConfig = field(default_factory=DPORunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Decoding engine for pool sampling and evaluation (hf | native | vllm and its settings)."""
    source: str = field(default="", init=False, compare=False)
    """The file this profile was read from (for messages); not a YAML key."""

    def family(self, name: str) -> FamilySpec:
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(f"profile {self.name} has no family {name!r}; families: {[f.name for f in self.families]}")

    def partition(self, key: str | None = None) -> tuple[str, int]:
        """`"family|seed"` -> (family, seed), checked against this profile; None: the default partition.

        ConfigError (one line, naming the key) for a malformed key, an unknown family or a seed
        the profile does not have, so a bad `--partition` never starts a run.
        """
        where = "--partition" if key is not None else "default_partition"
        key = self.default_partition if key is None else key
        if not isinstance(key, str) or key.count("|") != 1:
            raise ConfigError(f"expected family|seed (e.g. {self._example()}), got {key!r}", key=where, source=self.source)
        family, seed_text = key.split("|")
        names = [f.name for f in self.families]
        if family not in names:
            raise ConfigError(f"unknown family {family!r} in {key!r}; families: {names}", key=where, source=self.source)
        try:
            seed = int(seed_text.strip()) if seed_text.strip().lstrip("-").isdigit() else None
        except ValueError:
            seed = None
        if seed is None:
            raise ConfigError(f"seed {seed_text!r} in {key!r} is not an integer", key=where, source=self.source)
        if seed not in self.seeds:
            raise ConfigError(f"seed {seed} in {key!r} is not one of the profile's seeds {self.seeds}", key=where, source=self.source)
        return family, seed

    def _example(self) -> str:
        return f"{self.families[0].name}|{self.seeds[0]}" if self.families and self.seeds else "family|0"

    def validate(self) -> None:
        """Cross-field rules (each section's own ranges were checked when it was built)."""
        if not self.families:
            raise ConfigError("is empty: a profile needs at least one family", key="families")
        names = [f.name for f in self.families]
        catalogue = self.model_catalogue()
        for i, fam in enumerate(self.families):
            if names.index(fam.name) != i:
                raise ConfigError(f"duplicate family name {fam.name!r}", key=f"families[{i}].name")
            if fam.base_model not in catalogue:
                raise ConfigError(
                    f"unknown model {fam.base_model!r}; known: {sorted(catalogue)} (add it under `models`)",
                    key=f"families[{i}].base_model",
                )
        for key, spec in self.models.items():
            try:
                safe_component(key, "model name")
            except ValueError as exc:
                raise ConfigError(str(exc), key=f"models.{key}") from None
            if spec.name != key:
                raise ConfigError(f"name {spec.name!r} must equal its key {key!r}", key=f"models.{key}.name")
        if not self.seeds:
            raise ConfigError("is empty: a profile needs at least one seed", key="seeds")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"duplicate seeds in {self.seeds}", key="seeds")
        if any(s < 0 for s in self.seeds):
            raise ConfigError(f"seeds must be >= 0, got {self.seeds}", key="seeds")
        if self.hardneg_seeds is not None:
            extra = [s for s in self.hardneg_seeds if s not in self.seeds]
            if extra or len(set(self.hardneg_seeds)) != len(self.hardneg_seeds):
                raise ConfigError(f"{self.hardneg_seeds} must be distinct seeds from `seeds` {self.seeds}", key="hardneg_seeds")
        for stage in self.funnel_expected:
            if stage not in (1, 2, 3, 4):
                raise ConfigError(f"funnel stages are 1..4, got {stage!r}", key=f"funnel_expected.{stage}")
        seen = set()
        for i, bench in enumerate(self.eval.benchmarks):
            if bench.name in seen:
                raise ConfigError(f"benchmark {bench.name!r} listed twice", key=f"eval.benchmarks[{i}].name")
            seen.add(bench.name)
        if self.default_partition:
            self.partition(None)

    def model_catalogue(self) -> dict[str, ModelSpec]:
        return {**MODELS, **self.models}

    def runs_hardneg(self, seed: int) -> bool:
        return self.hardneg_seeds is None or seed in self.hardneg_seeds


def active_profile_name() -> str:
    return os.environ.get("HARDNEG_PROFILE") or DEFAULT_PROFILE


def profile_path(name: str, relative_to: Path | None = None) -> Path:
    """The YAML file of profile `name`: a path to a .yaml/.yml file, or a name under profiles/."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"expected a profile name or YAML path, got {name!r}", key="inherit" if relative_to else None)
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        for candidate in ([relative_to / path] if relative_to and not path.is_absolute() else []) + [path]:
            if candidate.is_file():
                return candidate
        raise ConfigError(f"no such profile file {name!r}", key="inherit" if relative_to else None)
    if "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"unknown profile {name!r}: not a .yaml file", key="inherit" if relative_to else None)
    candidate = PROFILES_DIR / f"{name}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown profile {name!r}: not a YAML file and not one of {known}",
                          key="inherit" if relative_to else None)
    return candidate


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


MAX_YAML_DEPTH = 64


def _flow_depth(text: str) -> int:
    """Deepest `[`/`{` nesting outside quoted strings and comments (a cheap over-estimate is fine)."""
    depth = deepest = 0
    quote = ""
    for line in text.splitlines():
        quote = ""
        for ch in line:
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "#":
                break
            elif ch in "[{":
                depth += 1
                deepest = max(deepest, depth)
            elif ch in "]}":
                depth = max(0, depth - 1)
    return deepest


def _read_yaml(path: Path) -> dict:
    source = _display(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from None
    if _flow_depth(text) > MAX_YAML_DEPTH:
        # PyYAML's parser is recursive and slow on deep flow nesting (2 s for 2000 levels) before
        # it hits the recursion limit; no profile nests more than a few levels.
        raise ConfigError(f"YAML nested too deeply (more than {MAX_YAML_DEPTH} levels)", source=source)
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"YAML syntax error: {where}{exc.problem or exc.context}", source=source) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", source=source) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply", source=source) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of settings, got {type(data).__name__}", source=source)
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"top-level keys must be names, got {bad[0]!r}", source=source)
    return data


def load_raw(name: str, _chain: tuple[Path, ...] = (), _relative_to: Path | None = None) -> dict:
    """The profile's mapping with its `inherit` chain merged in (child keys win)."""
    path = profile_path(name, _relative_to)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(_display(p) for p in (*_chain, resolved))
        raise ConfigError(f"inherit cycle: {cycle}", key="inherit", source=_display(_chain[-1]))
    data = dict(_read_yaml(path))
    parent = data.pop("inherit", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"expected a profile name, got {parent!r}", key="inherit", source=_display(path))
        try:
            data = merge(load_raw(parent, (*_chain, resolved), path.parent), data)
        except ConfigError as exc:
            raise exc.with_source(_display(path))
    return data


def load_profile(name: str | None = None, overrides: list[str] | None = None) -> Profile:
    """Read, merge (`inherit`), override (`dotted.key=value`) and validate a profile, in one pass.

    Raises ConfigError whose one-line message names the file and the dotted key.
    """
    name = name or active_profile_name()
    path = profile_path(name)
    source = _display(path)
    data = load_raw(name)
    data, override_keys = apply_overrides(data, overrides)
    try:
        profile = from_dict(Profile, data)
        profile.source = source
        if not profile.default_partition and profile.families and profile.seeds:
            profile.default_partition = f"{profile.families[0].name}|{profile.seeds[0]}"
        profile.validate()
    except ConfigError as exc:
        key = exc.key or ""
        from_override = any(key == k or key.startswith(k + ".") or key.startswith(k + "[") for k in override_keys)
        raise exc.with_source(f"--set (over {source})" if from_override else source) from None
    except RecursionError:
        raise ConfigError("nested too deeply", source=source) from None
    return profile


def check_resources(profile: Profile, family: str | None = None) -> None:
    """Raise ConfigError naming the first model or dataset the run needs that is neither local,
    cached nor reachable (huggingface_hub's own offline/endpoint/proxy settings decide).

    family=None checks every family's base model; a name checks that family only.
    """
    catalogue = profile.model_catalogue()
    families = [(i, f) for i, f in enumerate(profile.families) if family is None or f.name == family]
    for i, fam in families:
        spec = catalogue[fam.base_model]
        problem = model_availability(spec)
        if problem:
            what = f"model {spec.name}" + (f" ({spec.hub_id})" if spec.hub_id else "")
            raise ConfigError(f"{what}: {problem}", key=f"families[{i}].base_model", source=profile.source)
    checks: list[tuple[str, str, str]] = []  # (key, repo id or path, repo type)
    checks.append(("verifier.embedding_model", profile.verifier.embedding_model, "model"))
    if profile.verifier.use_nli:
        checks.append(("verifier.nli_model", profile.verifier.nli_model, "model"))
    if profile.sft.data.kind == "hf" and any(f.sft for _, f in families):
        checks.append(("sft.data.path", profile.sft.data.path or "", "dataset"))
    if profile.sft.data.kind == "jsonl" and any(f.sft for _, f in families):
        checks.append(("sft.data.path", profile.sft.data.path or "", "file"))
    if profile.pool.source == "external":
        pool = profile.pool.external.path
        try:
            kind = "path" if pool_source_kind(pool) != "hub" else "dataset"
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc), key="pool.external.path", source=profile.source) from None
        checks.append(("pool.external.path", pool, kind))
    for key, ident, kind in checks:
        if kind in ("file", "path"):
            if not ident or not (Path(ident).is_file() or (kind == "path" and Path(ident).is_dir())):
                raise ConfigError(f"no such {'file' if kind == 'file' else 'file or folder'} {ident!r}", key=key, source=profile.source)
            continue
        if not ident:
            raise ConfigError(f"a hub {kind} id is required", key=key, source=profile.source)
        if kind == "model" and Path(ident).is_dir():
            continue
        problem = hub_availability(ident, kind)
        if problem:
            raise ConfigError(f"{kind} {ident}: {problem}", key=key, source=profile.source)


def preflight(
    name: str | None = None,
    partition: str | None = None,
    overrides: list[str] | None = None,
    check_models: bool = True,
) -> tuple[Profile, str, int]:
    """Everything `hardneg run` must know before it starts: the validated profile, the checked
    partition and (with `check_models`) that the family's models and data can be loaded here."""
    profile = load_profile(name, overrides)
    family, seed = profile.partition(partition)
    if check_models:
        check_resources(profile, family)
    return profile, family, seed
