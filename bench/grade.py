"""Benchmark: grading throughput (items/s) for GSM8K-style and MATH-style completions.

Why: evaluation grades every sample of every (family, seed, benchmark) partition, and the
verifier grades every candidate; grading must not be the slow step. The design claim is that an
in-process fast path decides the common cases and only the rest pays a SymPy round trip. The
baseline, run side by side, is the same protocol with no fast path and one bounded worker call
per item (every check in the worker, unbatched).

Workloads are built from the repository's data files: reference solutions as completions, half
of them perturbed to be wrong, some correct ones reformatted (`\\dfrac`, `N.0`) so normalization
and SymPy are exercised.

    .venv/bin/python bench/grade.py [--gsm8k N] [--math N]

Prints a markdown block.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardneg import grading  # noqa: E402
from hardneg.bounded import call_bounded  # noqa: E402
from hardneg.grading import (  # noqa: E402
    GradingConfig,
    extract_answer,
    grade_batch,
    gsm8k_reference_answer,
    math_reference_answer,
    normalize_answer,
)


def _jsonl(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows[:limit]


def gsm8k_items(limit: int) -> list[tuple[str, str, bool]]:
    """(completion, reference, expected_correct): MetaMathQA-style 'The answer is: X' endings."""
    items = []
    for i, row in enumerate(_jsonl(ROOT / "data/gsm8k/test.jsonl", limit)):
        reasoning, _ = row["answer"].split("####", 1)
        reasoning = re.sub(r"<<[^>]*>>", "", reasoning).strip()
        ref = gsm8k_reference_answer(row["answer"])
        wrong = i % 2 == 1
        answer = str(int(ref) + 7) if wrong else ref
        if i % 4 == 2:  # some correct ones boxed instead
            items.append((f"{reasoning}\nSo the answer is $\\boxed{{{answer}}}$.", ref, not wrong))
        else:
            items.append((f"{reasoning}\nThe answer is: {answer}", ref, not wrong))
    return items


def _replace_last_box(solution: str, new: str) -> str:
    start = solution.rfind("boxed{") + len("boxed{")
    old = math_reference_answer(solution)
    return solution[:start] + new + solution[start + len(old) :]


def math_items(limit: int) -> list[tuple[str, str, bool]]:
    """(completion, reference, expected_correct) from MATH test solutions."""
    items = []
    for i, row in enumerate(_jsonl(ROOT / "data/math/test.jsonl", limit)):
        solution = row["solution"]
        ref = math_reference_answer(solution)
        value = grading._parse_digits(normalize_answer(ref))
        if i % 2 == 1:  # wrong: a different number, or the expression plus one
            new = f"{value + 1:g}" if value is not None else f"({ref})+1"
            items.append((_replace_last_box(solution, new), ref, False))
        elif i % 4 == 2:  # correct but written differently
            new = f"{value:g}.0" if value is not None and value == int(value) else ref.replace("\\frac", "\\dfrac")
            items.append((_replace_last_box(solution, new), ref, True))
        else:
            items.append((solution, ref, True))
    return items


def _baseline_one(pred_n: str, ref_n: str) -> bool:
    """The full protocol check in the worker, symbolic path always on (no in-process fast path)."""
    return bool(grading._equal_normalized(pred_n, ref_n, True))


def baseline(items: list[tuple[str, str, bool]]) -> list[bool]:
    out = []
    for completion, ref, _ in items:
        pred = extract_answer(completion)
        if pred is None:
            out.append(False)
            continue
        out.append(bool(call_bounded(_baseline_one, normalize_answer(pred), normalize_answer(ref), timeout=4.0)))
    return out


def _timed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


def run(name: str, items: list[tuple[str, str, bool]]) -> list[str]:
    pairs = [(c, r) for c, r, _ in items]
    expected = [e for _, _, e in items]
    undecided = 0
    for completion, ref in pairs:
        pred = extract_answer(completion)
        if pred is not None and grading._equal_normalized(normalize_answer(pred), normalize_answer(ref), False) is None:
            undecided += 1

    base, t_base = _timed(baseline, items)
    fast, t_fast = _timed(grade_batch, pairs, GradingConfig(math_verify=False))
    full, t_full = _timed(grade_batch, pairs, GradingConfig(math_verify=True))

    n = len(items)

    def acc(verdicts):
        return sum(v == e for v, e in zip(verdicts, expected)) / n

    mv = [r.correct_math_verify for r in full]
    agree = sum(m == r.correct for m, r in zip(mv, full) if m is not None) / max(1, sum(m is not None for m in mv))
    modes = [
        ("baseline: no fast path, 1 bounded call/item", t_base, base),
        (f"grade_batch, protocol only ({undecided} items to SymPy)", t_fast, [r.correct for r in fast]),
        (f"grade_batch + Math-Verify on every item (agrees on {agree:.1%})", t_full, [r.correct for r in full]),
    ]
    return [
        f"| {name} | {n} | {mode} | {seconds:.2f} | {n / seconds:,.0f} | {t_base / seconds:.1f}x "
        f"| {acc(verdicts):.3f} |"
        for mode, seconds, verdicts in modes
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gsm8k", type=int, default=1319, help="GSM8K test rows to use")
    parser.add_argument("--math", type=int, default=1000, help="MATH test rows to use")
    args = parser.parse_args()

    _, t_warm = _timed(lambda: call_bounded(grading.warm_worker, timeout=120))
    rows = ["| workload | items | mode | seconds | items/s | speed vs baseline | verdict matches construction |",
            "|---|---|---|---|---|---|---|"]
    rows += run("GSM8K-style", gsm8k_items(args.gsm8k))
    rows += run("MATH-style", math_items(args.math))
    print(f"### grading throughput ({platform.machine()}, python {platform.python_version()})\n")
    print(f"Worker start + SymPy/Math-Verify import (once per worker, not in the figures): {t_warm:.2f} s\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
