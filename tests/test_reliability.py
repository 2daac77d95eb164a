"""Issue 15: no input loses a file, no setting starts a doomed run, no name escapes $HARDNEG_HOME.

Each test is one reproducer row of the issue (numbers in the test names), run against the real
command (a subprocess of `python -m hardneg.cli`), the real profile loader and a real DuckDB file.
Row 8-10 (the grader) live in test_grading.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hardneg.configuration import ConfigError
from hardneg.data import read_jsonl
from hardneg.profiles import load_profile


def preflight(*args, **kwargs):  # imported per call, so each test fails on its own where it is missing
    from hardneg.profiles import preflight as run_preflight

    return run_preflight(*args, **kwargs)

ROOT = Path(__file__).resolve().parents[1]


def _grade(tmp_path: Path, data: bytes, *extra: str, out_name: str = "out.jsonl"):
    inp, out = tmp_path / "in.jsonl", tmp_path / out_name
    inp.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-m", "hardneg.cli", "grade", "--no-math-verify", *extra, "--input", str(inp), "--output", str(out)],
        cwd=ROOT, capture_output=True, timeout=600,
    )
    stderr = proc.stderr.decode("utf-8", "backslashreplace")
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] if out.is_file() else []
    return proc.returncode, rows, stderr


def _no_tmp(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


GOOD = b'{"id": "ok", "completion": "\\\\boxed{5}", "reference": "5"}'


# --------------------------------------------------------------------------- rows 1, 2, 3, 12: the commands


def test_row1_invalid_utf8_costs_one_line_not_the_file(tmp_path):
    code, rows, err = _grade(tmp_path, b'{"id":1,"completion":"\xff","reference":"5"}\n' + GOOD + b"\n")
    assert code == 0
    assert [r["id"] for r in rows] == ["ok"] and rows[0]["correct"] is True
    assert "in.jsonl:1: skipped: not valid UTF-8" in err


def test_row2_lone_surrogates_are_written_escaped_and_no_tmp_is_left(tmp_path):
    lines = [
        b'{"id": "x\\ud800", "completion": "\\\\boxed{5}", "reference": "5"}',
        b'{"id": 2, "completion": "\\\\boxed{5\\udc80}", "reference": "5"}',
        GOOD,
    ]
    code, rows, err = _grade(tmp_path, b"\n".join(lines) + b"\n")
    assert code == 0, err
    assert [r["id"] for r in rows] == ["x\ud800", 2, "ok"]  # the same string comes back
    assert rows[1]["extracted"] == "5\udc80"
    raw = (tmp_path / "out.jsonl").read_bytes()
    raw.decode("utf-8")  # valid UTF-8: the surrogate travels as a \\ud800 escape
    assert b"\\ud800" in raw
    assert _no_tmp(tmp_path)


def test_row3_deep_nesting_and_huge_integers_are_reported_lines(tmp_path):
    deep = b'{"id": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b', "completion": "1", "reference": "1"}'
    big = b'{"id": ' + b"9" * 5000 + b', "completion": "1", "reference": "1"}'
    code, rows, err = _grade(tmp_path, deep + b"\n" + big + b"\n" + GOOD + b"\n")
    assert code == 0 and [r["id"] for r in rows] == ["ok"]
    assert "in.jsonl:1: skipped: invalid JSON: nested too deeply" in err
    assert "in.jsonl:2: skipped: invalid JSON" in err and "Traceback" not in err


def test_row3_pipeline_reader_quarantines_deep_and_huge_lines(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_bytes(
        b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        + b'{"query": "q", "response": "r", "n": ' + b"7" * 5000 + b"}\n"
        + b'{"query": "q\\ud800", "response": "r"}\n'
        + b'{"query": "q3", "response": "r3"}\n'
    )
    rows, rejected = read_jsonl(path, ("query", "response"))
    assert [r["query"] for r in rows] == ["q3"]
    assert [r["line_no"] for r in rejected] == [1, 2, 3]
    assert "nested too deeply" in rejected[0]["reason"] and "lone surrogate" in rejected[2]["reason"]
    for r in rejected:  # storable: every quarantine field encodes as UTF-8
        json.dumps(r, ensure_ascii=False).encode("utf-8")


def test_row12_cr_inside_a_line_keeps_numbers_and_odd_whitespace_lines_are_reported(tmp_path):
    lines = [
        b'{"id": 1,\r "completion": "\\\\boxed{5}", "reference": "5"}',  # CR between tokens: valid JSON
        b"\x0c",
        "\u3000".encode(),
        b"\x1c",
        "\x85".encode(),
        b"   ",  # JSON whitespace only: blank, skipped silently
        b'{"id": 7, "completion": "1" "reference": "1"}',
        b'{"id": true, "completion": "1", "reference": "1"}',
        GOOD,
    ]
    code, rows, err = _grade(tmp_path, b"\n".join(lines) + b"\n")
    assert code == 0
    assert [r["id"] for r in rows] == [1, "ok"]
    for n in (2, 3, 4, 5, 7, 8):
        assert f"in.jsonl:{n}: skipped" in err, (n, err)
    assert "in.jsonl:6:" not in err
    assert "in.jsonl:7: skipped: invalid JSON: Expecting ',' delimiter (column 29)" in err  # no "line 2 column 1"
    assert "in.jsonl:8: skipped: field 'id' must be a string or an integer, got boolean" in err


def test_row12_output_path_that_is_a_folder_is_one_line_exit_2(tmp_path):
    (tmp_path / "outdir").mkdir()
    code, rows, err = _grade(tmp_path, GOOD + b"\n", out_name="outdir")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("hardneg grade: output") and "is a folder" in err
    assert "Traceback" not in err and _no_tmp(tmp_path) and _no_tmp(tmp_path / "outdir")


def test_row12_numeric_references_and_exit_2_when_nothing_succeeds(tmp_path):
    code, rows, err = _grade(tmp_path, b'{"id": 1, "completion": "\\\\boxed{7}", "reference": 7}\n'
                                       b'{"id": 2, "completion": "1", "reference": 1e400}\n')
    assert code == 0 and [r["correct"] for r in rows] == [True]
    assert "in.jsonl:2: skipped: field 'reference' is a number too large" in err
    code, rows, err = _grade(tmp_path, b"nope\n")
    assert code == 2 and rows == [] and (tmp_path / "out.jsonl").read_text() == ""


def test_row2_row5_row12_verify_surrogate_id_numeric_reference_and_bad_config(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_bytes(b"\n".join([
        b'{"id": "v\\ud800", "question": "What is 2+3?", "candidate": "2 + 3 = 5\\nThe answer is: 5",'
        b' "reference_solution": "2 + 3 = 5", "reference_answer": 5}',
        b'{"id": true, "question": "q", "candidate": "c", "reference_solution": null, "reference_answer": null}',
    ]) + b"\n")
    proc = subprocess.run([sys.executable, "-m", "hardneg.cli", "verify", "--no-nli", "--input", str(inp), "--output", str(out)],
                          cwd=ROOT, capture_output=True, timeout=600)
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 0, err
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["v\ud800"] and rows[0]["d_answer"] == 0  # numeric 5 == answer 5
    assert "in.jsonl:2: skipped: field 'id'" in err and _no_tmp(tmp_path)

    bad = tmp_path / "bad.yaml"
    bad.write_text("verifier:\n  batch_size: 0\n")
    proc = subprocess.run([sys.executable, "-m", "hardneg.cli", "verify", "--config", str(bad), "--input", str(inp),
                           "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("hardneg verify:")]
    assert ours == [f"hardneg verify: {bad}: verifier.batch_size: VerifierConfig.batch_size must be >= 1"] or (
        len(ours) == 1 and ours[0].startswith(f"hardneg verify: {bad}: verifier.batch_size: ")
    )


# --------------------------------------------------------------------------- rows 4-7: profiles and partitions


@pytest.mark.parametrize("key", ["bogus", "x|y", "a|b|c", "nosuch|0", "smollm2-135m-sft|99", "smollm2-135m-sft|one", ""])
def test_row4_row6_bad_partitions_are_config_errors(key):
    with pytest.raises(ConfigError) as info:
        preflight("smoke", key, check_models=False)
    assert "smoke.yaml: --partition: " in str(info.value)
    assert "\n" not in str(info.value)


def test_partition_parses_a_good_key():
    prof = load_profile("smoke")
    assert prof.partition("smollm2-135m-instruct|1") == ("smollm2-135m-instruct", 1)
    assert prof.partition() == ("smollm2-135m-sft", 0)


BAD_PROFILES = [
    ("pool: {k: -1}", "pool.k"),
    ("pool: {num_problems: -5}", "pool.num_problems"),
    ("dpo: {beta: -1}", "dpo.beta"),
    ("verifier: {batch_size: 0}", "verifier.batch_size"),
    ("funnel_expected: {2: {min: 9, max: 3}}", "funnel_expected.2"),
    ("eval: {benchmarks: [{name: aime}]}", "eval.benchmarks[0].name"),
    ("seeds: []", "seeds"),
    ('families: [{name: "a|b", base_model: smollm2-135m-instruct}]', "families[0].name"),
    ("sft: {max_steps: -4}", "sft.max_steps"),
    ("dpo: {max_steps: 0}", "dpo.max_steps"),
    ("seeds: [true]", "seeds[0]"),
    ('default_partition: "nosuch|0"', "default_partition"),
    ('default_partition: "smollm2-135m-sft|9"', "default_partition"),
    ("families: [{name: f, base_model: nosuch}]", "families[0].base_model"),
    ("families: [{name: ../escape, base_model: smollm2-135m-instruct}]", "families[0].name"),
    ("families: [{name: /abs/dir, base_model: smollm2-135m-instruct}]", "families[0].name"),
    ("models: {m: {name: ../m}}", "models"),
    ("dpo: {learning_rate: fast}", "dpo.learning_rate"),
    ("dpo: {beta: .nan}", "dpo.beta"),
]


@pytest.mark.parametrize(("body", "key"), BAD_PROFILES)
def test_row5_row6_row7_bad_settings_name_file_and_key_in_one_line(tmp_path, body, key):
    path = tmp_path / "mine.yaml"
    path.write_text(f"inherit: smoke\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}"), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- 1\n- 2\n", "the top level must be a mapping"),
        ("hello\n", "the top level must be a mapping"),
        ("name: [1, 2\npool: {k: 3}\n", "YAML syntax error: line 2"),
        ("inherit: SELF\n", "inherit cycle"),
    ],
)
def test_row5_structural_profile_errors(tmp_path, text, expected):
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("SELF", str(path)))
    with pytest.raises(ConfigError, match=expected) as info:
        load_profile(str(path))
    assert str(info.value).startswith(str(path))


def test_row5_inherit_cycle_between_two_files(tmp_path):
    (tmp_path / "a.yaml").write_text("inherit: b.yaml\n")
    (tmp_path / "b.yaml").write_text("inherit: a.yaml\n")
    with pytest.raises(ConfigError, match=r"inherit: inherit cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_profile(str(tmp_path / "a.yaml"))


def test_overrides_are_applied_after_inheritance_and_validated():
    prof = load_profile("cpu-small", ["dpo.beta=0.25", "pool.k=2", "funnel_expected.4.max=99", "seeds=[0, 1]"])
    assert prof.dpo.beta == 0.25 and prof.pool.k == 2 and prof.funnel_expected[4].max == 99 and prof.seeds == [0, 1]
    assert prof.sft.data.max_examples == 1000  # inherited values stay
    with pytest.raises(ConfigError, match=r"^--set \(over .*smoke.yaml\): dpo.beta: "):
        load_profile("smoke", ["dpo.beta=-1"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_profile("smoke", ["dpo.betta=0.1"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_profile("smoke", ["dpo.beta"])


def test_missing_hub_model_is_named_before_any_run_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # nothing cached
    with pytest.raises(ConfigError) as info:
        preflight("paper")
    message = str(info.value)
    assert "paper.yaml: families[1].base_model: model qwen2.5-1.5b-instruct" in message
    assert "HF_HUB_OFFLINE" in message and "\n" not in message
    preflight("smoke")  # the embedded default needs nothing from the hub


def test_unreachable_endpoint_is_named_via_huggingface_hub_settings(tmp_path):
    """HF_ENDPOINT pointing at a closed port: huggingface_hub's own client fails fast; no Dagster, no model."""
    code = (
        "import sys\n"
        "from hardneg.configuration import ConfigError\n"
        "from hardneg.profiles import preflight\n"
        "try:\n"
        "    preflight('paper', 'qwen2.5-math-1.5b-instruct|0')\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
        "print('dagster' in sys.modules)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("profiles/paper.yaml: families[2].base_model: model qwen2.5-math-1.5b-instruct")
    assert "http://127.0.0.1:9 is unreachable" in lines[0]
    assert lines[1] == "False"  # decided before Dagster (or any run) is started


def test_row7_names_never_leave_their_folder(tmp_path, monkeypatch):
    from hardneg.paths import safe_component, under

    for bad in ("../escape", "/etc", "a/b", "..", ".", "", "a|b", "x\x00y", "-rf", "~root"):
        with pytest.raises(ValueError):
            safe_component(bad)
    assert safe_component("qwen2.5-1.5b-sft") == "qwen2.5-1.5b-sft"
    with pytest.raises(ValueError, match="leaves"):
        under(tmp_path, "../x")
    with pytest.raises(ValueError, match="leaves"):
        under(tmp_path, "/etc")
    assert under(tmp_path, "models", "m") == (tmp_path / "models" / "m").resolve()

    from hardneg.registry import FamilySpec, ModelSpec

    with pytest.raises(ValueError):
        ModelSpec(name="../../victim")
    with pytest.raises(ValueError):
        FamilySpec(name="/abs", base_model="smollm2-135m-instruct")


def test_row7_conversion_only_replaces_inside_models_dir(tmp_path, monkeypatch):
    """A spec whose name would escape cannot even be built; a (forged) one is refused before any delete."""
    import dataclasses

    from hardneg import registry

    home = tmp_path / "home"
    monkeypatch.setenv("HARDNEG_HOME", str(home))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    spec = registry.ModelSpec(name="ok")
    object.__setattr__(spec, "name", str(victim))  # bypass the constructor check, as a bug elsewhere might
    with pytest.raises(ValueError):
        registry.convert_gguf(spec, tmp_path / "missing.gguf")
    assert (victim / "keep.txt").read_text() == "precious"
    assert dataclasses.is_dataclass(spec)


# --------------------------------------------------------------------------- rows 11, 12: the warehouse

HOLD = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[3]))\n"
)


