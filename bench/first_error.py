"""Benchmark: does the verifier name the step a person would mark as the first error?

Why: the error-injection pool labels slips it made itself; models mostly go wrong another way. They misread
the question ("half as many" doubled), take a change for the quantity ("50% more" computed as 50% of),
leave a step out, answer an intermediate quantity, invert a ratio: arithmetic done right on the wrong
quantities, which no slip check sees. Workload: `bench/first_error_labelled.jsonl`, solutions to GSM8K *test*
problems written by hand in three styles models use (Qwen-style numbered steps with `\\[ \\]` displays,
Llama-style `## Step N:` headers, plain lines), each labelled correct or with the text of its first wrong
step (`first_error`: a string, or a list where two readings are fair) and the kind of error. Rounds 1-10 were
written one after the other; each round was run once before any rule was changed after it (BENCHMARKS.md
keeps those first looks), so only the first look of a round is a held-out figure.

Round 6 adds solutions to MATH *test* problems (algebra, counting, number theory), written and labelled the same
way; MATH rows carry `math_test` (the line of data/math/test.jsonl) where GSM8K rows carry `gsm8k_test`.
Rounds 7-10 (60 MATH, 30 GSM8K each) were written and labelled by helpers that did not open the verifier or
its tests. `--data FILE` runs a labelled file of your own in the same format.

Reported per benchmark and round: correct solutions with any step flagged, and wrong ones whose first flagged
step holds the labelled text (exact), another step (other) or no step at all (none).

    .venv/bin/python bench/first_error.py [--show]   # ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "first_error_labelled.jsonl"


def items(rows: list[dict]):
    from hardneg.grading import math_reference_answer
    from hardneg.verifier import VerifyInput

    gsm8k = [json.loads(line) for line in open(ROOT / "data" / "gsm8k" / "test.jsonl", encoding="utf-8")]
    math = [json.loads(line) for line in open(ROOT / "data" / "math" / "test.jsonl", encoding="utf-8")]
    for k, row in enumerate(rows):
        if "math_test" in row:
            problem = math[row["math_test"]]
            yield VerifyInput(id=str(k), question=problem["problem"], candidate=row["completion"],
                              reference_solution=problem["solution"],
                              reference_answer=math_reference_answer(problem["solution"]))
            continue
        problem = gsm8k[row["gsm8k_test"]]
        body, answer = problem["answer"].split("####")
        yield VerifyInput(id=str(k), question=problem["question"], candidate=row["completion"],
                          reference_solution=body, reference_answer=answer.strip())


def source(row: dict) -> str:
    """The benchmark a row's problem comes from: its rounds are tallied apart."""
    return "MATH" if "math_test" in row else "GSM8K"


def outcome(row: dict, profile) -> str:
    first = profile.first_error_step
    if row["first_error"] is None:
        return "correct clean" if first is None else "correct flagged"
    if first is None:
        return "wrong none"
    marks = row["first_error"] if isinstance(row["first_error"], list) else [row["first_error"]]
    return "wrong exact" if any(m in profile.steps[first].text for m in marks) else "wrong other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", action="store_true", help="print the steps and flags of every miss")
    ap.add_argument("--data", type=Path, default=DATA, help="a labelled file in the same format (default: %(default)s)")
    args = ap.parse_args()
    from hardneg.verifier import VERIFIER_VERSION, MathVerifier, VerifierConfig

    rows = [json.loads(line) for line in open(args.data, encoding="utf-8")]
    profiles = MathVerifier(VerifierConfig(use_nli=False)).verify_batch(list(items(rows)))
    tally: dict[tuple[str, int], Counter] = {}  # (problems, round) -> outcomes
    for row, p in zip(rows, profiles):
        kind = outcome(row, p)
        tally.setdefault((source(row), row["round"]), Counter())[kind] += 1
        if args.show and kind not in ("correct clean", "wrong exact"):
            print(f"== {kind}: {source(row)} test {row.get('gsm8k_test', row.get('math_test'))} ({row['style']}, {row['kind']})"
                  f" marked: {row['first_error']!r}")
            for i, s in enumerate(p.steps):
                print(f"  [{i}] {s.text[:100]!r} {s.flags}")
    print(f"### First error step on hand-labelled model-style solutions ({VERIFIER_VERSION}, {len(rows)} solutions)\n")
    print("| problems | round | correct | flagged | wrong | exact | other step | no step |")
    print("|---|---|---|---|---|---|---|---|")
    total = Counter()
    for src, rnd in sorted(tally, key=lambda key: (key[0] != "GSM8K", key[1])):
        t = tally[src, rnd]
        total.update(t)
        print(f"| {src} | {rnd} | {t['correct clean'] + t['correct flagged']} | {t['correct flagged']} | "
              f"{t['wrong exact'] + t['wrong other'] + t['wrong none']} | {t['wrong exact']} | {t['wrong other']} | {t['wrong none']} |")
    wrong = total["wrong exact"] + total["wrong other"] + total["wrong none"]
    print(f"| all | | {total['correct clean'] + total['correct flagged']} | {total['correct flagged']} | {wrong} | "
          f"**{total['wrong exact']}** | {total['wrong other']} | {total['wrong none']} |")


if __name__ == "__main__":
    main()
