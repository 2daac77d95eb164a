"""The `hardneg` command's library part (SPEC §5): `verify` and `grade`.

`hardneg run` (the pipeline for one partition) needs Dagster, so it lives in the Dagster
layer: `hardneg_assets/cli.py` adds it to this parser and is the installed console script.

JSONL in, JSONL out, input order kept. Unknown input fields are ignored; a malformed
line is reported on stderr with its line number and skipped. Exit 0 if any line
succeeded, 2 if none did (or the command could not start: bad arguments, a bad
`--config`, an unreadable input, an output path that cannot be written).

Reliability rules (issue 15), each because a real input broke it once:
- lines are read as bytes, split at `\n` only and decoded one by one (`hardneg.data.iter_jsonl`):
  one invalid UTF-8 byte, a `\r` or `\f` inside a line, JSON nested 100k deep or a 5000-digit
  integer costs that line (reported with its number), never the file;
- rows are processed and written in batches as they are read; a batch whose handler fails is
  retried row by row, so one row that trips the verifier or grader is reported, not fatal;
- output is written to a temporary file beside OUT and renamed over it at the end; on any
  error (including Ctrl-C) the temporary file is removed. A row whose strings hold lone
  surrogates is written with `\\uXXXX` escapes (still valid JSON and UTF-8; same string back);
- an unexpected error prints one line (`HARDNEG_DEBUG=1` shows the traceback) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

EXIT_OK, EXIT_FAILED, EXIT_NONE_SUCCEEDED = 0, 1, 2
BATCH_ROWS = 256


class InputError(RuntimeError):
    """The command cannot start or finish on these paths (message names the path)."""


def report(path: str, line_no: int, message: str) -> None:
    print(f"{path}:{line_no}: skipped: {message}", file=sys.stderr)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _check_row(row: Any, required: dict[str, Callable[[Any], str | None]]) -> str | None:
    """Why `row` cannot be processed, or None. Each checker returns a reason for a bad value."""
    if not isinstance(row, dict):
        return f"line is not a JSON object (got {type(row).__name__})"
    for name, check in required.items():
        if name not in row:
            return f"missing field {name!r}"
        problem = check(row[name])
        if problem:
            return f"field {name!r} {problem}"
    return None


def read_rows(path: str, required: dict[str, Callable[[Any], str | None]]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Yield (line_no, row) for valid lines; (line_no, None) after reporting a bad one."""
    from hardneg.data import iter_jsonl

    for line in iter_jsonl(path):
        problem = line.error or _check_row(line.value, required)
        if problem:
            report(path, line.line_no, problem)
            yield line.line_no, None
            continue
        yield line.line_no, line.value


