"""Typed configuration from YAML: dataclasses built field by field, unknown keys refused.

`from_dict(SomeConfig, {...})` walks the dataclass's type hints recursively (nested
dataclasses, lists, dicts, Optionals), so a typo in a YAML profile fails with the
dotted path of the bad key instead of being silently ignored.

Why so strict: a setting that is wrong must stop a run *before* it starts (loading a model,
sampling a pool), with one line naming the key, never as a traceback an hour in. So:
- types are exact: `true` is not an int, `"5"` is not a float, NaN/±inf are not accepted as
  floats, dict keys are converted to their declared type;
- ranges are checked where the config dataclass declares them — its `__post_init__` (a
  ValueError there becomes a ConfigError naming the key), a `validate()` method, or field
  `metadata={"min": …, "max": …, "choices": …, "or": […]}` — plus `RANGE_RULES` below for
  config classes that do not (yet) declare their own (keyed by class name, so this module
  stays free of heavy imports). The same checks therefore apply to a profile and to
  `hardneg verify --config`;
- `apply_overrides` applies `dotted.key=value` strings (value parsed as YAML) to a raw mapping,
  so a command-line `--set` is validated exactly like the file.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is wrong; the one-line message names the file and dotted key.

    `key` is the dotted path of the bad setting (when known), `source` the file or option it
    came from. `str()` gives `source: key: message` with whatever parts are known.
    """

    def __init__(self, message: str, key: str | None = None, source: str | None = None):
        self.message = " ".join(str(message).split())  # one line, whatever the cause said
        self.key = key
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        return ": ".join(p for p in (self.source, self.key, self.message) if p)

    def with_source(self, source: str) -> ConfigError:
        if not self.source:
            self.source = source
            self.args = (self._render(),)
        return self

    def __str__(self) -> str:
        return self._render()


# A rule is (minimum or None, maximum or None, extra allowed values). Bounds are inclusive
# except where the name says `gt` (strictly greater). Kept by class name: the classes live in
# modules (training, dpo, verifier) that this one must not import.
_GE1 = ("ge", 1)
_GE0 = ("ge", 0)
_GT0 = ("gt", 0)
_UNIT = ("unit", None)  # 0 <= x <= 1
_STEPS = ("steps", None)  # -1 (HF: "use num_train_epochs") or >= 1
RANGE_RULES: dict[str, dict[str, tuple[str, Any]]] = {
    "PoolConfig": {
        "k": _GE1, "num_problems": _GE1, "temperature": _GE0, "top_p": ("unit_gt0", None),
        "max_new_tokens_gsm8k": _GE1, "max_new_tokens_math": _GE1, "batch_size": _GE1,
        "score_batch_size": _GE1, "confidence_sharpness": _GT0, "shard_size": _GE1,
        "source": ("choices", ("policy", "inject", "external")),
    },
    "InjectPoolConfig": {"variants_per_reference": _GE1, "max_references": _GE1},
    "ExternalPoolConfig": {"scores": ("choices", ("policy", "file")), "limit": _GE0},
    "EngineConfig": {
        "engine": ("choices", ("local", "ray")), "workers": _GE1, "cpus_per_worker": _GT0,
        "gpus_per_worker": _GE0, "inflight_per_worker": _GE1, "torch_threads": _GE1,
    },
    "VerificationConfig": {
        "engine": ("choices", ("local", "ray")), "shard_size": _GE1, "workers": _GE1, "cpus_per_worker": _GT0,
        "gpus_per_worker": _GE0, "inflight_per_worker": _GE1, "torch_threads": _GE1,
    },
    "SFTRunConfig": {
        "learning_rate": _GT0, "warmup_ratio": _UNIT, "max_grad_norm": _GT0, "per_device_batch_size": _GE1,
        "gradient_accumulation_steps": _GE1, "max_length": _GE1, "num_train_epochs": _GT0, "max_steps": _STEPS,
        "logging_steps": _GE1, "save_steps": _GE1, "seed": _GE0,
    },
    "DPORunConfig": {
        "beta": _GT0, "learning_rate": _GT0, "num_train_epochs": _GT0, "max_steps": _STEPS,
        "per_device_train_batch_size": _GE1, "gradient_accumulation_steps": _GE1, "max_length": _GE1,
        "warmup_ratio": _UNIT, "max_grad_norm": _GT0, "logging_steps": _GE1, "save_steps": _GE1,
        "save_total_limit": _GE1, "seed": _GE0, "dataloader_num_workers": _GE0,
    },
    "LoraSettings": {"r": _GE1, "alpha": _GT0, "dropout": ("unit_lt1", None)},
    "DataSource": {"max_examples": _GE1, "kind": ("choices", ("gsm8k-metamath", "jsonl", "hf"))},
    "VerifierConfig": {
        "batch_size": _GE1, "embedding_pack_tokens": _GE1, "embedding_batch_tokens": _GE1,
        "embedding_batch_size": _GE1, "embedding_cache_size": _GE0, "analysis_cache_size": _GE0,
        "nli_batch_size": _GE1, "nli_cache_size": _GE0, "nli_max_length": _GE1, "nli_max_pairs": _GE0,
        "nli_max_conditions": _GE0, "nli_flag_threshold": _UNIT, "fine_gate": ("choices", ("all", "none", "semantic")),
        "fine_gate_max_d_semantic": _UNIT,
    },
    "EvalConfig": {"max_new_tokens": _GE1, "batch_size": _GE1},
    "BenchmarkSpec": {"n": _GE1, "max_new_tokens": _GE1},
    "StageRange": {"min": _GE0, "max": _GE0},
}


