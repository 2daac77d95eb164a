"""Sharded, resumable verification (hardneg.verification) with the real MiniLM verifier.

What is proven here, on a real DuckDB warehouse and real error-injected GSM8K and MATH candidates
(hardneg.inject): a SIGKILL in the middle of a sharded run loses nothing and redoes nothing;
a Ray run with two actors gives the local run's profiles; the run key reuses, resumes or
starts over exactly when it should, after a changed threshold the persistent embedding
cache serves every text, and a changed W/A weight only re-aggregates the stored dimensions;
the embedding store survives damaged files and never leaves temporary files. NLI is off (use_nli=False) to keep the module fast; it does not touch the
sharding code.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hardneg.configuration import to_dict
from hardneg.data import gsm8k_as_metamath
from hardneg.embedding_cache import CachingEmbedder, EmbeddingStore, VerdictStore, encoder_slug, model_identity
from hardneg.funnel import FunnelConfig
from hardneg.inject import InjectConfig, inject_reference, iter_references
from hardneg.verification import ShardVerifier, VerificationConfig, verify_partition
from hardneg.verifier import VerifierConfig
from hardneg.verifier.profile import aggregate
from hardneg.verifier.embedding import text_key
from hardneg.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
FAMILY, SEED = "smollm2-135m", 0
SHARD = 25  # 190 candidates -> 8 shards
FLOATS = ["d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer", "wrongness", "absurdity"]
VCFG = VerifierConfig(use_nli=False)


# ----------------------------------------------------------------------------- helpers
def build_pool() -> tuple[pd.DataFrame, pd.DataFrame]:
    """15 GSM8K and 4 MATH train references × 10 injected variants: problems and candidates frames.

    The MATH rows make the workers run the symbolic checks (a SymPy worker process per verifier)."""
    problems, candidates = [], []
    for source, n in (("gsm8k", 15), ("math", 4)):
        cfg = InjectConfig(seed=0, variants_per_reference=10, max_references=n, sources=(source,))
        for ref in iter_references(cfg):
            solution = gsm8k_as_metamath(ref.raw) if source == "gsm8k" else ref.raw
            problems.append(dict(problem_id=ref.problem_id, source=ref.source, split="train", question=ref.question,
                                 reference_solution=solution, reference_answer=ref.answer))
            for r in inject_reference(ref, cfg):
                candidates.append(dict(candidate_id=r["candidate_id"], problem_id=r["problem_id"], family=FAMILY,
                                       seed=SEED, text=r["text"], answer=r["answer"], finish_reason=r["finish_reason"]))
    return pd.DataFrame(problems), pd.DataFrame(candidates)


def make_warehouse(path: Path, pool) -> Warehouse:
    problems, candidates = pool
    wh = Warehouse(path)
    for source, part in problems.groupby("source"):
        wh.replace_partition("problems", part, source=source)
    wh.replace_partition("candidates", candidates, family=FAMILY, seed=SEED)
    return wh


def profiles(wh: Warehouse) -> pd.DataFrame:
    return wh.query(
        "SELECT * FROM verifier_profiles WHERE family = ? AND seed = ? ORDER BY candidate_id", [FAMILY, SEED]
    ).set_index("candidate_id")


def shard_rows(wh: Warehouse) -> pd.DataFrame:
    return wh.query("SELECT * FROM verifier_shards WHERE family = ? AND seed = ? ORDER BY shard", [FAMILY, SEED])


def decisions(p: pd.DataFrame) -> pd.DataFrame:
    """The funnel's verdicts on a profile (thresholds from FunnelConfig, SPEC §2.4): what must not change."""
    f = FunnelConfig()
    dims = p[["d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer"]]
    return pd.DataFrame({
        "all_dims_small": (dims.fillna(0) < f.trivially_correct_max_dim).all(axis=1),
        "trivially_wrong": (p["wrongness"] > f.trivially_wrong_min_wrongness)
        & (p["absurdity"] > f.trivially_wrong_min_absurdity),
        "hard_band": (p["wrongness"] >= f.hard_min_wrongness) & (p["wrongness"] <= f.hard_max_wrongness),
        "structural": (p[["d_structure", "d_order", "d_logic"]].fillna(0) > f.structural_min_dim).any(axis=1),
        "near": p["d_semantic"].fillna(1.0) <= f.max_semantic_distance,
        "formula_error": p["formula_error"].astype("boolean"),
        "first_error_step": p["first_error_step"].astype("Int64"),
    })


