"""The `scale` pool's funnel and labels on a strided sample of its references, in minutes.

Why: a full `hardneg run --profile scale` verifies ~614K candidates (1-2 hours on 2 cores). Every
`--stride`-th reference of each train set, with all of its variants, is a sample of the same pool
(rows depend only on the reference and the seed, not on their order), spread over every MATH
subject and the whole of GSM8K. This script builds that sample into a fresh warehouse, verifies
it with the profile's verifier (real MiniLM, no NLI unless the profile has one), runs the profile's
funnel, and prints the stage counts (as measured, and × stride as an estimate for the whole pool,
beside the profile's expected ranges), the stage-3 removals by injected error type, and the
verifier against the labels (`bench/inject_labels.py`).

    PYTHONPATH=$PWD .venv/bin/python bench/scale_sample.py --stride 10 [--profile scale] [--engine local]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


REFERENCES_PER_SHARD = 200  # ~8K rows per frame at 41 variants: the shards are concatenated, so this only bounds peak work


def build_sample(wh, prof, family: str, seed: int, stride: int) -> int:
    """Every `stride`-th reference of each source, all its variants, into candidates / injected_labels / problems."""
    import pandas as pd

    from hardneg.inject import inject_shard, iter_references

    cfg = prof.pool.inject.inject_config(seed)
    seen: dict[str, int] = {}
    refs = []
    for ref in iter_references(cfg):
        i = seen[ref.source] = seen.get(ref.source, -1) + 1
        if i % stride == 0:
            refs.append(ref)
    shards = [inject_shard(refs[i : i + REFERENCES_PER_SHARD], cfg, family, seed, i)
              for i in range(0, len(refs), REFERENCES_PER_SHARD)]
    cands = pd.concat([s.candidates for s in shards], ignore_index=True)
    wh.replace_partition("candidates", cands, family=family, seed=seed)
    wh.replace_partition("injected_labels", pd.concat([s.labels for s in shards], ignore_index=True), family=family, seed=seed)
    problems = pd.concat([s.problems for s in shards], ignore_index=True)
    for source, part in problems.groupby("source"):
        wh.replace_partition("problems", part, source=source)
    return len(cands)


def main(argv=None) -> int:
    from hardneg.funnel import run_funnel
    from hardneg.profiles import load_profile
    from hardneg.verification import verify_partition
    from hardneg.warehouse import Warehouse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="scale")
    ap.add_argument("--stride", type=int, default=10, help="keep every N-th reference of each train set")
    ap.add_argument("--engine", default=None, help="verification engine (default: the profile's)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--workdir", default=None, help="warehouse and embedding cache folder (default: a temporary one)")
    args = ap.parse_args(argv)

    prof = load_profile(args.profile)
    family, seed = prof.partition()
    verification = prof.verification
    if args.engine:
        verification = replace(verification, engine=args.engine)
    if args.workers:
        verification = replace(verification, workers=args.workers)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="scale-sample-"))
    work.mkdir(parents=True, exist_ok=True)
    wh = Warehouse(work / "warehouse.duckdb")
    load_before = Path("/proc/loadavg").read_text().split()[:3]

    t0 = time.perf_counter()
    n = build_sample(wh, prof, family, seed, args.stride)
    t_pool = time.perf_counter() - t0
    print(f"sample: {n:,} candidates (every {args.stride}th reference of {args.profile}'s pool) built in {t_pool:.0f} s", flush=True)
    t0 = time.perf_counter()
    run = verify_partition(wh, family, seed, prof.verifier, verification, cache_root=work / "embeddings", log=print)
    t_verify = time.perf_counter() - t0
    with wh.connect() as con:
        result = run_funnel(con, family, seed, prof.funnel, trace=True)
        labels = con.execute("SELECT candidate_id, error_type, source FROM injected_labels WHERE family = ? AND seed = ?",
                             [family, seed]).df()
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    print(f"\n### `{args.profile}` pool, every {args.stride}th reference: {n:,} candidates\n")
    print(f"- verification: {run.verified:,} candidates in {t_verify:.0f} s ({run.verified / t_verify:.1f} cand/s, "
          f"{verification.describe()}); pool build {t_pool:.0f} s; load average before {' '.join(load_before)}, "
          f"after {' '.join(load_after)}\n")
    print("| stage | out (sample) | × stride (estimate for the pool) | expected range (profile) |")
    print("|---|---|---|---|")
    for r in result.counts.itertuples():
        rng = prof.funnel_expected.get(int(r.stage))
        expected = f"{rng.min:,}–{rng.max:,}" if rng else ""
        print(f"| {int(r.stage)} {r.name} | {int(r.n_out):,} | {int(r.n_out) * args.stride:,} | {expected} |")
    print("\nstage reasons:")
    for r in result.counts.itertuples():
        print(f"- stage {int(r.stage)}: {r.reason}")
    trace = result.trace.merge(labels, on="candidate_id", how="left")
    removed3 = trace[trace["stage_removed"] == 3]
    print(f"\nstage 3 (trivially wrong) removed {len(removed3):,} candidates; by injected error type:")
    for (etype, source), k in removed3.groupby(["error_type", "source"]).size().sort_values(ascending=False).items():
        print(f"- {etype} ({source}): {k}")
    pairs = trace[trace["reason"] == "hard-negative"]
    print(f"\nhard negatives by injected error type ({len(pairs):,}):")
    for (etype, source), k in pairs.groupby(["error_type", "source"]).size().sort_values(ascending=False).items():
        print(f"- {etype} ({source}): {k}")
    print()
    sys.path.insert(0, str(Path(__file__).parent))
    import inject_labels

    return inject_labels.main(["--partition", f"{family}|{seed}", "--warehouse", str(wh.path)])


if __name__ == "__main__":
    raise SystemExit(main())
