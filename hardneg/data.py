"""Problem sets and SFT data: GSM8K, MATH, MATH-500, MetaMathQA-style JSONL, hub datasets.

Every loader returns `(rows, rejected)`: rows as a DataFrame, rejected as quarantine
rows `(source, line_no, raw, reason)` so a malformed line is reported with its line
number and the rest of the file still loads.

`iter_jsonl` is the one line reader behind `read_jsonl` and the `hardneg verify/grade`
commands. It reads bytes and splits at `\n` only, so a stray `\r`, `\f`, `\x1c`, `\x85` or
U+2028 inside a line can neither shift later line numbers nor hide a line; it decodes each
line on its own (one invalid UTF-8 byte costs that line, not the file); and any JSON failure —
syntax, nesting deep enough to overflow the parser, integers beyond Python's digit limit,
`NaN`/`Infinity` literals, lone surrogates — becomes a reason string on that line.

The offline SFT default renders GSM8K *train* in MetaMathQA style (calculator
annotations stripped, `#### X` turned into `The answer is: X`). Test splits are
never training data: `assert_trainable` refuses them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

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


class JsonlLine(NamedTuple):
    """One non-blank line of a JSONL file: the parsed value, or why it could not be parsed."""

    line_no: int
    raw: str
    """The line as text (undecodable bytes and lone surrogates backslash-escaped), for reports."""
    value: Any
    error: str | None


_JSON_WHITESPACE = b" \t\r\n"  # RFC 8259: only these may surround a JSON value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def safe_text(text: str) -> str:
    """`text` with lone surrogates backslash-escaped, so it can always be encoded as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def has_lone_surrogate(value: Any) -> bool:
    """True if any string in `value` (recursively) holds a lone surrogate (invalid Unicode)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_jsonl_line(data: bytes, line_no: int) -> JsonlLine:
    """Decode and parse one line (bytes without its `\n`)."""
    if line_no == 1 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark at the start of the file is not content
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raw = data.decode("utf-8", "backslashreplace")
        return JsonlLine(line_no, raw, None, f"not valid UTF-8 (byte {exc.start} of the line)")
    raw = safe_text(text)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return JsonlLine(line_no, raw, None, f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return JsonlLine(line_no, raw, None, "invalid JSON: nested too deeply")
    except (ValueError, OverflowError, MemoryError) as exc:  # 5000-digit integers, NaN literals
        reason = " ".join(str(exc).split())[:200]
        return JsonlLine(line_no, raw, None, f"invalid JSON: {reason}")
    return JsonlLine(line_no, raw, value, None)


def iter_jsonl(path: str | Path) -> Iterator[JsonlLine]:
    """Every non-blank line of a JSONL file, numbered from 1, parsed or with its error.

    Lines are split at `\n` only (what JSONL means by a line); a line of JSON whitespace
    (space, tab, CR) is blank and skipped. Anything else that is not one JSON value, even a line
    of `\f` or U+3000, is yielded with its error so the caller reports it.
    """
    with open(path, "rb") as f:
        for line_no, data in enumerate(f, start=1):
            if data.endswith(b"\n"):
                data = data[:-1]
            if not data.strip(_JSON_WHITESPACE):
                continue
            yield parse_jsonl_line(data, line_no)


def jsonl_line_problem(
    line: JsonlLine, required: Iterable[str] = (), validate: Callable[[dict], list[str]] | None = None
) -> str | None:
    """Why `line` cannot be used as a record (the quarantine reason), or None when it can.

    Malformed JSON, a value that is not an object, invalid Unicode (a lone surrogate, which no
    model or table can store), a missing or empty required string field, or what `validate`
    finds (it returns descriptions of the problems) each reject the line. The one per-line check
    behind `read_jsonl` and the streamed external pool (`hardneg.candidates`)."""
    obj = line.value
    if line.error:
        return line.error
    if not isinstance(obj, dict):
        return "line is not a JSON object"
    if has_lone_surrogate(obj):
        return "invalid Unicode: a lone surrogate (\\ud800-\\udfff)"
    missing = [k for k in required if not isinstance(obj.get(k), str) or not obj.get(k).strip()]
    if missing:
        return f"missing or empty field(s): {', '.join(missing)}"
    try:
        problems = validate(obj) if validate else []
    except Exception as exc:  # noqa: BLE001 - a validator tripping on odd data rejects the line, not the file
        problems = [f"{type(exc).__name__}: {exc}"]
    if problems:
        return "missing or invalid field(s): " + ", ".join(problems)
    return None


def read_jsonl(
    path: str | Path,
    required: Iterable[str],
    source: str | None = None,
    validate: Callable[[dict], list[str]] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Parse JSON lines; a line `jsonl_line_problem` rejects is quarantined with its reason."""
    rows, rejected = [], []
    source = source or str(path)
    required = list(required)
    for line in iter_jsonl(path):
        reason = jsonl_line_problem(line, required, validate)
        if reason is not None:
            rejected.append(_quarantine(source, line.line_no, line.raw, reason))
            continue
        obj = line.value
        obj["_line_no"] = line.line_no
        rows.append(obj)
    return rows, rejected


def _quarantine(source: str, line_no: int, raw: str, reason: str) -> dict:
    return {"source": safe_text(source), "line_no": line_no, "raw": safe_text(raw[:10_000]), "reason": safe_text(reason)}


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