def dumps_safe(obj: Any) -> str:
    """One JSON line that always encodes as UTF-8: lone surrogates become `\\uXXXX` escapes."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text


def _batches(rows: Iterable[tuple[int, dict | None]], size: int) -> Iterator[list[tuple[int, dict]]]:
    batch: list[tuple[int, dict]] = []
    for line_no, row in rows:
        if row is None:
            continue
        batch.append((line_no, row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_paths(input_path: str, output_path: str) -> Path:
    inp, out = Path(input_path), Path(output_path)
    if not inp.exists():
        raise InputError(f"input {input_path}: no such file")
    if inp.is_dir():
        raise InputError(f"input {input_path}: is a folder, expected a JSONL file")
    if out.is_dir():
        raise InputError(f"output {output_path}: is a folder, expected a file path")
    try:
        if inp.resolve() == out.resolve():
            raise InputError(f"output {output_path}: is the input file; write somewhere else")
    except OSError:
        pass
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output {output_path}: cannot create its folder ({exc.strerror or exc})") from None
    return out


def process_jsonl(
    input_path: str,
    output_path: str,
    required: dict[str, Callable[[Any], str | None]],
    handle: Callable[[list[dict]], list[dict]],
    batch: int | None = None,
    label: str | None = None,
) -> int:
    """Read, handle in batches (default `BATCH_ROWS`), write in input order; exit code per SPEC §5."""
    batch = batch or BATCH_ROWS
    out = _check_paths(input_path, output_path)
    from hardneg.progress import stderr_reporter

    # Lines, not rows: blank and bad lines count too, so the bar may end short of its total.
    progress = stderr_reporter(label or Path(input_path).name, total=_count_lines(input_path), unit="line")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise InputError(f"output {output_path}: cannot write in {out.parent} ({exc.strerror or exc})") from None
    tmp = Path(tmp_name)
    written = failed = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as sink:
            for chunk in _batches(read_rows(input_path, required), batch):
                for line_no, result in _handle_chunk(input_path, chunk, handle):
                    if result is None:
                        failed += 1
                        continue
                    sink.write(dumps_safe(result) + "\n")
                    written += 1
                progress.update(advance=len(chunk))
        # Even with no row, OUT is replaced (by an empty file): a stale OUT from an earlier run
        # must not pass for this run's result.
        os.replace(tmp, out)  # atomic: never a half-written output file
    except OSError as exc:
        raise InputError(f"cannot write {output_path}: {exc.strerror or exc}") from None
    finally:
        progress.close()
        if tmp.exists():
            tmp.unlink()
    print(f"wrote {written} rows to {output_path}" + (f"; {failed} rows failed" if failed else ""), file=sys.stderr)
    return EXIT_OK if written else EXIT_NONE_SUCCEEDED


def _count_lines(path: str) -> int | None:
    """Newline-separated lines of `path` (the progress total), or None if it cannot be read now."""
    try:
        with open(path, "rb") as f:
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) or 1
    except OSError:
        return None


def _handle_chunk(path: str, chunk: list[tuple[int, dict]], handle: Callable[[list[dict]], list[dict]]):
    """Results of `handle` for a batch; if the batch fails, each row alone (a failing row is reported)."""
    rows = [row for _, row in chunk]
    try:
        results = handle(rows)
        if len(results) != len(rows):
            raise RuntimeError(f"handler returned {len(results)} results for {len(rows)} rows")
        safe = [_serializable(r) for r in results]
        return list(zip((n for n, _ in chunk), safe)) if all(r is not None for r in safe) else _one_by_one(path, chunk, handle)
    except Exception:  # noqa: BLE001 - find the culprit row instead of losing the batch
        return _one_by_one(path, chunk, handle)


def _one_by_one(path: str, chunk: list[tuple[int, dict]], handle: Callable[[list[dict]], list[dict]]):
    out = []
    for line_no, row in chunk:
        try:
            result = _serializable(handle([row])[0])
            if result is None:
                raise ValueError("result is not JSON-serializable (NaN or an unsupported value)")
            out.append((line_no, result))
        except Exception as exc:  # noqa: BLE001 - one row's failure is that row's report
            report(path, line_no, f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            out.append((line_no, None))
    return out


def _serializable(result: Any) -> Any:
    try:
        dumps_safe(result)
    except (TypeError, ValueError, RecursionError):
        return None
    return result


# ------------------------------------------------------------------------------------------
# Field checks: each returns why a value is unacceptable, or None.


def _id(value: Any) -> str | None:
    return None if _is_id(value) else f"must be a string or an integer, got {_type_name(value)}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {_type_name(value)}"


def _text_or_steps(value: Any) -> str | None:
    """A solution: a string, or the caller's own steps as a list of strings."""
    if isinstance(value, list):
        bad = next((i for i, v in enumerate(value) if not isinstance(v, str)), None)
        return None if bad is None else f"must be a string or a list of strings; item {bad} is {_type_name(value[bad])}"
    return None if isinstance(value, str) else f"must be a string or a list of strings, got {_type_name(value)}"


