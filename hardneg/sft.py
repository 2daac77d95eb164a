"""Supervised fine-tuning on MetaMathQA-style chain of thought (paper §3.1).

Each `query`/`response` pair is rendered as a three-turn chat (the paper's system
prompt, the question, the solution) with the tokenizer's chat template and
`add_generation_prompt=False`, then TRL's SFTTrainer packs the rendered conversations
into `max_length` blocks. The loss covers every non-padding token, as in the paper;
`assistant_only_loss` is the switch for completion-only masking.

QLoRA (4-bit NF4, double quantization, bf16 compute, paged AdamW, gradient
checkpointing) on CUDA; plain LoRA in fp32 with AdamW on CPU. A re-run after a kill
resumes from the newest checkpoint in the output directory, but only when that checkpoint
was written by the same run (same base, data and hyper-parameters: the run fingerprint,
as DPO does); a checkpoint of another run is an error, never silently continued.

Besides the adapter, the run writes the SFT-merged model (`output_dir/merged`, base with
the adapter merged, fp32 on CPU / bf16 on CUDA). It is the family's starting policy and
the base of its DPO adapters, so a DPO adapter loads with plain PEFT on top of it and
never silently drops the SFT stage. Paths inside the artifacts are relative to the
artifact root.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hardneg.data import DataSource
from hardneg.prompts import SFT_SYSTEM_PROMPT, training_messages
from hardneg.training import (
    LoraSettings,
    check_resume_fingerprint,
    device_arguments,
    normalize_report_to,
    plot_loss_curve,
    point_adapter_at_base,
    portable_checkpoints_callback,
    portable_path,
    precision_mode,
    write_fingerprint,
)


@dataclass
class SFTRunConfig:
    """Hyperparameters of the SFT stage (defaults: SPEC §2.1, standard QLoRA practice)."""

    data: DataSource = field(default_factory=DataSource)
    """Where the `query`/`response` examples come from."""
    system_prompt: str = SFT_SYSTEM_PROMPT
    """System turn of every rendered conversation."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """Adapter shape (r=64, alpha=16, dropout 0.1 on all seven projections)."""
    learning_rate: float = 2e-4
    """Peak learning rate."""
    lr_scheduler_type: str = "constant_with_warmup"
    """Constant learning rate after a linear warmup."""
    warmup_ratio: float = 0.03
    """Fraction of steps spent warming up."""
    max_grad_norm: float = 0.3
    """Gradient clipping norm."""
    per_device_batch_size: int = 4
    """Sequences per device per micro-step."""
    gradient_accumulation_steps: int = 16
    """Micro-steps per optimizer step (global batch = 4 × 16 = 64 on one device)."""
    max_length: int = 1024
    """Packed block length (tokens)."""
    packing: bool = True
    """Concatenate rendered conversations into `max_length` blocks."""
    packing_strategy: str = "wrapped"
    """`wrapped` is the paper's length-based packing (concatenate and chunk); `bfd` needs FlashAttention to keep sequences apart."""
    assistant_only_loss: bool = False
    """Mask everything but assistant turns (the paper does not)."""
    num_train_epochs: float = 1.0
    """Passes over the data."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: run the epochs)."""
    logging_steps: int = 1
    """Log loss every N steps (the loss curve's resolution)."""
    save_steps: int = 50
    """Checkpoint every N steps (what a killed run resumes from)."""
    gradient_checkpointing: bool = True
    """Recompute activations to save memory (applied on CUDA only; it only slows CPU runs)."""
    seed: int = 0
    """Trainer seed (data order, dropout, adapter init)."""
    report_to: str = "none"
    """Experiment tracker(s): none, tensorboard, mlflow, wandb, or several comma-separated (must be installed)."""

    def __post_init__(self) -> None:
        self.report_to = normalize_report_to(self.report_to)


@dataclass
class SFTResult:
    """adapter_dir: the PEFT adapter; merged_dir: the base with it merged (the family's SFT model)."""

    adapter_dir: str
    log_history: list[dict[str, Any]]
    metrics: dict[str, Any]
    loss_curve_png: str | None
    merged_dir: str | None = None


def _examples_sha256(examples: pd.DataFrame) -> str:
    rows = [[str(q), str(r)] for q, r in zip(examples["query"], examples["response"])]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def sft_fingerprint(model_path: str, examples: pd.DataFrame, config: SFTRunConfig, mode: str, root) -> dict:
    """What must not change between a killed SFT run and its resumption (paths relative to the artifact root)."""
    from dataclasses import asdict

    cfg = asdict(config)
    for k in ("logging_steps", "save_steps", "report_to"):  # bookkeeping, not the run
        cfg.pop(k, None)
    return {"model_path": portable_path(model_path, root), "examples_sha256": _examples_sha256(examples),
            "n_examples": int(len(examples)), "precision_mode": mode, "config": cfg}