def _hold(path: Path, mode: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_row11_readers_share_the_file_read_only(tmp_path):
    from hardneg.warehouse import Warehouse

    wh = Warehouse(tmp_path / "w.duckdb", lock_timeout=0)
    wh.append("quarantine", [{"source": "s", "line_no": 1, "raw": "r", "reason": "x"}])
    reader = _hold(wh.path, "ro", 60)  # another process reading
    try:
        assert wh.count("quarantine") == 1  # no wait: both read-only
        assert len(wh.query("SELECT * FROM quarantine")) == 1
    finally:
        reader.kill()
        reader.wait()


def test_row11_writer_waits_bounded_then_names_the_holder(tmp_path, capfd):
    from hardneg.warehouse import Warehouse, WarehouseLockedError

    wh = Warehouse(tmp_path / "w.duckdb", lock_timeout=0.5)
    holder = _hold(wh.path, "rw", 60)
    try:
        with pytest.raises(WarehouseLockedError, match=rf"locked by python[\d.]* \(PID {holder.pid}\).*gave up after 0.5 s"):
            wh.append("quarantine", [{"source": "s", "line_no": 1, "raw": "r", "reason": "x"}])
    finally:
        holder.kill()
        holder.wait()
    assert f"(PID {holder.pid})" in capfd.readouterr().err  # the wait was announced
    # A holder that lets go within the timeout: the write simply happens.
    patient = Warehouse(wh.path, lock_timeout=60)
    holder = _hold(wh.path, "rw", 1.0)
    assert patient.append("quarantine", [{"source": "s", "line_no": 2, "raw": "r", "reason": "x"}]) == 1
    holder.wait()
    assert patient.count("quarantine") == 1


def test_lock_timeout_comes_from_the_environment(tmp_path, monkeypatch):
    from hardneg.warehouse import Warehouse, WarehouseError

    monkeypatch.setenv("HARDNEG_WAREHOUSE_LOCK_TIMEOUT", "7.5")
    assert Warehouse(tmp_path / "w.duckdb").lock_timeout == 7.5
    monkeypatch.setenv("HARDNEG_WAREHOUSE_LOCK_TIMEOUT", "soon")
    with pytest.raises(WarehouseError, match="HARDNEG_WAREHOUSE_LOCK_TIMEOUT"):
        Warehouse(tmp_path / "w.duckdb")


KILLED_WRITE = (
    "import sys, os\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "import pandas as pd\n"
    "from hardneg.warehouse import Warehouse\n"
    "wh = Warehouse(sys.argv[1])\n"
    "n = 400_000\n"
    "df = pd.DataFrame({'source': 'big', 'line_no': range(n), 'raw': [os.urandom(16).hex() for _ in range(n)], 'reason': 'r'})\n"
    "with wh.connect() as con:\n"
    "    con.execute('BEGIN TRANSACTION')\n"
    "    con.register('incoming', df)\n"
    "    con.execute('INSERT INTO quarantine SELECT source, line_no, raw, reason FROM incoming')\n"
    "    print('written', flush=True)\n"
    "    import time; time.sleep(120)\n"
)


def test_row12_space_left_by_killed_writes_is_reclaimed(tmp_path):
    from hardneg.warehouse import Warehouse

    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    wh.append("quarantine", [{"source": "kept", "line_no": i, "raw": "r", "reason": "x"} for i in range(100)])
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITE, str(path), str(ROOT)], stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL)
        assert proc.stdout.readline().strip() == "written"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    grown = path.stat().st_size
    size, waste = Warehouse(path, compact_min_waste=10**12).file_waste()
    assert waste > 1_000_000, (grown, waste)  # the killed writes left dead blocks behind
    reopened = Warehouse(path, compact_min_waste=1_000_000)  # opening compacts
    assert path.stat().st_size < grown - 1_000_000
    assert reopened.count("quarantine") == 100 and reopened.count("quarantine", source="big") == 0


def test_bounded_worker_ends_with_its_parent_even_when_sigterm_is_ignored(tmp_path):
    """A launcher that ignores SIGTERM (nohup-style, some CI runners) passes that on through exec:
    the symbolic worker then outlived `terminate()` and the parent hung at exit (seen in `grade`)."""
    script = tmp_path / "run.py"
    script.write_text(
        "import signal\n"
        "from hardneg.bounded import call_bounded\n"
        "if __name__ == '__main__':\n"
        "    print(int(call_bounded(signal.getsignal, signal.SIGTERM)))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(int(signal.SIG_DFL))  # the worker can be terminated again
