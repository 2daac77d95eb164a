"""Pieces SFT and DPO share: the LoRA/QLoRA setup, resuming, loss curves, artifact hashes,
experiment trackers and portable artifact paths.

The paper trains with QLoRA (4-bit NF4, double quantization, bf16 compute). 4-bit
kernels belong on CUDA, so on CPU the same adapters train as plain LoRA in fp32; every
run records which one it used (`precision_mode`).

Portability: an artifact must load on another machine, so no artifact file holds an
absolute path. Paths inside artifacts are written relative to the artifact root
(`portable_path`); a PEFT adapter's `base_model_name_or_path` names its real base (the
SFT-merged model for an SFT family) that way, so that from the artifact root
``AutoPeftModelForCausalLM.from_pretrained("dpo/<strategy>/<family>/<seed>/adapter")`` — or
``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)`` — rebuilds
the trained policy, SFT stage included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

logger = logging.getLogger(__name__)

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    """LoRA adapter shape, shared by SFT and DPO (standard QLoRA practice, SPEC §2.1)."""

    r: int = 64
    """Adapter rank."""
    alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.1
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    """Projections that get adapters: all seven attention and MLP projections."""

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )


def precision_mode(device: str, use_4bit: bool) -> str:
    """`qlora-nf4-bf16` on CUDA with bitsandbytes, else `lora-fp32` (recorded per run)."""
    return "qlora-nf4-bf16" if device.startswith("cuda") and use_4bit else "lora-fp32"


TRACKERS = ("tensorboard", "mlflow", "wandb")
_TRACKER_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",), "wandb": ("wandb",)}


def normalize_report_to(value: str | Sequence[str] | None) -> str:
    """The profile's `report_to` as a canonical comma-separated string ("none" when empty).

    Accepts "none", one of `TRACKERS`, a comma-separated list or a YAML list. An unknown name is an
    error here, at profile load, rather than an obscure one at the first logging step.
    """
    if value is None:
        return "none"
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else list(value)) if str(v).strip()]
    if not items or items == ["none"]:
        return "none"
    bad = [v for v in items if v not in TRACKERS]
    if bad:
        raise ValueError(f"report_to: unknown tracker(s) {bad}; use 'none' or any of {list(TRACKERS)}")
    return ",".join(dict.fromkeys(items))


def report_to_argument(value: str) -> str | list[str]:
    """`TrainingArguments.report_to` for a normalized `report_to`; a named tracker must be installed."""
    import importlib.util

    if value == "none":
        return "none"
    names = value.split(",")
    for name in names:
        if not any(importlib.util.find_spec(m) is not None for m in _TRACKER_MODULES[name]):
            raise ValueError(f"report_to names {name!r} but it is not installed (pip install {name})")
    return names


def device_arguments(on_cuda: bool, quantized: bool, bf16: bool, gradient_checkpointing: bool,
                     report_to: str = "none") -> dict[str, Any]:
    """The TrainingArguments fields that follow from the device and the precision, the same for
    SFT and DPO: paged AdamW with 4-bit weights (QLoRA), bf16 autocast and gradient
    checkpointing only on CUDA, and the profile's experiment trackers (default none: runs are
    always logged to the warehouse)."""
    return {
        "optim": "paged_adamw_32bit" if quantized else "adamw_torch",
        "bf16": bool(on_cuda and bf16),
        "fp16": False,
        "use_cpu": not on_cuda,
        "gradient_checkpointing": bool(on_cuda and gradient_checkpointing),
        "report_to": report_to_argument(normalize_report_to(report_to)),
    }


RUN_CONFIG_FILE = "hardneg_run_config.json"


def check_resume_fingerprint(output_dir: str | Path, fingerprint: dict, other_runs: str = "error") -> str | None:
    """The checkpoint to resume from, only if it belongs to the same run.

    A killed run leaves `checkpoint-N` folders and the run's fingerprint (`hardneg_run_config.json`);
    resuming a checkpoint of a run with other data or hyper-parameters would silently mix two
    runs. Checkpoints without a fingerprint file (written by an older version) are not trusted
    either. `other_runs="error"` (for a folder a person chose): a `ValueError` naming the keys that
    differ. `other_runs="discard"` (for a folder the pipeline owns, e.g. a DPO asset whose pairs
    changed after a killed run): those checkpoints are deleted, with a warning, and training starts fresh.
    """
    out = Path(output_dir)
    for ckpt in out.glob("checkpoint-*"):
        if ckpt.is_dir() and not checkpoint_complete(ckpt):
            warnings.warn(f"{ckpt}: saving it did not finish (the run was killed then); deleting it", stacklevel=2)
            shutil.rmtree(ckpt, ignore_errors=True)
    resume = last_checkpoint(out)
    if resume is None:
        return None
    fp_path = out / RUN_CONFIG_FILE
    if not fp_path.exists():
        problem = f"{out} holds checkpoints but no {RUN_CONFIG_FILE}: cannot tell which run wrote them"
    else:
        previous = json.loads(fp_path.read_text())
        current = json.loads(json.dumps(fingerprint, default=str))
        diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if not diff:
            return resume
        problem = f"{out} holds checkpoints of a different run (differs in {diff})"
    if other_runs != "discard":
        raise ValueError(f"{problem}; use another output_dir or delete it")
    warnings.warn(f"{problem}: deleting them and starting afresh", stacklevel=2)
    for ckpt in out.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)
    return None


def write_fingerprint(output_dir: str | Path, fingerprint: dict) -> None:
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    path = Path(output_dir) / RUN_CONFIG_FILE
    tmp = path.with_name(path.name + ".tmp")  # a kill mid-write must not leave a fingerprint that does not parse
    tmp.write_text(json.dumps(fingerprint, indent=2, default=str))
    os.replace(tmp, path)


def portable_path(path: str | Path | None, root: str | Path | None) -> str | None:
    """`path` as written into an artifact: relative to the artifact `root` (POSIX separators).

    A hub id (not an existing path) is returned as is. Without a root, or for a path on another
    drive, the path is returned relative to nothing only if it already is relative; an absolute
    path with no root is an error, because it would tie the artifact to this machine.
    """
    if path is None:
        return None
    text = str(path)
    p = Path(text)
    if not p.is_absolute() and not p.exists():
        return text  # a hub id or an already relative path
    if root is None:
        if p.is_absolute():
            raise ValueError(f"portable_path: {text} is absolute and no artifact root was given")
        return p.as_posix()
    return Path(os.path.relpath(p.resolve(), Path(root).resolve())).as_posix()


def resolve_portable(path: str | None, root: str | Path | None) -> str | None:
    """Inverse of `portable_path`: an artifact's relative path back to a local one (hub ids kept)."""
    if path is None:
        return None
    p = Path(path)
    if p.is_absolute() or root is None:
        return str(p)
    candidate = Path(root) / p
    return str(candidate) if candidate.exists() else str(path)


