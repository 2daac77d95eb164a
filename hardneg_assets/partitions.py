"""Partitions: model family, and model family × seed (SPEC §1, §4).

The partition keys come from the active profile (`$HARDNEG_PROFILE`), read once when
the code location loads. Multi-partition keys read `family|seed`, e.g.
`smollm2-135m-sft|0`.
"""

from __future__ import annotations

import dagster as dg

from hardneg.profiles import load_profile

PROFILE = load_profile()

FAMILY = dg.StaticPartitionsDefinition([f.name for f in PROFILE.families])
FAMILY_SEED = dg.MultiPartitionsDefinition(
    {"family": FAMILY, "seed": dg.StaticPartitionsDefinition([str(s) for s in PROFILE.seeds])}
)
# A family × seed asset reads its family's family-only upstream (the SFT adapter, the base eval).
FROM_FAMILY = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="family")


def family_seed(context: dg.AssetExecutionContext) -> tuple[str, int]:
    key = context.partition_key.keys_by_dimension
    return key["family"], int(key["seed"])


def family_seed_key(family: str, seed: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"family": family, "seed": str(seed)})


def stage_version(code: str, *sections: str) -> str:
    """Code version of a stage: its code revision plus a hash of the profile sections it reads.

    Changing one of those sections (say `dpo.learning_rate`) changes the version, so the
    UI shows that asset and everything downstream of it as stale.
    """
    import dataclasses
    import hashlib
    import json

    profile = dataclasses.asdict(PROFILE)
    blob = json.dumps({s: profile[s] for s in sections}, sort_keys=True, default=str)
    return f"{code}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
