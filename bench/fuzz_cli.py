"""Fuzz: `hardneg grade`, `hardneg verify`, `hardneg.data.read_jsonl` and the profile loader on
generated hostile input (issue 15) — 0 tracebacks, 0 lost good rows, every bad row reported.

What is checked, per command (inputs from `bench/fuzz_inputs.py`, seeded):
- the real console command runs as a subprocess on the whole file: exit code 0, no
  "Traceback" on stderr, every good row in the output in input order with its id unchanged
  (lone surrogates included), every bad line reported as `IN:<line>:`, nothing else output,
  no `.tmp` file left beside the output; peak RSS of that child process (ru_maxrss);
- per-row latency: the same file through `hardneg.cli.main` in-process with batches of one
  row, timing each call of the command's handler (grade: `grade_batch`; verify:
  `MathVerifier.verify_batch`) — the max and p99 are reported;
- `read_jsonl` (the pipeline's reader): every bad line quarantined with its number, every good
  row kept;
- profiles: `load_profile` on N generated bad profiles: each must raise ConfigError whose
  message is one line naming the file (and the dotted key where the generator knows it).

    .venv/bin/python bench/fuzz_cli.py [--rows 10000] [--verify-rows 1000] [--profiles 500] [--seed 0] [--only PART]

Prints a markdown block (machine, load, command, figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fuzz_inputs import bad_profiles, hostile_jsonl, write_jsonl  # noqa: E402


def check_cli_output(lines, inp: Path, out: Path, proc: subprocess.CompletedProcess) -> dict:
    """Compare a command's output and stderr with what each generated line deserves."""
    good_ids = [line.row_id for line in lines if line.fate == "good"]
    bad_numbers = {i + 1 for i, line in enumerate(lines) if line.fate == "bad"}
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []
    got_ids = [r.get("id") for r in rows]
    reported = set()
    for text in proc.stderr.splitlines():
        prefix = f"{inp}:"
        if text.startswith(prefix):
            number = text[len(prefix):].split(":", 1)[0]
            if number.isdigit():
                reported.add(int(number))
    leftovers = [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    return {
        "exit": proc.returncode,
        "tracebacks": proc.stderr.count("Traceback"),
        "good": len(good_ids),
        "lost_good": len(good_ids) - sum(1 for a, b in zip(good_ids, got_ids) if a == b),
        "order_kept": got_ids == good_ids,
        "bad": len(bad_numbers),
        "bad_unreported": len(bad_numbers - reported),
        "reported_but_good": len(reported - bad_numbers),
        "tmp_left": len(leftovers),
    }


def run_subprocess(command: list[str], inp: Path, out: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hardneg.cli", *command, "--input", str(inp), "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, errors="backslashreplace",
    )
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; max over children so far
    return proc, wall, max(peak, before) / 1024


def per_row_latency(command: list[str], inp: Path, out: Path) -> list[float]:
    """Time each handler call with one row per batch, in-process."""
    import hardneg.cli as cli
    from hardneg import grading

    times: list[float] = []
    cli.BATCH_ROWS = 1
    if command[0] == "grade":
        original = grading.grade_batch

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                times.append(time.perf_counter() - t)

        # The worker's one-time start (spawn + SymPy/antlr import, seconds on a busy box) is not a row's cost.
        original([("\\boxed{1}", "1")])
        grading.grade_batch = timed
        try:
            cli.main([*command, "--input", str(inp), "--output", str(out)])
        finally:
            grading.grade_batch = original
    else:
        from hardneg.verifier import MathVerifier

        original = MathVerifier.verify_batch

        def timed_verify(self, *a, **k):
            t = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                times.append(time.perf_counter() - t)

        MathVerifier.verify_batch = timed_verify
        try:
            cli.main([*command, "--input", str(inp), "--output", str(out)])
        finally:
            MathVerifier.verify_batch = original
    cli.BATCH_ROWS = 256
    return times


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def fuzz_command(name: str, command: list[str], n: int, seed: int, work: Path, latency: bool) -> dict:
    lines = hostile_jsonl(n, seed=seed, command=name)
    inp, out = work / f"{name}.jsonl", work / f"{name}-out" / "out.jsonl"
    out.parent.mkdir(exist_ok=True)
    write_jsonl(lines, inp)
    proc, wall, rss = run_subprocess(command, inp, out)
    result = check_cli_output(lines, inp, out, proc)
    result.update(rows=n, wall_s=round(wall, 1), peak_rss_mb=round(rss), kinds=len({l.kind for l in lines}))
    if latency:
        times = per_row_latency(command, inp, work / f"{name}-latency.jsonl")
        result.update(latency_rows=len(times), p50_ms=round(pct(times, 0.5) * 1000, 1),
                      p99_ms=round(pct(times, 0.99) * 1000, 1), max_ms=round(max(times) * 1000, 1))
    return result


def fuzz_read_jsonl(n: int, seed: int, work: Path) -> dict:
    from hardneg.data import read_jsonl

    lines = hostile_jsonl(n, seed=seed, command="read_jsonl")
    path = work / "reader.jsonl"
    write_jsonl(lines, path)
    started = time.perf_counter()
    rows, rejected = read_jsonl(path, ("query", "response"))
    wall = time.perf_counter() - started
    good = [i + 1 for i, l in enumerate(lines) if l.fate == "good"]
    bad = {i + 1 for i, l in enumerate(lines) if l.fate == "bad"}
    return {
        "rows": n, "good": len(good), "lost_good": len(set(good) - {r["_line_no"] for r in rows}),
        "bad": len(bad), "bad_unreported": len(bad - {r["line_no"] for r in rejected}),
        "wall_s": round(wall, 2),
    }


def fuzz_profiles(n: int, seed: int, work: Path) -> dict:
    from hardneg.configuration import ConfigError
    from hardneg.profiles import load_profile

    stats = {"profiles": n, "rejected_one_line": 0, "accepted": 0, "crashes": 0, "missing_file_or_key": 0}
    times = []
    for path, kind, key in bad_profiles(n, work / "profiles", seed=seed):
        started = time.perf_counter()
        try:
            load_profile(str(path))
            stats["accepted"] += 1
        except ConfigError as exc:
            message = str(exc)
            if "\n" not in message:
                stats["rejected_one_line"] += 1
            if path.name not in message or (key and key not in message):
                stats["missing_file_or_key"] += 1
        except BaseException:  # noqa: BLE001 - counted: the point of the fuzz
            stats["crashes"] += 1
        times.append(time.perf_counter() - started)
    stats["max_ms"] = round(max(times) * 1000, 1)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="hostile lines for grade and read_jsonl")
    parser.add_argument("--verify-rows", type=int, default=1_000, help="hostile lines for verify (MiniLM is slow on CPU)")
    parser.add_argument("--profiles", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-latency", action="store_true", help="skip the in-process per-row timing pass")
    parser.add_argument("--only", choices=["grade", "verify", "read_jsonl", "profiles"], action="append",
                        help="run only these parts (repeatable); default: all")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.setdefault("HARDNEG_HOME", str(work / "home"))
        parts = {
            "grade": lambda: fuzz_command("grade", ["grade"], args.rows, args.seed, work, not args.no_latency),
            "verify": lambda: fuzz_command("verify", ["verify", "--no-nli"], args.verify_rows, args.seed + 1, work,
                                           not args.no_latency),
            "read_jsonl": lambda: fuzz_read_jsonl(args.rows, args.seed + 2, work),
            "profiles": lambda: fuzz_profiles(args.profiles, args.seed + 3, work),
        }
        results = {name: run() for name, run in parts.items() if not args.only or name in args.only}
    load_after = os.getloadavg()
    print(f"### Reliability fuzz (`bench/fuzz_cli.py --rows {args.rows} --verify-rows {args.verify_rows} "
          f"--profiles {args.profiles} --seed {args.seed}`)\n")
    print(f"Machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (shared box).\n")
    for name, res in results.items():
        print(f"- **{name}**: " + ", ".join(f"{k} {v}" for k, v in res.items()))
    print("\n```json\n" + json.dumps(results, indent=1) + "\n```")


if __name__ == "__main__":
    main()
