"""Asset declarations that are bound to a profile later, by `build_definitions(profile)`.

`@asset(...)` / `@multi_asset(...)` / `spec(...)` take the same arguments as Dagster's
`dg.asset` / `dg.multi_asset` / `dg.AssetSpec`, but record the call instead of making
it: arguments may hold `FAMILY`, `FAMILY_SEED` and `stage_version(...)` (see
`partitions.py`), which only a profile can turn into partitions definitions and code
versions. `resolve(value, binding)` makes the Dagster call with those bound, once per
binding, so `deps=[sft_adapter]` resolves to the same built asset everywhere.

Why not build the definitions at import: the profile would then have to be known at
import, i.e. read from a global (the environment), which is exactly what lets the
partitions and the sizes of a run come from two different profiles.
"""

from __future__ import annotations

from typing import Any, Callable

import dagster as dg

from hardneg_assets.partitions import Binding, PartitionsRef, StageVersion


class Deferred:
    """A Dagster definition call made when a profile is bound."""

    def __init__(self, make: Callable[..., Any], *args: Any, **kwargs: Any):
        self.make, self.args, self.kwargs = make, args, kwargs

    def resolve(self, binding: Binding) -> Any:
        if id(self) not in binding.cache:
            binding.cache[id(self)] = self.make(*resolve(self.args, binding), **resolve(self.kwargs, binding))
        return binding.cache[id(self)]

    def __repr__(self) -> str:
        name = self.kwargs.get("name") or getattr(self.args[-1] if self.args else None, "__name__", "?")
        return f"Deferred({name})"


def resolve(value: Any, binding: Binding) -> Any:
    """Replace every Deferred, PartitionsRef and StageVersion inside `value` (lists, tuples, dicts)."""
    if isinstance(value, Deferred):
        return value.resolve(binding)
    if isinstance(value, PartitionsRef):
        return binding.partitions(value)
    if isinstance(value, StageVersion):
        return binding.code_version(value)
    # Exact types only: Dagster's own records (AssetKey, AssetDep...) subclass tuple and stay as they are.
    if type(value) is list:
        return [resolve(v, binding) for v in value]
    if type(value) is tuple:
        return tuple(resolve(v, binding) for v in value)
    if type(value) is dict:
        return {k: resolve(v, binding) for k, v in value.items()}
    return value


def _decorate(decorator: Callable[..., Any], kwargs: dict, fn: Callable) -> Any:
    return decorator(**kwargs)(fn)


def asset(**kwargs: Any) -> Callable[[Callable], Deferred]:
    """`dg.asset(**kwargs)`, made when a profile is bound."""
    return lambda fn: Deferred(_decorate, dg.asset, kwargs, fn)


def multi_asset(**kwargs: Any) -> Callable[[Callable], Deferred]:
    """`dg.multi_asset(**kwargs)`, made when a profile is bound."""
    return lambda fn: Deferred(_decorate, dg.multi_asset, kwargs, fn)


def spec(*args: Any, **kwargs: Any) -> Deferred:
    """`dg.AssetSpec(*args, **kwargs)`, made when a profile is bound."""
    return Deferred(dg.AssetSpec, *args, **kwargs)


def declared_in(modules) -> list[Deferred]:
    """Every asset declared in `modules` (module attributes and lists of them), in order, once each."""
    found: dict[int, Deferred] = {}
    for module in modules:
        for value in vars(module).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Deferred) and item.make is _decorate:
                    found.setdefault(id(item), item)
    return list(found.values())
