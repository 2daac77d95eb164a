"""The active profile as a resource, checked against the profile the code location was built for.

A code location serves one profile: its partitions and code versions are built from it
(`hardneg_assets.definitions.build_definitions`). The run config may name a profile
(launchpad: `resources.profile.config.name`), but a run whose profile differs from the
served one would size the run by one profile and partition it by another, so `load()`
refuses it with a one-line error saying which profile to serve instead. The same check
catches a YAML file edited after the code location loaded (reload the location).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import ClassVar

import dagster as dg

from hardneg.profiles import Profile, load_profile


def read_profile(name: str | None, overrides: list[str] | tuple[str, ...] = ()) -> Profile:
    """Load and validate a profile (name under profiles/ or YAML path) with `dotted.key=value` overrides."""
    return load_profile(name, overrides=list(overrides)) if overrides else load_profile(name)


def fingerprint(profile: Profile) -> str:
    """Short hash of every resolved setting of a profile: equal fingerprints, equal runs."""
    blob = json.dumps(dataclasses.asdict(profile), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def served(profile: Profile) -> str:
    """`name@fingerprint`: how the code location records the profile it serves."""
    return f"{profile.name}@{fingerprint(profile)}"


class ProfileResource(dg.ConfigurableResource):
    """Names the YAML profile whose sizes and hyperparameters the run uses."""

    name: str = ""
    """Profile name under `profiles/` or a path to a YAML file (set by the code location; empty: `smoke`)."""
    overrides: list[str] = []
    """`dotted.key=value` overrides applied on top of the file (`hardneg run --set`), validated like it."""
    served: ClassVar[str] = ""
    """`name@fingerprint` of the profile the code location was built for; `load()` refuses any other.

    A class attribute, not config: a launchpad run config replaces a resource's whole config,
    so a config field would be lost exactly when the check matters."""

    @classmethod
    def serving(cls, profile: Profile, name: str, overrides: list[str] | tuple[str, ...] = ()) -> "ProfileResource":
        """The resource of a code location built for `profile` (loaded from `name` with `overrides`)."""
        bound = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "served": served(profile)})
        return bound(name=name, overrides=list(overrides))

    def load(self) -> Profile:
        profile = read_profile(self.name or None, self.overrides)
        if self.served and served(profile) != self.served:
            raise dg.Failure(
                description=(
                    f"the run config names profile {self.name or 'smoke'!r} ({served(profile)}), but this code location "
                    f"serves {self.served}, whose partitions and code versions it was built from: launch with that "
                    f"profile, or serve this one (HARDNEG_PROFILE={self.name or 'smoke'} dagster dev, or "
                    f"`hardneg run --profile {self.name or 'smoke'}`); if you edited the YAML, reload the code location"
                )
            )
        return profile
