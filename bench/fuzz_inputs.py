"""Seeded generators of hostile inputs for the reliability fuzz (issue 15): JSONL rows for
`hardneg grade` / `hardneg verify` / `hardneg.data.read_jsonl`, and bad YAML profiles.

Why a shared module: the small seeded fuzz in the test suite (tests/test_fuzz.py) and the full
run (bench/fuzz_cli.py) must exercise the same kinds of input. Each generated JSONL line carries
its expected fate — "good" (valid row, possibly with hostile *content*: it must come out, in
order), "bad" (must be reported with its line number) or "blank" (JSON whitespace only:
skipped) — decided by construction, not by re-running the validator under test.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class FuzzLine:
    data: bytes  # one line without its trailing newline
    fate: str  # "good", "bad" or "blank"
    kind: str  # which generator made it (for the report)
    row_id: object = None  # the id a good row must come out with


_ODD_TEXT = [
    "\\boxed{5}", "The answer is: 18", "x \\in [1,2]", "\\boxed{\\frac{1}{2}}", "10^10^10^10", "\\boxed{" * 50,
    "}" * 40, "\u202e\u200b\ufeff", "日本語の答え \\boxed{3}", "\U0001F600" * 20, "\\boxed{1e309}", "nan", "\x00\x01",
    "a" * 5000, "\\frac" * 300, "$$" * 100, "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\boxed{3} so \\boxed{4",
    "0.\\overline{3}", "1\\,000", "\r\n\t", "\\text{" * 30, "\\sqrt{" * 200 + "2",
]


def _odd_text(rng: random.Random) -> str:
    parts = rng.choices(_ODD_TEXT, k=rng.randint(1, 3))
    if rng.random() < 0.2:
        parts.append("".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x10000, 0x10FFFF)]))
                             for _ in range(rng.randint(1, 40))))
    return " ".join(parts)


def _good_row(rng: random.Random, i: int, command: str) -> tuple[dict, object]:
    row_id: object = f"r{i}" if rng.random() < 0.7 else i
    if rng.random() < 0.1 and isinstance(row_id, str) and command != "read_jsonl":
        row_id = row_id + "\ud800"  # a lone surrogate: still a string id; must come back unchanged
    if command == "grade":
        row = {"id": row_id, "completion": _odd_text(rng), "reference": rng.choice(["5", "18", "\\frac{1}{2}", 7, 0.5, "x"])}
    elif command == "verify":
        row = {
            "id": row_id,
            "question": rng.choice(["What is 2+3?", "Tom has 3 boxes of 4 apples. How many?", _odd_text(rng)]),
            "candidate": _odd_text(rng),
            "reference_solution": rng.choice([None, "2 + 3 = 5\nThe answer is: 5", _odd_text(rng)]),
            "reference_answer": rng.choice([None, "5", 12, "\\frac{1}{2}"]),
        }
    else:  # read_jsonl with required ("query", "response")
        row = {"query": f"q{i} " + _odd_text(rng).replace("\ud800", ""), "response": "r " + str(i), "id": row_id}
    if rng.random() < 0.2:
        row["extra"] = {"nested": [[[[1]]]], "text": _odd_text(rng)}  # unknown fields are ignored
    return row, row_id


def _encode(row: dict, rng: random.Random) -> bytes:
    # A lone surrogate can only travel as a JSON escape (`\\ud800`): as raw bytes it is not UTF-8.
    ascii_only = rng.random() < 0.5 or "\ud800" in json.dumps(row, ensure_ascii=False)
    text = json.dumps(row, ensure_ascii=ascii_only)
    if rng.random() < 0.2:
        text = text.replace(", ", ",\r ", 1)  # a CR between tokens is JSON whitespace: valid, one line
    return text.encode("utf-8")


def _bad_line(rng: random.Random, i: int, command: str) -> tuple[bytes, str]:
    good, _ = _good_row(rng, i, command)
    good = {k: v for k, v in good.items() if not (isinstance(v, str) and "\ud800" in v)}
    good.setdefault("id", i)
    kind = rng.choice([
        "invalid-utf8", "truncated", "deep", "bigint", "nan-literal", "not-object", "missing-field", "bool-id",
        "wrong-type", "formfeed", "ideographic-space", "file-separator", "nel", "trailing-garbage", "surrogate-bytes",
    ])
    if kind == "invalid-utf8":
        data = json.dumps(good).encode()[:-1] + b"\xff\xfe}"
    elif kind == "truncated":
        data = json.dumps(good).encode()[: rng.randint(1, 20)]
    elif kind == "deep":
        depth = rng.choice([5000, 100_000])
        data = b'{"id": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "bigint":
        data = b'{"id": ' + b"9" * 5000 + b', "completion": "1", "reference": "1"}'
    elif kind == "nan-literal":
        data = json.dumps(good).encode()[:-1] + b', "w": NaN}'
    elif kind == "not-object":
        data = rng.choice([b"[1, 2]", b"42", b'"text"', b"null", b"true"])
    elif kind == "missing-field":
        required = {"grade": "completion", "verify": "candidate", "read_jsonl": "response"}[command]
        good.pop(required, None)
        data = json.dumps(good).encode()
    elif kind == "bool-id" and command != "read_jsonl":
        good["id"] = True
        data = json.dumps(good).encode()
    elif kind in ("wrong-type", "bool-id"):
        field = {"grade": "completion", "verify": "question", "read_jsonl": "query"}[command]
        good[field] = rng.choice([None, 5, ["a"], {"a": 1}, True])
        data = json.dumps(good).encode()
    elif kind == "formfeed":
        data = b"\x0c"
    elif kind == "ideographic-space":
        data = "\u3000".encode()
    elif kind == "file-separator":
        data = b"\x1c"
    elif kind == "nel":
        data = "\x85".encode()
    elif kind == "surrogate-bytes":
        data = b'{"id": "\xed\xa0\x80", "completion": "1", "reference": "1"}'  # CESU-8 surrogate: not UTF-8
    else:
        data = json.dumps(good).encode() + b" x"
    return data, kind


def hostile_jsonl(n: int, seed: int = 0, command: str = "grade", bad_fraction: float = 0.4) -> list[FuzzLine]:
    """`n` lines: good rows with hostile content, bad lines of every kind, a few blank ones."""
    rng = random.Random(seed)
    lines: list[FuzzLine] = []
    for i in range(n):
        r = rng.random()
        if r < 0.03 or i == 1:
            lines.append(FuzzLine(rng.choice([b"", b"   ", b"\t", b" \r"]), "blank", "blank"))
        elif r < 0.03 + bad_fraction:
            data, kind = _bad_line(rng, i, command)
            lines.append(FuzzLine(data, "bad", kind))
        else:
            row, row_id = _good_row(rng, i, command)
            lines.append(FuzzLine(_encode(row, rng), "good", "good", row_id))
    return lines


def write_jsonl(lines: list[FuzzLine], path: Path, bom: bool = False) -> None:
    with open(path, "wb") as f:
        if bom:
            f.write(b"\xef\xbb\xbf")
        for line in lines:
            f.write(line.data + b"\n")


# ----------------------------------------------------------------------------------------------
# Profiles

_BAD_VALUES = {
    "pool.k": [-1, 0, "four", True, 2.5, None, [1]],
    "pool.num_problems": [-5, 0, "x", False],
    "pool.top_p": [0, 1.5, -0.1, "high"],
    "pool.temperature": [-1, ".nan", "hot"],
    "dpo.beta": [-1, 0, ".nan", ".inf", "b", None],
    "dpo.max_steps": [0, -4, "ten", 1.5],
    "dpo.learning_rate": [0, -1e-5, "fast"],
    "dpo.weighting.lam": [-0.5, 1.5, "x"],
    "sft.max_steps": [-4, 0, -2, "x"],
    "sft.lora.r": [0, -16, "sixteen"],
    "sft.lora.dropout": [1.0, -0.1, 2],
    "sft.data.kind": ["csv", 3],
    "verifier.batch_size": [0, -1, "big", 1.5],
    "verifier.fine_gate": ["some", 1],
    "verifier.nli_flag_threshold": [1.5, -1],
    "eval.batch_size": [0, -3],
    "eval.benchmarks": [[{"name": "aime"}], [{"name": "gsm8k", "n": -1}], "gsm8k", [{"nme": "gsm8k"}],
                        [{"name": "gsm8k"}, {"name": "gsm8k"}]],
    "problems.pool_benchmark": ["aime", "math500", 5],
    "problems.pool_offset": [-1, "x"],
    "funnel_expected": [{1: {"min": 9, "max": 3}}, {7: {"min": 1, "max": 2}}, {1: {"min": -1, "max": 2}}, {1: "x"},
                        {"one": {"min": 1, "max": 2}}],
    "seeds": [[], [True], [0, 0], ["a"], 3, [-1], [0.5]],
    "hardneg_seeds": [[7], [0, 0], "x"],
    "default_partition": ["nosuch|0", "smollm2-135m-sft|99", "bogus", "a|b|c", "x|y", 5],
    "families": [[], [{"name": "../escape", "base_model": "smollm2-135m-instruct"}],
                 [{"name": "/abs/path", "base_model": "smollm2-135m-instruct"}],
                 [{"name": "a|b", "base_model": "smollm2-135m-instruct"}],
                 [{"name": "ok", "base_model": "nosuch-model"}],
                 [{"name": "dup", "base_model": "smollm2-135m-instruct"}, {"name": "dup", "base_model": "smollm2-135m-instruct"}],
                 [{"base_model": "smollm2-135m-instruct"}], [{"name": "", "base_model": "smollm2-135m-instruct"}],
                 [{"name": ".hidden", "base_model": "smollm2-135m-instruct"}], "fam"],
    "models": [{"x/y": {"name": "x/y", "local_path": "/tmp"}}, {"m": {"name": "other"}}, {"m": "path"}],
    "no_such_section": [1],
    "pool.no_such_key": [1],
}

_BROKEN_TEXT = [
    "name: [1, 2\npool: {k: 3}\n", "pool:\n\tk: 3\n", "- 1\n- 2\n", "just a string\n", "42\n", "a: b: c\n",
    "pool: {k: 3\n", "{{{{\n", "inherit: smoke\npool: [k, 3]\n", "'unterminated\n", "1: 2\n", "null\n... \n---\nx: 1\n",
    "inherit: [smoke]\n", "inherit: 5\n", "inherit: nosuch-profile\n", "inherit: ../../etc/passwd.yaml\n",
    "x: &a [*a]\n", "pool: " + "[" * 2000 + "]" * 2000 + "\n", "\x00\x01\n", "inherit: smoke\npool:\n  k: !!python/object:os.system ls\n",
]


def _set_dotted(data: dict, dotted: str, value: object) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def bad_profiles(n: int, directory: Path, seed: int = 0) -> list[tuple[Path, str, str | None]]:
    """Write `n` bad profiles under `directory`; return (path, kind, dotted key expected in the message)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    keys = sorted(_BAD_VALUES)
    for i in range(n):
        path = directory / f"bad{i:04d}.yaml"
        r = rng.random()
        if r < 0.15:
            text = rng.choice(_BROKEN_TEXT)
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
            out.append((path, "broken-yaml", None))
        elif r < 0.2:
            other = directory / f"bad{i:04d}-peer.yaml"
            other.write_text(f"inherit: {path.name}\n")
            path.write_text(rng.choice([f"inherit: {other.name}\n", f"inherit: {path.name}\n"]))
            out.append((path, "inherit-cycle", "inherit"))
        elif r < 0.22:
            path.write_bytes(b"inherit: smoke\nname: \xff\xfe\n")
            out.append((path, "not-utf8", None))
        else:
            data: dict = {"inherit": "smoke"}
            chosen = rng.sample(keys, k=rng.choice([1, 1, 1, 2]))
            for key in chosen:
                value = rng.choice(_BAD_VALUES[key])
                if isinstance(value, str) and value.startswith("."):
                    value = float(value.replace(".nan", "nan").replace(".inf", "inf"))
                _set_dotted(data, key, value)
            path.write_text(yaml.safe_dump(data, allow_unicode=True))
            out.append((path, "bad-value:" + ",".join(chosen), chosen[0].split(".")[0] if len(chosen) == 1 else None))
    return out