def _check_rule(kind: str, arg: Any, value: Any) -> str | None:
    """A description of what is wrong with `value`, or None when it satisfies the rule."""
    if value is None:
        return None  # Optional fields: None keeps its documented meaning
    if kind == "choices":
        return None if value in arg else f"must be one of {list(arg)}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # the type check already ran; a rule only constrains numbers
    if kind == "ge" and not value >= arg:
        return f"must be >= {arg}, got {value!r}"
    if kind == "gt" and not value > arg:
        return f"must be > {arg}, got {value!r}"
    if kind == "unit" and not 0 <= value <= 1:
        return f"must be in [0, 1], got {value!r}"
    if kind == "unit_gt0" and not 0 < value <= 1:
        return f"must be in (0, 1], got {value!r}"
    if kind == "unit_lt1" and not 0 <= value < 1:
        return f"must be in [0, 1), got {value!r}"
    if kind == "steps" and not (value == -1 or value >= 1):
        return f"must be -1 (run the epochs) or >= 1, got {value!r}"
    return None


def _metadata_problem(meta: Any, value: Any) -> str | None:
    """Field metadata rules: {"min": m, "max": M, "choices": [...], "or": [special values]}."""
    if not meta or value is None or value in meta.get("or", ()):
        return None
    if "choices" in meta and value not in meta["choices"]:
        return f"must be one of {list(meta['choices'])}, got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            return f"must be >= {meta['min']}, got {value!r}"
        if "max" in meta and value > meta["max"]:
            return f"must be <= {meta['max']}, got {value!r}"
    return None


def check_ranges(config: Any, path: str = "") -> None:
    """Apply the range rules of `config`'s class (and nested dataclasses) to an instance."""
    cls = type(config)
    rules = RANGE_RULES.get(cls.__name__, {})
    for f in dataclasses.fields(cls):
        value = getattr(config, f.name)
        key = f"{path}.{f.name}" if path else f.name
        problem = _metadata_problem(f.metadata, value)
        if problem is None and f.name in rules:
            problem = _check_rule(*rules[f.name], value)
        if problem:
            raise ConfigError(problem, key=key)
    validate = getattr(config, "validate", None)
    if callable(validate):
        _call_and_wrap(validate, cls, path)


