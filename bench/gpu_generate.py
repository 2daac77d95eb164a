"""GPU benchmark (prepared, run it on a CUDA machine): vLLM vs HF `generate` in bf16, side by side,
tokens/s for pool sampling and greedy evaluation, and greedy agreement between the two.

    .venv/bin/pip install 'vllm==0.33.0'        # Linux + CUDA only; a multi-GB wheel with its own torch
    .venv/bin/python bench/gpu_generate.py                      # SmolLM2-135M (the embedded default)
    .venv/bin/python bench/gpu_generate.py --model /path/to/Qwen2.5-1.5B-Instruct --problems 256

Without vllm importable the vLLM rows are skipped with the reason (the HF rows still run), so
the script is useful on a machine where the wheel cannot be installed (no network, no CUDA
build for the driver). The policy is written to disk once (as `build_backend` does for the
`merged` mode) and vLLM serves it from there; HF decodes the same weights in bf16.

Order: hf, vllm, hf, vllm ... for `--rounds` rounds; medians reported. vLLM's first round
includes CUDA-graph capture only if `--no-warmup`; by default one short warm-up call per engine
runs first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="registry name or local directory")
    ap.add_argument("--problems", type=int, default=64, help="GSM8K train problems sampled")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64, help="HF batch (vLLM schedules its own)")
    ap.add_argument("--eval-items", type=int, default=200, help="GSM8K test items for greedy eval")
    ap.add_argument("--eval-max-new-tokens", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from hardneg.generation import VLLM_INSTALL, HFBackend, SamplingParams, VLLMBackend, vllm_available
    from hardneg.prompts import eval_prompt, training_prompt
    from hardneg.registry import load_tokenizer, resolve_model

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark is for GPU machines (bench/generate.py is the CPU one)")
    path = resolve_model(args.model)
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    engines = {"hf-bf16": HFBackend(model, tokenizer, device="cuda")}
    why_no_vllm = None
    if vllm_available():
        served = Path(tempfile.mkdtemp(prefix="hardneg-vllm-")) / "merged-policy"
        model.save_pretrained(served)
        tokenizer.save_pretrained(served)
        try:
            engines["vllm"] = VLLMBackend(str(served), dtype="bfloat16", gpu_memory_utilization=args.gpu_memory_utilization)
        except Exception as exc:  # a wheel that does not match the driver, etc.: say so, keep HF
            why_no_vllm = f"vLLM failed to start: {type(exc).__name__}: {exc}"
    else:
        why_no_vllm = f"vllm is not installed here ({VLLM_INSTALL} needs network + CUDA)"

    from hardneg.data import load_problems

    train = load_problems("gsm8k", "train", limit=args.problems)[0]["question"]
    test = load_problems("gsm8k", "test", limit=args.eval_items)[0]["question"]
    pool_prompts = [training_prompt(tokenizer, q) for q in train]
    eval_prompts = [eval_prompt(q) for q in test]
    sampling = SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.95, n=args.k, seed=0, batch_size=args.batch_size
    )
    greedy = SamplingParams(max_new_tokens=args.eval_max_new_tokens, batch_size=args.batch_size)
    for e in engines.values():
        e.generate(pool_prompts[:2], SamplingParams(max_new_tokens=8), progress=False)

    rates: dict[tuple[str, str], list[float]] = {}
    outs: dict[str, list] = {}
    for r in range(args.rounds):
        for work, prompts, params in (("sampling", pool_prompts, sampling), ("greedy", eval_prompts, greedy)):
            for name, e in engines.items():
                torch.cuda.synchronize()
                start = time.perf_counter()
                gens = e.generate(prompts, params, progress=False)
                torch.cuda.synchronize()
                secs = time.perf_counter() - start
                tok = sum(g.n_tokens for g in gens)
                rates.setdefault((work, name), []).append(tok / secs)
                if work == "greedy":
                    outs[name] = gens
                print(f"[gpu-bench] round {r} {work} {name}: {tok} tokens in {secs:.1f} s", file=sys.stderr, flush=True)

    print(f"## Generation on GPU: {torch.cuda.get_device_name()} ({args.model})\n")
    print(f"- command: `.venv/bin/python bench/gpu_generate.py {' '.join(sys.argv[1:])}`")
    print(f"- sampling: {len(pool_prompts)} prompts × {args.k}, T=0.7, top-p 0.95, ≤{args.max_new_tokens} tokens; "
          f"greedy: {len(eval_prompts)} GSM8K test items, ≤{args.eval_max_new_tokens} tokens; HF batch {args.batch_size}")
    if why_no_vllm:
        print(f"- vLLM rows missing: {why_no_vllm}")
    print("\n| workload | engine | tokens/s per round | median | × hf-bf16 |\n|---|---|---|---:|---:|")
    for work in ("sampling", "greedy"):
        base = statistics.median(rates[(work, "hf-bf16")])
        for name in engines:
            med = statistics.median(rates[(work, name)])
            runs = ", ".join(f"{x:.0f}" for x in rates[(work, name)])
            print(f"| {work} | {name} | {runs} | {med:.0f} | {med / base:.2f}× |")
    if "vllm" in outs:
        same = sum(a.token_ids == b.token_ids for a, b in zip(outs["hf-bf16"], outs["vllm"]))
        print(f"\nGreedy agreement vllm vs hf-bf16 (bf16 kernels differ, so long completions may part ways): "
              f"{same}/{len(eval_prompts)} identical token for token.")


if __name__ == "__main__":
    main()
