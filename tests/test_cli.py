"""The `hardneg verify` / `hardneg grade` command-line contracts (SPEC §5)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERIFY_FIELDS = {
    "id", "d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer", "wrongness", "absurdity",
    "first_error_step", "steps", "channels", "elapsed_ms",
}


def _run(args, tmp_path, lines):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "hardneg.cli", *args, "--input", str(inp), "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return proc, rows


def test_grade_keeps_order_skips_bad_lines_and_reports_them(tmp_path):
    lines = [
        json.dumps({"id": "a", "completion": "so \\boxed{\\frac{1}{2}}", "reference": "0.5", "extra": "ignored"}),
        "{broken",
        json.dumps({"id": "b", "completion": "The answer is: 18"}),
        json.dumps({"id": "c", "completion": "we get 1,234 apples", "reference": "1234"}),
        json.dumps({"id": "d", "completion": "\\boxed{7}", "reference": "8"}),
    ]
    proc, rows = _run(["grade"], tmp_path, lines)
    assert proc.returncode == 0
    assert [r["id"] for r in rows] == ["a", "c", "d"]
    assert [r["correct"] for r in rows] == [True, True, False]
    assert rows[0]["extracted"] == "\\frac{1}{2}"
    assert set(rows[0]) == {"id", "extracted", "correct", "correct_math_verify"}
    assert ":2:" in proc.stderr and ":3:" in proc.stderr and "reference" in proc.stderr


def test_grade_exits_2_when_no_line_succeeds(tmp_path):
    proc, rows = _run(["grade"], tmp_path, ["nope", json.dumps({"id": 1})])
    assert proc.returncode == 2 and rows == []


def test_verify_contract(tmp_path):
    lines = [
        json.dumps({
            "id": "x", "question": "Tom has 3 boxes of 4 apples. How many apples?",
            "candidate": "3 * 4 = 13\nThe answer is: 13", "reference_solution": "3 * 4 = 12\nThe answer is: 12",
            "reference_answer": "12",
        }),
        json.dumps({"id": "y", "question": "What is 2+2?", "candidate": "2 + 2 = 4", "reference_solution": None, "reference_answer": None}),
        json.dumps({"id": "z", "question": "q"}),
        # the caller's own steps: reported as given
        json.dumps({"id": "s", "question": "Tom has 3 boxes of 4 apples. How many apples?",
                    "candidate": ["", "3 * 4 = 13", "The answer is: 13"], "reference_solution": None,
                    "reference_answer": 12}),
        json.dumps({"id": "w", "question": "q", "candidate": ["3 * 4 = 12", 12], "reference_solution": None,
                    "reference_answer": None}),
    ]
    proc, rows = _run(["verify", "--no-nli"], tmp_path, lines)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["id"] for r in rows] == ["x", "y", "s"]
    assert [s["text"] for s in rows[2]["steps"]] == ["", "3 * 4 = 13", "The answer is: 13"]
    assert rows[2]["first_error_step"] == 1 and rows[2]["d_answer"] == 1
    assert ":5:" in proc.stderr and "item 1 is" in proc.stderr
    assert VERIFY_FIELDS <= set(rows[0])
    assert rows[0]["d_answer"] == 1 and rows[0]["first_error_step"] == 0
    assert rows[1]["d_semantic"] is None and rows[1]["d_answer"] is None  # no reference: null, not 0
    assert ":3:" in proc.stderr
