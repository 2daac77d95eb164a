"""`WeightedDPOTrainer`: TRL 1.16's `DPOTrainer` with the paper's per-pair weights (eq. 4-7).

What changes against TRL, and why:

- The objective. Each pair carries a raw importance weight (dataset column ``weight``); the
  loss is ``(1/B) Σ w̃_i ℓ_i`` instead of ``(1/B) Σ ℓ_i``, with ``ℓ_i`` TRL's sigmoid DPO loss
  and ``w̃`` the normalised, λ-tempered, clipped weight (`hardneg.weighting`, where the
  formula is written out next to the paper's).
- The batch the weights are normalised over is the *optimizer* batch (SPEC §2.5): every
  micro-batch of one gradient-accumulation step on every process. transformers' Trainer
  fetches one accumulation step's micro-batches together (`Trainer.get_batch_samples`,
  called once per optimizer step in `_inner_training_loop`); this trainer overrides it to
  sum the raw weights and count the pairs of those micro-batches, all-reduces both across
  processes, and hands the mean to each micro-batch (key ``weight_batch_mean``). Each
  micro-batch then contributes ``mean_mb(w̃ ℓ)``, the Trainer divides by the number of
  micro-batches and DDP averages over processes, so one step's gradient is that of
  ``(1/B) Σ_{i ∈ optimizer batch} w̃_i ℓ_i`` (equal-sized micro-batches; a short last
  micro-batch weighs as in TRL). Outside training (evaluation, a direct `compute_loss`
  call) there is no optimizer batch and the micro-batch's own mean is used.
- λ and the clip bounds are fields of `WeightedDPOConfig`, TRL's `DPOConfig` plus
  ``weight_lambda``, ``weight_min``, ``weight_max``: they reach the loss the way β does
  (``self.args``), validated once when the config is built, not on every batch.
- TRL 1.x has no weight column, so it is carried by hand through the three places that
  would drop it: the signature columns that `remove_unused_columns` keeps, the preference
  collator, and `compute_loss`, which pops it before the model sees the batch. (TRL's
  tokenisation `map` keeps unknown columns.)

Pinned to TRL 1.16: the weighted loss mirrors the sigmoid path of TRL 1.16's
``DPOTrainer._compute_loss`` (same log-probs, same reference handling, same metrics), and
tests/test_dpo.py checks that with λ = 0 it equals TRL's loss on the same batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
import trl
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from .weighting import check_batch_params, normalize_batch_weights

TESTED_TRL_MINOR = "1.16"
BATCH_MEAN_KEY = "weight_batch_mean"

if not trl.__version__.startswith(TESTED_TRL_MINOR + "."):
    warnings.warn(
        f"hardneg.dpo_trainer mirrors TRL {TESTED_TRL_MINOR}'s DPO loss; TRL {trl.__version__} is installed. "
        "Run tests/test_dpo.py (loss equivalence with TRL) before trusting results.",
        RuntimeWarning,
        stacklevel=2,
    )


@dataclass
class WeightedDPOConfig(DPOConfig):
    """TRL's `DPOConfig` plus the per-batch weighting of the loss (paper eq. 5-6, SPEC §2.5).

    Parameters:
        weight_lambda (`float`, defaults to `0.3`):
            λ in [0, 1]: ``w̃ = 1 + λ (ŵ − 1)``; 0 = plain DPO. The paper's `dataset_weight_lambda`.
        weight_min (`float`, defaults to `0.5`):
            Lower clip bound of w̃. The paper's `dataset_weight_min`.
        weight_max (`float`, defaults to `2.0`):
            Upper clip bound of w̃. The paper's `dataset_weight_max`.
    """

    weight_lambda: float = field(default=0.3, metadata={"help": "λ in [0, 1]: strength of the per-pair weights."})
    weight_min: float = field(default=0.5, metadata={"help": "Lower clip bound of the tempered weights."})
    weight_max: float = field(default=2.0, metadata={"help": "Upper clip bound of the tempered weights."})

    def __post_init__(self):
        check_batch_params(self.weight_lambda, self.weight_min, self.weight_max)
        super().__post_init__()


_NON_MODEL_KEYS = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", "weight", BATCH_MEAN_KEY}


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
    """`DPOTrainer` whose sigmoid loss weighs each pair by its optimizer-batch-normalised weight (eq. 7).

    Takes every `DPOTrainer` argument; `args` must be a `WeightedDPOConfig` (λ and the clip bounds
    live there, as β does). The
    train (and eval) dataset must have a ``weight`` column of finite, positive raw weights; use
    1.0 everywhere for plain DPO. Supported: ``loss_type=["sigmoid"]``, reverse-KL, no WPO
    weighting, no LD-DPO, text-only data; anything else is rejected up front rather than
    silently changing meaning.

    Logged per logging step (besides TRL's own metrics): ``weight/mean``, ``weight/min``,
    ``weight/max`` over the normalised weights of every pair seen since the last log, and
    ``weight/n_clipped``, the number of those pairs the clip changed.
    """

    def __init__(self, model, ref_model=None, args: DPOConfig | None = None, **kwargs):
        if "weighting" in kwargs:
            raise TypeError("WeightedDPOTrainer: pass λ and the clip bounds in "
                            "args=WeightedDPOConfig(weight_lambda=..., weight_min=..., weight_max=...), not weighting=")
        if args is not None and not isinstance(args, WeightedDPOConfig):
            raise TypeError("WeightedDPOTrainer needs args=WeightedDPOConfig(...) (TRL's DPOConfig plus weight_lambda, "
                            f"weight_min, weight_max), got {type(args).__name__}")
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
        if not isinstance(self.args, WeightedDPOConfig):  # args=None: TRL built a plain DPOConfig
            raise TypeError("WeightedDPOTrainer needs args=WeightedDPOConfig(...)")
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

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """One optimizer step's micro-batches, each told the mean raw weight of the whole optimizer batch.

        The Trainer calls this once per optimizer step with ``num_batches`` = the accumulation
        steps; the sum and count of the raw weights are all-reduced so that every process
        normalises by the same global mean (SPEC §2.5).
        """
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        weights = [b["weight"].reshape(-1) for b in batch_samples if "weight" in b]
        if weights:
            local = torch.cat([w.to(torch.float32) for w in weights])
            totals = torch.stack([local.sum(), torch.tensor(float(local.numel()))]).to(device)
            if self.accelerator.num_processes > 1:
                totals = self.accelerator.reduce(totals, reduction="sum")
            mean = (totals[0] / totals[1]).detach()
            for b in batch_samples:
                b[BATCH_MEAN_KEY] = mean
        return batch_samples, num_items_in_batch

    def compute_ref_log_probs(self, model, inputs):
        # `_precompute_ref_logps` feeds whole collated batches; the weight is not a model input.
        inputs = {k: v for k, v in inputs.items() if k not in ("weight", BATCH_MEAN_KEY)}
        return super().compute_ref_log_probs(model, inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)  # the caller's batch stays intact (tests reuse batches)
        raw = inputs.pop("weight", None)
        batch_mean = inputs.pop(BATCH_MEAN_KEY, None)  # None outside training: the micro-batch's own mean
        if raw is None:
            raise KeyError("batch has no 'weight' tensor: the dataset needs a 'weight' column")
        w = raw.to(torch.float32).reshape(-1)
        args = self.args
        w_tilde, stats = normalize_batch_weights(
            w, lam=args.weight_lambda, w_min=args.weight_min, w_max=args.weight_max, batch_mean=batch_mean,
            validate=False,  # validated once by WeightedDPOConfig
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
