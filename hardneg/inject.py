"""Error-injection pool: labelled candidate solutions made from GSM8K and MATH *train* references.

Why: offline there is no 600K-trajectory pool like the paper's (SPEC §2.3); this generator
stands in for it at the same size, and because every row says which error was injected and
in which step, it is also the verifier's validation set (bench/verifier.py --inject).

Each reference yields `variants_per_reference` rows, drawn by `error_mix` among the error
types that apply to it (a reference without a symbolic identity cannot get an algebra slip):

| error_type | what is done | error_step |
|---|---|---|
| correct | the reference in candidate style (k = 0: untouched) or re-phrased: independent steps reordered, a symbol renamed, numbers reformatted, a connective added | null |
| arithmetic_slip | the written result of a computation changed (±1, ±2, ±10, a digit changed, digits swapped, ×10) | the step |
| wrong_operator | one written operation `a op b = c` replaced by another, its result recomputed (right arithmetic, wrong formula; GSM8K and MATH) | the step |
| algebra_slip | one side of a symbolic identity (checked with SymPy via latex2sympy, an independent parser) changed: a sign flipped, a coefficient or exponent changed, a term dropped; SymPy confirms it is no longer an identity | the step |
| carry_error | a result computed in one step is carried into a later step as a confusable number, that step's own arithmetic stays right (GSM8K and MATH) | the later step |
| dropped_step | a non-final step deleted | the step now at its place |
| duplicated_step | a step repeated right after itself | the copy |
| swapped_steps | a step moved after the step that uses its result | the first of the two |
| wrong_answer | the final answer changed | the answer step |
| missing_answer | the final answer statement removed | the last step |
| truncated | cut off mid-way (finish_reason "length") | the last step |
| wrong_problem | GSM8K: the solution of another train problem with every visible operation answered by another operation (`12 × 4 = 16`), its own final answer kept: what a weak policy writes when it loses the question (funnel stage 3's "trivially wrong") | 0 |
| repetition / question_echo / empty | degenerate text | 0 (null for empty) |

Labels are exact by construction: a variant is rebuilt as one step per line, re-split with
the verifier's own `split_steps`, and kept only if the split gives back exactly the steps it was
built from, so `error_step` indexes the verifier's step split. Everything is a pure function of
(seed, problem_id, k): re-runs give identical rows, and any slice of the pool can be regenerated
alone. Memory stays flat: `iter_rows` is a generator, `iter_frames` yields DataFrames of
`chunk_size` rows.

    from hardneg.inject import InjectConfig, iter_frames
    for df in iter_frames(InjectConfig(seed=0, variants_per_reference=48)):
        ...   # 14,972 references × 48 = 718,656 rows
"""

from __future__ import annotations

import ast
import functools
import json
import operator
import random
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

from .verifier.steps import split_steps

__all__ = ["InjectConfig", "InjectPoolConfig", "InjectShard", "inject_shard", "inject_shards", "Reference", "ERROR_TYPES", "iter_references", "math_reference", "inject_reference", "iter_rows", "iter_frames", "default_error_mix"]

ROOT = Path(__file__).resolve().parents[1]

ERROR_TYPES = (
    "correct", "arithmetic_slip", "wrong_operator", "algebra_slip", "carry_error", "dropped_step", "duplicated_step",
    "swapped_steps", "wrong_answer", "missing_answer", "truncated", "wrong_problem", "repetition", "question_echo", "empty",
)


def default_error_mix() -> dict[str, float]:
    # why these weights: a sampled pool is mostly near-misses (slips, carried values, wrong
    # answers) plus a fifth correct; degenerate text is rare but must exist for funnel stage 1,
    # and a few trivially wrong solutions (another problem, garbled) for stage 3
    return {
        "correct": 0.20, "arithmetic_slip": 0.15, "wrong_operator": 0.05, "algebra_slip": 0.12, "carry_error": 0.07,
        "dropped_step": 0.07, "duplicated_step": 0.05, "swapped_steps": 0.05, "wrong_answer": 0.08, "missing_answer": 0.03,
        "truncated": 0.07, "wrong_problem": 0.03, "repetition": 0.03, "question_echo": 0.02, "empty": 0.01,
    }


@dataclass
class InjectConfig:
    """What to generate. Every field has a default; the pool is a pure function of these."""

    seed: int = 0
    """Seed of every random choice (combined with problem_id and variant index, so rows are independent of order)."""
    variants_per_reference: int = 48
    """Rows per reference; variant 0 is always the untouched reference (error_type 'correct'). 48 × 14,972 ≈ 719K."""
    error_mix: dict[str, float] = field(default_factory=default_error_mix)
    """Relative weight of each error type (keys from ERROR_TYPES); types that do not apply to a reference are re-drawn."""
    sources: tuple[str, ...] = ("gsm8k", "math")
    """Which train sets to use: 'gsm8k' (data/gsm8k/train.jsonl), 'math' (data/math/train.jsonl). Never test sets."""
    data_dir: Path = field(default_factory=lambda: ROOT / "data")
    """Folder holding gsm8k/train.jsonl and math/train.jsonl."""
    max_references: Optional[int] = None
    """Use only the first N references of each source (None: all)."""
    chunk_size: int = 10_000
    """Rows per DataFrame from iter_frames."""
    propagate: float = 0.0
    """Share of arithmetic slips, wrong operators and carried errors whose wrong value flows on: every later
    computation that uses it is recomputed and the final answer follows (for MATH only a boxed plain number),
    as when a model carries on from its own slip (the label stays the first wrong step). 0: only the erring
    step changes."""
    sympy_timeout: float = 10.0
    """Seconds for the SymPy identity checks of one reference (bounded worker; a timeout only drops algebra sites)."""

    def __post_init__(self) -> None:
        unknown = set(self.error_mix) - set(ERROR_TYPES)
        if unknown:
            raise ValueError(f"InjectConfig.error_mix has unknown error types {sorted(unknown)}; use {ERROR_TYPES}")
        if any(w < 0 for w in self.error_mix.values()) or not any(w > 0 for w in self.error_mix.values()):
            raise ValueError("InjectConfig.error_mix needs non-negative weights, at least one positive")
        bad = set(self.sources) - {"gsm8k", "math"}
        if bad:
            raise ValueError(f"InjectConfig.sources: unknown {sorted(bad)} (use 'gsm8k', 'math')")
        if not 0.0 <= self.propagate <= 1.0:
            raise ValueError(f"InjectConfig.propagate must lie in [0, 1], got {self.propagate}")
        if self.variants_per_reference < 1 or self.chunk_size < 1:
            raise ValueError("InjectConfig.variants_per_reference and chunk_size must be >= 1")
        self.data_dir = Path(self.data_dir)


