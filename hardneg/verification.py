"""Sharded, resumable verification of one family × seed partition.

Why: a 600K-candidate pool takes hours to verify on a small box; a kill in hour 7 must not
start over, and a cluster should be able to share the work. So the partition's candidates,
sorted by id, are cut into shards of `shard_size`; each shard is verified by an engine
(`hardneg.engines`: in-process or Ray actors) and written in ONE transaction together with
its row in `verifier_shards`. A shard is therefore either fully stored and recorded, or not
at all: a resumed run skips the recorded shards and no candidate is verified twice or lost.

A run key ties the recorded shards to what produced them, in two parts. The analysis part: the
verifier version, its configuration apart from the W and A weights (a local model folder counted by
its content, `embedding_cache.model_identity`, not its path), the shard size, and a
fingerprint of the candidates (ids, texts and their problems' references). When it changed,
the partition's profiles and shard records are dropped and verification starts over. The
aggregation part: the W and A weights. W and A are weighted means of the six stored
dimensions (`hardneg.verifier.profile.aggregate`), so when only the weights changed the stored
profiles are re-aggregated in one SQL update (seconds for 600K rows) instead of re-analysed.
When nothing changed, a finished partition is verified in zero shards.

Embeddings and SymPy verdicts go through the persistent cache (`hardneg.embedding_cache`), one
segment per shard, so re-verifying after a changed threshold re-reads vectors and verdicts instead
of encoding and calling SymPy.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Optional

import pandas as pd

from hardneg.configuration import from_dict, to_dict
from hardneg.embedding_cache import CachingEmbedder, EmbeddingStore, LazyEmbedder, VerdictStore, model_identity, segment_name
from hardneg.engines import EngineConfig, build_engine
from hardneg.progress import ProgressReporter
from hardneg.verifier import DIMENSIONS, VERIFIER_VERSION, MathVerifier, VerifierConfig
from hardneg.verifier.embedding import embedder_from_config
from hardneg.verifier.verdicts import VerdictMemo
from hardneg.warehouse import Warehouse, insert_frame

__all__ = ["VerificationConfig", "ShardTask", "ShardResult", "ShardVerifier", "VerificationSummary", "verify_partition"]

LogFn = Callable[[str], None]


@dataclass
class VerificationConfig(EngineConfig):
    """How `verifier_profiles` runs the verifier: the engine (see `EngineConfig`) and the cache.

    None of these changes a profile, so none is part of the asset's code version."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shard_size < 1:
            raise ValueError(f"VerificationConfig.shard_size must be >= 1, got {self.shard_size}")

    shard_size: int = 10_000
    """Candidates per shard: the unit of progress, of the persistent embedding cache and of resumption
    (a kill loses at most the shards in flight)."""
    embedding_cache: bool = True
    """Keep sentence vectors (keyed by encoder and text hash) and SymPy verdicts (keyed by question and verifier
    version) under `$HARDNEG_HOME/embeddings/` for re-verification."""


@dataclass
class ShardTask:
    index: int
    items: list[dict]
    cached: dict = field(default_factory=dict)
    """Text hash -> vector from the persistent cache (the driver reads it, so workers need no shared disk)."""
    verdicts: dict = field(default_factory=dict)
    """Question key -> SymPy verdict (JSON) from the persistent cache (`hardneg.verifier.verdicts`)."""


@dataclass
class ShardResult:
    index: int
    profiles: list[dict]
    vectors: dict
    seconds: float
    encoded: int
    cache_hits: int
    worker: str
    verdicts: dict = field(default_factory=dict)
    """Every SymPy and grading verdict the shard used (stored back as its segment)."""
    verdicts_computed: int = 0
    """Questions the SymPy worker or the grader answered for this shard; the rest came from the cache."""
    verdict_hits: int = 0


