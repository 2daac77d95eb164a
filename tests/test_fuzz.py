"""A small seeded fuzz of issue 15's contracts (the full run is bench/fuzz_cli.py):
`hardneg grade` and `hardneg verify` on hostile JSONL lose no good row, report every bad line
with its number, print no traceback and leave no .tmp; the profile loader turns every generated
bad profile into one ConfigError line naming the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from fuzz_cli import check_cli_output  # noqa: E402
from fuzz_inputs import bad_profiles, hostile_jsonl, write_jsonl  # noqa: E402


@pytest.mark.parametrize(("command", "args", "n"), [("grade", ["grade"], 120), ("verify", ["verify", "--no-nli"], 40)])
def test_commands_survive_hostile_jsonl(tmp_path, command, args, n):
    lines = hostile_jsonl(n, seed=15, command=command)
    assert {line.fate for line in lines} == {"good", "bad", "blank"}
    inp, out = tmp_path / "in.jsonl", tmp_path / "out" / "out.jsonl"
    out.parent.mkdir()
    write_jsonl(lines, inp, bom=True)
    proc = subprocess.run([sys.executable, "-m", "hardneg.cli", *args, "--input", str(inp), "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, errors="backslashreplace", timeout=900)
    result = check_cli_output(lines, inp, out, proc)
    assert result["exit"] == 0 and result["tracebacks"] == 0, proc.stderr[-3000:]
    assert result["lost_good"] == 0 and result["order_kept"], result
    assert result["bad_unreported"] == 0 and result["reported_but_good"] == 0, result
    assert result["tmp_left"] == 0


def test_pipeline_reader_survives_hostile_jsonl(tmp_path):
    from hardneg.data import read_jsonl

    lines = hostile_jsonl(300, seed=16, command="read_jsonl")
    path = tmp_path / "x.jsonl"
    write_jsonl(lines, path)
    rows, rejected = read_jsonl(path, ("query", "response"))
    assert [r["_line_no"] for r in rows] == [i + 1 for i, line in enumerate(lines) if line.fate == "good"]
    assert [r["line_no"] for r in rejected] == [i + 1 for i, line in enumerate(lines) if line.fate == "bad"]


def test_profile_loader_rejects_every_generated_bad_profile_in_one_line(tmp_path):
    from hardneg.configuration import ConfigError
    from hardneg.profiles import load_profile

    for path, kind, key in bad_profiles(80, tmp_path, seed=15):
        with pytest.raises(ConfigError) as info:
            load_profile(str(path))
        message = str(info.value)
        assert "\n" not in message and path.name in message, (kind, message)
        if key:
            assert key in message, (kind, key, message)