@dataclass
class Reference:
    problem_id: str
    source: str
    question: str
    text: str  # the reference in candidate style
    answer: str
    steps: list[str]
    sites: dict = field(default_factory=dict)  # lazily found perturbation sites
    raw: str = ""  # the reference solution as stored (GSM8K with its <<calc>> annotations)


# ----------------------------------------------------------------------------- references
_ANNOT = re.compile(r"<<([^<>]*)>>")


def _gsm8k_reference(idx: int, row: dict) -> Reference:
    body, final = row["answer"].split("####", 1)
    final = final.strip()
    lines = [l.strip() for l in body.strip().split("\n") if l.strip()]
    # the annotation is kept only to find the computations; the text shows what a model writes
    ann_lines = lines
    text_lines = [_ANNOT.sub("", l) for l in lines]
    steps = text_lines + [f"The answer is: {final}"]
    text = "\n".join(steps)
    split = split_steps(text)
    ref = Reference(f"gsm8k-train-{idx}", "gsm8k", row["question"], text, final, split, raw=row["answer"])
    # a long line split into sentences: annotation positions no longer map to steps, so no computation sites
    ref.sites["annotated"] = ann_lines if split == steps else None
    return ref


def math_reference(row: dict) -> Optional[Reference]:
    """A MATH row (`problem`, `solution`) as a Reference (None without a final answer); bench/verifier.py
    reads the *test* set with it for false alarms on references nobody developed on, never the pool."""
    from .grading import extract_answer, math_reference_answer

    sol = row["solution"]
    pid = "math-" + row.get("unique_id", "").replace(".json", "")
    try:
        answer = math_reference_answer(sol)
    except ValueError:
        answer = extract_answer(sol)  # "\\boxed 2" (no braces) occurs once in MATH train
    if not answer:
        return None  # no final answer to grade against: not usable as a reference
    return Reference(pid, "math", row["problem"], sol, answer, split_steps(sol), raw=sol)


def iter_references(cfg: InjectConfig) -> Iterator[Reference]:
    """The train references of cfg.sources, in file order (GSM8K first)."""
    for source in cfg.sources:
        path = cfg.data_dir / source / "train.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (see data/SOURCES.md)")
        with path.open() as f:
            for idx, line in enumerate(f):
                if cfg.max_references is not None and idx >= cfg.max_references:
                    break
                try:
                    row = json.loads(line)
                    ref = _gsm8k_reference(idx, row) if source == "gsm8k" else math_reference(row)
                except (KeyError, ValueError) as exc:
                    raise ValueError(f"{path}:{idx + 1}: bad reference row ({exc})") from exc
                if ref is not None and ref.steps:
                    yield ref


# ----------------------------------------------------------------------------- numbers
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _eval(expr: str) -> Optional[Fraction]:
    """Exact value of a small arithmetic expression (digits, + - * / ^, brackets), else None."""
    expr = expr.replace("^", "**").replace("×", "*").replace("÷", "/").replace("x", "*").replace("−", "-")
    if len(expr) > 120 or not re.fullmatch(r"[\d\s.+\-*/()]+", expr):
        return None
    try:
        node = ast.parse(expr.replace(",", ""), mode="eval").body
    except SyntaxError:
        return None

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return Fraction(str(n.value))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            b, e = ev(n.left), ev(n.right)
            if e.denominator != 1 or abs(e) > 12:
                raise ValueError
            return b ** int(e)
        raise ValueError

    try:
        return ev(node)
    except (ValueError, ZeroDivisionError, TypeError):
        return None


