"""Sharded verification: `local` vs `ray` (1 and 2 actors), and cold vs warm embedding cache.

Goal (issue 11): measure the verification rate of each engine side by side on one slice of
the error-injection pool, and show that re-verifying after a changed threshold (the run key
changes, every shard re-runs) costs analysis time, not encoding time (goal: warm ≥ 5× faster
than cold), and that a changed W/A weight costs neither (the stored dimensions re-aggregate).

Data: `hardneg.inject` rows (GSM8K and MATH train references mixed, `--references` of each ×
`--variants` variants), problems with their real reference solutions, in a DuckDB warehouse
built once; every measurement gets its own copy. The verifier is the real one with
`VerifierConfig(use_nli=False)` (the NLI model is not part of the encoding cache question and
would dominate a 2-core box).

Each measurement runs in a fresh Python process (`--one`), so the in-process LRU caches of the
embedder and of step analyses are cold and peak RSS belongs to that configuration alone:
- `local cold`, `ray 1 cold`, `ray 2 cold`: an unverified warehouse, an empty embedding cache.
- `local warm (changed threshold)`: the warehouse `local cold` verified, the cache it filled,
  and a changed `match_threshold`: the analysis part of the run key differs, so the partition
  starts over and every shard re-runs, reading its vectors and its SymPy / grading verdicts
  from the cache.
- `local re-aggregate (changed weight)`: then a changed wrongness weight as well: only the
  aggregation part of the run key differs, so W and A are recomputed from the stored dimensions.
Wall time includes loading the models and, for Ray, starting the local Ray (as a real run
pays them). `shard s` is the workers' time inside shards; `encode s` the part of it the
MiniLM encoder took (SentenceEmbedder.encode_seconds); the rest is analysis.
Peak RSS: the driver (ru_maxrss), the largest actor (ru_maxrss reported by the actor itself),
and the sampled sum over the whole process tree (driver, Ray's GCS/raylet and workers; psutil,
every 0.5 s).

Run: PYTHONPATH=$PWD .venv/bin/python bench/verification.py [--references 150] [--variants 10]
     [--shard-size 250] [--repeat 1] [--out bench/results/verification.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

FAMILY, SEED = "bench", 0


# ----------------------------------------------------------------------------- data
def build_warehouse(path: Path, references: int, variants: int) -> dict:
    """Problems and inject candidates (GSM8K + MATH train) into a fresh warehouse."""
    import pandas as pd

    from hardneg.data import gsm8k_as_metamath
    from hardneg.inject import InjectConfig, inject_reference, iter_references
    from hardneg.warehouse import Warehouse

    cfg = InjectConfig(seed=0, variants_per_reference=variants, max_references=references, sources=("gsm8k", "math"))
    problems, candidates = [], []
    for ref in iter_references(cfg):
        solution = gsm8k_as_metamath(ref.raw) if ref.source == "gsm8k" else ref.raw
        problems.append(dict(problem_id=ref.problem_id, source=ref.source, split="train", question=ref.question,
                             reference_solution=solution, reference_answer=ref.answer))
        for r in inject_reference(ref, cfg):
            candidates.append(dict(candidate_id=r["candidate_id"], problem_id=r["problem_id"], family=FAMILY, seed=SEED,
                                   text=r["text"], answer=r["answer"], finish_reason=r["finish_reason"]))
    wh = Warehouse(path)
    probs = pd.DataFrame(problems)
    for source, part in probs.groupby("source"):
        wh.replace_partition("problems", part, source=source)
    cands = pd.DataFrame(candidates)
    wh.replace_partition("candidates", cands, family=FAMILY, seed=SEED)
    return {"candidates": len(cands), "gsm8k": int((cands["problem_id"].str.startswith("gsm8k")).sum()),
            "math": int((cands["problem_id"].str.startswith("math")).sum()),
            "mean_chars": float(cands["text"].fillna("").str.len().mean())}


# ----------------------------------------------------------------------------- one measurement (child)
class BenchWorker:
    """The real ShardVerifier, plus what the bench needs: encoder seconds per shard and the actor's peak RSS."""

    def __init__(self, verifier_config: dict):
        from hardneg.verification import ShardVerifier

        self.inner = ShardVerifier(verifier_config)

    def __call__(self, task):
        before = self.inner.encoder.encode_seconds
        result = self.inner(task)
        result.encode_seconds = self.inner.encoder.encode_seconds - before
        result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return result


def tree_rss_sampler(stop: threading.Event, out: dict) -> None:
    import psutil

    me = psutil.Process()
    peak = 0
    while not stop.is_set():
        total = 0
        for p in [me] + me.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        peak = max(peak, total)
        stop.wait(0.5)
    out["tree_peak_rss_mb"] = peak / 2**20


