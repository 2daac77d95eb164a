"""Benchmark: the verifier on solutions that write their arithmetic in words ("12 minus 5 is 7").

Why: models write prose and long chains of thought ("so 3 times 4 is 12, minus 5 is 7"), while the
GSM8K and MATH references, and so the error-injection pool, write `12 - 5 = 7`. A slip written in
words is invisible to a verifier that reads only symbols. Workload: GSM8K *test* references (no rule
was developed on them), each rewritten with every visible operation `a op b = c` put in words
(`a plus|minus|times|divided by b is c`), verified against the reference as written:

- correct: the rewritten reference. A flagged step is a false alarm;
- slip: the same with one written result changed (as the inject pool's arithmetic slips: ±1, a
  digit changed, ...), later steps unchanged. Detected = `first_error_step` on that step;
- symbolic: the reference as written and the slip left in symbols (`12 - 5 = 8`), the verifier's
  known ground, side by side.

    .venv/bin/python bench/verbal_arithmetic.py [--limit 1319] [--seed 0]

Prints a markdown table. Run it at two commits to compare verifier versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hardneg import inject  # noqa: E402
from hardneg.verifier import VERIFIER_VERSION, MathVerifier, VerifierConfig, VerifyInput  # noqa: E402

WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}


def rewrite(ref: inject.Reference, rng: random.Random):
    """(words, words with a slip, symbols with the same slip, slipped step), or None without a visible operation."""
    sites = [(s, inject._visible_binary(s)) for s in inject._arith_sites(ref)]
    sites = [(s, v) for s, v in sites if v is not None]
    if not sites:
        return None
    words, used = list(ref.steps), {}
    for s, (a, op, b, vis) in sites:
        if s["step"] in used:
            continue  # one operation per step keeps the offsets of the reference valid
        st = words[s["step"]]
        words[s["step"]] = st[: vis.start()] + f"{a} {WORDS[op]} {b} is " + st[s["res_start"] :]
        used[s["step"]] = (s, vis.start() + len(f"{a} {WORDS[op]} {b} is "))
    step = rng.choice(sorted(used))
    s, at = used[step]
    old = ref.steps[step][s["res_start"] : s["res_end"]]
    wrong = inject._confusable(old, rng)
    slipped = list(words)
    slipped[step] = words[step][:at] + wrong + words[step][at + len(old) :]
    symbolic = list(ref.steps)
    symbolic[step] = ref.steps[step][: s["res_start"]] + wrong + ref.steps[step][s["res_end"] :]
    return "\n".join(words), "\n".join(slipped), "\n".join(symbolic), step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=1319, help="GSM8K test references to use (1,319 in all)")
    ap.add_argument("--seed", type=int, default=0, help="which result is slipped, and how")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    items, kinds = [], []
    with (ROOT / "data" / "gsm8k" / "test.jsonl").open() as f:
        for idx, line in enumerate(f):
            if idx >= args.limit:
                break
            ref = inject._gsm8k_reference(idx, json.loads(line))
            made = rewrite(ref, rng)
            if made is None:
                continue
            words, slipped, symbolic, step = made
            for kind, text in (("correct", words), ("slip", slipped), ("reference", ref.text), ("symbolic", symbolic)):
                items.append(VerifyInput(f"{idx}:{kind}", ref.question, text, ref.text, ref.answer))
                kinds.append((kind, step))
    verifier = MathVerifier(VerifierConfig(use_nli=False))
    t0 = time.perf_counter()
    profiles = verifier.verify_batch(items, progress=True)
    wall = time.perf_counter() - t0
    n = {k: 0 for k in ("correct", "slip", "reference", "symbolic")}
    hit = dict(n)
    for (kind, step), p in zip(kinds, profiles):
        n[kind] += 1
        hit[kind] += (p.first_error_step is not None) if kind in ("correct", "reference") else (p.first_error_step == step)
    print(f"## Arithmetic in words — verifier {VERIFIER_VERSION}\n")
    print(f"{platform.node()}, {os.cpu_count()} CPUs; `bench/verbal_arithmetic.py --limit {args.limit} --seed {args.seed}`; "
          f"{len(items)} candidates verified in {wall:.0f} s\n")
    print("| candidates | n | rate |\n|---|---|---|")
    print(f"| correct, in words: flagged (false alarms) | {n['correct']} | {hit['correct'] / max(n['correct'], 1):.3f} ({hit['correct']}) |")
    print(f"| slip in words: first error step exact | {n['slip']} | {hit['slip'] / max(n['slip'], 1):.3f} ({hit['slip']}) |")
    print(f"| the reference in symbols: flagged | {n['reference']} | {hit['reference'] / max(n['reference'], 1):.3f} ({hit['reference']}) |")
    print(f"| the same slip in symbols: first error step exact | {n['symbolic']} | {hit['symbolic'] / max(n['symbolic'], 1):.3f} ({hit['symbolic']}) |")


if __name__ == "__main__":
    main()