class ShardVerifier:
    """The worker both engines run: one MathVerifier (models loaded once), a shard per call."""

    def __init__(self, verifier_config: dict):
        config = from_dict(VerifierConfig, verifier_config)
        self.encoder = LazyEmbedder(partial(embedder_from_config, config))
        self.verifier = MathVerifier(config, embedder=self.encoder)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, task: ShardTask) -> ShardResult:
        started = time.perf_counter()
        embedder = CachingEmbedder(self.encoder, task.cached)
        self.verifier.embedder = embedder
        memo = self.verifier.verdicts = VerdictMemo(task.verdicts)
        try:
            profiles = [p.to_dict() for p in self.verifier.verify_batch(task.items)]
        finally:
            self.verifier.embedder = self.encoder
        if self.encoder.error is not None:  # a missing encoder is the run's problem, not one candidate's
            raise self.encoder.error
        return ShardResult(
            index=task.index, profiles=profiles, vectors=embedder.used, seconds=time.perf_counter() - started,
            encoded=embedder.misses, cache_hits=embedder.hits, worker=self.name, verdicts=memo.used,
            verdicts_computed=memo.misses, verdict_hits=memo.hits,
        )


@dataclass
class VerificationSummary:
    candidates: int
    shards: int
    shards_run: int
    shards_skipped: int
    seconds: float
    encoded: int
    cache_hits: int
    run_key: str
    restarted: bool
    workers: list[str]
    verified: int
    """Candidates verified by this call (a resumed run skips the stored shards)."""
    reaggregated: int = 0
    """Stored profiles whose W and A were recomputed from their dimensions (only the weights changed)."""
    verdicts_computed: int = 0
    """SymPy and grading questions answered by computing them in this call (the others by the verdict cache)."""
    verdict_hits: int = 0

    @property
    def rate(self) -> float:
        """Candidates verified per second in this call."""
        return self.verified / self.seconds if self.seconds > 0 else 0.0


PARTITION_SQL = """
SELECT c.candidate_id, p.question, c.text, p.reference_solution, p.reference_answer
FROM candidates c LEFT JOIN problems p USING (problem_id)
WHERE c.family = ? AND c.seed = ? {extra}
ORDER BY c.candidate_id
"""

FINGERPRINT_SQL = """
SELECT count(*), coalesce(bit_xor(hash(c.candidate_id, c.text, p.question, p.reference_solution, p.reference_answer)), 0)
FROM candidates c LEFT JOIN problems p USING (problem_id)
WHERE c.family = ? AND c.seed = ?
"""


AGGREGATION_FIELDS = ("wrongness_weights", "absurdity_weights")


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


MODEL_FIELDS = ("embedding_model", "nli_model")


def with_model_identities(verifier_config: dict) -> dict:
    """A verifier config (as a dict) with each model named by what it is, not by where this checkout
    keeps it (`model_identity`): what the run key and the asset's code version hash."""
    return {k: model_identity(v) if k in MODEL_FIELDS else v for k, v in verifier_config.items()}


def run_key(wh: Warehouse, family: str, seed: int, verifier_config: VerifierConfig, shard_size: int) -> str:
    """`<analysis>.<aggregation>`: what the recorded shards must match to be reused (see the module docstring)."""
    n, digest = wh.query(FINGERPRINT_SQL, [family, seed]).iloc[0]
    config = with_model_identities(to_dict(verifier_config))
    weights = {name: config.pop(name) for name in AGGREGATION_FIELDS}
    analysis = _digest({"verifier": VERIFIER_VERSION, "config": config, "shard_size": shard_size,
                        "candidates": [int(n), str(digest)]})
    return f"{analysis}.{_digest(weights)}"


def _analysis_part(key: str) -> str:
    return key.split(".", 1)[0]


def _weighted_mean_sql(weights: dict[str, float]) -> str:
    """`aggregate(dims, weights)` in SQL: Σ w·d / Σ w over the non-null dimensions, NULL when none."""
    used = {d: float(w) for d, w in weights.items() if d in DIMENSIONS and w > 0}
    if not used:
        return "NULL"
    num = " + ".join(f"coalesce({w!r} * {d}, 0)" for d, w in used.items())
    den = " + ".join(f"(CASE WHEN {d} IS NULL THEN 0 ELSE {w!r} END)" for d, w in used.items())
    return f"CASE WHEN ({den}) = 0 THEN NULL ELSE round(({num}) / ({den}), 6) END"


