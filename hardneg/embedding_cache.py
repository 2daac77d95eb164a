"""A persistent embedding cache: sentence vectors kept across runs, keyed by encoder and text hash.

Why: at paper scale the MiniLM encoder is most of the verifier's time. Changing a wrongness
weight or a funnel threshold re-verifies every candidate; with the vectors on disk that costs
analysis time only. Injected variants that share steps with their reference hit the same keys,
so within a shard only the changed steps are encoded (the in-process LRU of
`SentenceEmbedder` handles that; this store makes it survive the process).

Layout: `<root>/<encoder slug>/<segment>.parquet`, the slug of `model_identity` (the same model
at another path is the same folder), two columns: `key` (the 16-byte blake2b of the text,
`hardneg.verifier.embedding.text_key`) and `vector` (float32, L2-normalized as the encoder
returned it). One segment holds the vectors one shard of one partition used. The
process that verifies a shard reads its segment first and rewrites it afterwards (write to a
temporary name, then rename), so readers never see half a file and no two writers share a
segment (shards are disjoint). A cluster without a shared `$HARDNEG_HOME` still works: the
driver reads the segment, ships it with the shard, and writes back what the worker returns.
The price of per-shard segments is that a text used in two shards is stored twice; in return a
lookup reads one small file, never a global index.

The same segments, under `<root>/sympy-verdicts/`, keep what the SymPy worker answered for the
shard (`VerdictStore`, `hardneg.verifier.verdicts`): with both, a re-verification after a changed
threshold neither encodes nor waits for SymPy, and costs the step analysis alone.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from hardneg.verifier.embedding import Embedder, text_key

__all__ = ["EmbeddingStore", "VerdictStore", "CachingEmbedder", "LazyEmbedder", "encoder_slug", "model_identity", "segment_name"]


_SAMPLE = 1 << 20  # bytes read from each end of a large model file


def model_identity(model_id: str) -> str:
    """What a model *is*, whatever path it is loaded from: a hub id as given; for a local folder, a
    digest of its files (relative names, sizes, small files whole, a large file's first and last MiB).
    The same MiniLM installed in two virtual environments or two clones is one encoder, so its vectors
    and the verification run key survive a moved checkout; a changed file is another one."""
    path = Path(str(model_id)).expanduser()
    if not path.is_dir():
        return str(model_id)
    files = []
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)):
        st = f.stat()
        files.append((f.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns))
    # the listing (with modification times) is the cache key: a long-lived code server re-hashes a
    # model whose files were edited in place, and only then
    return _folder_digest(str(path), tuple(files))


@functools.lru_cache(maxsize=16)
def _folder_digest(path: str, files: tuple) -> str:
    h = hashlib.blake2b(digest_size=10)
    for rel, size, _ in files:
        h.update(f"{rel}\x00{size}\x00".encode("utf-8", "surrogatepass"))
        with open(Path(path) / rel, "rb") as fh:
            if size <= 2 * _SAMPLE:
                h.update(fh.read())
            else:
                h.update(fh.read(_SAMPLE))
                fh.seek(size - _SAMPLE)
                h.update(fh.read(_SAMPLE))
    return f"local-{h.hexdigest()}"


def encoder_slug(encoder_id: str) -> str:
    """A folder name for an encoder id (hub id or path): `sentence-transformers/all-MiniLM-L6-v2`
    -> `sentence-transformers--all-MiniLM-L6-v2`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", str(encoder_id).strip("/")).strip("-.")
    return slug[-120:] or "encoder"


def segment_name(family: str, seed: int, shard: int) -> str:
    """A file-safe segment name for one shard of a partition, unique for any family name."""
    digest = hashlib.sha1(f"{family}\x00{seed}".encode("utf-8", "surrogatepass")).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", family).strip("._")[:60] or "family"
    return f"{readable}-{digest}-{int(seed)}-{int(shard):05d}"


class LazyEmbedder:
    """Loads the real encoder on the first `encode` call: a re-verification the cache fully
    answers never pays the ~10 s of importing sentence-transformers and loading MiniLM."""

    def __init__(self, load):
        self._load = load
        self._inner = None
        self.error: Exception | None = None
        """Why loading failed, kept because a caller may swallow encode errors (the verifier falls back
        per candidate); whoever owns this embedder re-raises it (see `verification.ShardVerifier`)."""

    @property
    def inner(self):
        if self._inner is None:
            try:
                self._inner = self._load()
            except Exception as exc:
                self.error = exc
                raise
        return self._inner

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    @property
    def encode_seconds(self) -> float:
        """Seconds spent encoding so far (0 while the encoder was never needed)."""
        return getattr(self._inner, "encode_seconds", 0.0) if self._inner is not None else 0.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode(texts)


class EmbeddingStore:
    """Parquet segments of (text hash -> vector) for one encoder."""

    def __init__(self, root: str | Path, encoder_id: str):
        self.encoder_id = encoder_id
        self.dir = Path(root) / encoder_slug(model_identity(encoder_id))

    def path(self, segment: str) -> Path:
        return _segment_path(self.dir, segment)

    def load(self, segment: str) -> dict[bytes, np.ndarray]:
        """The segment's vectors; {} when it does not exist or cannot be read (a cache miss, never an error)."""

        def vectors(table) -> dict[bytes, np.ndarray]:
            flat = table.column("vector").combine_chunks()
            mat = flat.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, flat.type.list_size)
            return dict(zip(table.column("key").to_pylist(), mat))

        return _read_segment(self.path(segment), vectors)

    def save(self, segment: str, vectors: Mapping[bytes, np.ndarray]) -> int:
        """Replace the segment with `vectors` (atomic rename); returns the number stored."""
        import pyarrow as pa

        if not vectors:
            return 0
        path = self.path(segment)
        keys = list(vectors)
        mat = np.stack([np.asarray(vectors[k], dtype=np.float32) for k in keys])
        vec = pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])
        _write_atomic(pa.table({"key": pa.array(keys, pa.binary(16)), "vector": vec}), path)
        return len(keys)

    def segments(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.parquet")) if self.dir.is_dir() else []


def _segment_path(folder: Path, segment: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", segment) or segment.startswith("."):
        raise ValueError(f"cache segment {segment!r}: use letters, digits, '.', '_', '-'")
    return folder / f"{segment}.parquet"


def _read_segment(path: Path, decode: Callable) -> dict:
    """decode(the parquet table at path), or {} when the file is missing or cannot be read or decoded: a damaged
    cache file costs encoding or SymPy time, never the run."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return {}
    try:
        return decode(pq.read_table(path))
    except Exception:  # noqa: BLE001 - see above
        return {}


def _write_atomic(table, path: Path) -> None:
    """Write a parquet file under a temporary name, then rename: readers never see half a file."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class VerdictStore:
    """Parquet segments of (question key -> verdict as JSON text), one per shard (`VerdictMemo`).

    The key holds the verifier version, so a new version never reads an old verdict."""

    def __init__(self, root: str | Path):
        self.dir = Path(root) / "sympy-verdicts"

    def path(self, segment: str) -> Path:
        return _segment_path(self.dir, segment)

    def load(self, segment: str) -> dict[bytes, str]:
        """The segment's verdicts; {} when it does not exist or cannot be read (a cache miss, never an error)."""
        return _read_segment(self.path(segment),
                             lambda table: dict(zip(table.column("key").to_pylist(), table.column("verdict").to_pylist())))

    def save(self, segment: str, verdicts: Mapping[bytes, str]) -> int:
        """Replace the segment with `verdicts` (atomic rename); returns the number stored."""
        import pyarrow as pa

        if not verdicts:
            return 0
        keys = list(verdicts)
        table = pa.table({"key": pa.array(keys, pa.binary(16)), "verdict": pa.array([verdicts[k] for k in keys], pa.string())})
        _write_atomic(table, self.path(segment))
        return len(keys)


class CachingEmbedder:
    """An `Embedder` that answers from `known` (text hash -> vector) before asking `inner`.

    Every vector it hands out is also kept in `used`, so the caller can store exactly what a
    shard needed (hits and new encodings) as that shard's segment.
    """

    def __init__(self, inner: Embedder, known: Optional[Mapping[bytes, np.ndarray]] = None):
        self.inner = inner
        self.known = dict(known or {})
        self.used: dict[bytes, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in self.known and k not in missing:
                missing[k] = t
        self.hits += len(set(keys)) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = np.asarray(self.inner.encode(list(missing.values())), dtype=np.float32)
            self.known.update(zip(missing, fresh))
        for k in keys:
            self.used[k] = self.known[k]
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.known[k] for k in keys])
