"""Benchmark: today's generation path (`HFBackend`, transformers `generate`) against the native
CPU path (`NativeBackend`: continuous batching, static KV cache) on the real smoke policy
(SmolLM2-135M-Instruct from its GGUF, fp32), side by side in one process on one loaded model.

Two workloads, at the smoke profile's shapes unless told otherwise:
1. pool sampling (SPEC §2.3: T=0.7, top-p 0.95, SFT chat prompt, K samples per GSM8K train
   problem, batch 64);
2. greedy evaluation generation (SPEC §2.6: qwen2-boxed prompt) on GSM8K test + MATH-500
   items (HF at the profile's batch 25, native at its own `--eval-batch-native`).

The paths run INTERLEAVED (hf, native, hf, native, ...) for `--rounds` rounds and the table
reports medians, so a machine shared with other jobs slows both alike and the ratio stays
meaningful. Greedy outputs of each native variant are compared token for token with HF's.

    .venv/bin/python bench/generate.py                        # ~15 min on 2 shared cores
    .venv/bin/python bench/generate.py --quick                # ~2 min smoke test of the script
    .venv/bin/python bench/generate.py --paths hf,native,native-bf16

Tokens are generated tokens (EOS excluded); sampled token counts differ between paths (another
random stream), so throughput is compared as tokens per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=16, help="GSM8K train problems sampled (smoke: 16)")
    ap.add_argument("--k", type=int, default=4, help="samples per problem (smoke: 4)")
    ap.add_argument("--max-new-tokens", type=int, default=192, help="sampling cap (smoke: 192)")
    ap.add_argument("--batch-size", type=int, default=64, help="sampling batch, both paths (smoke: 64)")
    ap.add_argument("--eval-items", type=int, default=25, help="items per benchmark (GSM8K test and MATH-500)")
    ap.add_argument("--eval-max-new-tokens", type=int, default=160, help="eval cap (smoke: 160)")
    ap.add_argument("--eval-batch-hf", type=int, default=25, help="HF eval batch (smoke today: 25)")
    ap.add_argument("--eval-batch-native", type=int, default=64, help="native eval KV slots")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--paths", default="hf,native", help="comma list of hf, native, native-bf16")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: shared 2-core box; see BENCHMARKS.md)")
    ap.add_argument("--workloads", default="sampling,greedy", help="comma list of sampling, greedy")
    ap.add_argument("--quick", action="store_true", help="tiny shapes: check the script runs")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    args = ap.parse_args()
    if args.quick:
        args.problems, args.k, args.max_new_tokens = 4, 2, 16
        args.eval_items, args.eval_max_new_tokens, args.rounds = 4, 16, 1

    import torch

    torch.set_num_threads(args.threads)
    import transformers
    from transformers import AutoModelForCausalLM

    from hardneg.generation import HFBackend, SamplingParams
    from hardneg.generation_native import NativeBackend
    from hardneg.grading import gsm8k_reference_answer  # noqa: F401  (same import cost for both)
    from hardneg.prompts import eval_prompt, training_prompt
    from hardneg.registry import load_tokenizer, resolve_model

    transformers.logging.set_verbosity_error()
    t0 = time.perf_counter()
    path = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0

    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    backends = {}
    for name in paths:
        if name == "hf":
            backends[name] = HFBackend(model, tokenizer)
        elif name == "native":
            backends[name] = NativeBackend(model, tokenizer)
        elif name == "native-bf16":
            backends[name] = NativeBackend(model, tokenizer, dtype=torch.bfloat16)
        else:
            sys.exit(f"unknown path {name!r}")

    from hardneg.data import load_problems

    train = load_problems("gsm8k", "train", limit=64 + args.problems)[0]["question"].tolist()[64:]  # the pool skips SFT's 64
    pool_prompts = [training_prompt(tokenizer, q) for q in train]
    gsm = load_problems("gsm8k", "test", limit=args.eval_items)[0]["question"].tolist()
    m500 = load_problems("math500", "test", limit=args.eval_items)[0]["question"].tolist()
    eval_prompts = [eval_prompt(q) for q in gsm + m500]

    def sampling(name: str):
        p = SamplingParams(
            max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.95, n=args.k, seed=0, batch_size=args.batch_size
        )
        return backends[name].generate(pool_prompts, p, progress=False)

    def greedy(name: str):
        batch = args.eval_batch_hf if name == "hf" else args.eval_batch_native
        # One generate call per benchmark, as `evaluate` does.
        n = len(gsm)
        p = SamplingParams(max_new_tokens=args.eval_max_new_tokens, batch_size=batch)
        return backends[name].generate(eval_prompts[:n], p, progress=False) + backends[name].generate(
            eval_prompts[n:], p, progress=False
        )

    # Warm-up: first-call allocations and kernel selection are nobody's throughput.
    for name in paths:
        backends[name].generate(pool_prompts[:1], SamplingParams(max_new_tokens=4), progress=False)

    runs: dict[tuple[str, str], list[tuple[int, float]]] = {}
    greedy_out: dict[str, list] = {}
    finish: dict[tuple[str, str], str] = {}
    loads = [loadavg()]
    for r in range(args.rounds):
        for work, fn in (("sampling", sampling), ("greedy", greedy)):
            if work not in args.workloads.split(","):
                continue
            for name in paths:
                start = time.perf_counter()
                gens = fn(name)
                secs = time.perf_counter() - start
                tok = sum(g.n_tokens for g in gens)
                runs.setdefault((work, name), []).append((tok, secs))
                eos = sum(g.finish_reason == "eos" for g in gens)
                finish[(work, name)] = f"{eos}/{len(gens) - eos}"
                if work == "greedy":
                    greedy_out[name] = gens
                print(f"[bench] round {r} {work} {name}: {tok} tokens in {secs:.1f} s = {tok / secs:.1f} tokens/s "
                      f"(load {loadavg()})", file=sys.stderr, flush=True)
        loads.append(loadavg())

    lines = []
    out = lines.append
    out("## Generation: HFBackend vs NativeBackend on SmolLM2-135M-Instruct (fp32 from GGUF), CPU\n")
    out(f"- machine: {platform.machine()}, {os.cpu_count()} cores visible, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread(s)), transformers {transformers.__version__}")
    out(f"- command: `.venv/bin/python bench/generate.py {' '.join(sys.argv[1:])}`")
    out(f"- load average (1/5/15 min) at start and after each round: {', '.join(loads)} (shared machine)")
    out(f"- model load: {load_s:.1f} s; {args.rounds} interleaved round(s), medians of tokens/s\n")
    out(f"Sampling: {args.problems} GSM8K train problems × K={args.k}, T=0.7, top-p 0.95, ≤{args.max_new_tokens} "
        f"tokens, batch {args.batch_size}. Greedy: {len(gsm)} GSM8K test + {len(m500)} MATH-500, qwen2-boxed, "
        f"≤{args.eval_max_new_tokens} tokens, HF batch {args.eval_batch_hf}, native {args.eval_batch_native} slots.\n")
    out("| workload | path | tokens/s per round | median tokens/s | × HF | finish eos/length (last round) |")
    out("|---|---|---|---:|---:|---|")
    medians = {}
    for work in [w for w in ("sampling", "greedy") if w in args.workloads.split(",")]:
        for name in paths:
            rates = [t / s for t, s in runs[(work, name)]]
            medians[(work, name)] = statistics.median(rates)
        for name in paths:
            rates = ", ".join(f"{t / s:.1f}" for t, s in runs[(work, name)])
            ratio = medians[(work, name)] / medians[(work, "hf")] if "hf" in paths else float("nan")
            out(f"| {work} | {name} | {rates} | {medians[(work, name)]:.1f} | {ratio:.2f}× | {finish[(work, name)]} |")
    if "hf" in greedy_out:
        out("")
        ref = greedy_out["hf"]
        for name in paths:
            if name == "hf":
                continue
            gens = greedy_out[name]
            same = sum(a.token_ids == b.token_ids for a, b in zip(ref, gens))
            firsts = []
            for a, b in zip(ref, gens):
                if a.token_ids != b.token_ids:
                    firsts.append(next((j for j, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y),
                                       min(len(a.token_ids), len(b.token_ids))))
            where = f"; first differing token at positions {sorted(firsts)}" if firsts else ""
            out(f"Greedy agreement {name} vs hf: {same}/{len(ref)} completions identical token for token{where}.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
