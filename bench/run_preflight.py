"""How fast `hardneg run` refuses a bad profile or partition, next to a bare Python start.

Goal (issue 16): a mistake on `hardneg run`'s command line costs exit code 2 and one line,
in under 5 s, because the profile and partition are checked before Dagster or a model is
imported. Measured: wall time of a fresh process for (a) `python -c pass` and (b)
`python -m hardneg_assets.cli run --profile no-such-profile`, (c) `... --partition bogus`,
interleaved in rounds so that load from other processes hits all alike; reported as
medians and as the median per-round ratio to (a). Every (b)/(c) run must exit 2.

Run: .venv/bin/python bench/run_preflight.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "python -c pass": ["-c", "pass"],
    "run --profile no-such-profile": ["-m", "hardneg_assets.cli", "run", "--profile", "no-such-profile"],
    "run --partition bogus": ["-m", "hardneg_assets.cli", "run", "--partition", "bogus"],
}


def once(args: list[str], expect: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != expect:
        raise SystemExit(f"{args}: exit {proc.returncode}, expected {expect}: {proc.stderr[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name, case in CASES.items():
            times[name].append(once(case, 0 if name.startswith("python") else 2))
    base = times["python -c pass"]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; rounds {args.rounds}")
    for name, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, base))
        print(f"{name:34s} median {statistics.median(values):6.2f} s  (max {max(values):.2f} s)  × bare python {ratio:5.1f}")


if __name__ == "__main__":
    main()
