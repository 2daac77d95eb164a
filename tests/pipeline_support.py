"""Test support: a profile that runs the real pipeline on the tiny test model, and definitions for it."""

from __future__ import annotations

from pathlib import Path

import yaml

from hardneg.configuration import merge


def tiny_profile(directory: Path, tiny_model_dir: Path, **overrides) -> str:
    """Write a YAML profile inheriting `smoke` with the tiny model standing in for SmolLM2."""
    data = {
        "inherit": "smoke",
        "name": "tiny",
        "models": {"smollm2-135m-instruct": {"name": "smollm2-135m-instruct", "local_path": str(tiny_model_dir)}},
        "sft": {
            "data": {"kind": "gsm8k-metamath", "max_examples": 8},
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "learning_rate": 1.0e-2,
            "per_device_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_length": 128,
            "max_steps": 12,
            "save_steps": 4,
            "warmup_ratio": 0.0,
        },
        "pool": {"num_problems": 4, "k": 4, "max_new_tokens_gsm8k": 24, "max_new_tokens_math": 24, "batch_size": 8},
        "dpo": {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 1024, "lora": {"r": 8, "alpha": 16}, "save_steps": 1},
        "eval": {
            "batch_size": 8,
            "max_new_tokens": 16,
            "benchmarks": [{"name": "gsm8k", "n": 3, "max_new_tokens": 16}, {"name": "math500", "n": 3, "max_new_tokens": 16}],
        },
    }
    data = merge(data, overrides)
    path = directory / "tiny_profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def definitions_for(profile_path: str, overrides: tuple[str, ...] = ()):
    """The code location's definitions for `profile_path`, on CPU (what `hardneg run --profile` builds)."""
    from hardneg_assets.definitions import build_definitions
    from resources import ComputeResource

    return build_definitions(profile_path, overrides, resources={"compute": ComputeResource(device="cpu")})


def materialize(defs, selection, partition_key=None, **kwargs):
    """`dg.materialize` over the definitions' assets and resources."""
    import dagster as dg

    return dg.materialize(
        list(defs.assets), selection=selection, partition_key=partition_key, resources=defs.resources, **kwargs
    )