def _text_or_null(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else f"must be a string or null, got {_type_name(value)}"


def _answer(value: Any, nullable: bool = False) -> str | None:
    """A gold answer: a string, or a JSON number (converted with `answer_text`)."""
    if value is None and nullable:
        return None
    if isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a string{' or null' if nullable else ''} or a number, got {_type_name(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return "is a number too large to represent; give it as a string"
    return None


def _type_name(value: Any) -> str:
    return {bool: "boolean", dict: "object", list: "array", type(None): "null"}.get(type(value), type(value).__name__)


def answer_text(value: Any) -> str | None:
    """A gold answer as the string the grader compares: numbers as written by `repr` (`5`, `0.25`)."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def load_verifier_config(path: str | None, no_nli: bool = False):
    """VerifierConfig from `--config` (a file of VerifierConfig keys, or a profile's `verifier`
    section), validated like a profile: ConfigError names the file and the dotted key."""
    from hardneg.configuration import ConfigError, from_dict
    from hardneg.verifier import VerifierConfig

    raw: dict = {}
    prefix = ""
    if path:
        from hardneg.profiles import _read_yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError("no such file", source=path)
        raw = _read_yaml(p)
        if "verifier" in raw:
            raw, prefix = raw["verifier"], "verifier"
    try:
        config = from_dict(VerifierConfig, raw, path=prefix)
    except ConfigError as exc:
        raise exc.with_source(path or "--config") from None
    if no_nli:
        config.use_nli = False
    return config


def cmd_verify(args: argparse.Namespace) -> int:
    from hardneg.verifier import MathVerifier, VerifyInput

    config = load_verifier_config(args.config, args.no_nli)
    _check_paths(args.input, args.output)  # fail before loading models
    verifier = MathVerifier.from_config(config)

    def handle(rows: list[dict]) -> list[dict]:
        items = [
            VerifyInput(
                id=str(r["id"]),
                question=r["question"],
                candidate=r["candidate"],
                reference_solution=r.get("reference_solution"),
                reference_answer=answer_text(r.get("reference_answer")),
            )
            for r in rows
        ]
        results = [p.to_dict() for p in verifier.verify_batch(items)]
        for r, out in zip(rows, results):
            out["id"] = r["id"]  # the id as given (string or integer)
        return results

    required = {
        "id": _id,
        "question": _text,
        "candidate": _text_or_steps,
        "reference_solution": _text_or_null,
        "reference_answer": lambda v: _answer(v, nullable=True),
    }
    return process_jsonl(args.input, args.output, required, handle, label="verify")


def cmd_grade(args: argparse.Namespace) -> int:
    from hardneg.grading import GradingConfig, grade_batch

    config = GradingConfig(
        symbolic_timeout=args.symbolic_timeout,
        math_verify=not args.no_math_verify,
        math_verify_timeout=args.math_verify_timeout,
    )

    def handle(rows: list[dict]) -> list[dict]:
        results = grade_batch([(r["completion"], answer_text(r["reference"])) for r in rows], config)
        return [
            {"id": r["id"], "extracted": g.extracted, "correct": bool(g.correct), "correct_math_verify": g.correct_math_verify}
            for r, g in zip(rows, results)
        ]

    required = {"id": _id, "completion": _text, "reference": _answer}
    return process_jsonl(args.input, args.output, required, handle, label="grade")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hardneg")
    except PackageNotFoundError:
        import hardneg

        return getattr(hardneg, "__version__", "unknown")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hardneg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    verify = sub.add_parser("verify", help="six-dimensional verifier profiles for candidate solutions")
    verify.add_argument("--input", required=True, help="JSONL: id, question, candidate, reference_solution, reference_answer")
    verify.add_argument("--output", required=True, help="JSONL written here (replaced atomically), one row per good input line")
    verify.add_argument("--config", help="YAML with VerifierConfig fields (or a profile: its `verifier` section)")
    verify.add_argument("--no-nli", action="store_true", help="disable the NLI signal (d4 from the value-flow check alone)")
    verify.set_defaults(func=cmd_verify)

    grade = sub.add_parser("grade", help="Step-DPO answer grading")
    grade.add_argument("--input", required=True, help="JSONL: id, completion, reference (the gold final answer)")
    grade.add_argument("--output", required=True, help="JSONL written here (replaced atomically): id, extracted, correct, correct_math_verify")
    grade.add_argument("--symbolic-timeout", type=_positive_float, default=3.0,
                       help="seconds for one SymPy equality check (default 3); see hardneg.grading for overruns")
    grade.add_argument("--math-verify-timeout", type=_positive_float, default=5.0,
                       help="seconds for one Math-Verify check (default 5)")
    grade.add_argument("--no-math-verify", action="store_true", help="skip Math-Verify (correct_math_verify is null)")
    grade.set_defaults(func=cmd_grade)

    from hardneg import export

    export.add_parser(sub)  # `hardneg export RUN_ID DIR` (hardneg/export.py)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")  # a message quoting odd text never crashes
        except (AttributeError, ValueError):
            pass
    args = build_parser().parse_args(argv)
    started = time.time()
    from hardneg.configuration import ConfigError

    try:
        from hardneg.registry import ModelUnavailableError
        from hardneg.verifier import ModelLoadError

        expected: tuple[type[BaseException], ...] = (ConfigError, InputError, ModelLoadError, ModelUnavailableError)
    except ImportError:  # pragma: no cover - a broken install still reports one line
        expected = (ConfigError, InputError)
    try:
        code = args.func(args)
    except expected as exc:
        print(f"hardneg {args.command}: {exc}", file=sys.stderr)
        return EXIT_NONE_SUCCEEDED
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"hardneg {args.command}: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return EXIT_NONE_SUCCEEDED
    except KeyboardInterrupt:
        print(f"hardneg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; HARDNEG_DEBUG=1 shows it
        if os.environ.get("HARDNEG_DEBUG"):
            raise
        print(f"hardneg {args.command}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:500]} "
              "(set HARDNEG_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILED
    print(f"done in {time.time() - started:.1f}s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