def one(args) -> None:
    from hardneg.configuration import to_dict
    from hardneg.verification import VerificationConfig, verify_partition
    from hardneg.verifier import VerifierConfig
    from hardneg.warehouse import Warehouse

    vcfg = VerifierConfig(use_nli=False)
    if args.changed_threshold:  # what a user re-tuning the alignment does: the analysis changes
        vcfg = replace(vcfg, match_threshold=vcfg.match_threshold + 0.02)
    if args.changed_weight:  # what a user re-tuning the aggregate does: only W changes
        vcfg = replace(vcfg, wrongness_weights=dict(vcfg.wrongness_weights, d_answer=0.30, d_logic=0.30))
    config = VerificationConfig(engine=args.engine, workers=args.workers, shard_size=args.shard_size,
                                torch_threads=args.torch_threads)
    results: list = []

    # verify_partition keeps only its own totals; the bench also wants each shard's encoder
    # seconds and actor RSS, so it reads every result on its way to the store (bench only)
    import hardneg.verification as verification

    real_store = verification._store_shard

    def store(wh, family, seed, key, ids, result):
        results.append({"arrived": time.perf_counter() - started, "encode_seconds": getattr(result, "encode_seconds", 0.0),
                        "peak_rss_mb": getattr(result, "peak_rss_mb", 0.0), "worker": result.worker,
                        "seconds": result.seconds})
        real_store(wh, family, seed, key, ids, result)

    verification._store_shard = store
    started = time.perf_counter()
    stop, tree = threading.Event(), {}
    sampler = threading.Thread(target=tree_rss_sampler, args=(stop, tree), daemon=True)
    sampler.start()
    summary = verify_partition(Warehouse(args.warehouse), FAMILY, SEED, vcfg, config, cache_root=Path(args.cache),
                               make_worker=partial(BenchWorker, to_dict(vcfg)))
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    out = {
        "wall": wall, "candidates": summary.candidates, "verified": summary.verified, "shards_run": summary.shards_run,
        "restarted": summary.restarted, "reaggregated": summary.reaggregated, "encoded": summary.encoded, "cache_hits": summary.cache_hits,
        "verdicts_computed": summary.verdicts_computed, "verdict_hits": summary.verdict_hits,
        "workers": len(summary.workers), "shard_seconds": sum(r["seconds"] for r in results),
        # before the first shard could start: reading the run key, loading the models (and starting Ray)
        "startup": min((r["arrived"] - r["seconds"] for r in results), default=0.0),
        "encode_seconds": sum(r["encode_seconds"] for r in results),
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "actor_peak_rss_mb": max((r["peak_rss_mb"] for r in results), default=0.0) if args.engine == "ray" else None,
        **tree,
    }
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------- driver
def measure(label: str, engine: str, workers: int, warehouse: Path, cache: Path, shard_size: int,
            changed: tuple[str, ...] = (), threads: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--one", "--engine", engine, "--workers", str(workers), "--warehouse", str(warehouse),
           "--cache", str(cache), "--shard-size", str(shard_size)] + [f"--changed-{c}" for c in changed] + (
           ["--torch-threads", str(threads)] if threads else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p))
    print(f"== {label}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{label} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    res["label"] = label
    print(f"   {res}", flush=True)
    return res


def fmt_mb(x) -> str:
    return "–" if x is None else f"{x:,.0f}"


def table(rows: list[dict]) -> str:
    head = ("| run | wall s | cand/s | startup s | cand/s after startup | shard s (sum) | encode s | analysis s | "
            "encoded texts | cache hits | SymPy / grading verdicts computed | from the cache | "
            "driver peak RSS MB | actor peak RSS MB | tree peak RSS MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['wall']:.1f} | {r['candidates'] / r['wall']:.1f} | {r['startup']:.1f} | "
            f"{r['candidates'] / (r['wall'] - r['startup']):.1f} | {r['shard_seconds']:.1f} | "
            f"{r['encode_seconds']:.1f} | {r['shard_seconds'] - r['encode_seconds']:.1f} | {r['encoded']:,} | "
            f"{r['cache_hits']:,} | {r.get('verdicts_computed', 0):,} | {r.get('verdict_hits', 0):,} | "
            f"{fmt_mb(r['driver_peak_rss_mb'])} | {fmt_mb(r['actor_peak_rss_mb'])} | "
            f"{fmt_mb(r.get('tree_peak_rss_mb'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--references", type=int, default=150, help="references of each source (GSM8K, MATH train)")
    ap.add_argument("--variants", type=int, default=10, help="inject variants per reference")
    ap.add_argument("--shard-size", type=int, default=250)
    ap.add_argument("--repeat", type=int, default=1, help="rounds of the four measurements (order alternates)")
    ap.add_argument("--engines", default="local,local1,ray1,ray2",
                    help="cold runs to measure: local (torch's default threads), local1 (1 torch thread), ray1, ray2")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "verification.md"))
    # --one: a single measurement in this process (used by the driver)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--warehouse", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--changed-weight", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--changed-threshold", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-threads", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return one(args)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-verification-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    t0 = time.perf_counter()
    base = work / "base.duckdb"
    base.unlink(missing_ok=True)
    data = build_warehouse(base, args.references, args.variants)
    print(f"pool: {data} built in {time.perf_counter() - t0:.1f}s", flush=True)
    engines = {"local": ("local", 1, None), "local1": ("local", 1, 1), "ray1": ("ray", 1, None), "ray2": ("ray", 2, None)}
    rows: list[dict] = []
    for rnd in range(args.repeat):
        order = [e.strip() for e in args.engines.split(",") if e.strip()]
        if rnd % 2:
            order = order[::-1]
        for name in order:
            engine, workers, threads = engines[name]
            wh = work / f"{name}-{rnd}.duckdb"
            cache = work / f"emb-{name}-{rnd}"
            shutil.copy(base, wh)
            shutil.rmtree(cache, ignore_errors=True)
            kind = {"local": "local", "local1": "local 1 thread", "ray1": "ray 1", "ray2": "ray 2"}[name]
            label = f"{kind} cold" + (f" (round {rnd + 1})" if args.repeat > 1 else "")
            rows.append(measure(label, engine, workers, wh, cache, args.shard_size, threads=threads))
            if name == "local":
                # warm: the same warehouse and cache, a changed threshold -> every shard re-runs on cached vectors
                rows.append(measure(label.replace("cold", "warm (changed threshold)"), "local", 1, wh, cache,
                                    args.shard_size, changed=("threshold",)))
                # then a changed weight as well -> the stored dimensions re-aggregate, no shard runs
                rows.append(measure(label.replace("cold", "re-aggregate (changed weight)"), "local", 1, wh, cache,
                                    args.shard_size, changed=("threshold", "weight")))
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    cold = [r for r in rows if r["label"].startswith("local cold")]
    warm = [r for r in rows if r["label"].startswith("local warm")]
    reagg = [r for r in rows if r["label"].startswith("local re-aggregate")]
    ratio_lines = []
    for c, w, g in zip(cold, warm, reagg):
        assert w["restarted"] and w["shards_run"] == c["shards_run"], "warm run did not re-run every shard"
        assert not g["restarted"] and g["shards_run"] == 0 and g["reaggregated"] == c["candidates"], "weight change re-ran shards"
        ratio_lines.append(f"- cold / re-aggregate (local, changed weight): wall {c['wall'] / g['wall']:.1f}× "
                           f"({g['reaggregated']:,} profiles re-aggregated in {g['wall']:.1f} s, no shard run).")
        ratio_lines.append(
            f"- cold / warm (local): wall {c['wall'] / w['wall']:.2f}×, after startup "
            f"{(c['wall'] - c['startup']) / (w['wall'] - w['startup']):.2f}×, shard time {c['shard_seconds'] / w['shard_seconds']:.2f}×; "
            f"encoding was {c['encode_seconds']:.1f} s of {c['shard_seconds']:.1f} s shard time cold "
            f"({100 * c['encode_seconds'] / c['shard_seconds']:.0f} %), {w['encode_seconds']:.1f} s warm "
            f"({w['encoded']} texts encoded, {w['cache_hits']:,} cache hits; {w.get('verdicts_computed', 0):,} SymPy / grading "
            f"verdicts computed, {w.get('verdict_hits', 0):,} from the verdict cache)."
        )
    for r in rows:
        if not r["label"].startswith(("local cold", "local warm", "local re-aggregate")):
            local = next(c for c in cold if c["label"].endswith(r["label"][-len(" (round 1)"):]) or args.repeat == 1)
            ratio_lines.append(f"- {r['label']} / {local['label']} rate: wall {local['wall'] / r['wall']:.2f}×, after startup "
                               f"{(local['wall'] - local['startup']) / (r['wall'] - r['startup']):.2f}× "
                               f"({r['workers']} worker(s) used)")
    text = "\n".join([
        f"Pool: {data['candidates']:,} inject candidates ({data['gsm8k']:,} GSM8K, {data['math']:,} MATH; "
        f"mean {data['mean_chars']:.0f} chars), {args.references} references of each source × {args.variants} variants; "
        f"shard size {args.shard_size}; VerifierConfig(use_nli=False).",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average before {' '.join(load_before)}, after {' '.join(load_after)} (shared box).",
        "",
        table(rows),
        "",
        *ratio_lines,
        "",
    ])
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Sharded verification: engines and the embedding cache\n\n"
                   f"Command: `PYTHONPATH=$PWD .venv/bin/python bench/verification.py {' '.join(sys.argv[1:])}`\n\n"
                   + text)
    print(f"written: {out}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
