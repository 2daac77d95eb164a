"""Inequalities a solution writes, read for the slips that keep every equation right.

Why: counting and range problems go wrong at the endpoints. A model derives `x < 7`, then counts "the
positive integers with x ≤ 7"; it writes `-45 ≤ 5x < -40`, then lists -45, …, -40; it "distributes" the
question's `-4 < 2(x - 1) < 8` into `-4 < 2x - 1 < 8`. Each later line is a fine statement on its own; it is
wrong against the line it came from. Two checks:

- a list of consecutive integers spans a range exactly, from A to B, and includes an endpoint that the range
  `A < E`, `E < B` (or `x < B` alone) leaves out;
- a chain `A < E' < B` with the bounds of a chain `A < E < B` of the question (same relations), where E' is linear
  in the same one symbol and is neither E nor its mirror A + B − E: the same range cannot hold for both.

A bound that only changes strictness is no slip by itself (MATH references do it on purpose): sign analysis
writes `x < -3` for an interval and `-3 ≤ x ≤ -1` for the answer, and `k ≤ 5` becomes `k < 5` once k = 5 is
ruled out. Where the change matters, a count lists the endpoint, and the first check sees the list.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Optional

from . import algebra
from .arith import MAX_STEP_CHARS

_OPS = {"<": "<", "\\lt": "<", "\\le": "≤", "\\leq": "≤", "\\leqslant": "≤", "≤": "≤",
        ">": ">", "\\gt": ">", "\\ge": "≥", "\\geq": "≥", "\\geqslant": "≥", "≥": "≥"}
_OP_RE = re.compile(r"\\(?:lt|le|leq|leqslant|gt|ge|geq|geqslant)(?![A-Za-z])|[<>≤≥]")
_NUMBER = r"-?\s*(?:\d+(?:\.\d+)?|\\d?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\})"
# "x < 7", "n \\ge -3", "x \\le \\frac{9}{2}": one symbol against a number
_BOUND_RE = re.compile(
    rf"(?<![\w\\}})^])([A-Za-z])\s*({_OP_RE.pattern})\s*({_NUMBER})(?!\w|\.\d|\s*(?:[(^*/+\-]|\\(?:cdot|times|frac)))")
# an operator before the symbol: `a + x < 7` bounds a sum, not x
_OPERAND_BEFORE_RE = re.compile(r"(?:[+\-*/=^|]|\\cdot|\\times)\s*$")
# a chain stated as a condition or one of several, not derived from the one before: "If 1 < 3x < 2", "we also need"
_CONDITION_RE = re.compile(r"\b(?:if|when|whenever|suppose|assum\w*|case|both|also|another|second|need|must|require\w*|want)\b",
                           re.IGNORECASE)
# "1, 2, \\ldots, 7", "-45, -44, -43, -42, -41, -40": consecutive integers
_RUN_RE = re.compile(r"(?<![\w.^/])(-?\d+)((?:\s*,\s*-?\d+)*)\s*,\s*(?:\\l?dots|\.\.\.|…)\s*,\s*(-?\d+)(?![\w.^/])"
                     r"|(?<![\w.^/])(-?\d+(?:\s*,\s*-?\d+){2,})(?![\w.^/]|\s*[)}])")


def _number(text: str) -> Optional[Fraction]:
    t = re.sub(r"\s+", "", text)
    m = re.fullmatch(r"(-?)\\d?frac\{(\d+)\}\{(\d+)\}", t)
    if m:
        return None if int(m.group(3)) == 0 else Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
    try:
        return Fraction(t)
    except ValueError:
        return None


def _bounds(text: str) -> list[tuple[str, str, Fraction]]:
    """(symbol, op, value) of every `x op c` in a text (the dollar signs taken out)."""
    out = []
    text = text.replace("$", " ")
    for m in _BOUND_RE.finditer(text):
        if _OPERAND_BEFORE_RE.search(text[: m.start()]):
            continue
        value = _number(m.group(3))
        if value is not None:
            out.append((m.group(1), _OPS[m.group(2)], value))
    return out


def _runs(text: str) -> list[tuple[int, int, str]]:
    """(first, last, text) of every list of consecutive integers (three or more, or with an ellipsis)."""
    out = []
    for m in _RUN_RE.finditer(text):
        if m.group(4):
            items = [int(t) for t in re.findall(r"-?\d+", m.group(4))]
            if all(b - a == 1 for a, b in zip(items, items[1:])):
                out.append((items[0], items[-1], m.group(0)))
        else:
            head = [int(m.group(1))] + [int(t) for t in re.findall(r"-?\d+", m.group(2) or "")]
            last = int(m.group(3))
            if all(b - a == 1 for a, b in zip(head, head[1:])) and last > head[-1]:
                out.append((head[0], last, m.group(0)))
    return out


MAX_CHAINS = 16  # per text: a step that writes more is a table, not a derivation


def _chains(text: str) -> list[tuple[Fraction, str, str, str, Fraction]]:
    """(A, op1, E, op2, B) of the formulas `A op1 E op2 B` with numbers A, B and both relations one way."""
    out = []
    for formula in algebra.formulas(text):
        for part in re.split(r",|\\q?quad|\\text\{[^}]*\}|\\(?:implies|Rightarrow|iff)", formula):
            pieces = _OP_RE.split(part)
            ops = [_OPS[o] for o in _OP_RE.findall(part)]
            if len(ops) != 2 or (ops[0] in "<≤") != (ops[1] in "<≤"):
                continue
            a, b = _number(pieces[0]), _number(pieces[2])
            if a is not None and b is not None and pieces[1].strip():
                out.append((a, ops[0], pieces[1].strip(), ops[1], b))
                if len(out) >= MAX_CHAINS:
                    return out
    return out


def _strict(op: str) -> bool:
    return op in "<>"


def _linear(expr: str) -> Optional[tuple[str, algebra.Poly]]:
    """(symbol, polynomial) when expr is a polynomial of degree 1 in one symbol."""
    try:
        p = algebra.formula_poly(expr)
    except Exception:  # noqa: BLE001 (not a polynomial: nothing to compare)
        return None
    syms = algebra.symbols(p)
    if len(syms) != 1 or "i" in syms or algebra.degree(p) != 1:
        return None
    return next(iter(syms)), p


def _ranges(step: str) -> list[tuple[Optional[Fraction], bool, Optional[Fraction], bool, str]]:
    """(low, low strict, high, high strict, text) of the integer ranges a step writes: chains and one-sided bounds."""
    fmt = algebra._arith().fmt_number
    out = []
    for a, op1, e, op2, b in _chains(step):
        if a.denominator == 1 and b.denominator == 1:
            shown = f"{fmt(a)} {op1} {e} {op2} {fmt(b)}"
            out.append((a, _strict(op1), b, _strict(op2), shown) if op1 in "<≤" else (b, _strict(op2), a, _strict(op1), shown))
    for x, op, c in _bounds(step):
        if c.denominator == 1 and _strict(op):
            out.append((None, False, c, True, f"{x} < {fmt(c)}") if op == "<" else (c, True, None, False, f"{x} > {fmt(c)}"))
    return out


def endpoint_checks(steps: list[str]) -> list[tuple[int, str]]:
    """A list of consecutive integers that spans a range of this step or the two before it and includes an
    endpoint the range leaves out."""
    fmt = algebra._arith().fmt_number
    ranges = [_ranges(step) for step in steps]
    flags: list[tuple[int, str]] = []
    for j, step in enumerate(steps):
        recent = [(i, r) for i in range(max(0, j - 2), j + 1) for r in ranges[i]]
        found = None
        for lo, hi, text in _runs(step) if recent else ():
            for i, (a, a_strict, b, b_strict, shown) in recent:
                # the list spans the range exactly, one endpoint included against a strict relation
                spans = (a is None or a in (lo, lo - 1)) and (b is None or b in (hi, hi + 1))
                included = [v for v, strict in ((a, a_strict), (b, b_strict)) if strict and v in (lo, hi)]
                if spans and included:
                    found = f"algebra slip: the list {text.strip()} includes {fmt(included[0])}, which {shown} (step {i}) leaves out"
                    break
            if found:
                break
        if found:
            flags.append((j, found))
    return flags


@functools.lru_cache(maxsize=256)
def _question_chains(question: str) -> dict[tuple, list]:
    """(A, op1, op2, B) -> [(middle, its linear form)] of the question's chains (cached: a question is read once,
    not once per candidate; the result is only read)."""
    given: dict[tuple, list] = {}
    for a, op1, e, op2, b in _chains(question):
        given.setdefault((a, op1, op2, b), []).append((e, _linear(e)))
    return given


def chain_rewrite_checks(steps: list[str], question: str = "") -> list[tuple[int, str]]:
    """A chain with the bounds and relations of one of the question's around a linear middle that is neither the
    question's middle nor its mirror image. (Chains of the solution itself are not compared: two with the same
    bounds are as often two cases, `1996 < 900a + 200 < 4096` and `1996 < 900b + 600 < 4096`.)"""
    fmt = algebra._arith().fmt_number
    given = _question_chains(question)
    flags: list[tuple[int, str]] = []
    for j, text in enumerate(steps) if given else ():
        for a, op1, e, op2, b in _chains(text):
            olds = given.get((a, op1, op2, b), [])
            new = _linear(e) if olds else None
            if new is None or _CONDITION_RE.search(text[: text.find(e)] if e in text else text):
                continue
            for e0, old in olds:
                if old is None or old[0] != new[0]:
                    continue
                mirror = algebra.poly_sub({(): a + b}, old[1])
                if algebra.poly_sub(new[1], old[1]) and algebra.poly_sub(new[1], mirror):
                    flags.append((j, f"algebra slip: {e} is not {e0}, yet {fmt(a)} {op1} {e} {op2} {fmt(b)} keeps the "
                                     f"bounds of the question"))
                    break
    return flags


def inequality_checks(steps: list[str], question: str = "") -> list[tuple[int, str]]:
    """(step, reason) for the slips above; pure Python, a few regular expressions and linear polynomials per step
    (each text read up to MAX_STEP_CHARS, at most MAX_CHAINS chains of it)."""
    if not steps:
        return []
    steps, question = [s[:MAX_STEP_CHARS] for s in steps], question[:MAX_STEP_CHARS]
    return endpoint_checks(steps) + chain_rewrite_checks(steps, question)
