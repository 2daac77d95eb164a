"""Weighted DPO on TRL 1.16's DPOTrainer (paper eq. 2-7, SPEC §2.5).

What and why:

- `WeightedDPOTrainer` is TRL's `DPOTrainer` with one change to the objective: each pair
  carries a raw importance weight (column ``weight``), the trainer normalises the weights
  of the micro-batch it is handed (`hardneg.weighting.normalize_batch_weights`: unit mean,
  λ-tempering, clip) and the loss is ``(1/B) Σ w̃_i ℓ_i`` instead of ``(1/B) Σ ℓ_i``, with
  ``ℓ_i`` TRL's sigmoid DPO loss. TRL 1.x has no weight column, so the column is carried
  by hand through the three places that would drop it: the signature columns that
  `remove_unused_columns` keeps, the preference collator, and `compute_loss`, which pops
  it before the model sees the batch. (TRL's tokenisation `map` keeps unknown columns.)
- `train_dpo` is the one entry the pipeline uses: it loads the policy (merging the SFT
  adapter first), puts a fresh LoRA on top (QLoRA on CUDA, fp32 LoRA on CPU), resumes a
  killed run from its last complete checkpoint, saves the adapter in PEFT format and a
  loss-curve PNG. The random-uniform baseline (``weighted=False``) runs the very same
  trainer with every weight 1, so both strategies share every hyper-parameter and code path.
- ``python -m hardneg.dpo ...`` is a small CLI over `train_dpo`, so that the same run works
  under ``accelerate launch`` on several GPUs (see docs/multi-gpu.md).

Normalisation scope: "per batch" is the micro-batch `compute_loss` sees, i.e. one device's
``per_device_train_batch_size`` pairs of one gradient-accumulation step. That is the only
batch a loss-level implementation in TRL can see without changing the training loop; with
the defaults (4 × 16) each normalisation spans 4 pairs. A micro-batch of one pair always
gets weight 1.

Pinned to TRL 1.16: the weighted loss mirrors the sigmoid path of TRL 1.16's
``DPOTrainer._compute_loss`` (same log-probs, same reference handling, same metrics), and
tests/test_dpo.py checks that with λ = 0 it equals TRL's loss on the same batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import math
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import trl
from transformers import TrainerCallback
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from .policy import load_merged_policy, merge_adapters
from .prompts import training_prompt
from .training import LoraSettings, bitsandbytes_usable, device_arguments, last_checkpoint
from .weighting import WeightingConfig, normalize_batch_weights, validate_raw_weights

logger = logging.getLogger(__name__)

TESTED_TRL_MINOR = "1.16"
REQUIRED_PAIR_COLUMNS = ("pair_id", "prompt", "chosen", "rejected")
PROVENANCE_FILE = "hardneg_dpo.json"
RUN_CONFIG_FILE = "hardneg_run_config.json"

if not trl.__version__.startswith(TESTED_TRL_MINOR + "."):
    warnings.warn(
        f"hardneg.dpo mirrors TRL {TESTED_TRL_MINOR}'s DPO loss; TRL {trl.__version__} is installed. "
        "Run tests/test_dpo.py (loss equivalence with TRL) before trusting results.",
        RuntimeWarning,
        stacklevel=2,
    )


# --------------------------------------------------------------------------------------------
# Configuration


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
            Z, λ and the clip bounds of the weighted loss (ignored, apart from validation, when unweighted).
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
    weighting: WeightingConfig = field(default_factory=WeightingConfig, metadata={"help": "Z, λ, clip bounds."})
    logging_steps: int = field(default=1, metadata={"help": "Log every N optimizer steps."})
    save_steps: int = field(default=100, metadata={"help": "Checkpoint every N optimizer steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    seed: int = field(default=0, metadata={"help": "Seed of LoRA init, data order, dropout."})
    use_qlora: bool | None = field(default=None, metadata={"help": "QLoRA; None = auto (CUDA + bitsandbytes)."})
    gradient_checkpointing: bool | None = field(default=None, metadata={"help": "None = auto (CUDA only)."})
    prompt_format: str = field(default="auto", metadata={"help": "'auto', 'rendered' or 'question'."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader workers."})

    def __post_init__(self) -> None:
        if isinstance(self.weighting, dict):
            self.weighting = WeightingConfig(**self.weighting)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.prompt_format not in ("auto", "rendered", "question"):
            raise ValueError(f"prompt_format must be 'auto', 'rendered' or 'question', got {self.prompt_format!r}")
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


@dataclass
class DPOResult:
    """What a DPO run leaves behind.

    Attributes:
        adapter_dir: PEFT adapter (adapter_config.json + adapter_model.safetensors), tokenizer and
            `hardneg_dpo.json` (how to rebuild the policy: base path, SFT adapter, precision).
        log_history: Trainer's log history (per-step loss, rewards/*, weight/*, ...), restored
            steps of a resumed run included.
        metrics: run summary: precision, device, resume point, counts, Trainer's train metrics.
        loss_curve_png: the loss-curve plot, or None when nothing was logged.
    """

    adapter_dir: str
    log_history: list[dict]
    metrics: dict
    loss_curve_png: str | None


# --------------------------------------------------------------------------------------------
# Trainer


_NON_MODEL_KEYS = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", "weight"}


@dataclass
class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator plus a float32 ``weight`` tensor of shape (B,), one per pair."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [i for i, ex in enumerate(examples) if "weight" not in ex or ex["weight"] is None]
        if missing:
            raise KeyError(
                f"preference examples at batch positions {missing} have no 'weight': WeightedDPOTrainer needs a "
                "'weight' column (use 1.0 for unweighted pairs)"
            )
        out = super().torch_call(examples)
        out["weight"] = torch.tensor([float(ex["weight"]) for ex in examples], dtype=torch.float32)
        return out


class WeightedDPOTrainer(DPOTrainer):
    """`DPOTrainer` whose sigmoid loss weighs each pair by its batch-normalised weight (paper eq. 7).

    Takes every `DPOTrainer` argument plus `weighting` (λ, clip bounds). The train (and eval)
    dataset must have a ``weight`` column of finite, positive raw weights; use 1.0 everywhere for
    plain DPO. Supported: ``loss_type=["sigmoid"]``, reverse-KL, no WPO weighting, no LD-DPO,
    text-only data; anything else is rejected up front rather than silently changing meaning.

    Logged per logging step (besides TRL's own metrics): ``weight/mean``, ``weight/min``,
    ``weight/max`` over the normalised weights of every pair seen since the last log, and
    ``weight/n_clipped``, the number of those pairs the clip changed.
    """

    def __init__(self, model, ref_model=None, args: DPOConfig | None = None, *,
                 weighting: WeightingConfig | None = None, **kwargs):
        self.weighting = weighting or WeightingConfig()
        if args is not None:
            loss_types = [args.loss_type] if isinstance(args.loss_type, str) else list(args.loss_type)
            problems = []
            if loss_types != ["sigmoid"]:
                problems.append(f"loss_type={loss_types} (only ['sigmoid'])")
            if args.f_divergence_type != "reverse_kl":
                problems.append(f"f_divergence_type={args.f_divergence_type!r} (only 'reverse_kl')")
            if args.use_weighting:
                problems.append("use_weighting=True (WPO weights would multiply ours)")
            if args.ld_alpha is not None:
                problems.append("ld_alpha (LD-DPO) is not supported")
            if problems:
                raise NotImplementedError("WeightedDPOTrainer supports plain sigmoid DPO only: " + "; ".join(problems))
        # Buffers of what was seen since the last log, per mode: the normalised weights and clip counts.
        self._weight_log: dict[str, dict[str, list]] = {
            "train": {"w": [], "n_clipped": []},
            "eval": {"w": [], "n_clipped": []},
        }
        super().__init__(model, ref_model, args, **kwargs)
        if self._is_vision_dataset:
            raise NotImplementedError("WeightedDPOTrainer supports text-only preference data")
        collator = self.data_collator
        if type(collator) is DataCollatorForPreference:
            # TRL built its collator (pad token resolved); keep its settings and add the weight.
            self.data_collator = WeightedPreferenceCollator(
                pad_token_id=collator.pad_token_id,
                max_length=collator.max_length,
                truncation_mode=collator.truncation_mode,
                pad_to_multiple_of=collator.pad_to_multiple_of,
                return_tensors=collator.return_tensors,
            )

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = list(self._signature_columns) + ["weight"]

    def compute_ref_log_probs(self, model, inputs):
        # `_precompute_ref_logps` feeds whole collated batches; the weight is not a model input.
        inputs = {k: v for k, v in inputs.items() if k != "weight"}
        return super().compute_ref_log_probs(model, inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)  # the caller's batch stays intact (tests reuse batches)
        raw = inputs.pop("weight", None)
        if raw is None:
            raise KeyError("batch has no 'weight' tensor: the dataset needs a 'weight' column")
        w = raw.to(torch.float32).reshape(-1)
        w_tilde, stats = normalize_batch_weights(
            w, lam=self.weighting.lam, w_min=self.weighting.w_min, w_max=self.weighting.w_max
        )
        return self._weighted_compute_loss(model, inputs, w_tilde, stats["n_clipped"], return_outputs)

    def _weighted_compute_loss(self, model, inputs, w_tilde: torch.Tensor, n_clipped: int, return_outputs: bool):
        # Mirrors the sigmoid / reverse-KL / ld_alpha=None path of TRL 1.16 `DPOTrainer._compute_loss`,
        # with the per-sequence loss multiplied by w̃ before the mean.
        mode = "train" if self.model.training else "eval"
        model_kwargs = {k: v for k, v in inputs.items() if k not in _NON_MODEL_KEYS}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        completion_mask = inputs["completion_mask"]
        shift_completion_mask = completion_mask[..., 1:]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        seq_len = shift_completion_mask.size(1)
        per_token_logps = outputs.log_probs[:, -seq_len:]
        logps = per_token_logps.sum(dim=1)
        chosen_logps, rejected_logps = logps.chunk(2, dim=0)  # batch is [chosen, rejected]

        if self.precompute_ref_logps:
            ref_chosen_logps, ref_rejected_logps = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            # With a PEFT policy and no ref_model this disables the adapter (or switches to the "ref" copy),
            # exactly as TRL's in-loss reference forward does.
            ref_source = self.model if self.ref_model is None else self.ref_model
            ref_chosen_logps, ref_rejected_logps = self.compute_ref_log_probs(ref_source, inputs)

        chosen_logratios = chosen_logps - ref_chosen_logps
        rejected_logratios = rejected_logps - ref_rejected_logps
        per_sequence_loss = -F.logsigmoid(self.beta * (chosen_logratios - rejected_logratios))
        weights = w_tilde.to(device=per_sequence_loss.device, dtype=per_sequence_loss.dtype)
        loss = (per_sequence_loss * weights).mean() * self.loss_weights[0]

        if self.aux_loss_enabled:
            aux_loss = outputs.aux_loss
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())

        self._log_dpo_metrics(mode, inputs, outputs, shift_completion_mask, seq_len, chosen_logps, rejected_logps,
                              chosen_logratios, rejected_logratios)
        self._weight_log[mode]["w"].append(self.accelerator.gather(weights.detach()).float().cpu())
        n = torch.tensor([float(n_clipped)], device=per_sequence_loss.device)
        self._weight_log[mode]["n_clipped"].append(int(self.accelerator.gather(n).sum().item()))

        if return_outputs:
            with torch.no_grad():
                outputs = model(**model_kwargs)
            return loss, outputs
        return loss

    def _log_dpo_metrics(self, mode, inputs, outputs, shift_completion_mask, seq_len, chosen_logps, rejected_logps,
                         chosen_logratios, rejected_logratios):
        # The same metrics, under the same names, as TRL 1.16 logs, so both strategies' logs compare.
        acc = self.accelerator
        mask = shift_completion_mask
        per_token_entropy = outputs.entropy[:, -seq_len:].detach()
        entropy_sum = acc.gather_for_metrics((per_token_entropy * mask).sum()).sum()
        total_tokens = acc.gather_for_metrics(mask.sum()).sum()
        self._metrics[mode]["entropy"].append((entropy_sum / total_tokens).item() if total_tokens > 0 else 0.0)

        if mode == "train":
            num_tokens_in_batch = acc.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += num_tokens_in_batch // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

        chosen_mean_logits, rejected_mean_logits = outputs.mean_logits[:, -seq_len:].chunk(2, dim=0)
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        tot_c_logits = acc.gather_for_metrics(chosen_mean_logits[chosen_mask.bool()].sum()).sum().item()
        tot_c_tokens = acc.gather_for_metrics(chosen_mask.sum()).sum().item()
        tot_r_logits = acc.gather_for_metrics(rejected_mean_logits[rejected_mask.bool()].sum()).sum().item()
        tot_r_tokens = acc.gather_for_metrics(rejected_mask.sum()).sum().item()
        self._metrics[mode]["logits/chosen"].append(tot_c_logits / tot_c_tokens if tot_c_tokens > 0 else 0.0)
        self._metrics[mode]["logits/rejected"].append(tot_r_logits / tot_r_tokens if tot_r_tokens > 0 else 0.0)

        chosen_is_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
        correct = acc.gather_for_metrics((chosen_is_top1 & chosen_mask.bool()).sum())
        total = acc.gather_for_metrics(chosen_mask.sum()).sum()
        self._metrics[mode]["mean_token_accuracy"].append((correct.sum() / total).item() if total > 0 else 0.0)

        chosen_rewards = self.beta * chosen_logratios.detach()
        rejected_rewards = self.beta * rejected_logratios.detach()
        self._metrics[mode]["rewards/chosen"].append(acc.gather(chosen_rewards).mean().item())
        self._metrics[mode]["rewards/rejected"].append(acc.gather(rejected_rewards).mean().item())
        self._metrics[mode]["rewards/accuracies"].append(
            acc.gather((chosen_rewards > rejected_rewards).float()).mean().item()
        )
        self._metrics[mode]["rewards/margins"].append(acc.gather(chosen_rewards - rejected_rewards).mean().item())
        self._metrics[mode]["logps/chosen"].append(acc.gather(chosen_logps.detach()).mean().item())
        self._metrics[mode]["logps/rejected"].append(acc.gather(rejected_logps.detach()).mean().item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        buf = self._weight_log[mode]
        if buf["w"]:
            w = torch.cat(buf["w"])
            prefix = "eval_" if mode == "eval" else ""
            logs[f"{prefix}weight/mean"] = w.mean().item()
            logs[f"{prefix}weight/min"] = w.min().item()
            logs[f"{prefix}weight/max"] = w.max().item()
            logs[f"{prefix}weight/n_clipped"] = sum(buf["n_clipped"])
            buf["w"].clear()
            buf["n_clipped"].clear()
        super().log(logs, start_time)


# --------------------------------------------------------------------------------------------
# Data


def _template_prefix(tokenizer) -> str | None:
    """The fixed text a rendered training prompt starts with (system turn + user header)."""
    sentinel = "\x00HARDNEG_SENTINEL\x00"
    try:
        rendered = training_prompt(tokenizer, sentinel)
    except Exception:  # a tokenizer without a chat template: only bare questions or rendered text by hand
        return None
    cut = rendered.find(sentinel)
    return rendered[:cut] if cut > 0 else None


def build_preference_dataset(pairs, tokenizer, weighted: bool, prompt_format: str = "auto"):
    """Turn a pairs DataFrame into the dataset `WeightedDPOTrainer` reads.

    Columns in: ``pair_id, prompt, chosen, rejected`` and, when `weighted`, the raw weight as
    ``raw_weight`` (warehouse name) or ``weight`` (the exported DPO parquet's name).
    Columns out: ``pair_id, prompt, chosen, rejected, weight`` (standard, non-conversational TRL
    format: TRL appends the EOS token to each completion). ``weight`` is the raw weight when
    `weighted`, else 1.0. Errors name the pair: missing/empty text, duplicate ids, bad weights.
    """
    import datasets

    missing = [c for c in REQUIRED_PAIR_COLUMNS if c not in pairs.columns]
    # `preference_pairs` calls it raw_weight; the exported DPO parquet (hardneg.pairs) calls it weight.
    weight_col = "raw_weight" if "raw_weight" in pairs.columns else ("weight" if "weight" in pairs.columns else None)
    if weighted and weight_col is None:
        missing.append("raw_weight")
    if missing:
        raise ValueError(f"pairs table lacks column(s) {missing}; has {list(pairs.columns)}")
    if len(pairs) == 0:
        raise ValueError("pairs table is empty: nothing to train on")
    ids = [str(x) for x in pairs["pair_id"].tolist()]
    dup = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dup:
        raise ValueError(f"duplicate pair_id(s): {dup[:20]}")
    for col in ("prompt", "chosen", "rejected"):
        bad = [pid for pid, v in zip(ids, pairs[col].tolist()) if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ValueError(f"pair(s) {bad[:20]} have an empty or non-text {col!r}")

    if weighted:
        raw = pairs[weight_col].astype(float).tolist()
        validate_raw_weights(raw, ids)
        weights = raw
    else:
        weights = [1.0] * len(ids)

    prefix = _template_prefix(tokenizer) if prompt_format != "question" else None
    prompts = []
    for pid, p in zip(ids, pairs["prompt"].tolist()):
        if prompt_format == "rendered" or (prompt_format == "auto" and prefix is not None and p.startswith(prefix)):
            prompts.append(p)
        else:
            try:
                prompts.append(training_prompt(tokenizer, p))
            except Exception as e:  # no chat template
                raise ValueError(f"pair {pid}: cannot render the prompt with the tokenizer's chat template: {e}") from e
    return datasets.Dataset.from_dict(
        {
            "pair_id": ids,
            "prompt": prompts,
            "chosen": pairs["chosen"].tolist(),
            "rejected": pairs["rejected"].tolist(),
            "weight": [float(w) for w in weights],
        }
    )


# --------------------------------------------------------------------------------------------
# Model loading


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but CUDA is not available")
        return "cuda"
    raise ValueError(
        f"device must be 'cpu', 'cuda' or 'auto', got {device!r} (pick a GPU with CUDA_VISIBLE_DEVICES; "
        "several GPUs: accelerate launch, see docs/multi-gpu.md)"
    )


def _tokenizer_source(policy_path: str, sft_adapter_path: str | None) -> str:
    # SFT may have saved its (possibly pad-token-patched) tokenizer next to the adapter: prefer it.
    if sft_adapter_path and (Path(sft_adapter_path) / "tokenizer_config.json").exists():
        return sft_adapter_path
    return policy_path


def _merge_sft(policy_path: str, sft_adapter_path: str, dtype: torch.dtype):
    return merge_adapters(policy_path, [sft_adapter_path], dtype)


def load_policy(policy_path: str, sft_adapter_path: str | None, device: str, use_qlora: bool, work_dir: Path):
    """The starting policy of DPO = the SFT model: the base with the SFT adapter merged in.

    Returns ``(model, precision)``. fp32 on CPU; bf16 on CUDA (fp32 where bf16 is unsupported);
    with `use_qlora`, the merged weights are written once to ``work_dir/sft_merged`` in bf16 and
    loaded back quantised, so that NF4 quantises the merged weights once rather than requantising
    an already-quantised base.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if device == "cpu":
        dtype, precision = torch.float32, "lora-fp32"
    else:
        bf16 = torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 else torch.float32
        precision = "qlora-nf4-bf16" if use_qlora else ("lora-bf16" if bf16 else "lora-fp32")

    if not use_qlora:
        if sft_adapter_path:
            model = _merge_sft(policy_path, sft_adapter_path, dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(policy_path, dtype=dtype)
        return model, precision

    from accelerate import PartialState

    source = policy_path
    if sft_adapter_path:
        merged_dir = work_dir / "sft_merged"
        if not (merged_dir / ".complete").exists():
            state = PartialState()
            if state.is_main_process:
                merged = _merge_sft(policy_path, sft_adapter_path, torch.bfloat16)
                merged.save_pretrained(merged_dir)
                (merged_dir / ".complete").write_text(json.dumps({"policy": policy_path, "sft": sft_adapter_path}))
                del merged
                gc.collect()
            state.wait_for_everyone()
        source = str(merged_dir)
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    # One full copy per process, on that process's GPU (DDP under accelerate launch).
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.bfloat16, quantization_config=quant, device_map={"": PartialState().local_process_index}
    )
    return model, precision


def load_dpo_policy(adapter_dir: str, device: str = "cpu"):
    """Rebuild a trained policy from `train_dpo`'s adapter dir: base + SFT merged + DPO merged.

    Returns ``(model, tokenizer)`` in fp32 on CPU / bf16 on CUDA, ready for generation.
    """
    prov = json.loads((Path(adapter_dir) / PROVENANCE_FILE).read_text())
    adapters = [a for a in (prov.get("sft_adapter_path"), adapter_dir) if a]
    return load_merged_policy(prov["policy_path"], adapters, _resolve_device(device))


# --------------------------------------------------------------------------------------------
# Run


class _ProgressCallback(TrainerCallback):
    def __init__(self, fn: Callable[[int, int, dict], Any]):
        self.fn = fn

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            self.fn(int(state.global_step), int(state.max_steps), dict(logs or {}))


def plot_dpo_curves(log_history: list[dict], path: str | Path, title: str = "DPO") -> str | None:
    """Loss (top) and reward margin / mean weight (bottom) against step; None when nothing was logged."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in log_history if "loss" in r and "step" in r]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig = Figure(figsize=(7, 5.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(steps, [r["loss"] for r in rows], marker="o", ms=3, label="loss")
    ax1.axhline(math.log(2), color="grey", lw=0.8, ls="--", label="log 2 (policy = reference)")
    ax1.set_ylabel("DPO loss")
    ax1.set_title(title)
    ax1.legend(fontsize=8)
    ax2.plot(steps, [r.get("rewards/margins", float("nan")) for r in rows], marker="o", ms=3, color="C0")
    ax2.set_ylabel("rewards/margins", color="C0")
    if any("weight/mean" in r for r in rows):
        # Weights sit near 1 while margins grow: separate axis so neither flattens the other.
        ax3 = ax2.twinx()
        ax3.plot(steps, [r.get("weight/mean", float("nan")) for r in rows], marker="s", ms=3, color="C1")
        ax3.fill_between(steps, [r.get("weight/min", float("nan")) for r in rows],
                         [r.get("weight/max", float("nan")) for r in rows], color="C1", alpha=0.15)
        ax3.set_ylabel("weight mean (band: min-max)", color="C1")
    ax2.set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    return str(path)


def _run_fingerprint(policy_path, sft_adapter_path, config: DPORunConfig, weighted: bool, n_pairs: int) -> dict:
    # What must not change between a killed run and its resumption (else the checkpoint means another run).
    # max_steps/epochs are in: the LR schedule restored from the checkpoint was built for them.
    keep = ("beta", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "max_length", "lr_scheduler_type", "warmup_ratio", "max_grad_norm",
            "lora", "seed", "weighting", "disable_dropout")
    cfg = config.to_dict()
    return {
        "policy_path": str(policy_path),
        "sft_adapter_path": str(sft_adapter_path) if sft_adapter_path else None,
        "weighted": bool(weighted),
        "n_pairs": int(n_pairs),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),  # the global batch scales with it
        **{k: cfg[k] for k in keep},
    }


def train_dpo(
    policy_path: str,
    pairs,
    output_dir: str,
    config: DPORunConfig,
    weighted: bool,
    device: str = "cpu",
    sft_adapter_path: str | None = None,
    progress_callback: Callable[[int, int, dict], Any] | None = None,
) -> DPOResult:
    """Train one DPO adapter on `pairs` and return where it went and how it went.

    Args:
        policy_path: the family's starting checkpoint (a `transformers` model directory).
        pairs: DataFrame with ``pair_id, prompt, chosen, rejected`` and, when `weighted`, ``raw_weight``.
        output_dir: run directory: checkpoints (``checkpoint-N``), ``adapter/``, ``loss_curve.png``.
            A complete checkpoint already there (a killed run) is resumed from.
        config: hyper-parameters, shared by both strategies.
        weighted: True = verifier-weighted DPO (raw weights normalised per batch); False = the
            random-uniform baseline, the same trainer with every weight 1 (exactly TRL's loss).
        device: "cpu" (fp32 LoRA, ``use_cpu=True``), "cuda" (QLoRA when bitsandbytes works, else
            bf16 LoRA), or "auto".
        sft_adapter_path: the SFT LoRA adapter, merged into the base before DPO. Its merged model is
            both the starting policy and the frozen reference.
        progress_callback: ``fn(global_step, max_steps, logs)``, called on the main process at every
            log event (raise from it to abort the run; checkpoints already written stay resumable).

    Reference model: TRL is given the merged SFT model with a *fresh* LoRA (``peft_config``) and
    ``ref_model=None``, so it computes reference log-probs by disabling the adapter. LoRA's B matrix
    starts at zero, so the adapter-disabled model *is* the merged SFT model exactly (not a
    re-loaded copy that could differ by dtype or quantisation), and only one copy of the weights
    is in memory, which is what makes a 1.5B QLoRA run fit a single consumer GPU.
    """
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    device = _resolve_device(device)
    on_cuda = device == "cuda"
    if config.use_qlora and not on_cuda:
        raise ValueError("use_qlora=True needs device='cuda': 4-bit kernels do not fit CPU training")
    if config.use_qlora is None:
        use_qlora = on_cuda and bitsandbytes_usable()
    elif config.use_qlora:
        if not bitsandbytes_usable():
            raise ValueError("use_qlora=True but bitsandbytes cannot run 4-bit kernels here")
        use_qlora = True
    else:
        use_qlora = False

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_source(policy_path, sft_adapter_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = build_preference_dataset(pairs, tokenizer, weighted, config.prompt_format)

    fingerprint = _run_fingerprint(policy_path, sft_adapter_path, config, weighted, len(dataset))
    resume_from = last_checkpoint(out)
    fp_path = out / RUN_CONFIG_FILE
    if resume_from is not None and fp_path.exists():
        previous = json.loads(fp_path.read_text())
        diff = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
        if diff:
            raise ValueError(
                f"{out} holds checkpoints of a different run (differs in {diff}); use another output_dir or delete it"
            )

    model, precision = load_policy(policy_path, sft_adapter_path, device, use_qlora, out)
    grad_ckpt = on_cuda and config.gradient_checkpointing is not False
    bf16 = on_cuda and precision in ("qlora-nf4-bf16", "lora-bf16")
    args = DPOConfig(
        output_dir=str(out),
        beta=config.beta,
        loss_type=["sigmoid"],
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # transformers 5: a value < 1 is a fraction of the steps
        max_grad_norm=config.max_grad_norm,
        disable_dropout=config.disable_dropout,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=config.dataloader_num_workers,
        ddp_find_unused_parameters=False,  # every LoRA parameter gets a gradient
        remove_unused_columns=True,  # the weight column survives via the signature columns
        **device_arguments(on_cuda, use_qlora, bf16=bf16, gradient_checkpointing=grad_ckpt),
    )
    peft_config = config.lora.peft_config()
    callbacks = [_ProgressCallback(progress_callback)] if progress_callback else None
    trainer = WeightedDPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        weighting=config.weighting,
    )
    if len(trainer.train_dataset) == 0:
        raise ValueError(
            f"all {len(dataset)} pairs were dropped while tokenizing: every prompt is longer than "
            f"max_length={config.max_length} tokens; raise dpo.max_length"
        )
    if trainer.accelerator.is_main_process:
        fp_path.write_text(json.dumps(fingerprint, indent=2))
    if resume_from:
        logger.info("resuming DPO from %s", resume_from)
    train_out = trainer.train(resume_from_checkpoint=resume_from)

    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))
    log_history = list(trainer.state.log_history)
    step_logs = [r for r in log_history if "loss" in r]
    metrics: dict[str, Any] = {
        "weighted": bool(weighted),
        "strategy": "hardneg-weighted" if weighted else "uniform",
        "device": device,
        "precision": precision,
        "quantization": "nf4-double-quant-bf16-compute" if use_qlora else None,
        "use_cpu": not on_cuda,
        "gradient_checkpointing": bool(grad_ckpt),
        "reference": "adapter-disabled policy (merged SFT model)" if sft_adapter_path else "adapter-disabled policy",
        "n_pairs": len(dataset),
        "n_train_examples": len(trainer.train_dataset),
        "n_dropped_prompt_too_long": len(dataset) - len(trainer.train_dataset),
        "global_step": int(trainer.state.global_step),
        "resumed_from": resume_from,
        "trl_version": trl.__version__,
        **{k: v for k, v in train_out.metrics.items()},
    }
    if step_logs:
        last = step_logs[-1]
        for k in ("loss", "rewards/margins", "rewards/accuracies", "weight/mean", "weight/n_clipped"):
            if k in last:
                metrics[f"final/{k}"] = last[k]
    png = None
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(str(adapter_dir))
        provenance = {
            "policy_path": str(policy_path),
            "sft_adapter_path": str(sft_adapter_path) if sft_adapter_path else None,
            "precision": precision,
            "weighted": bool(weighted),
            "config": config.to_dict(),
            "trl_version": trl.__version__,
        }
        (adapter_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2))
        png = plot_dpo_curves(log_history, out / "loss_curve.png",
                              title=f"DPO ({'weighted' if weighted else 'uniform'}) — {Path(policy_path).name}")
    trainer.accelerator.wait_for_everyone()
    del trainer, model
    gc.collect()
    return DPOResult(adapter_dir=str(adapter_dir), log_history=log_history, metrics=metrics, loss_curve_png=png)


# --------------------------------------------------------------------------------------------
# CLI: python -m hardneg.dpo --pairs PAIRS.parquet --policy PATH --output DIR [--weighted]


def _read_pairs(path: str):
    import pandas as pd

    p = Path(path)
    if p.suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if p.suffix in (".jsonl", ".json"):
        return pd.read_json(p, lines=p.suffix == ".jsonl")
    raise ValueError(f"--pairs must be .parquet or .jsonl, got {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hardneg.dpo",
        description="Weighted (or uniform) DPO with a fresh LoRA on top of the SFT model. Works as is under "
        "`accelerate launch` (one process per GPU).",
    )
    d = DPORunConfig()
    parser.add_argument("--pairs", required=True, help="pairs table (.parquet or .jsonl): pair_id, prompt, chosen, "
                        "rejected, raw_weight (or weight)")
    parser.add_argument("--policy", required=True, help="starting model directory")
    parser.add_argument("--output", required=True, help="run directory (resumed if it holds a checkpoint)")
    parser.add_argument("--weighted", action="store_true", help="verifier-weighted DPO (default: uniform weights)")
    parser.add_argument("--sft-adapter", default=None, help="SFT LoRA adapter merged into the policy first")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--max-steps", type=int, default=d.max_steps)
    parser.add_argument("--epochs", type=float, default=d.num_train_epochs)
    parser.add_argument("--beta", type=float, default=d.beta)
    parser.add_argument("--lr", type=float, default=d.learning_rate)
    parser.add_argument("--batch-size", type=int, default=d.per_device_train_batch_size, help="per device")
    parser.add_argument("--grad-accum", type=int, default=d.gradient_accumulation_steps,
                        help="on N GPUs use 16/N to keep the global batch of 64")
    parser.add_argument("--max-length", type=int, default=d.max_length)
    parser.add_argument("--lam", type=float, default=d.weighting.lam)
    parser.add_argument("--w-min", type=float, default=d.weighting.w_min)
    parser.add_argument("--w-max", type=float, default=d.weighting.w_max)
    parser.add_argument("--save-steps", type=int, default=d.save_steps)
    parser.add_argument("--logging-steps", type=int, default=d.logging_steps)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--no-qlora", action="store_true", help="LoRA without 4-bit quantisation on CUDA")
    ns = parser.parse_args(argv)

    config = DPORunConfig(
        beta=ns.beta,
        learning_rate=ns.lr,
        num_train_epochs=ns.epochs,
        max_steps=ns.max_steps,
        per_device_train_batch_size=ns.batch_size,
        gradient_accumulation_steps=ns.grad_accum,
        max_length=ns.max_length,
        weighting=WeightingConfig(lam=ns.lam, w_min=ns.w_min, w_max=ns.w_max),
        save_steps=ns.save_steps,
        logging_steps=ns.logging_steps,
        seed=ns.seed,
        use_qlora=False if ns.no_qlora else None,
    )
    result = train_dpo(
        policy_path=ns.policy,
        pairs=_read_pairs(ns.pairs),
        output_dir=ns.output,
        config=config,
        weighted=ns.weighted,
        device=ns.device,
        sft_adapter_path=ns.sft_adapter,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {"adapter_dir": result.adapter_dir, "loss_curve_png": result.loss_curve_png,
                   "metrics": result.metrics}
        print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
