"""Hyper-parameters of a DPO run (SPEC §2.5): plain dataclasses, no torch or TRL.

A profile's `dpo` section is a `DPORunConfig`; loading a profile must stay cheap and must not
import TRL or torch (SPEC: the library is plain Python), so the configuration lives here,
apart from the trainer (`hardneg.dpo_trainer`, TRL's side) and the run (`hardneg.dpo`:
dataset, policy loading, plots, ``python -m hardneg.dpo``). This is the split TRL itself
uses: `DPOConfig` / `DPOTrainer` / scripts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .training import LoraSettings, normalize_report_to
from .weighting import WeightingConfig

__all__ = ["DPORunConfig"]


@dataclass
class DPORunConfig:
    """Hyper-parameters of one DPO run (SPEC §2.5; LoRA as SFT, SPEC §2.1).

    The random-uniform and hard-negative runs of a family use one `DPORunConfig`: only the pairs
    and the `weighted` switch of `train_dpo` differ.

    Parameters:
        beta (`float`, defaults to `0.1`):
            β of the sigmoid DPO loss (strength of the KL anchor to the reference).
        learning_rate (`float`, defaults to `5e-6`):
            Peak learning rate of AdamW on the LoRA parameters.
        num_train_epochs (`float`, defaults to `1.0`):
            Passes over the pairs; ignored when `max_steps` > 0.
        max_steps (`int`, defaults to `-1`):
            Optimizer steps to run; -1 runs `num_train_epochs` full epochs.
        per_device_train_batch_size (`int`, defaults to `4`):
            Pairs per device per micro-batch; also the size of the batch the weights are normalised over.
        gradient_accumulation_steps (`int`, defaults to `16`):
            Micro-batches per optimizer step (global batch = 4 × 16 × number of devices).
        max_length (`int`, defaults to `1024`):
            Token cap of prompt + completion (TRL truncates keeping the start; a pair whose prompt alone
            reaches it is dropped by TRL and counted in the run's metrics).
        lr_scheduler_type (`str`, defaults to `"linear"`):
            Learning-rate schedule. SPEC is silent for DPO; linear decay is TRL's/Trainer's default.
        warmup_ratio (`float`, defaults to `0.1`):
            Fraction of the steps used for linear warm-up (SPEC is silent; the usual DPO recipe).
        max_grad_norm (`float`, defaults to `1.0`):
            Gradient-norm clip (Trainer's default; SPEC is silent for DPO).
        lora (`LoraSettings`, defaults to r=64, alpha=16, dropout 0.1 on all seven projections):
            Shape of the fresh DPO adapter, the same settings class (and defaults) as SFT's. Note: with
            `disable_dropout=True` (TRL's default) TRL sets every dropout module to p=0 after wrapping,
            which includes the LoRA dropout.
        disable_dropout (`bool`, defaults to `True`):
            TRL's switch: zero all dropout in policy and reference so that their log-probs are deterministic
            (at step 0 policy == reference and the loss is exactly log 2).
        weighting (`WeightingConfig`):
            λ and the clip bounds of the weighted loss (paper eq. 5-6), normalised over the optimizer batch
            (ignored, apart from validation, when unweighted). Z of the raw weight is a pairs setting
            (`pairs.perplexity_z`), not a DPO one.
        logging_steps (`int`, defaults to `1`):
            Log every this many optimizer steps (loss, rewards, weight statistics).
        save_steps (`int`, defaults to `100`):
            Write a resumable checkpoint (adapter + optimizer + scheduler + RNG) every this many steps.
        save_total_limit (`int` or `None`, defaults to `2`):
            Checkpoints kept on disk (oldest deleted first); None keeps all.
        seed (`int`, defaults to `0`):
            Seed of LoRA initialisation, data order and dropout (the partition's seed in the pipeline).
        use_qlora (`bool` or `None`, defaults to `None`):
            4-bit NF4 QLoRA (double quantisation, bf16 compute). None = auto: on CUDA when bitsandbytes works,
            never on CPU (fp32 LoRA there). True on a machine where it cannot work is an error.
        gradient_checkpointing (`bool` or `None`, defaults to `None`):
            None = auto: on for CUDA (SPEC §2.1); False turns it off there. Never on CPU, where it only costs time.
        prompt_format (`str`, defaults to `"auto"`):
            How to read the `prompt` column: `"rendered"` (already the chat-rendered prompt ending in the
            assistant header, as `hardneg.prompts.training_prompt` writes it), `"question"` (a bare question,
            rendered here with the training system prompt) or `"auto"` (rendered when it starts with the
            chat template's fixed prefix, else a question).
        dataloader_num_workers (`int`, defaults to `0`):
            DataLoader worker processes (0: load in the training process; batches are tiny).
        report_to (`str`, defaults to `"none"`):
            Experiment tracker(s) of the Trainer: "none", "tensorboard", "mlflow", "wandb", or several
            comma-separated (each must be installed). Runs are always recorded in the warehouse too.
    """

    beta: float = field(default=0.1, metadata={"help": "β of the sigmoid DPO loss."})
    learning_rate: float = field(default=5e-6, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs (ignored when max_steps > 0)."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps; -1 = full epochs."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Pairs per device per micro-batch."})
    gradient_accumulation_steps: int = field(default=16, metadata={"help": "Micro-batches per optimizer step."})
    max_length: int = field(default=1024, metadata={"help": "Token cap of prompt + completion."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "Learning-rate schedule."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Warm-up fraction of the steps."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip."})
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "Adapter shape (as SFT)."})
    disable_dropout: bool = field(default=True, metadata={"help": "Zero all dropout (TRL default)."})
    weighting: WeightingConfig = field(default_factory=WeightingConfig, metadata={"help": "λ and clip bounds."})
    logging_steps: int = field(default=1, metadata={"help": "Log every N optimizer steps."})
    save_steps: int = field(default=100, metadata={"help": "Checkpoint every N optimizer steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    seed: int = field(default=0, metadata={"help": "Seed of LoRA init, data order, dropout."})
    use_qlora: bool | None = field(default=None, metadata={"help": "QLoRA; None = auto (CUDA + bitsandbytes)."})
    gradient_checkpointing: bool | None = field(default=None, metadata={"help": "None = auto (CUDA only)."})
    prompt_format: str = field(default="auto", metadata={"help": "'auto', 'rendered' or 'question'."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader workers."})
    report_to: str = field(default="none", metadata={"help": "Tracker(s): none, tensorboard, mlflow, wandb."})

    def __post_init__(self) -> None:
        if isinstance(self.weighting, dict):
            self.weighting = WeightingConfig(**self.weighting)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.prompt_format not in ("auto", "rendered", "question"):
            raise ValueError(f"prompt_format must be 'auto', 'rendered' or 'question', got {self.prompt_format!r}")
        self.report_to = normalize_report_to(self.report_to)
        if self.beta <= 0 or not math.isfinite(self.beta):
            raise ValueError(f"beta must be > 0, got {self.beta!r}")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "logging_steps",
                     "save_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict (for `training_runs.config`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DPORunConfig:
        return cls(**d)
