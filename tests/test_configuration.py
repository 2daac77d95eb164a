"""Typed configuration: YAML profiles load into dataclasses; typos fail with their path."""

from dataclasses import dataclass, field

import pytest

from hardneg.configuration import ConfigError, from_dict


@dataclass
class Inner:
    r: int = 1
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    lr: float = 0.1
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_nested_values_are_typed():
    cfg = from_dict(Outer, {"lr": 1, "inner": {"r": 4, "names": ["a"]}, "maybe": None})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.inner.r == 4 and cfg.inner.names == ["a"]


def test_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match=r"inner: unknown key\(s\) \['rank'\]"):
        from_dict(Outer, {"inner": {"rank": 4}})


def test_wrong_type_names_its_path():
    with pytest.raises(ConfigError, match="inner.r: expected int"):
        from_dict(Outer, {"inner": {"r": "four"}})


def test_shipped_profiles_load():
    from hardneg.profiles import load_profile

    for name in ("smoke", "cpu-small", "paper"):
        prof = load_profile(name)
        assert prof.families and prof.seeds
        assert set(prof.funnel_expected) == {1, 2, 3, 4}
        assert prof.default_partition.split("|")[0] in {f.name for f in prof.families}
    assert load_profile("cpu-small").sft.data.max_examples == 1000  # inherits smoke, overrides one key
    assert load_profile("paper").hardneg_seeds == [0, 1, 2]
