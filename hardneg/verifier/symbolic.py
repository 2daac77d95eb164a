"""The SymPy side of d5: closed forms that exact fractions cannot decide (√2, π, sin).

Runs only inside `hardneg.bounded.call_bounded` (one call per candidate, all of its
pending links at once), so a pathological expression costs at most the timeout and can
never take the caller down. The sources evaluated here are produced by
`arith.to_sympy_source` from our own AST (numbers as `Rational`, a fixed set of
function names, exponents and factorials already bounded), never raw user text.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

__all__ = ["warm", "evaluate_pairs", "evaluate_pairs_in_degrees", "identity_values", "first_identity"]


def warm() -> bool:
    """Import SymPy in the worker (≈1 s once) under a generous timeout, so the short
    per-candidate timeout never pays for the import."""
    import sympy

    # the first evalf/simplify pulls in more modules (~1 s): pay for it here, not in a candidate
    sympy.N(sympy.sqrt(2) * sympy.pi + sympy.sin(sympy.Rational(1, 3)) + sympy.factorial(5), 30)
    return True


def _value(src: Optional[str], ns: dict) -> Optional[float]:
    if src is None:
        return None
    import sympy

    expr = eval(src, {"__builtins__": {}}, ns)  # noqa: S307 - our own generated source
    if expr.free_symbols:
        return float("nan")
    val = sympy.N(expr, 30)
    if not val.is_real:
        if val.is_number and abs(sympy.im(val)) < 1e-20:
            val = sympy.re(val)
        else:
            return float("nan")
    try:
        f = float(val)
    except (TypeError, OverflowError):
        return float("nan")
    return f


def _namespace() -> dict:
    import sympy

    return {
        "Rational": sympy.Rational,
        "Symbol": lambda name: sympy.Symbol(name, real=True),
        "sqrt": sympy.sqrt,
        "root": sympy.root,
        "pi": sympy.pi,
        "factorial": sympy.factorial,
        "binomial": sympy.binomial,
        "floor": sympy.floor,
        "ceiling": sympy.ceiling,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tan": sympy.tan,
        "sec": sympy.sec,
        "csc": sympy.csc,
        "cot": sympy.cot,
        "asin": sympy.asin,
        "acos": sympy.acos,
        "atan": sympy.atan,
        "log": sympy.log,
        "exp": sympy.exp,
    }


def evaluate_pairs(pairs: Sequence[tuple[Optional[str], Optional[str]]]) -> list[tuple[Optional[float], Optional[float], Optional[str]]]:
    """For each (lhs_src, rhs_src) -> (lhs_value, rhs_value, error); None source = the
    side was exact and the caller already knows it."""
    return _evaluate(pairs, _namespace())


def _evaluate(pairs, ns: dict) -> list[tuple[Optional[float], Optional[float], Optional[str]]]:
    out = []
    for lhs, rhs in pairs:
        try:
            lv, rv = _value(lhs, ns), _value(rhs, ns)
            bad = [v for v in (lv, rv) if v is not None and not math.isfinite(v)]
            out.append((lv, rv, "not a finite real number" if bad else None))
        except Exception as exc:  # noqa: BLE001 - one bad pair must not lose the others
            out.append((None, None, f"{type(exc).__name__}"))
    return out


def evaluate_pairs_in_degrees(pairs: Sequence[tuple[Optional[str], Optional[str]]]) -> list[tuple[Optional[float], Optional[float], Optional[str]]]:
    """evaluate_pairs with sin/cos/tan/sec/csc/cot reading their argument in degrees: MATH writes
    `\\tan 45 = 1` and `\\cos (45 - 30)` without the degree sign."""
    import sympy

    ns = dict(_namespace())
    for name in ("sin", "cos", "tan", "sec", "csc", "cot"):
        ns[name] = lambda x, f=getattr(sympy, name): f(x * sympy.pi / 180)
    return _evaluate(pairs, ns)


def identity_values(pairs: Sequence[tuple[str, str]], points: int = 3) -> list[tuple[str, Optional[float]]]:
    """For each (lhs_src, rhs_src) with free symbols -> ("ok" | "const" | "differs" | "error", c).

    lhs − rhs is evaluated at `points` random rational points (30 significant digits, seeded
    by the sources, so verdicts are reproducible): zero at every point -> "ok" (see algebra.py
    for the Schwartz–Zippel false-positive bound); the same nonzero value c at every point ->
    "const" (the sides differ by c for every value); otherwise "differs" (an equation)."""
    import random

    import sympy

    ns = _namespace()
    out: list[tuple[str, Optional[float]]] = []
    for lhs, rhs in pairs:
        try:
            expr = eval(lhs, {"__builtins__": {}}, ns) - eval(rhs, {"__builtins__": {}}, ns)  # noqa: S307 - our own source
            syms = sorted(expr.free_symbols, key=str)
            rng = random.Random(f"{lhs}={rhs}")
            vals = []
            for _ in range(points * 3):
                if len(vals) == points:
                    break
                env = {s: sympy.Rational(rng.randint(1, 2**20), rng.randint(1, 97)) for s in syms}
                v = sympy.N(expr.subs(env), 30)
                if not v.is_number or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
                    continue
                re_v, im_v = (float(x) for x in v.as_real_imag())
                if abs(im_v) > 1e-12 or not math.isfinite(re_v):
                    continue  # outside the real domain (√ of a negative): draw another point
                vals.append(re_v)
            if len(vals) < points:
                out.append(("error", None))
            elif all(abs(v) < 1e-12 for v in vals):
                out.append(("ok", None))
            elif all(abs(v - vals[0]) <= 1e-9 * max(1.0, abs(vals[0])) for v in vals):
                out.append(("const", vals[0]))
            else:
                out.append(("differs", None))
        except Exception:  # noqa: BLE001 - one bad pair must not lose the others
            out.append(("error", None))
    return out


def first_identity(groups: Sequence[Sequence[tuple[str, str]]], allow_equal: Optional[Sequence[bool]] = None) -> list[Optional[int]]:
    """For each group of edited (lhs_src, rhs_src) pairs of one link -> the index of the first pair
    that is an identity ("ok" at the sample points of identity_values) without being the same
    expression on both sides (`\\sin 2x = \\sin x` edited to `\\sin x = \\sin x` proves nothing), or None.
    `allow_equal[g]`: the link's sides were written in different shapes (`\\sqrt{r+1} − (−\\sqrt{r+1}) =
    2\\sqrt{r−1}`), so an edit that makes them the same expression is the slip found, unless it writes the
    other side out to the letter (`A − B + C = C` with A − B dropped)."""
    ns = _namespace()
    out: list[Optional[int]] = []
    for g, pairs in enumerate(groups):
        found = None
        for k, (lhs, rhs) in enumerate(pairs):
            try:
                if allow_equal and allow_equal[g]:
                    same = lhs == rhs  # an edit that writes the other side out again (a dropped term) proves nothing
                else:
                    same = eval(lhs, {"__builtins__": {}}, ns) == eval(rhs, {"__builtins__": {}}, ns)  # noqa: S307
            except Exception:  # noqa: BLE001 - an edit that does not evaluate is no identity
                continue
            if not same and identity_values([(lhs, rhs)])[0][0] == "ok":
                found = k
                break
        out.append(found)
    return out
