"""A weighted (or uniform) DPO run: dataset, policy loading, held-out metrics, plots, CLI.

The DPO stage is split along TRL's own line (config / trainer / script):

- `hardneg.dpo_config.DPORunConfig`: the hyper-parameters, plain dataclasses (a profile loads
  without importing torch or TRL);
- `hardneg.dpo_trainer.WeightedDPOTrainer` / `WeightedDPOConfig`: TRL's `DPOTrainer` with the
  paper's per-pair weights, normalised over the optimizer batch (SPEC §2.5, paper eq. 4-7);
- this module, the run: `train_dpo` is the one entry the pipeline uses. It loads the policy
  (the family's starting checkpoint: the SFT-merged model for an SFT family), puts a fresh
  LoRA on top (QLoRA on CUDA, fp32 LoRA on CPU), holds some pairs out (whole problems,
  `hardneg.pairs.heldout_mask`) and measures reward margin and preference accuracy on them
  before and after training, resumes a killed run only from a checkpoint of the same run
  (fingerprint), saves the adapter in PEFT format *pointing at its real base by a path
  relative to the artifact root*, and plots the loss curve. The random-uniform baseline
  (``weighted=False``) runs the very same trainer with every weight 1, so both strategies
  share every hyper-parameter and code path.
- ``python -m hardneg.dpo ...`` is a CLI over `train_dpo` whose options are generated from
  `DPORunConfig` (so a knob is declared once), and works under ``accelerate launch`` on
  several GPUs (see docs/multi-gpu.md).

The names `DPORunConfig`, `WeightedDPOTrainer`, `WeightedDPOConfig` stay importable from here.
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
import types
import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import trl
from transformers import TrainerCallback

from .dpo_config import DPORunConfig
from .dpo_trainer import TESTED_TRL_MINOR, WeightedDPOConfig, WeightedDPOTrainer, WeightedPreferenceCollator
from .pairs import heldout_mask, pairs_sha256
from .policy import load_merged_policy, merge_adapters
from .prompts import training_prompt
from .training import (
    RUN_CONFIG_FILE,
    bitsandbytes_usable,
    check_resume_fingerprint,
    device_arguments,
    point_adapter_at_base,
    portable_checkpoints_callback,
    portable_path,
    write_fingerprint,
)
from .weighting import WeightingConfig, validate_raw_weights

__all__ = [
    "DPORunConfig",
    "DPOResult",
    "WeightedDPOConfig",
    "WeightedDPOTrainer",
    "WeightedPreferenceCollator",
    "WeightingConfig",
    "TESTED_TRL_MINOR",
    "RUN_CONFIG_FILE",
    "build_preference_dataset",
    "heldout_preference_metrics",
    "load_dpo_policy",
    "load_policy",
    "train_dpo",
    "main",
]

logger = logging.getLogger(__name__)

REQUIRED_PAIR_COLUMNS = ("pair_id", "prompt", "chosen", "rejected")
PROVENANCE_FILE = "hardneg_dpo.json"


# --------------------------------------------------------------------------------------------
# Result


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


def _work_dtype(device: str) -> torch.dtype:
    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32


def prepare_base(policy_path: str, sft_adapter_path: str | None, device: str, work_dir: Path) -> str:
    """The model directory the DPO adapter sits on: `policy_path`, or it with the SFT adapter merged.

    With an SFT adapter the merged model is written once to ``work_dir/sft_merged`` (fp32 on CPU,
    bf16 on CUDA) and that directory becomes the adapter's base, so the saved adapter loads with
    plain PEFT on top of it. (The pipeline passes the family's already merged SFT model as
    `policy_path` and no adapter.)
    """
    if not sft_adapter_path:
        return str(policy_path)
    from accelerate import PartialState

    merged_dir = Path(work_dir) / "sft_merged"
    marker = merged_dir / ".complete"
    stamp = {"policy": portable_path(policy_path, work_dir), "sft": portable_path(sft_adapter_path, work_dir),
             "dtype": str(_work_dtype(device))}
    if not (marker.exists() and json.loads(marker.read_text()) == stamp):
        state = PartialState()
        if state.is_main_process:
            merged = _merge_sft(policy_path, sft_adapter_path, _work_dtype(device))
            merged.save_pretrained(merged_dir)
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(_tokenizer_source(policy_path, sft_adapter_path)).save_pretrained(merged_dir)
            marker.write_text(json.dumps(stamp))
            del merged
            gc.collect()
        state.wait_for_everyone()
    return str(merged_dir)


def load_policy(policy_path: str, sft_adapter_path: str | None, device: str, use_qlora: bool, work_dir: Path):
    """The starting policy of DPO = the SFT model (the base with the SFT adapter merged in).

    Returns ``(model, precision)``. fp32 on CPU; bf16 on CUDA (fp32 where bf16 is unsupported);
    with `use_qlora` the (merged) weights are loaded quantised to NF4 once, rather than
    requantising an already-quantised base.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if device == "cpu":
        precision = "lora-fp32"
    else:
        bf16 = torch.cuda.is_bf16_supported()
        precision = "qlora-nf4-bf16" if use_qlora else ("lora-bf16" if bf16 else "lora-fp32")
    source = prepare_base(policy_path, sft_adapter_path, device, Path(work_dir))
    if not use_qlora:
        return AutoModelForCausalLM.from_pretrained(source, dtype=_work_dtype(device)), precision

    from accelerate import PartialState

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


