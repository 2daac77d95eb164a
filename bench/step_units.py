"""Benchmark: is `first_error_step` counted in the steps a person sees?

Why: a solution written as a few lines of prose (MetaMathQA's MATH-style answers, a step-labelled set
that gives one step per line) is analysed sentence by sentence, but whoever labelled it counts its lines
(SPEC §5: "Steps are the candidate's lines"). Workload: GSM8K *test* references (no rule was developed
on them) rewritten as lines of `--per-line` consecutive steps joined by spaces (the answer line stays
alone; a full stop added where a line has none), and the same with one visible result slipped (as the inject pool's arithmetic slips); the label
is the *line* that holds the slip. Each is verified as text and as a list of its lines.

- correct: a flagged line is a false alarm;
- slip: `first_error_step` equal to the slipped line.

    .venv/bin/python bench/step_units.py [--limit 1319] [--per-line 3] [--seed 0]

Prints a markdown table. Run it at two commits to compare verifier versions (a version that takes no
list of steps scores the list rows as not run).
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


def paragraphs(ref: inject.Reference, per_line: int, rng: random.Random):
    """(lines, lines with a slip, the slipped line), or None without a visible operation to slip."""
    body, answer = ref.steps[:-1], ref.steps[-1]
    sites = [s for s in inject._arith_sites(ref) if s["step"] < len(body) and inject._visible_binary(s) is not None]
    if not sites:
        return None
    s = rng.choice(sites)
    old = ref.steps[s["step"]][s["res_start"] : s["res_end"]]
    slipped = list(body)
    slipped[s["step"]] = body[s["step"]][: s["res_start"]] + inject._confusable(old, rng) + body[s["step"]][s["res_end"] :]

    def group(steps):
        # sentences as prose writes them: GSM8K lines often end without a full stop
        steps = [st if st.rstrip().endswith((".", "!", "?")) else st.rstrip() + "." for st in steps]
        return [" ".join(steps[i : i + per_line]) for i in range(0, len(steps), per_line)] + [answer]

    return group(body), group(slipped), s["step"] // per_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=1319, help="GSM8K test references to use (1,319 in all)")
    ap.add_argument("--per-line", type=int, default=3, help="reference steps joined into one line")
    ap.add_argument("--seed", type=int, default=0, help="which result is slipped, and how")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = []  # (kind, form, label, VerifyInput)
    with (ROOT / "data" / "gsm8k" / "test.jsonl").open() as f:
        for idx, line in enumerate(f):
            if idx >= args.limit:
                break
            ref = inject._gsm8k_reference(idx, json.loads(line))
            made = paragraphs(ref, args.per_line, rng)
            if made is None:
                continue
            lines, slipped, label = made
            for kind, ls in (("correct", lines), ("slip", slipped)):
                rows.append((kind, "text", label, VerifyInput(f"{idx}:{kind}", ref.question, "\n".join(ls), ref.text, ref.answer)))
                try:
                    as_list = VerifyInput(f"{idx}:{kind}:list", ref.question, ls, ref.text, ref.answer)
                except TypeError:
                    continue  # a version that takes text only
                rows.append((kind, "list", label, as_list))
    verifier = MathVerifier(VerifierConfig(use_nli=False))
    t0 = time.perf_counter()
    profiles = verifier.verify_batch([r[3] for r in rows], progress=True)
    wall = time.perf_counter() - t0
    n: dict = {}
    hit: dict = {}
    long_lines = sum(len(x) >= 150 for kind, form, _, it in rows if kind == "correct" and form == "text" for x in it.candidate.split("\n"))
    for (kind, form, label, _), p in zip(rows, profiles):
        key = (kind, form)
        n[key] = n.get(key, 0) + 1
        ok = (p.first_error_step is not None) if kind == "correct" else (p.first_error_step == label)
        hit[key] = hit.get(key, 0) + ok
    print(f"## First error step in lines — verifier {VERIFIER_VERSION}\n")
    print(f"{platform.node()}, {os.cpu_count()} CPUs; `bench/step_units.py --limit {args.limit} --per-line {args.per_line} "
          f"--seed {args.seed}`; {len(rows)} candidates verified in {wall:.0f} s; {long_lines} lines of >= 150 characters "
          "(analysed by sentence) in the correct texts\n")
    print("| candidates | given as | n | rate |\n|---|---|---|---|")
    for kind, what in (("correct", "flagged (false alarms)"), ("slip", "first error step = the slipped line")):
        for form in ("text", "list"):
            k = (kind, form)
            if k in n:
                print(f"| {kind}: {what} | {form} | {n[k]} | {hit[k] / n[k]:.3f} ({hit[k]}) |")
            else:
                print(f"| {kind}: {what} | {form} | not run | — |")


if __name__ == "__main__":
    main()
