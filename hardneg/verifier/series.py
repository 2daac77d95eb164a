"""Sums written with an ellipsis: `1 + 2 + \\cdots + n = \\frac{n(n+1)}{2}`, `2 + 4 + \\ldots + 100 = 2550`.

Why: the equation parser leaves a side with `\\cdots` out (it has no value to compute), yet this is where a
model quotes a wrong formula (`1 + 2 + \\cdots + n = \\frac{n(n-1)}{2}`) or applies one to numbers
(`1 + 2 + \\cdots + 80 = \\frac{80 \\cdot 79}{2}`). The written terms fix the series: an arithmetic one from
two or three terms (`1 + 2 + \\cdots`), a geometric one from three (`1 + 2 + 4 + \\cdots`), each term to the same
power when they are powers (`1^2 + 2^2 + \\cdots + n^2`). The sum is computed, for a last term in a symbol at
several values of the symbol, and compared with the other side.

Left alone: a series that two readings fit (`2 + 4 + \\cdots + 64`: arithmetic or geometric) unless the other
side fits neither, signs between terms, a last term whose place in the series is not a whole number.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Optional

from . import algebra
from .arith import MAX_STEP_CHARS

_DOTS = r"\\[cl]?dots|\\dotsb|\.\.\.|…"
# a formula `t1 + t2 (+ t3) + ⋯ + tL = rhs` (rhs up to the next "=" or the end)
_SERIES_RE = re.compile(rf"((?:[^=+]+\+){{2,3}})\s*(?:{_DOTS})\s*\+([^=]+)=([^=]+)")
_MAX_TERMS = 10**6


def _term(text: str) -> Optional[tuple[Fraction, int]]:
    """(base, power) of a written term: `7` is (7, 1), `3^2` is (3, 2)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:\^\s*\{?\s*(\d)\s*\}?)?\s*", text)
    return (Fraction(int(m.group(1))), int(m.group(2) or 1)) if m else None


def _last(text: str, power: int):
    """The last term's base as an AST, when the last term is `base^power` (or the base itself for power 1)."""
    t = text.strip()
    if power > 1:
        m = re.fullmatch(rf"(.+?)\s*\^\s*\{{?\s*{power}\s*\}}?", t)
        if not m:
            return None
        t = m.group(1)
    try:
        return algebra.formula_node(t)
    except Exception:  # noqa: BLE001 (a term the parser cannot read: nothing to check)
        return None


def _sums(bases: list[Fraction], last: Fraction, power: int) -> list[Fraction]:
    """The sums of every reading of the series (arithmetic, geometric) that reaches `last` as a base."""
    out = []
    d = bases[1] - bases[0]
    if d and all(b - a == d for a, b in zip(bases, bases[1:])):
        count = (last - bases[0]) / d + 1
        if count.denominator == 1 and len(bases) <= count <= _MAX_TERMS:
            out.append(sum((bases[0] + k * d) ** power for k in range(int(count))) if power > 1 else count * (bases[0] + last) / 2)
    if bases[0] and bases[1] / bases[0] not in (0, 1, -1) and all(b * bases[0] == a * bases[1] for a, b in zip(bases, bases[1:])):
        r, term, total, k = bases[1] / bases[0], bases[0], Fraction(0), 0
        while abs(term) <= abs(last) and k < 200:
            total += term**power
            if term == last:
                out.append(total)
                break
            term, k = term * r, k + 1
    return out


def series_checks(steps: list[str]) -> list[tuple[int, str]]:
    """(step, reason) for a sum written with an ellipsis whose other side is not its value."""
    flags: list[tuple[int, str]] = []
    for i, step in enumerate(steps):
        step = step[:MAX_STEP_CHARS]
        if not re.search(_DOTS, step):
            continue
        for formula in algebra.formulas(step) or [step]:
            for m in _SERIES_RE.finditer(formula):
                found = _check(m)
                if found:
                    flags.append((i, f"algebra slip: {found}"))
                    break
            else:
                continue
            break
    return flags