def find_adapter_base(adapter_dir: str | Path) -> str:
    """The local directory (or hub id) of a saved adapter's base model.

    `adapter_config.json` names it relative to the artifact root; the root is an ancestor of the
    adapter folder, so the first ancestor under which the path exists is taken. An absolute path
    (an adapter written by an older version) or a hub id is returned as is.
    """
    adapter_dir = Path(adapter_dir)
    base = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    if Path(base).is_absolute():
        return base
    for anc in [adapter_dir, *adapter_dir.resolve().parents]:
        if (anc / base / "config.json").exists():
            return str(anc / base)
    if Path(base, "config.json").exists():
        return base
    return base  # a hub id


def load_dpo_policy(adapter_dir: str, device: str = "cpu"):
    """Rebuild a trained policy from `train_dpo`'s adapter dir: its base with the DPO adapter merged.

    The base is the one `adapter_config.json` names (the SFT-merged model for an SFT family), found
    relative to the artifact root. Returns ``(model, tokenizer)`` in fp32 on CPU / bf16 on CUDA.
    """
    return load_merged_policy(find_adapter_base(adapter_dir), [adapter_dir], _resolve_device(device))


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


def _run_fingerprint(policy_path, sft_adapter_path, config: DPORunConfig, weighted: bool, pairs_sha: str,
                     heldout_fraction: float, root) -> dict:
    # What must not change between a killed run and its resumption (else the checkpoint means another run).
    # max_steps/epochs are in: the LR schedule restored from the checkpoint was built for them. Paths are
    # written relative to the artifact root: this file is an artifact too.
    keep = ("beta", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "max_length", "lr_scheduler_type", "warmup_ratio", "max_grad_norm",
            "lora", "seed", "weighting", "disable_dropout")
    cfg = config.to_dict()
    return {
        "policy_path": portable_path(policy_path, root),
        "sft_adapter_path": portable_path(sft_adapter_path, root),
        "weighted": bool(weighted),
        "pairs_sha256": pairs_sha,
        "heldout_fraction": float(heldout_fraction),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),  # the global batch scales with it
        **{k: cfg[k] for k in keep},
    }


def _sequence_logps(model, batch) -> torch.Tensor:
    """Summed completion log-probs of each sequence of a collated preference batch ([chosen; rejected])."""
    ids, attn, cm = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits
    out = []
    for row in range(ids.shape[0]):  # one row at a time: a 150k-token vocabulary in fp32 is large
        lp = torch.log_softmax(logits[row, :-1].float(), dim=-1).gather(-1, ids[row, 1:, None]).squeeze(-1)
        out.append((lp * cm[row, 1:]).sum())
    return torch.stack(out)


