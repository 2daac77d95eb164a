"""`hardneg run`'s command line: help for every flag, and a bad profile or partition refused in one line.

A mistake must cost exit code 2 and one line on stderr, before Dagster or a model is
imported (checked in the process itself); the pipeline itself is tested in
test_pipeline_e2e.py.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys
from hardneg_assets.cli import main
code = main(sys.argv[1:])
print("exit", code, "dagster imported:", any(m.split('.')[0] == 'dagster' for m in sys.modules))
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--profile", "no-such-profile"], "no-such-profile"),
        (["--partition", "bogus"], "bogus"),
        (["--partition", "smollm2-135m-sft|9"], "smollm2-135m-sft|9"),
        (["--partition", "no-such-family|0"], "no-such-family"),
    ],
)
def test_bad_profile_or_partition_exits_2_in_one_line_without_dagster(args, says):
    proc = _run(*args)
    assert proc.stdout.strip() == "exit 2 dagster imported: False", proc.stdout + proc.stderr[-2000:]
    ours = [line for line in proc.stderr.splitlines() if line.startswith("hardneg run:")]
    assert len(ours) == 1 and says in ours[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_set_override_exits_2_in_one_line():
    from hardneg.profiles import load_profile

    if "overrides" not in inspect.signature(load_profile).parameters:
        pytest.skip("load_profile(overrides=...) arrives with issue 15")
    proc = _run("--set", "dpo.no_such_knob=1")
    assert proc.stdout.strip() == "exit 2 dagster imported: False", proc.stdout + proc.stderr[-2000:]
    ours = [line for line in proc.stderr.splitlines() if line.startswith("hardneg run:")]
    assert len(ours) == 1 and "no_such_knob" in ours[0], proc.stderr


def test_every_run_flag_has_help_and_the_command_lists_run():
    from hardneg_assets.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert {"verify", "grade", "run"} <= set(sub.choices)
    run = sub.choices["run"]
    flags = {opt: action for action in run._actions for opt in action.option_strings if opt not in ("-h", "--help")}
    assert set(flags) == {"--profile", "--partition", "--set", "--force", "--dry-run"}
    assert all(action.help for action in flags.values())
    args = parser.parse_args(["run", "--set", "dpo.beta=0.2", "--set", "pool.k=4", "--partition", "a|0"])
    assert args.overrides == ["dpo.beta=0.2", "pool.k=4"] and args.partition == "a|0"
    assert args.force is None and not args.dry_run  # incremental unless asked otherwise
    assert parser.parse_args(["run", "--force"]).force == []  # every asset
    assert parser.parse_args(["run", "--force", "dpo_hardneg", "eval_hardneg", "--dry-run"]).force == ["dpo_hardneg", "eval_hardneg"]