def _check(m: re.Match) -> Optional[str]:
    terms = [_term(t) for t in m.group(1).split("+")[:-1]]
    if any(t is None for t in terms) or len({p for _, p in terms}) != 1:
        return None
    bases, power = [b for b, _ in terms], terms[0][1]
    if re.search(r"[+\-]", re.sub(r"\([^()]*\)|\{[^{}]*\}", "", m.group(2))):
        return None  # `⋯ + 9 + 10`, `⋯ + n - 1`: more than one term after the dots
    last, rhs_text = _last(m.group(2), power), m.group(3).strip().rstrip(".,;")
    if last is None or not rhs_text:
        return None
    try:
        rhs = algebra.formula_node(rhs_text)
    except Exception:  # noqa: BLE001
        return None
    names = algebra._vars(last) | algebra._vars(rhs)
    if len(names) > 1 or (names and not (algebra._vars(last) and algebra._vars(rhs))):
        return None  # `1 + 2 + ⋯ + k = 45` is an equation in k, not a formula
    x = next(iter(names), None)
    shown = re.sub(r"\s+", " ", m.group(0)).strip()
    for v in ([None] if x is None else range(3, 12)):
        env = {} if x is None else {x: complex(v)}
        try:
            end, value = algebra.num_eval(last, env), algebra.num_eval(rhs, env)
        except Exception:  # noqa: BLE001 (no value there: a pole, a root of a negative)
            return None
        if end.imag or end.real != round(end.real):
            continue
        sums = _sums(bases, Fraction(round(end.real)), power)
        if not sums:
            if x is None:
                return None
            continue
        if all(abs(complex(s) - value) > 1e-9 * max(1.0, abs(float(s))) for s in sums):
            fmt = algebra._arith().fmt_number
            other = value if value.imag else fmt(Fraction(value.real).limit_denominator(10**6))
            return f"{shown}: the sum{'' if x is None else f' at {x} = {v}'} is {fmt(sums[0])}, not {other}"
    return None


# --------------------------------------------------------------------------- the n-th term of a progression
# "The fourth term is a + 4d": the n-th term of an arithmetic progression is a + (n − 1)d, of a geometric one
# a·r^(n − 1), counted from the first term a (or a_1). An index off by one is a wrong formula, not a slip of
# arithmetic. Read: an ordinal ("fourth", "10th") term said to be the formula, in the same step or in the
# display that follows a step ending in "is" or ":", and `a_4 = a_1 + 4d`. Left alone: a first term written
# a_0 (a count from zero), a formula in brackets ("(a + 2d) − (a + d)": a difference of terms).
_ORDINAL_WORDS = {w: k for k, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(), start=1)}
_FIRST = r"(?:a|a_\{?1\}?)"
_AP_TERM = rf"{_FIRST}\s*\+\s*(?P<k>\d{{1,4}})?\s*(?:\\cdot\s*|\*\s*)?d\b"
_GP_TERM = rf"{_FIRST}\s*(?:\\cdot\s*|\*\s*)?r\s*\^\s*\{{?\s*(?P<g>\d{{1,4}})\s*\}}?"
_OPEN = r"(?:\\\[|\\\(|\$\$?)?\s*"
_ORDINAL_TERM_RE = re.compile(
    rf"\b(?:(?P<num>\d{{1,4}})(?:st|nd|rd|th)|(?P<word>{'|'.join(_ORDINAL_WORDS)}))\s+term\b[^.;=\n]{{0,30}}?"
    rf"(?:\bis|\bequals|=|:)\s*{_OPEN}(?P<formula>{_AP_TERM}|{_GP_TERM})(?![\w(^])", re.IGNORECASE)
_INDEXED_TERM_RE = re.compile(rf"\ba_\{{?(?P<num>\d{{1,4}})\}}?\s*=\s*(?P<formula>{_AP_TERM}|{_GP_TERM})(?![\w(^])")


def sequence_term_checks(steps: list[str]) -> list[tuple[int, str]]:
    """(step, reason) for the n-th term of a progression written with the index of another term."""
    flags: list[tuple[int, str]] = []
    for i, step in enumerate(steps):
        head = step[:MAX_STEP_CHARS]
        joined = i + 1 < len(steps) and re.search(r"(?:\bis|:)\s*$", head) is not None
        text = head + "\n" + steps[i + 1][:MAX_STEP_CHARS] if joined else head
        for m in (*_ORDINAL_TERM_RE.finditer(text), *_INDEXED_TERM_RE.finditer(text)):
            n = int(m.group("num")) if m.group("num") else _ORDINAL_WORDS[m.group("word").lower()]
            k = int(m.group("g")) if m.group("g") else int(m.group("k") or 1)
            if n >= 1 and k != n - 1:
                at = i + 1 if joined and m.start("formula") > len(head) else i
                right = f"a·r^{n - 1}" if m.group("g") else f"a + {n - 1}d"
                kind = "a geometric" if m.group("g") else "an arithmetic"
                flags.append((at, f"formula error: term {n} of {kind} progression is {right} (a the first term), "
                                  f"not {m.group('formula').strip()}"))
                break
    return flags
