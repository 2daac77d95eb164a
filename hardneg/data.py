"""Problem sets and SFT data: GSM8K, MATH, MATH-500, MetaMathQA-style JSONL, hub datasets.

Every loader returns `(rows, rejected)`: rows as a DataFrame, rejected as quarantine
rows `(source, line_no, raw, reason)` so a malformed line is reported with its line
number and the rest of the file still loads.

The offline SFT default renders GSM8K *train* in MetaMathQA style (calculator
annotations stripped, `#### X` turned into `The answer is: X`). Test splits are
never training data: `assert_trainable` refuses them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from hardneg.grading import gsm8k_reference_answer, math_reference_answer
from hardneg.paths import REPO_ROOT

DATA_DIR = REPO_ROOT / "data"
TEST_SPLITS = {"test"}

BENCHMARK_FILES = {
    ("gsm8k", "train"): "gsm8k/train.jsonl",
    ("gsm8k", "test"): "gsm8k/test.jsonl",
    ("math", "test"): "math/test.jsonl",
    ("math500", "test"): "math/math500_test.jsonl",
}
REQUIRED_FIELDS = {"gsm8k": ("question", "answer"), "math": ("problem", "solution"), "math500": ("problem", "answer")}


class SplitLeakError(ValueError):
    """Training data was asked for from a test split."""


@dataclass
class DataSource:
    """Where SFT examples come from."""

    kind: str = "gsm8k-metamath"
    """`gsm8k-metamath` (offline default), `jsonl` (MetaMathQA-style `query`/`response`), or `hf` (hub dataset id)."""
    path: str | None = None
    """JSONL path for `jsonl`; hub id (e.g. `meta-math/MetaMathQA`) for `hf`."""
    max_examples: int | None = None
    """Keep the first N examples (None: all)."""


def read_jsonl(
    path: str | Path,
    required: Iterable[str],
    source: str | None = None,
    validate: Callable[[dict], list[str]] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Parse JSON lines; a malformed line, one missing a required (non-empty string) field,
    or one that `validate` finds problems with (it returns their descriptions) is quarantined."""
    rows, rejected = [], []
    source = source or str(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                rejected.append(_quarantine(source, line_no, raw, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(obj, dict):
                rejected.append(_quarantine(source, line_no, raw, "line is not a JSON object"))
                continue
            missing = [k for k in required if not isinstance(obj.get(k), str) or not obj.get(k).strip()]
            if missing:
                rejected.append(_quarantine(source, line_no, raw, f"missing or empty field(s): {', '.join(missing)}"))
                continue
            problems = validate(obj) if validate else []
            if problems:
                rejected.append(_quarantine(source, line_no, raw, "missing or invalid field(s): " + ", ".join(problems)))
                continue
            obj["_line_no"] = line_no
            rows.append(obj)
    return rows, rejected


def _quarantine(source: str, line_no: int, raw: str, reason: str) -> dict:
    return {"source": source, "line_no": line_no, "raw": raw[:10_000], "reason": reason}


def strip_calculator(text: str) -> str:
    return re.sub(r"<<[^<>]*>>", "", text)


def gsm8k_as_metamath(answer: str) -> str:
    """GSM8K's answer field in MetaMathQA's response style."""
    body, _, final = strip_calculator(answer).rpartition("####")
    return f"{body.strip()}\nThe answer is: {final.strip().replace(',', '')}"


def load_problems(benchmark: str, split: str, data_dir: Path = DATA_DIR, limit: int | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Rows for the `problems` table from one of the bundled benchmark files."""
    key = (benchmark, split)
    if key not in BENCHMARK_FILES:
        raise ValueError(f"unknown benchmark/split {benchmark}/{split}; known: {sorted(BENCHMARK_FILES)}")
    path = data_dir / BENCHMARK_FILES[key]
    rows, rejected = read_jsonl(path, REQUIRED_FIELDS[benchmark], source=f"{benchmark}/{split}")
    out = []
    for i, row in enumerate(rows):
        try:
            if benchmark == "gsm8k":
                solution, answer = gsm8k_as_metamath(row["answer"]), gsm8k_reference_answer(row["answer"])
            else:
                solution = row.get("solution")
                answer = row.get("answer") or math_reference_answer(solution)
        except ValueError as exc:
            rejected.append(_quarantine(f"{benchmark}/{split}", row["_line_no"], json.dumps(row), str(exc)))
            continue
        if benchmark == "gsm8k":
            subject = level = None
        else:
            subject = row.get("subject") or row.get("type")
            level = str(row.get("level")) if row.get("level") is not None else None
        ident = row.get("unique_id") or row.get("idx") or i
        out.append(
            {
                "problem_id": f"{benchmark}-{split}-{ident}",
                "source": benchmark,
                "split": split,
                "question": row.get("question") or row.get("problem"),
                "reference_solution": solution,
                "reference_answer": answer,
                "subject": subject,
                "level": level,
            }
        )
        if limit is not None and len(out) >= limit:
            break
    return pd.DataFrame(out), rejected


def assert_trainable(problems: pd.DataFrame) -> None:
    bad = problems[problems["split"].isin(TEST_SPLITS)]
    if len(bad):
        raise SplitLeakError(f"refusing to train on test split rows, e.g. {bad['problem_id'].iloc[0]}")


def source_label(source: DataSource) -> str:
    """The `quarantine.source` of rows rejected while loading SFT data from `source`."""
    return f"sft:{source.kind}" + (f":{source.path}" if source.path else "")


def load_sft_examples(source: DataSource, data_dir: Path = DATA_DIR) -> tuple[pd.DataFrame, list[dict]]:
    """MetaMathQA-style `query`/`response` rows for SFT."""
    label = source_label(source)
    if source.kind == "gsm8k-metamath":
        rows, rejected = read_jsonl(data_dir / BENCHMARK_FILES[("gsm8k", "train")], ("question", "answer"), label)
        df = pd.DataFrame({"query": [r["question"] for r in rows], "response": [gsm8k_as_metamath(r["answer"]) for r in rows]})
    elif source.kind == "jsonl":
        if not source.path:
            raise ValueError("SFT data source kind 'jsonl' needs `path`")
        rows, rejected = read_jsonl(source.path, ("query", "response"), label)
        df = pd.DataFrame({"query": [r["query"] for r in rows], "response": [r["response"] for r in rows]})
    elif source.kind == "hf":
        from datasets import load_dataset

        ds = load_dataset(source.path, split="train")
        if source.max_examples:
            ds = ds.select(range(min(source.max_examples, len(ds))))
        df = ds.to_pandas()[["query", "response"]]
        rejected = []
    else:
        raise ValueError(f"unknown SFT data source kind {source.kind!r}: use gsm8k-metamath, jsonl or hf")
    if source.max_examples is not None:
        df = df.head(source.max_examples)
    return df.reset_index(drop=True), rejected
