"""Partitions and code versions: what a profile fixes at definition time (SPEC §1, §4).

Dagster needs an asset's partitions and code version when its definition is built, and
both come from the profile (its families and seeds; a hash of the sections a stage
reads). So the asset modules name them symbolically (`FAMILY`, `FAMILY_SEED`,
`stage_version(...)`) and `hardneg_assets.definitions.build_definitions(profile)` binds
them to one profile through a `Binding`. Nothing here reads a profile, the environment
or a file at import. Multi-partition keys read `family|seed`, e.g. `smollm2-135m-sft|0`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import dagster as dg

from hardneg.embedding_cache import model_identity
from hardneg.profiles import Profile
from hardneg.verification import with_model_identities

# Tag the definitions factory puts on every asset: which partitions it has. Jobs select by it.
from jobs.selections import PARTITIONS_TAG  # noqa: F401  (re-exported for the asset layer)


@dataclass(frozen=True)
class PartitionsRef:
    """Names one of the profile's partitions definitions; `Binding.partitions` resolves it."""

    name: str


@dataclass(frozen=True)
class StageVersion:
    """A stage's code revision plus the profile sections it reads; `Binding.code_version` hashes them."""

    code: str
    sections: tuple[str, ...]


FAMILY = PartitionsRef("family")
FAMILY_SEED = PartitionsRef("family_seed")
# A family × seed asset reads its family's family-only upstream (the SFT adapter, the base eval).
FROM_FAMILY = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="family")


def stage_version(code: str, *sections: str) -> StageVersion:
    """Code version of a stage: its code revision plus a hash of the profile sections it reads.

    Changing one of those sections (say `dpo.learning_rate`) changes the version, so the UI
    shows that asset as stale, and `hardneg run` re-materializes it (and, as their upstream
    data versions change, the assets below it). A section may be dotted (`dpo.weighting`)
    when a stage reads only that part. Resolved per profile.
    """
    return StageVersion(code, tuple(sections))


class Binding:
    """One profile's partitions and code versions: the only place the asset layer reads a profile."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.family = dg.StaticPartitionsDefinition([f.name for f in profile.families])
        self.family_seed = dg.MultiPartitionsDefinition(
            {"family": self.family, "seed": dg.StaticPartitionsDefinition([str(s) for s in profile.seeds])}
        )
        self._sections = dataclasses.asdict(profile)
        # The same model in another venv or a moved clone must not mark a stage stale: the verifier's
        # encoders and a user's `models.<name>.local_path` are hashed by what they hold, not where.
        self._sections["verifier"] = with_model_identities(self._sections["verifier"])
        for spec in self._sections["models"].values():
            if spec.get("local_path"):
                spec["local_path"] = model_identity(spec["local_path"])
        self.cache: dict[int, object] = {}

    def partitions(self, ref: PartitionsRef) -> dg.PartitionsDefinition:
        return {"family": self.family, "family_seed": self.family_seed}[ref.name]

    def partitions_name(self, partitions_def: dg.PartitionsDefinition | None) -> str:
        """`family`, `family_seed` or `none`: the value of the PARTITIONS_TAG for an asset."""
        if partitions_def is None:
            return "none"
        return "family" if partitions_def == self.family else "family_seed"

    def code_version(self, version: StageVersion) -> str:
        missing = [s for s in version.sections if self._section(s) is _MISSING]
        if missing:
            raise KeyError(f"stage_version names profile sections {missing} that Profile does not have")
        blob = json.dumps({s: self._section(s) for s in version.sections}, sort_keys=True, default=str)
        return f"{version.code}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"

    def _section(self, dotted: str) -> object:
        """A section (`dpo`) or part of one (`dpo.weighting`): a stage versions only what it reads."""
        value: object = self._sections
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value


_MISSING = object()


def family_seed(context: dg.AssetExecutionContext) -> tuple[str, int]:
    key = context.partition_key.keys_by_dimension
    return key["family"], int(key["seed"])


def family_seed_key(family: str, seed: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"family": family, "seed": str(seed)})
