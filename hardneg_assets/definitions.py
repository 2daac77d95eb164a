"""The code location: `build_definitions(profile)` and the served `defs`.

One profile, read once, drives everything: its families and seeds become the partitions,
hashes of its sections the code versions (`partitions.Binding`), and the `profile`
resource names it (and refuses a run config naming another one, see
`resources/profile.py`). `defs` serves the profile named by `$HARDNEG_PROFILE` (read here,
when the code location loads, and nowhere else), else `smoke`; `hardneg run --profile P`
builds its own definitions for P in-process.

Layering (checked by tests/test_layering.py): hardneg < resources < jobs < hardneg_assets;
this module is the top and the only one that puts assets, jobs, sensors and resources together.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping, Sequence

import dagster as dg

import hardneg_assets.assets
from hardneg.profiles import DEFAULT_PROFILE
from hardneg_assets.deferred import declared_in, resolve
from hardneg_assets.partitions import PARTITIONS_TAG, Binding
from jobs import JOBS, reverify_sensor
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource
from resources.profile import read_profile, served

PROFILE_ENV = "HARDNEG_PROFILE"


def asset_modules() -> list:
    """Every module under `hardneg_assets/assets/` (a new stage module joins by existing)."""
    package = hardneg_assets.assets
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    return [importlib.import_module(f"{package.__name__}.{n}") for n in names]


def build_definitions(
    profile_name: str | None = None,
    overrides: Sequence[str] = (),
    resources: Mapping[str, object] | None = None,
) -> dg.Definitions:
    """Definitions for one profile (name under profiles/ or YAML path; None: the served one).

    `overrides` are `dotted.key=value` strings validated like the file; `resources`
    replaces default resources by key (e.g. `{"compute": ComputeResource(device="cpu")}`).
    """
    name = profile_name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    profile = read_profile(name, overrides)
    binding = Binding(profile)
    assets = []
    for declared in declared_in(asset_modules()):
        built = resolve(declared, binding)
        assets.append(
            built.map_asset_specs(
                lambda spec: spec.merge_attributes(tags={PARTITIONS_TAG: binding.partitions_name(spec.partitions_def)})
            )
        )
    default_resources = {
        "profile": ProfileResource.serving(profile, name, overrides),
        "compute": ComputeResource(),
        "warehouse": WarehouseResource(),
        "artifacts": ArtifactStore(),
    }
    return dg.Definitions(
        assets=assets,
        jobs=JOBS,
        sensors=[reverify_sensor],
        resources={**default_resources, **(resources or {})},
        metadata={"hardneg/profile": served(profile)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The served code location (workspace.yaml, `dg dev`, `dagster dev`): `$HARDNEG_PROFILE`, else smoke."""
    return build_definitions()