def _reaggregate(wh: Warehouse, family: str, seed: int, verifier_config: VerifierConfig, key: str) -> int:
    """New W and A for every stored profile of the partition, and the new key on its shards, in one transaction."""
    with wh.transaction() as con:
        n = con.execute("SELECT count(*) FROM verifier_profiles WHERE family = ? AND seed = ?", [family, seed]).fetchone()[0]
        con.execute(
            f"UPDATE verifier_profiles SET wrongness = {_weighted_mean_sql(verifier_config.wrongness_weights)}, "
            f"absurdity = {_weighted_mean_sql(verifier_config.absurdity_weights)} WHERE family = ? AND seed = ?",
            [family, seed],
        )
        con.execute("UPDATE verifier_shards SET run_key = ? WHERE family = ? AND seed = ?", [key, family, seed])
    return int(n)


def _items(frame: pd.DataFrame) -> list[dict]:
    return [
        {"id": r.candidate_id, "question": r.question or "", "candidate": r.text or "",
         "reference_solution": r.reference_solution, "reference_answer": r.reference_answer}
        for r in frame.itertuples()
    ]


def _store_shard(wh: Warehouse, family: str, seed: int, key: str, ids: list[str], result: ShardResult) -> None:
    """Profiles and the shard record in one transaction (a kill leaves both or neither)."""
    out = pd.DataFrame(result.profiles).rename(columns={"id": "candidate_id"})
    if len(out) != len(ids) or set(out["candidate_id"]) != set(ids):
        raise RuntimeError(f"shard {result.index}: the worker returned {len(out)} profiles for {len(ids)} candidates")
    out["family"], out["seed"], out["verifier_version"] = family, seed, VERIFIER_VERSION
    record = {
        "family": family, "seed": seed, "shard": result.index, "run_key": key, "n": len(ids),
        "first_id": ids[0], "last_id": ids[-1], "seconds": result.seconds, "encoded": result.encoded,
        "cache_hits": result.cache_hits, "worker": result.worker, "finished_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
    }
    with wh.transaction() as con:
        con.execute(
            "DELETE FROM verifier_profiles WHERE family = ? AND seed = ? AND candidate_id BETWEEN ? AND ?",
            [family, seed, ids[0], ids[-1]],
        )
        con.execute("DELETE FROM verifier_shards WHERE family = ? AND seed = ? AND shard = ?", [family, seed, result.index])
        insert_frame(con, "verifier_profiles", out)
        insert_frame(con, "verifier_shards", [record])