def point_adapter_at_base(adapter_dir: str | Path, base: str | Path, root: str | Path | None) -> None:
    """Make a saved PEFT adapter name its real base, relative to the artifact root.

    PEFT writes the absolute path of whatever model it wrapped; for a DPO adapter trained on the
    SFT-merged model that must be that merged model (else `AutoPeftModelForCausalLM` would
    silently drop the SFT stage), and never an absolute path.
    """
    cfg_path = Path(adapter_dir) / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    written = cfg.get("base_model_name_or_path")
    cfg["base_model_name_or_path"] = portable_path(base, root)
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    readme = Path(adapter_dir) / "README.md"  # PEFT's model card repeats the path in its YAML header
    if readme.exists() and written:
        readme.write_text(readme.read_text().replace(str(written), cfg["base_model_name_or_path"]))


def portable_checkpoints_callback(base: str | Path, root: str | Path | None):
    """A TrainerCallback that points every saved `checkpoint-N` adapter at its base (relative path),
    so a checkpoint, too, loads with plain PEFT and holds no absolute path."""
    from transformers import TrainerCallback

    class _PortableCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if (ckpt / "adapter_config.json").exists():
                    point_adapter_at_base(ckpt, base, root)

    return _PortableCheckpoints()


def absolute_paths_in_json(root: str | Path) -> list[tuple[str, str]]:
    """(file, value) for every string in every JSON file under `root` that is an absolute path."""
    found = []
    for file in sorted(Path(root).rglob("*.json")):
        if file.name in ("tokenizer.json", "vocab.json"):  # token strings such as "/" are data, not paths
            continue
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str) and (item.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", item)):
                found.append((str(file.relative_to(root)), item))
    return found


def bitsandbytes_usable() -> bool:
    """True when 4-bit NF4 kernels actually run here (CUDA + a working bitsandbytes build)."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        import bitsandbytes.functional as bnbf

        x = torch.randn(64, 64, device="cuda", dtype=torch.bfloat16)
        q, state = bnbf.quantize_4bit(x, quant_type="nf4")
        bnbf.dequantize_4bit(q, state)
        return True
    except Exception as e:  # missing/CPU-only build, driver mismatch, ...
        logger.warning("bitsandbytes not usable (%s): falling back to LoRA without quantisation", e)
        return False


def checkpoint_complete(ckpt: str | Path) -> bool:
    """Did saving this `checkpoint-N` finish? transformers writes trainer_state.json after the weights and the
    optimizer, and the portable-checkpoints callback rewrites adapter_config.json after that: a kill while saving
    leaves one of them missing, empty or cut off. Every JSON file of a complete checkpoint parses."""
    ckpt = Path(ckpt)
    if not (ckpt / "trainer_state.json").is_file():
        return False
    for file in ckpt.glob("*.json"):
        try:
            json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return False
    return True


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete `checkpoint-N` a killed run left behind, for `resume_from_checkpoint`."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    steps = []
    for child in out.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and checkpoint_complete(child):
            steps.append((int(m.group(1)), child))
    return str(max(steps)[1]) if steps else None


def dir_sha256(path: str | Path) -> str:
    """Content hash of an artifact directory (file names and bytes, in sorted order)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def loss_points(log_history: Sequence[dict[str, Any]], key: str = "loss") -> list[tuple[int, float]]:
    return [(int(e["step"]), float(e[key])) for e in log_history if key in e and "step" in e]


def plot_loss_curve(log_history: Sequence[dict[str, Any]], path: str | Path, title: str, key: str = "loss") -> str | None:
    """Write a PNG of `key` against step; None when nothing was logged."""
    points = loss_points(log_history, key)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)