def from_dict(cls: type[T], data: dict[str, Any] | None, path: str = "") -> T:
    """Build `cls` from a mapping; ConfigError (naming the dotted key) on any bad key or value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {_describe(data)}", key=path or cls.__name__)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(map(str, unknown))}; known: {sorted(fields)}",
            key=path or cls.__name__,
        )
    missing = [
        name for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required key(s) {missing}", key=path or cls.__name__)
    kwargs = {key: _convert(hints[key], value, f"{path}.{key}" if path else key) for key, value in data.items()}
    config = _call_and_wrap(lambda: cls(**kwargs), cls, path)
    check_ranges(config, path)
    return config


def _call_and_wrap(build: Any, cls: type, path: str) -> Any:
    """Run a constructor/validator; its ValueError/TypeError becomes a ConfigError naming the key."""
    try:
        return build()
    except ConfigError as exc:
        if exc.key and path and not exc.key.startswith(path):
            exc.key = f"{path}.{exc.key}"
            exc.args = (exc._render(),)
        raise
    except (ValueError, TypeError) as exc:
        message = str(exc)
        # Name the field the message talks about (`PoolConfig.k must be …` -> key `pool.k`).
        names = [f.name for f in dataclasses.fields(cls)]
        named = [n for n in names if re.search(rf"(?<![\w.]){re.escape(cls.__name__)}\.{re.escape(n)}\b", message)]
        named = named or [n for n in names if re.search(rf"(?<![\w]){re.escape(n)}(?!\w)", message)]
        key = f"{path}.{named[0]}" if path and named else (named[0] if named else path or cls.__name__)
        raise ConfigError(message, key=key) from None


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two mappings; `override` wins (used for profile inheritance)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


_KEY_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*|\d+")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`"dpo.weighting.lam=0.5"` -> (["dpo", "weighting", "lam"], 0.5); the value is YAML."""
    import yaml

    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"expected dotted.key=value, got {text!r}", source="--set")
    dotted, _, raw = text.partition("=")
    parts = dotted.strip().split(".")
    if not all(_KEY_PART.fullmatch(p) for p in parts):
        raise ConfigError(f"bad key {dotted.strip()!r} (dotted names, e.g. dpo.beta)", source="--set")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"value is not valid YAML: {_one_line(exc)}", key=dotted.strip(), source="--set") from None
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> tuple[dict[str, Any], set[str]]:
    """Apply `dotted.key=value` overrides to a raw mapping; returns (new mapping, dotted keys set).

    Numeric parts address mapping keys that are ints in YAML (`funnel_expected.4.max=9`).
    Intermediate mappings are created when missing; validation happens afterwards, so an
    unknown key is refused there with its dotted path.
    """
    out = merge({}, data)
    keys: set[str] = set()
    for text in overrides or []:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts):
            key: Any = int(part) if part.isdigit() else part
            if key not in node and isinstance(key, int) and part in node:
                key = part
            if i == len(parts) - 1:
                node[key] = value
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = {}
                    node[key] = child
                else:
                    child = dict(child)
                    node[key] = child
                node = child
        keys.add(".".join(parts))
    return out, keys


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        raise ConfigError(f"bad value {value!r}", key=path)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {_describe(value)}", key=path)
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {_describe(value)}", key=path)
        kt = args[0] if len(args) == 2 else Any
        vt = args[1] if len(args) == 2 else Any
        return {_convert(kt, k, f"{path}.{k}"): _convert(vt, v, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{value!r} is not one of {list(args)}", key=path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected float (a number), got {_describe(value)}", key=path)
        if not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {value!r}", key=path)
        return float(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true/false, got {_describe(value)}", key=path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected int, got {_describe(value)}", key=path)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected str, got {_describe(value)}", key=path)
        return value
    return value
