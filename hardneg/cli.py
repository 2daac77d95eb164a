"""The `hardneg` command (SPEC §5): `verify`, `grade`, and `run` (the pipeline for one partition).

JSONL in, JSONL out, input order kept. Unknown input fields are ignored; a malformed
line is reported on stderr with its line number and skipped. Exit 0 if any line
succeeded, 2 if none did.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

EXIT_OK, EXIT_NONE_SUCCEEDED = 0, 2


def read_rows(path: str, required: dict[str, tuple[type, ...]]) -> Iterable[tuple[int, dict[str, Any] | None]]:
    """Yield (line_no, row) for valid lines; (line_no, None) after reporting a bad one."""
    with open(path, encoding="utf-8") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
                if not isinstance(row, dict):
                    raise ValueError("line is not a JSON object")
                for name, types in required.items():
                    if name not in row:
                        raise ValueError(f"missing field {name!r}")
                    if not isinstance(row[name], types):
                        raise ValueError(f"field {name!r} has type {type(row[name]).__name__}")
            except (json.JSONDecodeError, ValueError) as exc:
                print(f"{path}:{line_no}: skipped: {exc}", file=sys.stderr)
                yield line_no, None
                continue
            yield line_no, row


def process_jsonl(
    input_path: str, output_path: str, required: dict[str, tuple[type, ...]], handle: Callable[[list[dict]], list[dict]], batch: int = 256
) -> int:
    rows = [row for _, row in read_rows(input_path, required) if row is not None]
    written = 0
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(output_path).with_suffix(Path(output_path).suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for i in range(0, len(rows), batch):
            for result in handle(rows[i : i + batch]):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
                written += 1
    tmp.replace(output_path)  # never leave a half-written output file
    print(f"wrote {written} rows to {output_path}", file=sys.stderr)
    return EXIT_OK if written else EXIT_NONE_SUCCEEDED


def cmd_verify(args: argparse.Namespace) -> int:
    from hardneg.configuration import from_dict
    from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput

    raw = {}
    if args.config:
        import yaml

        raw = yaml.safe_load(Path(args.config).read_text()) or {}
        raw = raw.get("verifier", raw)
    config = from_dict(VerifierConfig, raw)
    if args.no_nli:
        config.use_nli = False
    verifier = MathVerifier.from_config(config)
    nullable = (str, type(None))

    def handle(rows: list[dict]) -> list[dict]:
        items = [
            VerifyInput(
                id=str(r["id"]),
                question=r["question"],
                candidate=r["candidate"],
                reference_solution=r.get("reference_solution"),
                reference_answer=r.get("reference_answer"),
            )
            for r in rows
        ]
        return [p.to_dict() for p in verifier.verify_batch(items)]

    required = {"id": (str, int), "question": (str,), "candidate": (str,), "reference_solution": nullable, "reference_answer": nullable}
    return process_jsonl(args.input, args.output, required, handle)


def cmd_grade(args: argparse.Namespace) -> int:
    from hardneg.grading import grade_batch

    def handle(rows: list[dict]) -> list[dict]:
        results = grade_batch([(r["completion"], str(r["reference"])) for r in rows])
        return [
            {"id": r["id"], "extracted": g.extracted, "correct": bool(g.correct), "correct_math_verify": g.correct_math_verify}
            for r, g in zip(rows, results)
        ]

    required = {"id": (str, int), "completion": (str,), "reference": (str, int, float)}
    return process_jsonl(args.input, args.output, required, handle)


def cmd_run(args: argparse.Namespace) -> int:
    from hardneg.pipeline import run_pipeline

    return run_pipeline(profile=args.profile, partition=args.partition, skip_report=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hardneg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    verify = sub.add_parser("verify", help="six-dimensional verifier profiles for candidate solutions")
    verify.add_argument("--input", required=True)
    verify.add_argument("--output", required=True)
    verify.add_argument("--config", help="YAML with VerifierConfig fields (or a profile: its `verifier` section)")
    verify.add_argument("--no-nli", action="store_true", help="disable the NLI signal (d4 from the value-flow check alone)")
    verify.set_defaults(func=cmd_verify)

    grade = sub.add_parser("grade", help="Step-DPO answer grading")
    grade.add_argument("--input", required=True)
    grade.add_argument("--output", required=True)
    grade.set_defaults(func=cmd_grade)

    run = sub.add_parser("run", help="materialize the whole asset graph for one family|seed partition")
    run.add_argument("--profile", default=None, help="profile name or YAML path (default: $HARDNEG_PROFILE or smoke)")
    run.add_argument("--partition", default=None, help="family|seed (default: the profile's default_partition)")
    run.set_defaults(func=cmd_run)

    from hardneg import export

    export.add_parser(sub)  # `hardneg export RUN_ID DIR` (hardneg/export.py)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hardneg.configuration import ConfigError
    from hardneg.registry import ModelUnavailableError
    from hardneg.verifier import ModelLoadError

    args = build_parser().parse_args(argv)
    started = time.time()
    try:
        code = args.func(args)
    except (ConfigError, ModelLoadError, ModelUnavailableError, FileNotFoundError) as exc:
        print(f"hardneg {args.command}: {exc}", file=sys.stderr)
        return EXIT_NONE_SUCCEEDED
    print(f"done in {time.time() - started:.1f}s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
