"""Pieces SFT and DPO share: the LoRA/QLoRA setup, resuming, loss curves, artifact hashes.

The paper trains with QLoRA (4-bit NF4, double quantization, bf16 compute). 4-bit
kernels belong on CUDA, so on CPU the same adapters train as plain LoRA in fp32; every
run records which one it used (`precision_mode`).
"""

from __future__ import annotations

import hashlib
import logging
import re
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


def device_arguments(on_cuda: bool, quantized: bool, bf16: bool, gradient_checkpointing: bool) -> dict[str, Any]:
    """The TrainingArguments fields that follow from the device and the precision, the same for
    SFT and DPO: paged AdamW with 4-bit weights (QLoRA), bf16 autocast and gradient
    checkpointing only on CUDA, and no experiment trackers (runs are logged to the warehouse)."""
    return {
        "optim": "paged_adamw_32bit" if quantized else "adamw_torch",
        "bf16": bool(on_cuda and bf16),
        "fp16": False,
        "use_cpu": not on_cuda,
        "gradient_checkpointing": bool(on_cuda and gradient_checkpointing),
        "report_to": "none",
    }


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


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` a killed run left behind, for `resume_from_checkpoint`."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    steps = []
    for child in out.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and (child / "trainer_state.json").exists():
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