@torch.no_grad()
def heldout_preference_metrics(trainer, dataset, beta: float) -> dict | None:
    """Reward margin and preference accuracy of the trainer's current policy on held-out pairs.

    Per pair, with the policy π (LoRA on) and the reference (LoRA off, the frozen starting model):
    ``reward_margin`` = β[(log π(c) − log ref(c)) − (log π(r) − log ref(r))] (DPO's implicit
    reward margin, as TRL logs it), ``reward_accuracy`` = share of pairs with a positive one;
    ``logp_margin`` / ``logp_accuracy`` = log π(c) − log π(r) and the share where π prefers the
    chosen text, and the same for the reference (``ref_logp_*``). Before training π is the
    reference (fresh LoRA), so the reward terms are 0 there by construction and the log-prob
    terms are the reference's own preference. Gathered over all processes; None without pairs.
    """
    if dataset is None or len(dataset) == 0:
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    was_training = model.training
    model.eval()
    margins, pol, ref = [], [], []
    try:
        for batch in trainer.get_eval_dataloader(dataset):
            batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
            pc, pr = _sequence_logps(model, batch).chunk(2)
            with model.disable_adapter():
                rc, rr = _sequence_logps(model, batch).chunk(2)
            per_pair = torch.stack([pc - pr, rc - rr, beta * ((pc - rc) - (pr - rr))], dim=1)
            per_pair = trainer.accelerator.gather_for_metrics(per_pair).double().cpu()
            pol.append(per_pair[:, 0])
            ref.append(per_pair[:, 1])
            margins.append(per_pair[:, 2])
    finally:
        model.train(was_training)
    pol_m, ref_m, rew = torch.cat(pol), torch.cat(ref), torch.cat(margins)
    return {
        "n_pairs": int(rew.numel()),
        "reward_margin": float(rew.mean()),
        "reward_accuracy": float((rew > 0).double().mean()),
        "logp_margin": float(pol_m.mean()),
        "logp_accuracy": float((pol_m > 0).double().mean()),
        "ref_logp_margin": float(ref_m.mean()),
        "ref_logp_accuracy": float((ref_m > 0).double().mean()),
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
    heldout_fraction: float = 0.0,
    artifact_root: str | None = None,
    other_runs: str = "error",
) -> DPOResult:
    """Train one DPO adapter on `pairs` and return where it went and how it went.

    Args:
        policy_path: the family's starting checkpoint (a `transformers` model directory; for an SFT
            family the SFT-merged model).
        pairs: DataFrame with ``pair_id, prompt, chosen, rejected`` and, when `weighted`, ``raw_weight``
            (``problem_id``, when present, makes the held-out split by whole problems).
        output_dir: run directory: checkpoints (``checkpoint-N``), ``adapter/``, ``loss_curve.png``.
            A complete checkpoint of the same run (same fingerprint) is resumed from; one of another
            run is an error, or deleted with `other_runs="discard"` (`training.check_resume_fingerprint`).
        config: hyper-parameters, shared by both strategies.
        weighted: True = verifier-weighted DPO (raw weights normalised per optimizer batch); False =
            the random-uniform baseline, the same trainer with every weight 1 (exactly TRL's loss).
        device: "cpu" (fp32 LoRA, ``use_cpu=True``), "cuda" (QLoRA when bitsandbytes works, else
            bf16 LoRA), or "auto".
        sft_adapter_path: an SFT LoRA adapter to merge into `policy_path` first (written once to
            ``output_dir/sft_merged``, which becomes the adapter's base). Its merged model is both the
            starting policy and the frozen reference.
        progress_callback: ``fn(global_step, max_steps, logs)``, called on the main process at every
            log event (raise from it to abort the run; checkpoints already written stay resumable).
        heldout_fraction: share of pairs (whole problems, `hardneg.pairs.heldout_mask`) not trained
            on; reward margin and preference accuracy on them are measured before and after training
            (``metrics["heldout"]``). 0: train on everything.
        artifact_root: the directory paths inside the artifacts are written relative to (the
            pipeline's artifact root); None: `output_dir`.

    Reference model: TRL is given the starting model with a *fresh* LoRA (``peft_config``) and
    ``ref_model=None``, so it computes reference log-probs by disabling the adapter. LoRA's B matrix
    starts at zero, so the adapter-disabled model *is* the starting model exactly (not a
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
    root = Path(artifact_root) if artifact_root else out
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_source(policy_path, sft_adapter_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = build_preference_dataset(pairs, tokenizer, weighted, config.prompt_format)
    held = heldout_mask(pairs.reset_index(drop=True), heldout_fraction)
    train_ds = dataset.select([i for i in range(len(dataset)) if not held[i]])
    heldout_ds = dataset.select([i for i in range(len(dataset)) if held[i]]) if held.any() else None
    pairs_sha = pairs_sha256(pairs)

    fingerprint = _run_fingerprint(policy_path, sft_adapter_path, config, weighted, pairs_sha, heldout_fraction, root)
    resume_from = check_resume_fingerprint(out, fingerprint, other_runs)

    model, precision = load_policy(policy_path, sft_adapter_path, device, use_qlora, out)
    base_dir = prepare_base(policy_path, sft_adapter_path, device, out)  # merged by load_policy already
    grad_ckpt = on_cuda and config.gradient_checkpointing is not False
    bf16 = on_cuda and precision in ("qlora-nf4-bf16", "lora-bf16")
    args = WeightedDPOConfig(
        output_dir=str(out),
        beta=config.beta,
        weight_lambda=config.weighting.lam if weighted else 0.0,
        weight_min=config.weighting.w_min,
        weight_max=config.weighting.w_max,
        loss_type=["sigmoid"],
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
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
        **device_arguments(on_cuda, use_qlora, bf16=bf16, gradient_checkpointing=grad_ckpt,
                           report_to=config.report_to),
    )
    peft_config = config.lora.peft_config()
    callbacks = [portable_checkpoints_callback(base_dir, root)]
    if progress_callback:
        callbacks.append(_ProgressCallback(progress_callback))
    trainer = WeightedDPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=train_ds,
        eval_dataset=heldout_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    if len(trainer.train_dataset) == 0:
        raise ValueError(
            f"all {len(train_ds)} training pairs were dropped while tokenizing: every prompt is longer than "
            f"max_length={config.max_length} tokens; raise dpo.max_length"
        )
    if trainer.accelerator.is_main_process:
        write_fingerprint(out, fingerprint)
    heldout_tok = trainer.eval_dataset if heldout_ds is not None else None
    heldout_before = heldout_preference_metrics(trainer, heldout_tok, config.beta)
    if resume_from:
        logger.info("resuming DPO from %s", resume_from)
    train_out = trainer.train(resume_from_checkpoint=resume_from)
    heldout_after = heldout_preference_metrics(trainer, heldout_tok, config.beta)

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
        "weight_normalization": "optimizer batch (all micro-batches of an accumulation step, all processes)",
        "n_pairs": len(dataset),
        "n_heldout_pairs": int(held.sum()),
        "n_train_examples": len(trainer.train_dataset),
        "n_dropped_prompt_too_long": len(train_ds) - len(trainer.train_dataset),
        "pairs_sha256": pairs_sha,
        "global_step": int(trainer.state.global_step),
        "resumed_from": portable_path(resume_from, root) if resume_from else None,
        "trl_version": trl.__version__,
        "report_to": config.report_to,
        **{k: v for k, v in train_out.metrics.items()},
    }
    if heldout_before is not None:
        metrics["heldout"] = {"n_pairs": heldout_before["n_pairs"], "before": heldout_before, "after": heldout_after}
    if step_logs:
        last = step_logs[-1]
        for k in ("loss", "rewards/margins", "rewards/accuracies", "weight/mean", "weight/n_clipped"):
            if k in last:
                metrics[f"final/{k}"] = last[k]
    png = None
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(str(adapter_dir))
        point_adapter_at_base(adapter_dir, base_dir, root)
        provenance = {
            "base": portable_path(base_dir, root),
            "policy_path": portable_path(policy_path, root),
            "sft_adapter_path": portable_path(sft_adapter_path, root),
            "paths_relative_to": "artifact root",
            "precision": precision,
            "weighted": bool(weighted),
            "pairs_sha256": pairs_sha,
            "heldout_fraction": float(heldout_fraction),
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
# CLI: python -m hardneg.dpo --pairs PAIRS.parquet --policy PATH --output DIR [--weighted] [--<knob> VALUE ...]


def _read_pairs(path: str):
    import pandas as pd

    p = Path(path)
    if p.suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if p.suffix in (".jsonl", ".json"):
        return pd.read_json(p, lines=p.suffix == ".jsonl")
    raise ValueError(f"--pairs must be .parquet or .jsonl, got {path}")


def _parse_bool_or_auto(text: str) -> bool | None:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    if value in ("auto", "none", "null"):
        return None
    raise argparse.ArgumentTypeError(f"expected true, false or auto, got {text!r}")


def _add_config_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "") -> list[str]:
    """One option per `DPORunConfig` field (nested dataclasses as dotted names, as in a profile's YAML)."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        dotted = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            names += _add_config_arguments(parser, tp, dotted + ".")
            continue
        flag = "--" + dotted.replace("_", "-")
        help_text = f.metadata.get("help", "") if f.metadata else ""
        if not help_text:
            help_text = dotted
        kwargs: dict[str, Any] = {"dest": dotted, "default": argparse.SUPPRESS, "help": help_text}
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        is_union = typing.get_origin(tp) in (typing.Union, types.UnionType)
        base = args[0] if is_union and args else tp
        if base is bool:
            kwargs.update(type=_parse_bool_or_auto, metavar="{true,false,auto}")
        elif typing.get_origin(base) is list:
            kwargs.update(nargs="+")
        elif base in (int, float, str):
            kwargs.update(type=base)
        parser.add_argument(flag, **kwargs)
        names.append(dotted)
    return names


def _apply_overrides(config: DPORunConfig, overrides: dict[str, Any]) -> DPORunConfig:
    data = config.to_dict()
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return DPORunConfig.from_dict(data)  # validated like the profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hardneg.dpo",
        description="Weighted (or uniform) DPO with a fresh LoRA on top of the starting model. Every DPORunConfig "
        "field is an option (nested ones dotted, as in a profile: --weighting.lam 0.3); defaults come from "
        "--profile's dpo section, else the dataclass. Works as is under `accelerate launch` (one process per GPU).",
    )
    parser.add_argument("--pairs", required=True, help="pairs table (.parquet or .jsonl): pair_id, prompt, chosen, "
                        "rejected, raw_weight (or weight), optionally problem_id")
    parser.add_argument("--policy", required=True, help="starting model directory")
    parser.add_argument("--output", required=True, help="run directory (resumed if it holds a checkpoint of this run)")
    parser.add_argument("--weighted", action="store_true", help="verifier-weighted DPO (default: uniform weights)")
    parser.add_argument("--sft-adapter", default=None, help="SFT LoRA adapter merged into the policy first")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train")
    parser.add_argument("--profile", default=None, help="profile whose `dpo` and `pairs` sections give the defaults")
    parser.add_argument("--heldout-fraction", type=float, default=None,
                        help="share of pairs held out of training "
                        "(default: the profile's pairs.heldout_fraction, else 0)")
    parser.add_argument("--artifact-root", default=None, help="root that paths in the artifacts are relative to "
                        "(default: --output)")
    _add_config_arguments(parser, DPORunConfig)
    ns = parser.parse_args(argv)
    fixed = {"pairs", "policy", "output", "weighted", "sft_adapter", "device", "profile", "heldout_fraction",
             "artifact_root"}
    overrides = {k: v for k, v in vars(ns).items() if k not in fixed}

    base_config, heldout = DPORunConfig(), 0.0
    if ns.profile:
        from .profiles import load_profile

        prof = load_profile(ns.profile)
        base_config, heldout = prof.dpo, prof.pairs.heldout_fraction
    if ns.heldout_fraction is not None:
        heldout = ns.heldout_fraction
    try:
        config = _apply_overrides(base_config, overrides)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    result = train_dpo(
        policy_path=ns.policy,
        pairs=_read_pairs(ns.pairs),
        output_dir=ns.output,
        config=config,
        weighted=ns.weighted,
        device=ns.device,
        sft_adapter_path=ns.sft_adapter,
        heldout_fraction=heldout,
        artifact_root=ns.artifact_root,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {"adapter_dir": result.adapter_dir, "loss_curve_png": result.loss_curve_png,
                   "metrics": result.metrics}
        print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