def assert_same_profiles(got: pd.DataFrame, want: pd.DataFrame, atol: float) -> None:
    assert list(got.index) == list(want.index)
    failed = got.index[got["steps"].str.contains("analysis failed", regex=False)]
    assert failed.empty, f"the verifier failed on {list(failed)[:5]}"
    pd.testing.assert_series_equal(got["steps"], want["steps"])  # every step's flags, symbolic checks included
    for col in FLOATS:
        g, w = got[col].astype(float).to_numpy(), want[col].astype(float).to_numpy()
        assert (np.isnan(g) == np.isnan(w)).all(), f"{col}: null in one run only"
        assert np.allclose(np.nan_to_num(g), np.nan_to_num(w), atol=atol, rtol=0), (
            f"{col}: max difference {np.nanmax(np.abs(g - w))}"
        )
    pd.testing.assert_frame_equal(decisions(got), decisions(want))


def assert_one_to_one(wh: Warehouse, pool) -> None:
    ids = set(pool[1]["candidate_id"])
    stored = wh.query("SELECT count(*) AS n, count(DISTINCT candidate_id) AS d FROM verifier_profiles "
                      "WHERE family = ? AND seed = ?", [FAMILY, SEED]).iloc[0]
    assert int(stored["n"]) == len(ids) and int(stored["d"]) == len(ids)
    assert set(profiles(wh).index) == ids


class CountingWorker:
    """The real ShardVerifier, noting which shards it ran (in-process `local` engine only)."""

    def __init__(self, verifier_config: dict, ran: list):
        self.inner = ShardVerifier(verifier_config)
        self.ran = ran

    def __call__(self, task):
        self.ran.append(task.index)
        return self.inner(task)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def pool():
    problems, candidates = build_pool()
    assert len(candidates) == 190 and candidates["candidate_id"].is_unique
    return problems, candidates


@pytest.fixture(scope="module")
def baseline(pool, tmp_path_factory):
    """One uninterrupted local run: the reference every other run is compared with."""
    root = tmp_path_factory.mktemp("baseline")
    wh = make_warehouse(root / "wh.duckdb", pool)
    summary = verify_partition(wh, FAMILY, SEED, VCFG, VerificationConfig(engine="local", shard_size=SHARD),
                               cache_root=root / "emb")
    return {"root": root, "wh": wh, "summary": summary, "profiles": profiles(wh), "pool": pool}


# ----------------------------------------------------------------------------- kill and resume
def test_kill_during_sharded_verification_then_resume_verifies_every_candidate_once(pool, baseline, tmp_path):
    wh = make_warehouse(tmp_path / "wh.duckdb", pool)
    n_shards = -(-len(pool[1]) // SHARD)
    hold_from = n_shards - 1  # the child never finishes the last shard: the kill always finds work left
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "verification_child.py"), str(wh.path), str(tmp_path / "emb"),
         FAMILY, str(SEED), str(SHARD), str(hold_from)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    try:
        # kill as soon as two shards are stored: usually while the third is being verified
        deadline = time.monotonic() + 600  # a guard against a hung child, not a timing assertion
        while wh.count("verifier_shards", family=FAMILY, seed=SEED) < 2:
            assert child.poll() is None, f"child exited early:\n{child.stdout.read().decode()}"
            assert time.monotonic() < deadline, "child stored fewer than 2 shards in 10 minutes"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    # what the killed run left: whole shards only, their profiles and nothing else
    before = shard_rows(wh)
    done = sorted(before["shard"].tolist())
    assert 2 <= len(done) < n_shards and len(set(done)) == len(done)
    ids = sorted(pool[1]["candidate_id"])
    expected_ids = {i for s in done for i in ids[s * SHARD:(s + 1) * SHARD]}
    assert set(profiles(wh).index) == expected_ids
    assert (before["n"] == SHARD).all()
    child_workers = set(before["worker"])
    assert len(child_workers) == 1 and child_workers != {f"{os.uname().nodename}:{os.getpid()}"}

    ran: list[int] = []
    summary = verify_partition(wh, FAMILY, SEED, VCFG, VerificationConfig(engine="local", shard_size=SHARD),
                               cache_root=tmp_path / "emb", make_worker=partial(CountingWorker, to_dict(VCFG), ran))
    missing = [s for s in range(n_shards) if s not in done]
    assert not summary.restarted
    assert summary.shards_skipped == len(done) and summary.shards_run == len(missing)
    assert ran == missing  # exactly the shards the kill left, each once
    assert summary.verified == len(ids) - len(expected_ids)

    after = shard_rows(wh)
    assert after["shard"].tolist() == list(range(n_shards))  # each shard recorded once
    assert int(after["n"].sum()) == len(ids)
    assert (after["run_key"] == summary.run_key).all()
    # the shards stored before the kill were kept, not redone
    kept = after[after["shard"].isin(done)].set_index("shard").sort_index()
    pd.testing.assert_series_equal(kept["finished_at"], before.set_index("shard").sort_index()["finished_at"])
    assert set(after[after["shard"].isin(missing)]["worker"]) == set(summary.workers)
    assert set(summary.workers).isdisjoint(child_workers)

    assert_one_to_one(wh, pool)
    got = profiles(wh)
    assert_same_profiles(got, baseline["profiles"], atol=1e-6)
    assert (got["verifier_version"] == baseline["profiles"]["verifier_version"]).all()


