"""The active profile (smoke, cpu-small, paper or a YAML file of your own)."""

from __future__ import annotations

import dagster as dg

from hardneg.profiles import Profile, active_profile_name, load_profile


class ProfileResource(dg.ConfigurableResource):
    """Names the YAML profile whose sizes and hyperparameters the run uses."""

    name: str = ""
    """Profile name under `profiles/` or a path to a YAML file; empty: `$HARDNEG_PROFILE`, else `smoke`."""

    def load(self) -> Profile:
        return load_profile(self.name or active_profile_name())