def _fmt(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    s = f"{float(x):.2f}".rstrip("0").rstrip(".")
    return s


def _confusable(value: str, rng: random.Random) -> str:
    """A wrong number a person could write for `value`: ±1, ±2, ±10, one digit changed, two swapped, ×10."""
    v = Fraction(value.replace(",", ""))
    digits = value.replace(",", "")
    options = []
    for _ in range(8):
        kind = rng.choice(("pm1", "pm2", "pm10", "digit", "swap", "x10"))
        if kind == "pm1":
            w = v + rng.choice((-1, 1))
        elif kind == "pm2":
            w = v + rng.choice((-2, 2))
        elif kind == "pm10":
            w = v + rng.choice((-10, 10))
        elif kind == "x10":
            w = v * 10 if rng.random() < 0.5 or v.denominator != 1 or v % 10 else v / 10
        elif kind == "digit":
            pos = [k for k, c in enumerate(digits) if c.isdigit()]
            k = rng.choice(pos)
            new = str((int(digits[k]) + rng.randint(1, 9)) % 10)
            cand = digits[:k] + new + digits[k + 1 :]
            if cand.lstrip("-").startswith("0") and len(cand.lstrip("-")) > 1 and not cand.lstrip("-").startswith("0."):
                continue
            options.append(cand)
            continue
        else:
            pos = [k for k in range(len(digits) - 1) if digits[k].isdigit() and digits[k + 1].isdigit() and digits[k] != digits[k + 1]]
            if not pos:
                continue
            k = rng.choice(pos)
            cand = digits[:k] + digits[k + 1] + digits[k] + digits[k + 2 :]
            if cand.startswith("0") and len(cand) > 1 and not cand.startswith("0."):
                continue
            options.append(cand)
            continue
        if w != v and w >= 0 or (w != v and v < 0):
            options.append(_fmt(w))
    options = [o for o in options if o and Fraction(o) != v]
    return options[0] if options else _fmt(v + 1)


# ----------------------------------------------------------------------------- GSM8K sites
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"


def _gsm8k_computations(ref: Reference) -> list[dict]:
    """Per annotated computation: step index, expression, result, where its visible result is."""
    out = []
    for i, line in enumerate(ref.sites["annotated"] or ()):
        text = ref.steps[i]
        shift = 0
        for m in _ANNOT.finditer(line):
            body = m.group(1)
            if body.count("=") != 1:
                shift += len(m.group(0))
                continue
            expr, res = body.split("=")
            pos = m.start() - shift  # position of the annotation in the stripped text
            shift += len(m.group(0))
            after = re.match(r"\s*\$?\s*(" + _NUM + ")", text[pos:])
            val = _eval(expr)
            if after is None or val is None:
                continue
            shown = after.group(1)
            try:
                if Fraction(shown.replace(",", "")) != val:
                    continue  # the reference itself is off here: not a clean site
            except ValueError:
                continue
            out.append(dict(step=i, expr=expr.strip(), value=val, res_start=pos + after.start(1), res_end=pos + after.end(1),
                            before=text[:pos]))
    return out


# ----------------------------------------------------------------------------- MATH sites
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\begin\{(align\*?|equation\*?)\}(.+?)\\end\{\4\}", re.DOTALL)
_ARITH_EQ = re.compile(r"(?<![\w\\^_{])((?:\d[\d.]*|[+\-*/()]|\\cdot|\\times|\s)+?)\s*=\s*(-?\d+(?:\.\d+)?)(?![\d.\w])")


def _math_spans(step: str):
    for m in _MATH_SPAN.finditer(step):
        g = next(k for k in (1, 2, 3, 5) if m.group(k) is not None)
        yield m.start(g), m.group(g)


def _math_arith_sites(ref: Reference) -> list[dict]:
    out = []
    for i, step in enumerate(ref.steps):
        for start, body in _math_spans(step):
            for m in _ARITH_EQ.finditer(body):
                lhs = m.group(1).replace("\\cdot", "*").replace("\\times", "*")
                if not re.search(r"\d\s*[+\-*/]\s*[\d(]", lhs):
                    continue
                val = _eval(lhs)
                try:
                    shown = Fraction(m.group(2))
                except ValueError:
                    continue
                if val is None or val != shown:
                    continue
                res_start = start + m.start(2)
                out.append(dict(step=i, expr=lhs.strip(), value=shown, res_start=res_start, res_end=start + m.end(2),
                                before=step[:res_start]))
    return out


def _arith_sites(ref: Reference) -> list[dict]:
    """The computations whose written result an error can change, with the same keys for both sources:
    step, expr (plain arithmetic), value, res_start / res_end (the written result), before (step text up to it)."""
    if "arith" not in ref.sites:
        ref.sites["arith"] = _gsm8k_computations(ref) if ref.source == "gsm8k" else _math_arith_sites(ref)
    return ref.sites["arith"]


_SYM_EQ_SPLIT = re.compile(r"(?<![<>\\!])=(?!=)")
_CUT = re.compile(r"\\quad|\\qquad|\\\\|&|,\s|;|\\text\{[^{}]*\}|\\Rightarrow|\\implies|\\iff|\\le|\\ge|<|>|\\neq|\\approx")


def _sym_candidates(ref: Reference) -> list[dict]:
    """Adjacent `A = B` inside math where both sides hold a letter (checked by SymPy later)."""
    out = []
    for i, step in enumerate(ref.steps):
        for start, body in _math_spans(step):
            parts = []
            pos = 0
            for piece in _CUT.split(body):
                k = body.find(piece, pos)
                parts.append((start + k, piece))
                pos = k + len(piece)
            for pstart, piece in parts:
                bounds = [0] + [m.end() for m in _SYM_EQ_SPLIT.finditer(piece)]
                segs = []
                for a, b in zip(bounds, bounds[1:] + [len(piece) + 1]):
                    seg = piece[a : b - 1] if b <= len(piece) else piece[a:]
                    segs.append((pstart + a, seg))
                for (sa, A), (sb, B) in zip(segs, segs[1:]):
                    if not (2 <= len(A.strip()) <= 80 and 2 <= len(B.strip()) <= 80):
                        continue
                    letters = lambda s: re.search(r"(?<![\\a-zA-Z])[a-z](?![a-zA-Z])", re.sub(r"\\[a-zA-Z]+", " ", s))
                    if letters(A) and letters(B):
                        lead = len(B) - len(B.lstrip())
                        out.append(dict(step=i, lhs=A.strip(), rhs=B.strip(), rhs_start=sb + lead, rhs_end=sb + lead + len(B.strip())))
    return out


def _readings(expr):
    """The expression with `i` read as a symbol and, when present, as the imaginary unit (the
    parser cannot know which one a solution means)."""
    import sympy

    out = [expr]
    for s in expr.free_symbols:
        if str(s) == "i":
            out.append(expr.subs(s, sympy.I))
    return out


def _zero(d) -> bool:
    import sympy

    d = sympy.expand(d)
    return bool(d == 0) or bool(sympy.simplify(d) == 0)


def _sympy_identities(pairs: list[tuple[str, str]]) -> list[Optional[bool]]:
    """Worker side: is each (lhs, rhs) LaTeX pair an identity (under some reading of `i`)? None
    when it does not parse."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    out = []
    for a, b in pairs:
        try:
            ea, eb = latex2sympy(a), latex2sympy(b)
            if not (isinstance(ea, sympy.Expr) and isinstance(eb, sympy.Expr)) or not (ea.free_symbols and eb.free_symbols):
                out.append(None)
                continue
            out.append(any(_zero(d) for d in _readings(ea - eb)))
        except Exception:  # noqa: BLE001 - an unparseable side is simply not a site
            out.append(None)
    return out


def _algebra_sites(ref: Reference, cfg: InjectConfig) -> list[tuple[dict, str]]:
    """(site, slipped rhs) pairs of one reference, found and checked once (two bounded SymPy calls)."""
    from .bounded import TIMEOUT, call_bounded

    cands = _sym_candidates(ref)[:12]
    if not cands:
        return []
    res = call_bounded(_sympy_identities, [(c["lhs"], c["rhs"]) for c in cands], timeout=cfg.sympy_timeout)
    if res is TIMEOUT:
        return []
    rng = random.Random(f"{cfg.seed}:{ref.problem_id}:algebra")
    options = [(c, o) for c, ok in zip(cands, res) if ok for o in _algebra_perturbations(c["rhs"], rng)[:6]]
    if not options:
        return []
    real = call_bounded(_sympy_differs, [(c["lhs"], o) for c, o in options], timeout=cfg.sympy_timeout)
    if real is TIMEOUT:
        return []
    return [opt for opt, r in zip(options, real) if r]


def _algebra_perturbations(rhs: str, rng: random.Random) -> list[str]:
    """Textual slips of an expression: sign flipped, coefficient/exponent changed, term dropped."""
    outs = []
    signs = [m.start() for m in re.finditer(r"(?<=[\w})\s])[+\-](?=\s*[\w\\({])", rhs)]
    for k in signs:
        outs.append(rhs[:k] + ("-" if rhs[k] == "+" else "+") + rhs[k + 1 :])
    for m in re.finditer(r"(?<![\w.^{])(\d+)(?=\s*[a-z(\\])", rhs):
        v = int(m.group(1))
        outs.append(rhs[: m.start()] + str(v + rng.choice((1, 2)) if v > 1 else str(v + 1)) + rhs[m.end() :])
    for m in re.finditer(r"\^\{?(\d)\}?", rhs):
        v = int(m.group(1))
        outs.append(rhs[: m.start(1)] + str(v + 1 if v < 9 else v - 1) + rhs[m.end(1) :])
    for k in signs:
        nxt = re.search(r"[+\-]", rhs[k + 1 :])
        end = k + 1 + nxt.start() if nxt else len(rhs)
        if rhs[k + 1 : end].count("{") == rhs[k + 1 : end].count("}") and rhs[k + 1 : end].count("(") == rhs[k + 1 : end].count(")"):
            outs.append(rhs[:k] + rhs[end:])
    rng.shuffle(outs)
    return [o for o in outs if o.strip() and o != rhs]


def _sympy_differs(pairs: list[tuple[str, str]]) -> list[bool]:
    """Worker side: True when lhs − rhs is *not* identically zero (the slip is real)."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    out = []
    for a, b in pairs:
        try:
            # a real slip under every reading of `i` (symbol or imaginary unit)
            out.append(not any(_zero(d) for d in _readings(latex2sympy(a) - latex2sympy(b))))
        except Exception:  # noqa: BLE001
            out.append(False)
    return out


# ----------------------------------------------------------------------------- variants
def _build(ref: Reference, steps: list[str], error_type: str, error_step: Optional[int], finish: str = "eos"):
    """Join steps one per line and check the verifier's split gives them back (exact labels)."""
    text = "\n".join(steps)
    if split_steps(text) != [s.strip() for s in steps if s.strip()]:
        return None
    return text, error_type, error_step, finish


def _flow(ref: Reference, steps: list[str], step: int, old: Fraction, new: Fraction) -> list[str]:
    """Carry a changed result on: recompute every later GSM8K computation that uses a changed value
    (its operand and its result rewritten), and the final answer when it was one of them."""
    changed = {_fmt(old): new}
    comps = _arith_sites(ref)
    by_step: dict[int, list[dict]] = {}
    for c in comps:
        if c["step"] > step:
            by_step.setdefault(c["step"], []).append(c)
    for k in sorted(by_step):
        text, edits = steps[k], []
        window = 0
        for c in sorted(by_step[k], key=lambda c: c["res_start"]):
            expr, uses = c["expr"], []
            for old_text, value in changed.items():
                token = r"(?<![\d.])" + re.escape(old_text) + r"(?![\d.])"
                if re.search(token, expr):
                    expr = re.sub(token, _fmt(value), expr)
                    uses.append((old_text, value))
            if uses:
                val = _eval(expr)
                if val is None or val < 0:
                    return steps  # the new value breaks the arithmetic (a negative count, a division by 0): stop here
                for old_text, value in uses:  # the operand as written, between the previous result and this one
                    for m in re.finditer(r"(?<![\d.,])" + re.escape(old_text) + r"(?![\d.,])", text[window : c["res_start"]]):
                        edits.append((window + m.start(), window + m.end(), _fmt(value)))
                edits.append((c["res_start"], c["res_end"], _fmt(val)))
                changed[_fmt(c["value"])] = val
            window = c["res_end"]
        for a, b, new_text in sorted(edits, reverse=True):
            text = text[:a] + new_text + text[b:]
        steps[k] = text
    ans = _answer_step(ref)
    m = _last_answer_number(steps[ans], ref) if ans > step else None
    if m is not None and ref.source == "math":
        box = _boxed_span(steps[ans])
        if box is None or steps[ans][box[0] + 7 : box[1]].strip() != steps[ans][m[0] : m[1]]:
            m = None  # `\boxed{\frac{3}{4}}`: a changed 4 is not this answer; only a boxed number is carried
    if m is not None:
        shown = steps[ans][m[0] : m[1]].replace(",", "")
        if shown in changed:
            steps[ans] = steps[ans][: m[0]] + _fmt(changed[shown]) + steps[ans][m[1] :]
    return steps


_LATEX_OPS = {"+": "+", "-": "-", "*": "\\cdot", "/": "\\div"}  # an operator written in LaTeX is replaced in LaTeX
_BINARY = re.compile(r"\s*([\d.]+)\s*([-+*/])\s*([\d.]+)\s*")  # a computation `a op b`


def _visible_binary(c: dict):
    """(a, op, b, match of the written operator) of a computation `a op b` whose operation is written
    right before its result in the text (`12 × 4 = `), else None: the sites an operation can be changed at."""
    m = _BINARY.fullmatch(c["expr"])
    if m is None:
        return None
    a, op, b = m.groups()
    vis = re.search(re.escape(a) + r"\s*\$?\s*([-+*/x×÷]|\\cdot|\\times|\\div)\s*\$?\s*" + re.escape(b) + r"\s*=\s*\$?\s*$",
                    c["before"])
    return None if vis is None else (a, op, b, vis)


@functools.lru_cache(maxsize=4)
def _gsm8k_donors(data_dir: str) -> tuple[Reference, ...]:
    """Every GSM8K train reference (whatever slice is being built), so a `wrong_problem` variant can
    borrow another problem's solution and stay a pure function of (seed, problem_id, k)."""
    with (Path(data_dir) / "gsm8k" / "train.jsonl").open() as f:
        return tuple(_gsm8k_reference(idx, json.loads(line)) for idx, line in enumerate(f))


def _garble_operations(ref: Reference, rng: random.Random) -> Optional[list[str]]:
    """Steps of `ref` where every visible `a op b = c` shows what another operation gives (`12 × 4 = 16`);
    None unless at least two computations could be garbled (one wrong result is a slip, not a lost thread)."""
    steps = list(ref.steps)
    comps = _arith_sites(ref)
    edits: dict[int, list[tuple[int, int, str]]] = {}
    for c in comps:
        site = _visible_binary(c)
        if site is None:
            continue
        a, op, b, _ = site
        others = [o for o in "+-*/" if o != op]
        rng.shuffle(others)
        for new_op in others:
            val = _eval(f"{a}{new_op}{b}")
            if val is not None and val >= 0 and val != c["value"] and (val * 100).denominator == 1:
                edits.setdefault(c["step"], []).append((c["res_start"], c["res_end"], _fmt(val)))
                break
    if sum(len(e) for e in edits.values()) < 2:
        return None
    for k, es in edits.items():
        for a, b, new in sorted(es, reverse=True):
            steps[k] = steps[k][:a] + new + steps[k][b:]
    return steps


def _answer_step(ref: Reference) -> int:
    for k in range(len(ref.steps) - 1, -1, -1):
        if "\\boxed" in ref.steps[k] or ref.steps[k].startswith("The answer is"):
            return k
    return len(ref.steps) - 1


def _variant(ref: Reference, etype: str, rng: random.Random, cfg: InjectConfig):
    steps = list(ref.steps)
    n = len(steps)
    if etype == "correct":
        return _correct(ref, rng)
    if etype == "arithmetic_slip":
        sites = _arith_sites(ref)
        if not sites:
            return None
        s = rng.choice(sites)
        st = steps[s["step"]]
        old = st[s["res_start"] : s["res_end"]]
        wrong = _confusable(old, rng)
        steps[s["step"]] = st[: s["res_start"]] + wrong + st[s["res_end"] :]
        if rng.random() < cfg.propagate:
            steps = _flow(ref, steps, s["step"], s["value"], Fraction(wrong))
        return _build(ref, steps, etype, s["step"])
    if etype == "wrong_operator":
        # shuffled before the visibility test, so the draws (and the pool) stay what they were
        sites = [c for c in _arith_sites(ref) if _BINARY.fullmatch(c["expr"])]
        rng.shuffle(sites)
        for s in sites:
            site = _visible_binary(s)
            if site is None:
                continue
            a, op, b, vis = site
            new_op = rng.choice([o for o in "+-*/" if o != op])
            val = _eval(f"{a}{new_op}{b}")
            if val is None or val < 0 or (val * 100).denominator != 1:
                continue
            st = steps[s["step"]]
            latex = vis.group(1).startswith("\\") or (ref.source == "math" and new_op == "*")  # MATH writes no `*`
            written = _LATEX_OPS[new_op] if latex else new_op
            st2 = st[: vis.start(1)] + written + st[vis.end(1) : s["res_start"]] + _fmt(val) + st[s["res_end"] :]
            steps[s["step"]] = st2
            if rng.random() < cfg.propagate:
                steps = _flow(ref, steps, s["step"], s["value"], val)
            return _build(ref, steps, etype, s["step"])
        return None
    if etype == "algebra_slip":
        if ref.source != "math":
            return None
        if "algebra" not in ref.sites:
            ref.sites["algebra"] = _algebra_sites(ref, cfg)
        if not ref.sites["algebra"]:
            return None
        s, o = rng.choice(ref.sites["algebra"])
        st = steps[s["step"]]
        steps[s["step"]] = st[: s["rhs_start"]] + o + st[s["rhs_end"] :]
        return _build(ref, steps, etype, s["step"])
    if etype == "carry_error":
        comps = _arith_sites(ref)
        pairs = []
        for c1 in comps:
            r = _fmt(c1["value"])
            for c2 in comps:
                if c2["step"] > c1["step"] and re.search(r"(?<![\d.])" + re.escape(r) + r"(?![\d.])", c2["expr"]):
                    pairs.append((c1, c2, r))
        rng.shuffle(pairs)
        for c1, c2, r in pairs:
            st = steps[c2["step"]]
            occ = [m for m in re.finditer(r"(?<![\d.,])" + re.escape(r) + r"(?![\d.,])", st[: c2["res_start"]])]
            if not occ:
                continue
            m = occ[-1] if len(occ) == 1 else rng.choice(occ)
            wrong = _confusable(r, rng)
            new_expr = re.sub(r"(?<![\d.])" + re.escape(r) + r"(?![\d.])", wrong, c2["expr"], count=1)
            val = _eval(new_expr)
            if val is None or val < 0:
                continue
            st2 = st[: m.start()] + wrong + st[m.end() : c2["res_start"]] + _fmt(val) + st[c2["res_end"] :]
            steps[c2["step"]] = st2
            if rng.random() < cfg.propagate:
                steps = _flow(ref, steps, c2["step"], c2["value"], val)
            return _build(ref, steps, etype, c2["step"])
        return None
    if etype == "wrong_problem":
        if ref.source != "gsm8k":
            return None
        donors = _gsm8k_donors(str(cfg.data_dir))
        donor = donors[rng.randrange(len(donors))]
        if donor.problem_id == ref.problem_id:
            return None
        garbled = _garble_operations(donor, rng)
        return None if garbled is None else _build(donor, garbled, etype, 0)
    ans = _answer_step(ref)
    if etype == "dropped_step":
        if n < 3:
            return None
        k = rng.randrange(0, n - 1)
        if k == ans:
            return None
        del steps[k]
        return _build(ref, steps, etype, k)
    if etype == "duplicated_step":
        k = rng.randrange(0, n)
        steps.insert(k + 1, steps[k])
        return _build(ref, steps, etype, k + 1)
    if etype == "swapped_steps":
        if n < 3:
            return None
        deps = _dependent_pairs(ref)
        if not deps:
            return None
        k = rng.choice(deps)
        steps[k], steps[k + 1] = steps[k + 1], steps[k]
        return _build(ref, steps, etype, k)
    if etype == "wrong_answer":
        st = steps[ans]
        m = _last_answer_number(st, ref)
        if m is None:
            return None
        a, b = m
        steps[ans] = st[:a] + _confusable(st[a:b], rng) + st[b:]
        return _build(ref, steps, etype, ans)
    if etype == "missing_answer":
        st = steps[ans]
        if ref.source == "gsm8k":
            del steps[ans]
            return _build(ref, steps, etype, len(steps) - 1)
        span = _boxed_span(st, first=True)
        if span is None:
            return None
        box, close = span
        steps[ans] = st[:box] + st[box + 7 : close] + st[close + 1 :]
        return _build(ref, steps, etype, ans)
    if etype == "truncated":
        if n < 2:
            return None
        k = rng.randrange(max(1, n // 2), n)
        st = steps[k]
        words = st.split(" ")
        if len(words) < 4:
            return None
        steps = steps[:k] + [" ".join(words[: rng.randrange(2, len(words) - 1)])]
        return _build(ref, steps, etype, k, "length")
    if etype == "repetition":
        k = rng.randrange(0, n)
        steps = steps[:k] + [steps[k]] * rng.randrange(8, 20)
        text = "\n".join(steps)
        return text, etype, 0, "length"
    if etype == "question_echo":
        return (ref.question + "\n") * rng.randrange(1, 4), etype, 0, rng.choice(("eos", "length"))
    if etype == "empty":
        return "", etype, None, "eos"
    raise ValueError(f"unknown error type {etype!r}")


def _boxed_span(st: str, first: bool = False) -> Optional[tuple[int, int]]:
    """(start of `\\boxed{`, index of its closing brace) of the last (or first) box in `st`, or None."""
    box = st.find("\\boxed{") if first else st.rfind("\\boxed{")
    if box < 0:
        return None
    close = _matching_brace(st, box + 6)
    return None if close is None else (box, close)


def _matching_brace(s: str, open_idx: int) -> Optional[int]:
    depth = 0
    for k in range(open_idx, len(s)):
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return None


def _last_answer_number(st: str, ref: Reference) -> Optional[tuple[int, int]]:
    if ref.source == "gsm8k":
        m = re.search(r"(-?" + _NUM + r")\s*$", st)
        return (m.start(1), m.end(1)) if m else None
    span = _boxed_span(st)
    if span is None:
        return None
    box, close = span
    nums = list(re.finditer(r"\d+(?:\.\d+)?", st[box + 7 : close]))
    if not nums:
        return None
    m = nums[-1]
    return box + 7 + m.start(), box + 7 + m.end()


def _values(s: str) -> set[Fraction]:
    """The numbers written in s as values: "18.10" and "18.1", "1,200" and "1200" are one number."""
    return {Fraction(m.group().replace(",", "")) for m in re.finditer(_NUM, s)}


_TRIVIAL = {Fraction(0), Fraction(1), Fraction(2)}  # too common to show that one step uses another


def _results(ref: Reference, k: int) -> set[Fraction]:
    """The values step k computes (trivial ones left out)."""
    if ref.source == "gsm8k":
        vals = {c["value"] for c in _arith_sites(ref) if c["step"] == k}
    else:
        vals = {Fraction(m.group(2)) for _, body in _math_spans(ref.steps[k]) for m in _ARITH_EQ.finditer(body)}
    return vals - _TRIVIAL


def _uses(text: str, results: set[Fraction]) -> bool:
    """Does text use one of the results, as written or as a percent ("100 - 5 = 95", then "220 * 0.95")?"""
    vals = _values(text)
    return any(r in vals or r / 100 in vals or r * 100 in vals for r in results)


def _dependent_pairs(ref: Reference) -> list[int]:
    """k such that step k+1 uses a number step k computed (swapping them breaks the order)."""
    ans = _answer_step(ref)
    out = []
    for k in range(len(ref.steps) - 1):
        if k + 1 == ans:
            continue
        res = _results(ref, k) - _values(ref.question)
        if res and _uses(ref.steps[k + 1], res):
            out.append(k)
    return out


def _correct(ref: Reference, rng: random.Random):
    steps = list(ref.steps)
    n = len(steps)
    kind = rng.choice(("reorder", "rename", "format", "connective"))
    if kind == "reorder" and n >= 3:
        ans = _answer_step(ref)
        free = []
        for k in range(n - 1):
            if k + 1 == ans or k == ans:
                continue
            res_k, res_k1 = _results(ref, k), _results(ref, k + 1)
            # compared as values: "$18.10" in the text is the 18.1 a step computed, so the steps are not independent
            if res_k and res_k1 and not _uses(steps[k + 1], res_k) and not _uses(steps[k], res_k1):
                free.append(k)
        if free:
            k = rng.choice(free)
            steps[k], steps[k + 1] = steps[k + 1], steps[k]
            return _build(ref, steps, "correct", None)
    if kind == "rename" and ref.source == "math":
        used = set(re.findall(r"(?<![\\a-zA-Z])([a-z])(?![a-zA-Z])", ref.text))
        cands = [v for v in "xyn" if v in used]
        fresh = [v for v in "tuwz" if v not in used and v not in ref.question]
        if cands and fresh and "\\text" not in ref.text:
            old, new = rng.choice(cands), rng.choice(fresh)
            pat = re.compile(r"(?<![\\a-zA-Z])" + old + r"(?![a-zA-Z])")
            out = []
            for st in steps:
                pieces, last = [], 0
                for start, body in _math_spans(st):
                    pieces.append(st[last:start])
                    pieces.append(pat.sub(new, body))
                    last = start + len(body)
                pieces.append(st[last:])
                out.append("".join(pieces))
            if old not in ref.question:
                return _build(ref, out, "correct", None)
    if kind == "format":
        # thousands separators on or off: the same numbers, written differently
        fmt = [re.sub(r"(?<![\d.,])(\d{1,3}),(\d{3})(?![\d,])", r"\1\2", st) for st in steps]
        if fmt == steps:
            fmt = [re.sub(r"(?<![\d.,{}^_])(\d)(\d{3})(?![\d.,])", r"\1,\2", st) if ref.source == "gsm8k" else st for st in steps]
        if fmt != steps:
            return _build(ref, fmt, "correct", None)
    k = rng.randrange(0, n)
    if steps[k][:1].isupper() and not steps[k].startswith("The answer"):
        steps[k] = rng.choice(("So ", "Then ", "Next, ")) + steps[k][0].lower() + steps[k][1:]
        return _build(ref, steps, "correct", None)
    return _build(ref, steps, "correct", None)


def inject_reference(ref: Reference, cfg: InjectConfig) -> list[dict]:
    """The variants_per_reference rows of one reference (variant 0: the untouched reference)."""
    from .grading import extract_answer

    types = [t for t, w in cfg.error_mix.items() if w > 0]
    weights = [cfg.error_mix[t] for t in types]
    rows = []
    seen: set[str] = set()
    for k in range(cfg.variants_per_reference):
        rng = random.Random(f"{cfg.seed}:{ref.problem_id}:{k}")
        out = None
        if k == 0:
            out = (ref.text, "correct", None, "eos")
        tried: set[str] = set()
        while out is None and len(tried) < len(types):
            etype = rng.choices(types, weights)[0]
            if etype in tried:
                continue
            out = _variant(ref, etype, rng, cfg)
            if out is not None and out[0] in seen and etype not in ("empty", "question_echo"):
                out = _variant(ref, etype, rng, cfg)  # one more draw for a fresh text
            if out is None:
                tried.add(etype)
        if out is None:
            continue
        text, etype, step, finish = out
        seen.add(text)
        rows.append(
            dict(
                candidate_id=f"inj{cfg.seed}-{ref.problem_id}-{k}",
                problem_id=ref.problem_id,
                source=ref.source,
                question=ref.question,
                text=text,
                error_type=etype,
                error_step=step,
                finish_reason=finish,
                answer=extract_answer(text) if text else None,
                reference_answer=ref.answer,
                variant=k,
            )
        )
    return rows


def iter_rows(cfg: Optional[InjectConfig] = None) -> Iterator[dict]:
    """All rows, reference by reference (a generator: memory stays flat)."""
    cfg = cfg or InjectConfig()
    for ref in iter_references(cfg):
        yield from inject_reference(ref, cfg)


def iter_frames(cfg: Optional[InjectConfig] = None):
    """The rows as pandas DataFrames of cfg.chunk_size rows (the last one may be shorter)."""
    import pandas as pd

    cfg = cfg or InjectConfig()
    buf: list[dict] = []
    for row in iter_rows(cfg):
        buf.append(row)
        if len(buf) >= cfg.chunk_size:
            yield pd.DataFrame(buf)
            buf = []
    if buf:
        yield pd.DataFrame(buf)


# ----------------------------------------------------------------------------- as a pool source
@dataclass
class InjectPoolConfig:
    """The `inject` candidate-pool source of a profile (`pool.inject`): which slice of the pool to build."""

    variants_per_reference: int = 41
    """Rows per reference (variant 0 the untouched reference). 41 × 14,972 train references ≈ 614K, the paper's ~600K."""
    max_references: Optional[int] = None
    """Use the first N references of each source (None: all). `scale-mini`: 375 × 2 sources × 40 = 30,000."""
    sources: list[str] = field(default_factory=lambda: ["gsm8k", "math"])
    """Train sets to draw references from ('gsm8k', 'math'); never a test set."""
    seed: Optional[int] = None
    """Seed of the injected errors; None: the partition's seed (each seed its own pool)."""
    propagate: float = 0.8
    """`InjectConfig.propagate`: share of slips (GSM8K and MATH) whose wrong value flows on to the final answer, as a
    model's usually does (0.8: most, not all; a pool where no slip reaches the answer has almost no
    hard negatives, because a correct final answer keeps W below the funnel's 0.3)."""

    def __post_init__(self) -> None:
        self.inject_config(0)  # one set of rules: InjectConfig's own checks, with this section's names
        if self.max_references is not None and self.max_references < 1:
            raise ValueError(f"InjectPoolConfig.max_references must be >= 1 or None, got {self.max_references}")

    def inject_config(self, partition_seed: int) -> InjectConfig:
        try:
            return InjectConfig(
                seed=partition_seed if self.seed is None else self.seed,
                variants_per_reference=self.variants_per_reference,
                sources=tuple(self.sources),
                max_references=self.max_references,
                propagate=self.propagate,
            )
        except ValueError as exc:
            raise ValueError(str(exc).replace("InjectConfig.", "InjectPoolConfig.")) from None


@dataclass
class InjectShard:
    """One shard of the inject pool: the rows of `references_per_shard` consecutive references."""

    index: int
    candidates: "object"  # pandas DataFrame, `candidates` columns
    labels: "object"      # `injected_labels` rows
    problems: "object"    # the references as `problems` rows (source 'inject:<set>', split 'train')


def inject_shard(refs: list[Reference], cfg: InjectConfig, family: str, seed: int, index: int = 0) -> InjectShard:
    """The pool rows of `refs` as one shard: `candidates`, `injected_labels` and `problems` frames.

    Candidate ids are `family:seed:<inject id>`; `correct` is the protocol grade of the final answer
    (as for sampled candidates); confidence, perplexity and n_tokens are null (no policy scores on this
    source)."""
    import pandas as pd

    from .candidates import _correct_batch

    rows = [r for ref in refs for r in inject_reference(ref, cfg)]
    ids = [f"{family}:{seed}:{r['candidate_id']}" for r in rows]
    correct = _correct_batch([r["text"] for r in rows], [r["reference_answer"] for r in rows])
    candidates = pd.DataFrame({
        "candidate_id": ids, "problem_id": [r["problem_id"] for r in rows], "family": family, "seed": int(seed),
        "text": [r["text"] for r in rows], "finish_reason": [r["finish_reason"] for r in rows],
        "answer": [r["answer"] for r in rows], "confidence": None, "perplexity": None,
        "correct": correct, "n_tokens": None,
    })
    labels = pd.DataFrame({
        "candidate_id": ids, "family": family, "seed": int(seed), "source": [r["source"] for r in rows],
        "error_type": [r["error_type"] for r in rows],
        "error_step": pd.array([r["error_step"] for r in rows], dtype="Int64"),
        "variant": [r["variant"] for r in rows],
    })
    problems = pd.DataFrame({
        "problem_id": [ref.problem_id for ref in refs], "source": [f"inject:{ref.source}" for ref in refs],
        "split": "train", "question": [ref.question for ref in refs], "reference_solution": [ref.text for ref in refs],
        "reference_answer": [ref.answer for ref in refs],
    })
    return InjectShard(index, candidates, labels, problems)


def inject_shards(config: InjectPoolConfig, family: str, seed: int, *, shard_size: int, start_shard: int = 0):
    """The inject pool of family × seed as shards of ~`shard_size` rows (whole references per shard; see `inject_shard`).

    Shard i holds references i·R … (i+1)·R − 1 with R = max(1, shard_size // variants_per_reference),
    so a shard boundary depends only on the reference order and skipping shards (a resumed
    build) costs reading the reference files, not generating their variants.
    """
    cfg = config.inject_config(seed)
    per_shard = max(1, shard_size // cfg.variants_per_reference)
    block: list[Reference] = []
    index = 0

    for ref in iter_references(cfg):
        block.append(ref)
        if len(block) == per_shard:
            if index >= start_shard:
                yield inject_shard(block, cfg, family, seed, index)
            block, index = [], index + 1
    if block and index >= start_shard:
        yield inject_shard(block, cfg, family, seed, index)
