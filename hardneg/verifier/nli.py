"""NLI contradiction probabilities for d4 (DeBERTa-v3-base fine-tuned on MultiNLI by default).

Pluggable: any `AutoModelForSequenceClassification` + tokenizer whose `config.id2label`
names a 'contradiction' label (case-insensitive). Pairs are de-duplicated, sorted by
length so padding is small, run in batches, and cached by a hash of the pair: K
candidates of a problem share the (question condition, step) pairs of identical steps.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .embedding import LRUCache, ModelLoadError, pick_device, resolve_local_files_only, text_key

__all__ = ["NLIScorer", "contradiction_index"]


def contradiction_index(config) -> int:
    """Index of the 'contradiction' class in `config.id2label`."""
    id2label = getattr(config, "id2label", None) or {}
    for idx, label in id2label.items():
        if str(label).strip().lower() == "contradiction":
            return int(idx)
    raise ModelLoadError(
        f"NLI model has no 'contradiction' label (id2label={dict(id2label)}); it cannot score contradictions. "
        "Use an MNLI-style model or set VerifierConfig(use_nli=False)."
    )


class NLIScorer:
    """`contradiction(pairs)` -> probability that the premise contradicts the hypothesis."""

    def __init__(self, model, tokenizer, device: Optional[str] = None, batch_size: int = 16, max_length: int = 256, cache_size: int = 100_000):
        import torch

        self.torch = torch
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.index = contradiction_index(model.config)
        self.cache = LRUCache(cache_size)
        self.scored_pairs = 0

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device: Optional[str] = None,
        batch_size: int = 16,
        max_length: int = 256,
        cache_size: int = 100_000,
        local_files_only: Optional[bool] = None,
    ) -> "NLIScorer":
        local = resolve_local_files_only(name_or_path, local_files_only)
        try:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local)
            model = AutoModelForSequenceClassification.from_pretrained(name_or_path, local_files_only=local)
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            where = "from the local cache (offline)" if local else "from the hub"
            raise ModelLoadError(
                f"NLI model {name_or_path!r} could not be loaded {where} ({type(exc).__name__}: {str(exc)[:300]}). "
                "Set VerifierConfig(use_nli=False) (CLI: --no-nli) to score d4 with the programmatic value-flow "
                "check alone, or set nli_model to a local folder holding an MNLI sequence-classification model."
            ) from exc
        return cls(model, tokenizer, device=device, batch_size=batch_size, max_length=max_length, cache_size=cache_size)

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        keys = [text_key(p, h) for p, h in pairs]
        out = np.empty(len(pairs), dtype=np.float32)
        todo: dict[bytes, tuple[str, str]] = {}
        for i, k in enumerate(keys):
            v = self.cache.get(k)
            if v is None:
                todo.setdefault(k, pairs[i])
                out[i] = np.nan
            else:
                out[i] = v
        if todo:
            items = sorted(todo.items(), key=lambda kv: len(kv[1][0]) + len(kv[1][1]))
            probs: dict[bytes, float] = {}
            torch = self.torch
            with torch.inference_mode():
                for start in range(0, len(items), self.batch_size):
                    chunk = items[start : start + self.batch_size]
                    enc = self.tokenizer(
                        [p for _, (p, _) in chunk],
                        [h for _, (_, h) in chunk],
                        truncation=True,
                        max_length=self.max_length,
                        padding=True,
                        return_tensors="pt",
                    ).to(self.device)
                    logits = self.model(**enc).logits.float()
                    p = torch.softmax(logits, dim=-1)[:, self.index].cpu().numpy()
                    for (k, _), v in zip(chunk, p):
                        probs[k] = float(v)
            self.scored_pairs += len(items)
            for k, v in probs.items():
                self.cache.put(k, v)
            for i, k in enumerate(keys):
                if np.isnan(out[i]):
                    out[i] = probs[k]
        return out