def save_merged(model_path: str, adapter_dir: str | Path, out_dir: str | Path, device: str) -> str:
    """Write the base with the adapter merged (fp32 on CPU, bf16 on CUDA) and its tokenizer to `out_dir`."""
    import torch

    from hardneg.policy import merge_adapters
    from hardneg.registry import load_tokenizer

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = merge_adapters(model_path, [adapter_dir], dtype)
    out = Path(out_dir)
    model.save_pretrained(out)
    load_tokenizer(str(adapter_dir)).save_pretrained(out)
    del model
    return str(out)


def render_dataset(examples: pd.DataFrame, system_prompt: str):
    """A conversational `datasets.Dataset` (`messages` column) that SFTTrainer renders with the chat template."""
    from datasets import Dataset

    bad = examples[examples["query"].isna() | examples["response"].isna()]
    if len(bad):
        raise ValueError(f"SFT example row {bad.index[0]} has an empty query or response")
    messages = [training_messages(q, r, system_prompt) for q, r in zip(examples["query"], examples["response"])]
    return Dataset.from_dict({"messages": messages})


def train_sft(
    model_path: str,
    examples: pd.DataFrame,
    output_dir: str | Path,
    config: SFTRunConfig,
    device: str = "cpu",
    use_4bit: bool = False,
    callbacks: list | None = None,
    artifact_root: str | Path | None = None,
    other_runs: str = "error",
) -> SFTResult:
    """Train a LoRA/QLoRA adapter on `examples`; save it in PEFT format under `output_dir/adapter`
    and the merged model under `output_dir/merged`. Paths inside the artifacts are written
    relative to `artifact_root` (default: `output_dir`). Checkpoints of another run in `output_dir`:
    see `training.check_resume_fingerprint` (`other_runs`)."""
    from trl import SFTConfig, SFTTrainer

    from hardneg.registry import load_causal_lm, load_tokenizer

    output_dir = Path(output_dir)
    root = Path(artifact_root) if artifact_root else output_dir
    mode = precision_mode(device, use_4bit)
    fingerprint = sft_fingerprint(model_path, examples, config, mode, root)
    resume = check_resume_fingerprint(output_dir, fingerprint, other_runs)  # before loading anything: fail fast
    on_cuda = device.startswith("cuda")
    tokenizer = load_tokenizer(model_path)
    model = load_causal_lm(model_path, device=device, dtype="bfloat16" if on_cuda else "float32", quantize_4bit=mode.startswith("qlora"))
    if mode.startswith("qlora"):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)

    args = SFTConfig(
        output_dir=str(output_dir),
        max_length=config.max_length,
        packing=config.packing,
        packing_strategy=config.packing_strategy,
        assistant_only_loss=config.assistant_only_loss,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of total steps in transformers 5
        max_grad_norm=config.max_grad_norm,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        disable_tqdm=False,
        dataset_num_proc=None,
        **device_arguments(on_cuda, mode.startswith("qlora"), bf16=True,
                           gradient_checkpointing=config.gradient_checkpointing, report_to=config.report_to),
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=render_dataset(examples, config.system_prompt),
        processing_class=tokenizer,
        peft_config=config.lora.peft_config(),
        callbacks=[*(callbacks or []), portable_checkpoints_callback(model_path, root)],
    )
    write_fingerprint(output_dir, fingerprint)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.time() - started

    adapter_dir = output_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    point_adapter_at_base(adapter_dir, model_path, root)
    history = list(trainer.state.log_history)
    losses = [e["loss"] for e in history if "loss" in e]
    tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    metrics = {
        "precision_mode": mode,
        "device": device,
        "train_loss": float(result.training_loss),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "steps": int(trainer.state.global_step),
        "examples": int(len(examples)),
        "packed_sequences": int(len(trainer.train_dataset)),
        "train_tokens_per_epoch": int(tokens),
        "train_seconds": round(seconds, 2),
        "resumed_from": portable_path(resume, root) if resume else None,
        "report_to": config.report_to,
    }
    png = plot_loss_curve(history, output_dir / "loss_curve.png", title="SFT loss")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    del trainer, model
    merged = save_merged(model_path, adapter_dir, output_dir / "merged", device)
    return SFTResult(str(adapter_dir), history, metrics, png, merged)

