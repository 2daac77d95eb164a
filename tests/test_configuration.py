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


def test_range_rules_name_real_fields_of_real_config_classes():
    """A rule for a renamed field would silently check nothing: every rule must match a field."""
    import dataclasses

    from hardneg.configuration import RANGE_RULES
    from hardneg.profiles import Profile

    classes = {}

    def walk(cls):
        if cls.__name__ in classes:
            return
        classes[cls.__name__] = cls
        import typing

        for hint in typing.get_type_hints(cls).values():
            for arg in (hint, *typing.get_args(hint)):
                for inner in (arg, *typing.get_args(arg)):
                    if dataclasses.is_dataclass(inner):
                        walk(inner)

    walk(Profile)
    for name, rules in RANGE_RULES.items():
        assert name in classes, f"RANGE_RULES names {name}, which no profile section uses"
        fields = {f.name for f in dataclasses.fields(classes[name])}
        assert set(rules) <= fields, (name, set(rules) - fields)


def test_types_are_exact_and_ranges_name_the_key():
    @dataclass
    class Knobs:
        n: int = 1
        rate: float = 0.5
        steps: int = -1

    with pytest.raises(ConfigError, match="n: expected int, got bool"):
        from_dict(Knobs, {"n": True})
    with pytest.raises(ConfigError, match="rate: expected float"):
        from_dict(Knobs, {"rate": "0.5"})
    with pytest.raises(ConfigError, match="rate: expected a finite number"):
        from_dict(Knobs, {"rate": float("nan")})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['1'\]"):
        from_dict(Knobs, {1: 2})


def test_post_init_errors_become_config_errors_naming_the_key():
    from hardneg.candidates import PoolConfig

    with pytest.raises(ConfigError, match=r"^pool.k: PoolConfig.k must be >= 1"):
        from_dict(PoolConfig, {"k": 0}, path="pool")
    with pytest.raises(ConfigError, match=r"^pool.top_p: must be in \(0, 1\]"):
        from_dict(PoolConfig, {"top_p": 0}, path="pool")