def verify_partition(
    wh: Warehouse,
    family: str,
    seed: int,
    verifier_config: VerifierConfig,
    config: Optional[VerificationConfig] = None,
    *,
    cache_root: Optional[Path] = None,
    log: Optional[LogFn] = None,
    make_worker: Optional[Callable[[], Callable[[ShardTask], ShardResult]]] = None,
) -> VerificationSummary:
    """Verify every candidate of family × seed that no recorded shard covers; see the module docstring.

    `make_worker` replaces the default `ShardVerifier` factory (it must stay picklable for Ray).
    Raises RuntimeError if, at the end, the stored profiles do not match the candidates one to one.
    """
    config = config or VerificationConfig()
    log = log or (lambda line: None)
    started = time.perf_counter()
    key = run_key(wh, family, seed, verifier_config, config.shard_size)
    ids = wh.query("SELECT candidate_id FROM candidates WHERE family = ? AND seed = ? ORDER BY candidate_id",
                   [family, seed])["candidate_id"].tolist()
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"candidates {family}|{seed}: duplicate candidate ids; re-materialize candidate_pool")
    shards = [ids[i : i + config.shard_size] for i in range(0, len(ids), config.shard_size)]

    recorded = wh.query("SELECT shard, run_key FROM verifier_shards WHERE family = ? AND seed = ?", [family, seed])
    reaggregated = 0
    if len(recorded):
        restarted = bool((recorded["run_key"].map(_analysis_part) != _analysis_part(key)).any())
        if not restarted and (recorded["run_key"] != key).any():
            reaggregated = _reaggregate(wh, family, seed, verifier_config, key)
            log(f"verify {family}|{seed}: only the W/A weights changed: re-aggregated {reaggregated} stored profiles")
    else:  # profiles without shard records: written by an older, unsharded verifier
        restarted = wh.count("verifier_profiles", family=family, seed=seed) > 0
    if restarted:
        log(f"verify {family}|{seed}: verifier, its configuration, the shard size or the candidates changed: starting over")
        with wh.transaction() as con:
            con.execute("DELETE FROM verifier_profiles WHERE family = ? AND seed = ?", [family, seed])
            con.execute("DELETE FROM verifier_shards WHERE family = ? AND seed = ?", [family, seed])
        done: set[int] = set()
    else:
        done = set(int(s) for s in recorded["shard"])
    todo = [i for i in range(len(shards)) if i not in done]
    n_todo = sum(len(shards[i]) for i in todo)
    if done:
        log(f"verify {family}|{seed}: resuming, {len(done)} of {len(shards)} shards already stored; {n_todo} candidates left")

    store = EmbeddingStore(cache_root, verifier_config.embedding_model) if (config.embedding_cache and cache_root) else None
    verdict_store = VerdictStore(cache_root) if store is not None else None

    def segment(i: int) -> str:
        return segment_name(family, seed, i)

    def tasks() -> Iterator[ShardTask]:
        for i in todo:
            frame = wh.query(PARTITION_SQL.format(extra="AND c.candidate_id BETWEEN ? AND ?"),
                             [family, seed, shards[i][0], shards[i][-1]])
            yield ShardTask(index=i, items=_items(frame), cached=store.load(segment(i)) if store else {},
                            verdicts=verdict_store.load(segment(i)) if verdict_store else {})

    factory = make_worker or partial(ShardVerifier, to_dict(verifier_config))
    report = ProgressReporter("verify", total=n_todo, log=log, unit="cand")
    encoded = hits = verified = verdicts_computed = verdict_hits = 0
    workers: set[str] = set()
    log(f"verify {family}|{seed}: {len(ids)} candidates in {len(shards)} shards of {config.shard_size}; "
        f"{len(todo)} to run on {config.describe()}")
    results = build_engine(config).map(factory, tasks()) if todo else ()  # nothing to do: no model, no Ray
    for result in results:
        _store_shard(wh, family, seed, key, shards[result.index], result)
        if store is not None:
            store.save(segment(result.index), result.vectors)
            verdict_store.save(segment(result.index), result.verdicts)
        encoded, hits, verified = encoded + result.encoded, hits + result.cache_hits, verified + len(shards[result.index])
        verdicts_computed, verdict_hits = verdicts_computed + result.verdicts_computed, verdict_hits + result.verdict_hits
        workers.add(result.worker)
        report.update(advance=len(shards[result.index]))
    report.close()

    stored = wh.query(
        "SELECT count(*) AS n, count(DISTINCT candidate_id) AS d FROM verifier_profiles WHERE family = ? AND seed = ?",
        [family, seed],
    ).iloc[0]
    if int(stored["n"]) != len(ids) or int(stored["d"]) != len(ids):
        raise RuntimeError(
            f"verify {family}|{seed}: {int(stored['n'])} profiles ({int(stored['d'])} distinct) for {len(ids)} candidates"
        )
    return VerificationSummary(
        candidates=len(ids), shards=len(shards), shards_run=len(todo), shards_skipped=len(done),
        seconds=time.perf_counter() - started, encoded=encoded, cache_hits=hits, run_key=key, restarted=restarted,
        workers=sorted(workers), verified=verified, reaggregated=reaggregated, verdicts_computed=verdicts_computed,
        verdict_hits=verdict_hits,
    )
