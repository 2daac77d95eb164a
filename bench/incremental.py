"""`hardneg run` re-runs: incremental (issue 17) against today's behaviour (`--force`: everything again).

Two scenarios, each on the whole smoke graph with the tiny test model (tests/tiny_model.py,
the external-pool profile of tests/test_pipeline_e2e.py: the same code path as `make run`,
minutes instead of a quarter hour), each through the real CLI in a fresh process:

1. twice in a row: a first `hardneg run`, then a second one (nothing changed) timed, then
   the same second run with `--force` (what every re-run did before issue 17) timed.
2. kill in DPO: a `hardneg run` SIGKILLed once `dpo_hardneg` wrote a checkpoint, then the
   re-run timed; once incremental, once with `--force`, each in its own fresh home.

Prints wall times and the ratios, the machine and the load average.
Run: .venv/bin/python bench/incremental.py [--dpo-steps 12] [--scenario all|twice|kill]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
PARTITION = "smollm2-135m-sft|0"


def cli(home: Path, profile: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hardneg_assets.cli", "run", "--profile", profile, "--partition", PARTITION, *extra]


def env_for(home: Path) -> dict:
    return {**os.environ, "HARDNEG_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def timed(home: Path, args: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env_for(home), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def fresh_home(base: Path, name: str, tiny: Path, dpo_steps: int) -> tuple[Path, str]:
    from test_pipeline_e2e import e2e_profile

    home = base / name
    (home / "dagster").mkdir(parents=True)
    profile = e2e_profile(home, tiny)
    text = Path(profile).read_text().replace("max_steps: 2\n", f"max_steps: {dpo_steps}\n", 1)
    Path(profile).write_text(text)
    return home, profile


def killed_in_dpo(home: Path, profile: str) -> float:
    """Start a run, SIGKILL it once hard-negative DPO checkpointed; seconds until the kill."""
    started = time.perf_counter()
    proc = subprocess.Popen(cli(home, profile), cwd=ROOT, env=env_for(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = home / "artifacts" / "dpo" / "hardneg" / "smollm2-135m-sft" / "0"
    while not list(ckpt.glob("checkpoint-*/trainer_state.json")):
        if proc.poll() is not None:
            raise SystemExit("the run ended before DPO checkpointed: raise --dpo-steps")
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpo-steps", type=int, default=12, help="DPO steps, so the kill lands mid-training (default 12)")
    parser.add_argument("--scenario", choices=("all", "twice", "kill"), default="all", help="which scenario(s) to run")
    args = parser.parse_args()
    from tiny_model import build_tiny_model

    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="hn-bench-incr-") as tmp:
        base = Path(tmp)
        tiny = build_tiny_model(base / "tiny_model")
        rows = []

        if args.scenario in ("all", "twice"):
            home, profile = fresh_home(base, "twice", tiny, args.dpo_steps)
            first = timed(home, cli(home, profile))
            second = timed(home, cli(home, profile))
            forced = timed(home, cli(home, profile, "--force"))
            loads.append(os.getloadavg()[0])
            rows.append(("first run (empty home)", first, None))
            rows.append(("second run, incremental", second, None))
            rows.append(("second run, --force (before issue 17)", forced, forced / second))

        reruns = {}
        for mode, extra in (("incremental", ()), ("--force (before issue 17)", ("--force",))) if args.scenario != "twice" else ():
            home, profile = fresh_home(base, f"kill-{mode[:5]}", tiny, args.dpo_steps)
            until_kill = killed_in_dpo(home, profile)
            reruns[mode] = timed(home, cli(home, profile, *extra))
            rows.append((f"killed in DPO after {until_kill:.0f} s; re-run {mode}", reruns[mode], None))
            loads.append(os.getloadavg()[0])
        if reruns:
            rows[-1] = (*rows[-1][:2], reruns["--force (before issue 17)"] / reruns["incremental"])

    print(f"machine: {platform.machine()} {os.cpu_count()} cores; load averages during: {', '.join(f'{x:.1f}' for x in loads)}")
    print("| case | wall s | before / after |\n|---|---|---|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.1f} | {f'{ratio:.1f}×' if ratio else ''} |")


if __name__ == "__main__":
    main()