# ----------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_cluster():
    """One local 2-CPU Ray for the module (RayEngine joins an initialized Ray and leaves it running)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    path = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                       "TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    ray.shutdown()


def test_ray_two_workers_give_the_local_profiles(pool, baseline, tmp_path, ray_cluster):
    wh = make_warehouse(tmp_path / "wh.duckdb", pool)
    summary = verify_partition(wh, FAMILY, SEED, VCFG,
                               VerificationConfig(engine="ray", workers=2, shard_size=SHARD),
                               cache_root=tmp_path / "emb")
    assert summary.shards_run == summary.shards == -(-len(pool[1]) // SHARD)
    shards = shard_rows(wh)
    assert shards["shard"].tolist() == list(range(summary.shards))
    assert shards["worker"].nunique() == 2 == len(summary.workers)  # both actors verified shards
    local_pid = f"{os.uname().nodename}:{os.getpid()}"
    assert local_pid not in set(shards["worker"])
    assert_one_to_one(wh, pool)
    assert_same_profiles(profiles(wh), baseline["profiles"], atol=1e-5)
    # the driver stored what the actors encoded: one segment per shard
    store = EmbeddingStore(tmp_path / "emb", VCFG.embedding_model)
    assert len(store.segments()) == summary.shards
    assert summary.encoded == baseline["summary"].encoded


# ----------------------------------------------------------------------------- run key and cache
def copy_of_baseline(baseline, tmp_path) -> tuple[Warehouse, Path]:
    shutil.copy(baseline["wh"].path, tmp_path / "wh.duckdb")
    shutil.copytree(baseline["root"] / "emb", tmp_path / "emb")
    return Warehouse(tmp_path / "wh.duckdb"), tmp_path / "emb"


def test_same_inputs_run_zero_shards(baseline, tmp_path):
    wh, emb = copy_of_baseline(baseline, tmp_path)
    before = shard_rows(wh)
    summary = verify_partition(wh, FAMILY, SEED, VCFG, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.run_key == baseline["summary"].run_key
    assert not summary.restarted and summary.shards_run == 0 and summary.shards_skipped == summary.shards
    assert summary.verified == 0 and summary.encoded == 0
    pd.testing.assert_frame_equal(shard_rows(wh), before)  # nothing rewritten
    assert_same_profiles(profiles(wh), baseline["profiles"], atol=0)


def test_changed_threshold_starts_over_and_every_text_is_a_cache_hit(baseline, tmp_path):
    assert baseline["summary"].encoded > 0 and baseline["summary"].cache_hits == 0  # the cache was cold
    wh, emb = copy_of_baseline(baseline, tmp_path)
    cfg = replace(VCFG, match_threshold=VCFG.match_threshold + 0.08)
    summary = verify_partition(wh, FAMILY, SEED, cfg, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.run_key != baseline["summary"].run_key
    assert summary.restarted and summary.shards_run == summary.shards and summary.shards_skipped == 0
    assert summary.reaggregated == 0
    # a fresh ShardVerifier (new MathVerifier, empty LRU) encoded nothing: every text came from the segments
    assert summary.encoded == 0
    assert summary.cache_hits == baseline["summary"].encoded
    # nor did it ask SymPy or the grader anything: every verdict came from the shards' verdict segments
    assert baseline["summary"].verdicts_computed > 0
    assert summary.verdicts_computed == 0 and summary.verdict_hits >= baseline["summary"].verdicts_computed
    shards = shard_rows(wh)
    assert (shards["encoded"] == 0).all() and (shards["run_key"] == summary.run_key).all()
    assert_one_to_one(wh, baseline["pool"])
    got, old = profiles(wh), baseline["profiles"]
    assert (np.abs(got["d_structure"].astype(float) - old["d_structure"].astype(float)) > 1e-3).any()  # re-analysed


def test_the_same_encoder_at_another_path_reuses_the_shards_and_the_vectors(baseline, tmp_path):
    """A moved checkout or a second virtual environment installs the same MiniLM elsewhere: the run key and the
    embedding cache name the model by its content, so nothing is verified again, and a changed threshold
    encodes nothing."""
    wh, emb = copy_of_baseline(baseline, tmp_path)
    moved = tmp_path / "another-venv" / "model"
    shutil.copytree(VCFG.embedding_model, moved)
    cfg = replace(VCFG, embedding_model=str(moved))
    summary = verify_partition(wh, FAMILY, SEED, cfg, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.run_key == baseline["summary"].run_key and summary.shards_run == 0
    cfg = replace(cfg, match_threshold=VCFG.match_threshold + 0.08)
    summary = verify_partition(wh, FAMILY, SEED, cfg, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.shards_run == summary.shards and summary.encoded == 0
    assert summary.cache_hits == baseline["summary"].encoded


def test_changed_weight_reaggregates_the_stored_dimensions_without_verifying(baseline, tmp_path):
    wh, emb = copy_of_baseline(baseline, tmp_path)
    weights = dict(VCFG.wrongness_weights, d_answer=0.05, d_semantic=0.40, d_order=0.0)
    cfg = replace(VCFG, wrongness_weights=weights)
    summary = verify_partition(wh, FAMILY, SEED, cfg, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.run_key != baseline["summary"].run_key
    assert not summary.restarted and summary.shards_run == 0 and summary.verified == 0 and summary.encoded == 0
    assert summary.reaggregated == len(baseline["profiles"])
    assert (shard_rows(wh)["run_key"] == summary.run_key).all()
    got, old = profiles(wh), baseline["profiles"]
    dims = FLOATS[:6]
    pd.testing.assert_frame_equal(got[dims], old[dims])  # the analysis is untouched
    want = [aggregate({d: (None if pd.isna(r[d]) else float(r[d])) for d in dims}, weights) for _, r in old.iterrows()]
    np.testing.assert_allclose(got["wrongness"].astype(float), np.array(want, dtype=float), atol=2e-6, rtol=0)
    assert (np.abs(got["wrongness"] - old["wrongness"]) > 1e-3).any()  # the new weights were applied
    np.testing.assert_allclose(got["absurdity"].astype(float), old["absurdity"].astype(float), atol=2e-6, rtol=0)
    # the same call again is a no-op; the old weights bring the old scores back
    again = verify_partition(wh, FAMILY, SEED, cfg, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert again.reaggregated == 0 and again.shards_run == 0
    back = verify_partition(wh, FAMILY, SEED, VCFG, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert back.run_key == baseline["summary"].run_key and back.reaggregated == len(old)
    assert_same_profiles(profiles(wh), old, atol=2e-6)


def test_changed_candidate_text_starts_over_and_encodes_only_new_text(baseline, tmp_path):
    wh, emb = copy_of_baseline(baseline, tmp_path)
    old = baseline["profiles"]
    target = old.index[old["first_error_step"].isna() & (old["wrongness"] == 0)][0]  # a correct candidate
    with wh.transaction() as con:
        con.execute("UPDATE candidates SET text = text || '\nThe answer is: 123456789' WHERE candidate_id = ?", [target])
    summary = verify_partition(wh, FAMILY, SEED, VCFG, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.run_key != baseline["summary"].run_key
    assert summary.restarted and summary.shards_run == summary.shards
    assert 0 < summary.encoded < baseline["summary"].encoded  # only the new text; the rest came from the cache
    assert 0 < summary.verdicts_computed < baseline["summary"].verdicts_computed  # its new answer is graded
    shards = shard_rows(wh)
    assert (shards["encoded"] > 0).sum() == 1
    got = profiles(wh)
    assert got.loc[target, "wrongness"] > old.loc[target, "wrongness"]
    others = got.index != target
    np.testing.assert_allclose(got.loc[others, "wrongness"], old.loc[others, "wrongness"], atol=1e-6, rtol=0)


def test_profiles_without_shard_records_start_over(baseline, tmp_path):
    """Profiles of an older, unsharded verifier are not trusted: the partition is redone."""
    wh, emb = copy_of_baseline(baseline, tmp_path)
    with wh.transaction() as con:
        con.execute("DELETE FROM verifier_shards")
        con.execute("UPDATE verifier_profiles SET wrongness = -1")
    summary = verify_partition(wh, FAMILY, SEED, VCFG, VerificationConfig(shard_size=SHARD), cache_root=emb)
    assert summary.restarted and summary.shards_run == summary.shards
    assert summary.verdicts_computed == 0  # remembered verdicts give the profiles computed ones gave
    assert_same_profiles(profiles(wh), baseline["profiles"], atol=1e-6)


# ----------------------------------------------------------------------------- the embedding store
def vectors(n: int, dim: int = 8, seed: int = 0) -> dict[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    mat = rng.normal(size=(n, dim)).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    return {text_key(f"text {i}"): mat[i] for i in range(n)}


def test_embedding_store_round_trip(tmp_path):
    store = EmbeddingStore(tmp_path, "sentence-transformers/all-MiniLM-L6-v2")
    data = vectors(50)
    assert store.save("fam-0-00003", data) == 50
    assert store.dir == tmp_path / "sentence-transformers--all-MiniLM-L6-v2"
    assert store.path("fam-0-00003").name == "fam-0-00003.parquet"
    back = store.load("fam-0-00003")
    assert set(back) == set(data)
    for k, v in data.items():
        assert back[k].dtype == np.float32 and np.array_equal(back[k], v)
    assert store.load("fam-0-00004") == {}  # never written: a miss
    assert store.save("fam-0-00005", {}) == 0 and not store.path("fam-0-00005").exists()
    assert store.segments() == ["fam-0-00003"]
    # another encoder never sees these vectors
    assert EmbeddingStore(tmp_path, "other-encoder").load("fam-0-00003") == {}
    # a rewrite replaces the segment
    store.save("fam-0-00003", vectors(3, seed=1))
    assert set(store.load("fam-0-00003")) == set(vectors(3, seed=1))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "wrong_columns"])
def test_damaged_segment_reads_as_a_miss(tmp_path, damage):
    store = EmbeddingStore(tmp_path, "enc")
    store.save("s", vectors(20))
    path = store.path("s")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a parquet file" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    assert store.load("s") == {}
    store.save("s", vectors(5))  # and the next shard's write repairs it
    assert len(store.load("s")) == 5


def test_embedding_store_write_is_atomic(tmp_path, monkeypatch):
    store = EmbeddingStore(tmp_path, "enc")
    store.save("s", vectors(10))
    assert [p.name for p in store.dir.iterdir()] == ["s.parquet"]  # no temporary file left

    import pyarrow.parquet as pq

    real = pq.write_table

    def dies_half_way(table, where, **kw):
        real(table.slice(0, 1), where, **kw)  # a partial file exists under the temporary name...
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        store.save("s", vectors(30, seed=2))
    monkeypatch.setattr(pq, "write_table", real)
    assert [p.name for p in store.dir.iterdir()] == ["s.parquet"]  # ...and is removed
    assert set(store.load("s")) == set(vectors(10))  # the old segment is intact


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x y", "fam-0-\n", "a\\b"])
def test_segment_names_are_validated(tmp_path, name):
    store = EmbeddingStore(tmp_path, "enc")
    with pytest.raises(ValueError, match="segment"):
        store.path(name)
    with pytest.raises(ValueError, match="segment"):
        store.save(name, vectors(1))
    assert not any(tmp_path.rglob("*.parquet")) and not any(tmp_path.rglob("*.tmp"))


# ----------------------------------------------------------------------------- the verdict store
def test_verdict_store_round_trip_and_damage(tmp_path):
    store = VerdictStore(tmp_path)
    data = {text_key(f"q{i}"): f'[[{i}.5, null, "e"]]' for i in range(30)}
    assert store.save("fam-0-00001", data) == 30 and store.load("fam-0-00001") == data
    assert store.load("fam-0-00002") == {} and store.save("fam-0-00003", {}) == 0
    assert store.dir == tmp_path / "sympy-verdicts"  # beside the encoders' folders, never inside one
    store.path("fam-0-00001").write_bytes(b"garbage" * 5)
    assert store.load("fam-0-00001") == {}  # a damaged segment is a miss, never an error
    with pytest.raises(ValueError, match="segment"):
        store.save("../x", data)


def test_remembered_verdicts_give_the_same_profiles_without_calling_sympy(pool, monkeypatch):
    """The MATH candidates verified twice: the second verifier gets the first one's verdicts and must
    produce the same profiles without a single call to the SymPy worker."""
    from hardneg.verifier import MathVerifier, VerifyInput
    import hardneg.verifier.core as core
    from hardneg.verifier.verdicts import MISSING, VerdictMemo

    problems, candidates = pool
    refs = problems.set_index("problem_id")
    items = [VerifyInput(r.candidate_id, refs.loc[r.problem_id, "question"], r.text,
                         refs.loc[r.problem_id, "reference_solution"], refs.loc[r.problem_id, "reference_answer"])
             for r in candidates.itertuples() if r.problem_id.startswith("math")]
    first = MathVerifier(VCFG)
    want = [p.to_dict() for p in first.verify_batch(items)]
    assert first.verdicts.misses > 0 and first.verdicts.used

    calls = []
    real = core.call_bounded
    monkeypatch.setattr(core, "call_bounded", lambda *a, **k: (calls.append(a[0]), real(*a, **k))[1])
    second = MathVerifier(VCFG, embedder=first.embedder)
    second.verdicts = VerdictMemo(first.verdicts.used)
    got = [p.to_dict() for p in second.verify_batch(items)]
    assert calls == [] and second.verdicts.misses == 0
    for g, w in zip(got, want):
        g.pop("elapsed_ms"), w.pop("elapsed_ms")
    assert got == want

    # a damaged entry is asked again; a key names the verifier version it was answered under
    key = VerdictMemo.key("answers_equal", ["1", "2"])
    assert VerdictMemo({key: "{not json"}).get(key) is MISSING
    memo = VerdictMemo()
    memo.put(key, {1, 2})  # not plain data: not stored, asked again next time
    assert memo.get(key) is MISSING and not memo.used
    monkeypatch.setattr("hardneg.verifier.verdicts.VERIFIER_VERSION", "mv-0.0")
    assert VerdictMemo.key("answers_equal", ["1", "2"]) != key


def test_a_timed_out_question_is_asked_once_and_remembered_with_its_deadline(monkeypatch):
    """A step SymPy cannot settle in time used to cost the whole deadline plus a worker restart on every
    candidate that holds it (the ~40 variants of one reference), and again on every re-run."""
    from hardneg.verifier import MathVerifier, VerifyInput, symbolic
    import hardneg.verifier.core as core
    from hardneg.verifier.verdicts import MISSING, TimedOut, VerdictMemo

    import json

    row = next(json.loads(line) for line in (ROOT / "data/math/train.jsonl").read_text().splitlines()
               if '"train/counting_and_probability/129.json"' in line)  # Pascal's identity, with symbols
    solution = row["solution"]
    variants = [solution, solution.replace("=\\boxed{20}", "=\\boxed{21}"), solution.replace("so $n=9$", "so $n=8$")]
    items = [VerifyInput(f"pascal-{i}", row["problem"], text, solution, "20") for i, text in enumerate(variants)]
    asked = []
    real = core.call_bounded
    monkeypatch.setattr(core, "call_bounded",
                        lambda *a, **k: (a[0] is symbolic.warm or asked.append(a[0]), real(*a, **k))[1])
    cfg = replace(VCFG, sympy_timeout=1e-4)  # every SymPy question overruns
    first = MathVerifier(cfg)
    want = [p.to_dict() for p in first.verify_batch(items)]
    n_asked = len(asked)
    assert n_asked > 0
    timed_out = {k for k, v in first.verdicts.used.items() if "timed_out" in v}
    assert len(timed_out) == n_asked  # each question asked once, each remembered as a timeout
    first.verify_batch(items)  # the same candidates again: every question is remembered
    assert len(asked) == n_asked

    second = MathVerifier(cfg, embedder=first.embedder)  # a re-run with the shard's stored verdicts
    second.verdicts = VerdictMemo(first.verdicts.used)
    got = [p.to_dict() for p in second.verify_batch(items)]
    assert len(asked) == n_asked
    for g, w in zip(got, want):
        g.pop("elapsed_ms"), w.pop("elapsed_ms")
    assert got == want  # the re-run reproduces the first run's profiles

    longer = MathVerifier(replace(VCFG, sympy_timeout=0.05), embedder=first.embedder)
    longer.verdicts = VerdictMemo(first.verdicts.used)
    longer.verify_batch(items)
    assert len(asked) > n_asked  # a longer deadline deserves a new try

    key = next(iter(timed_out))
    memo = VerdictMemo({key: first.verdicts.used[key]})
    assert memo.get(key, deadline=1e-4) == TimedOut(1e-4) and memo.get(key, deadline=1e-5) == TimedOut(1e-4)
    assert memo.get(key, deadline=0.05) is MISSING and memo.get(key) is MISSING


def test_model_identity_is_the_folder_content_not_its_path(tmp_path):
    one = tmp_path / "a" / "model"
    one.mkdir(parents=True)
    (one / "config.json").write_text('{"dim": 384}')
    (one / "weights.bin").write_bytes(bytes(range(256)) * 10_000)  # > 2 MiB: sampled at both ends
    two = tmp_path / "b" / "model"
    shutil.copytree(one, two)
    assert model_identity(str(one)) == model_identity(str(two))
    (tmp_path / "renamed").mkdir()
    shutil.copytree(one, tmp_path / "renamed" / "minilm")
    assert model_identity(str(tmp_path / "renamed" / "minilm")) == model_identity(str(one)) != str(one)
    data = bytearray((two / "weights.bin").read_bytes())
    data[-1] ^= 1
    (two / "weights.bin").write_bytes(bytes(data))  # edited in place, same size, in this same process
    later = (two / "weights.bin").stat().st_mtime_ns + 10**9  # a file system with coarse timestamps: an edit a second later
    os.utime(two / "weights.bin", ns=(later, later))
    assert model_identity(str(one)) != model_identity(str(two))
    assert model_identity("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_encoder_slug_is_one_safe_folder():
    assert encoder_slug("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers--all-MiniLM-L6-v2"
    assert "/" not in encoder_slug("/abs/path/to/model/") and ".." not in encoder_slug("../../x")
    assert encoder_slug("") == "encoder"


def test_caching_embedder_encodes_only_unknown_texts():
    """Hits and misses count distinct texts; only the misses reach the encoder."""
    from hardneg.verifier import MathVerifier

    class Counting:
        def __init__(self, inner):
            self.inner, self.texts = inner, []

        def encode(self, texts):
            self.texts.extend(texts)
            return self.inner.encode(texts)

    inner = Counting(MathVerifier.from_config(VCFG).embedder)
    first = CachingEmbedder(inner)
    a = first.encode(["one step", "two steps", "one step"])
    assert (first.misses, first.hits) == (2, 0) and inner.texts == ["one step", "two steps"]
    assert np.array_equal(a[0], a[2])
    second = CachingEmbedder(inner, first.used)
    b = second.encode(["two steps", "three steps"])
    assert (second.misses, second.hits) == (1, 1) and inner.texts[-1:] == ["three steps"]
    assert np.array_equal(b[0], a[1])
    assert set(second.used) == {text_key("two steps"), text_key("three steps")}
    assert second.encode([]).shape[0] == 0


def test_segment_names_are_file_safe_and_distinct_for_any_family_name():
    from hardneg.embedding_cache import segment_name

    names = {segment_name(f, s, i) for f in ("org/model v2", "org_model_v2", "a|b", "a=b", "") for s in (0, 1) for i in (0, 7)}
    assert len(names) == 5 * 2 * 2
    store = EmbeddingStore("/tmp", "enc")
    for name in names:
        assert store.path(name).parent == store.dir  # valid, and never leaves the encoder's folder


def test_an_encoder_that_cannot_load_fails_the_shard_instead_of_scoring_it(tmp_path):
    from hardneg.verification import ShardTask, ShardVerifier
    from hardneg.verifier.embedding import ModelLoadError

    worker = ShardVerifier({"use_nli": False, "embedding_model": str(tmp_path / "no-such-model")})
    task = ShardTask(0, [{"id": "c", "question": "What is 2+3?", "candidate": "2+3=5\nThe answer is: 5",
                          "reference_solution": None, "reference_answer": "5"}])
    with pytest.raises(ModelLoadError):
        worker(task)
