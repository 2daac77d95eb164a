"""Equalities with free symbols: identities, equations and assignments (the symbolic part of d5).

A step such as `$(x+1)^2 = x^2 + 2x + 1$` states an *identity* (true for every x), while
`$3x + 1 = 7$` states an *equation* being solved and `$x = 2$` an *assignment*. Only the
first kind can be checked on its own; the other two are checked by substitution in
checks.py (`equation_checks`), or left alone. So every link with free symbols is
classified here:

- one side a bare symbol (`x = 2`, `y = 3x + 1`): an assignment / definition;
- lhs − rhs ≡ 0: an identity that holds (status ok);
- both sides hold symbols and lhs − rhs is a nonzero constant (`2(x+3) = 2x + 3`): no value
  of x satisfies it, so it is not an equation anybody solves: an algebra slip;
- both sides hold the same symbols, the expression has degree ≥ 2 and the difference has a
  lower degree (`(x+1)^2 = x^2 + 1`: the leading terms agree, a wrong expansion), or both
  sides are homogeneous forms of one degree in ≥ 2 symbols with one side unexpanded
  (`a^2 − b^2 = (a − b)^2`): an algebra slip, *tentatively* — checks.py withdraws it when
  the solution assigns values that satisfy it (then it was an equation being solved, e.g.
  `(x+1)(x+2) = x^2 + 5` followed by `x = 1`);
- one side unexpanded (a product/power of a sum), the other expanded, and the two share a term
  with the same coefficient (`x(246 − x) = 246x − x^3`): an expansion slip, tentatively;
- a later link of a chain (`A = B = C`), or a link followed by a closed form (`A = B = 25`):
  both sides name one quantity, so any difference is a slip, tentatively;
- both sides hold the same symbols and differ by a single term c·x^k (`2·15·n = 32n`): as an
  equation it would only say x = 0, which nobody derives that way: a coefficient/sign slip;
- one side holds a symbol the other lacks and the sides differ by a term made of it alone
  (`x + y + z = x + z`): tentatively a dropped term; with i the imaginary unit, sides that differ
  by a complex constant are a slip like a real constant; fractions over one denominator compare
  their numerators; a symbol in an exponent (`(2^2)^x = 2^{3x}`) is compared through logarithms
  (`_exponential`), and in a later link of a chain powers that agree only at some values are a
  wrong power rule (`(3^2)^{18n} = 3^{2 + 18n}`), unless the solution's values satisfy them;
- anything else (`3x + 5 = x + 11`, `AB^2 + BC^2 = AC^2`): an equation, not flagged here.

Whole-solution checks (`solution_checks`, called by core.py next to checks.equation_checks):
a chain side whose two neighbours are the same function while it is not (`chain_checks`); a
rewrite in a chain ending in a number that changes the roots (`root_checks`); a wrong
factorization that the solution's value satisfies only by making both sides 0
(`factor_root_checks`); a derived equation, or a stated root, that keeps none of the roots of the
equation before it, the question's included (`stated_root_checks`); the step after which the
solution's own value solves every equation of its derivation (`back_substitution_checks`); a linear
relation in two or more symbols re-derived with other proportions (`linear_relation_checks`); a
value given as a solution at which the question's equation is undefined (`undefined_root_checks`);
one case of `|A| = c` never worked (`dropped_case_checks`). See the sections below for what each
leaves alone.

How the verdict is reached, and why it is cheap and bounded: polynomial sides are expanded
exactly in pure Python (`to_poly`; exponents ≤ MAX_SYM_EXPONENT, ≤ MAX_TERMS terms, the
arith guards on every coefficient), so `(x+1)^{10^6}` is cut off with a flag before any work.
Rational functions (a symbol in a denominator) are compared by exact evaluation at random
rational points (`random_points_equal`). False-positive bound (Schwartz–Zippel): if
lhs − rhs ≠ 0, its numerator is a nonzero polynomial of total degree ≤ D, and a point drawn
uniformly from {1..N}^n is a root with probability ≤ D/N; with k independent points the
chance that a non-identity passes all of them is ≤ (D/N)^k. Here N = 2^20, k = 3 and the
parser's guards keep D ≤ MAX_SYM_EXPONENT·MAX_TERMS… in practice D ≤ 64, so the bound is
≤ (2^-14)^3 = 2^-42. Sides with √, π or functions of a symbol go to SymPy in the bounded
worker (symbolic.identity_values), which evaluates them at random points the same way
(30 significant digits).
"""

from __future__ import annotations

import functools
import math
import random
import re
from fractions import Fraction
from typing import Optional

__all__ = [
    "NotPolynomial",
    "to_poly",
    "poly_sub",
    "degree",
    "is_homogeneous",
    "fmt_poly",
    "classify",
    "random_points_equal",
    "linear_solution",
    "MAX_SYM_EXPONENT",
    "MAX_TERMS",
]

MAX_SYM_EXPONENT = 64  # (x+1)^65 and beyond: not expanded (flagged "cut off")
MAX_TERMS = 2000  # a product with more terms than this is not expanded
MAX_MONOMIAL_EXPONENT = 10_000  # x^{120}: a single term raised to a power is one multiplication
POINT_RANGE = 2**20
POINTS = 3

Mono = tuple  # sorted ((var, exp), ...)
Poly = dict  # Mono -> Fraction, no zero coefficients


class NotPolynomial(Exception):
    """A symbol under a root, in a denominator, an exponent or a function."""


@functools.cache
def _arith():
    # late (arith imports this module), and once: an import statement per call cost 0.5 s per 2,000 candidates
    from . import arith

    return arith


COMPLEX = {"on": False}  # set by arith.analyse_step for steps about complex numbers: `i` is √−1


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    d = dict(a)
    for v, e in b:
        d[v] = d.get(v, 0) + e
    return tuple(sorted(d.items()))


# Exact constants as symbols. π is transcendental, so a polynomial in π with rational
# coefficients is 0 only when every coefficient is: π can stand as a symbol. √n is written as
# s·√p1·…·√pk (n = s²·p1·…·pk, primes pk, squarefree part) with (√p)² = p: square roots of
# distinct squarefree numbers are linearly independent over ℚ, so this normal form is unique and
# `π(2r)^2(3h) = 14πr^2h` or `(r√3)^2 = 5r^2` are decided exactly, by the same rules as rational
# coefficients, instead of being left to SymPy's yes/no. √b of a bare symbol is a symbol with
# (√b)² = b (ℚ[b, √b]/((√b)² − b) is the polynomial ring in √b: still exact).
PI = "π"
RADICAL = "√"
MAX_RADICAND = 10**8  # a larger radicand is not factored (trial division): left to SymPy


def _const_symbol(v: str) -> bool:
    """π, √p (p a number) and, in a step about complex numbers, i are constants written as
    symbols; √b of a symbol b is a symbol."""
    return v == PI or (v[0] == RADICAL and v[1:].isdigit()) or (v == "i" and COMPLEX["on"])


def _reduce_mono(m: Mono, c: Fraction) -> tuple[Mono, Fraction]:
    d = dict(m)
    for v, e in m:
        if e < 2:
            continue
        if v == "i" and COMPLEX["on"]:
            q, d["i"] = divmod(e, 2)
            c = -c if q % 2 else c
        elif v[0] == RADICAL:
            q, d[v] = divmod(e, 2)
            base = v[1:]
            if base.isdigit():
                c = c * int(base) ** q
            else:
                d[base] = d.get(base, 0) + q
    return tuple(sorted((v, e) for v, e in d.items() if e)), c


def _reduce(p: Poly) -> Poly:
    """i² = −1 (when `i` is the imaginary unit) and (√p)² = p."""
    out: Poly = {}
    for m, c in p.items():
        if any(e >= 2 and (v[0] == RADICAL or (v == "i" and COMPLEX["on"])) for v, e in m):
            m, c = _reduce_mono(m, c)
        v = out.get(m, 0) + c
        if v:
            out[m] = v
        else:
            out.pop(m, None)
    return out


MAX_EXP_BASE = 10**6  # a larger base of `b^n` is not factored


@functools.lru_cache(maxsize=4096)
def _prime_factors(n: int) -> Optional[tuple[tuple[int, int], ...]]:
    """((p, k), ...) with n = ∏ p^k, by trial division; None when n is too large."""
    if n > MAX_EXP_BASE:
        return None
    out, p = [], 2
    while p * p <= n:
        k = 0
        while n % p == 0:
            n //= p
            k += 1
        if k:
            out.append((p, k))
        p += 1 if p == 2 else 2
    if n > 1:
        out.append((n, 1))
    return tuple(out)


MAX_BINOMIAL_K = 12  # \\binom{n}{k} with a larger k is not expanded


def _binomial_poly(n: Poly, k: Poly) -> Poly:
    """\\binom{n}{k} for a whole k (or k = n − c for a whole c, by symmetry) as the polynomial
    n(n − 1)…(n − k + 1)/k! in n: `\\binom{n}{2} = n(n−1)/2`, `\\binom{n}{n−1} = n`."""
    c = _const(k)
    if c is None:
        c = _const(poly_sub(n, k))  # \\binom{n}{n−2} = \\binom{n}{2}
    if c is None or c.denominator != 1 or not 0 <= c <= MAX_BINOMIAL_K:
        raise NotPolynomial("binomial coefficient")
    out: Poly = {(): Fraction(1)}
    for i in range(int(c)):
        out = _mul(out, _add(n, {(): Fraction(-i)} if i else {}))
    return {m: v / math.factorial(int(c)) for m, v in out.items()}


def _exponential_poly(base: Poly, exponent: Poly) -> Poly:
    """b^(c0 + c1·n + …) for a whole number b and whole c1, … as a polynomial in the symbols p^n
    (p the primes of b): `2^{n+1} = 2·(2^n)`, `4^n = (2^n)^2`, `6^n = 2^n·3^n`. Exact: for distinct
    primes the functions p^n are algebraically independent, so `2^{n−1} − 2 = 2^{n+1} − 2` is decided
    like any polynomial link."""
    b = _const(base)
    if b is None or b <= 0 or b.denominator != 1:
        raise NotPolynomial("symbol in an exponent")
    factors = _prime_factors(int(b))
    if factors is None or _has_constant_symbols(exponent) or degree(exponent) > 1:
        raise NotPolynomial("symbol in an exponent")
    c0 = exponent.get((), Fraction(0))
    if c0.denominator != 1 or abs(c0) > MAX_SYM_EXPONENT:
        raise NotPolynomial("symbol in an exponent")
    mono: dict = {}
    for m, c in exponent.items():
        if not m:
            continue
        ((v, _),) = m
        if c.denominator != 1 or c < 0 or c > MAX_SYM_EXPONENT or v == "i":
            raise NotPolynomial("symbol in an exponent")
        for p, k in factors:
            mono[f"{p}^{v}"] = mono.get(f"{p}^{v}", 0) + k * int(c)
    return {tuple(sorted(mono.items())): b ** int(c0)}


@functools.lru_cache(maxsize=4096)
def _squarefree(n: int) -> Optional[tuple[int, tuple[int, ...]]]:
    """(s, primes) with n = s² · ∏ primes (distinct), by trial division; None when n is too large."""
    if n > MAX_RADICAND:
        return None
    s, primes, p = 1, [], 2
    while p * p <= n:
        k = 0
        while n % p == 0:
            n //= p
            k += 1
        s *= p ** (k // 2)
        if k % 2:
            primes.append(p)
        p += 1 if p == 2 else 2
    if n > 1:
        primes.append(n)
    return s, tuple(primes)


def _sqrt_const(v: Fraction) -> Poly:
    """√v for a rational v as a polynomial in the √p symbols (i√(−v) for v < 0 with complex numbers)."""
    if v == 0:
        return {}
    if v < 0:
        if not COMPLEX["on"]:
            raise NotPolynomial("square root of a negative number")
        return _mul({(("i", 1),): Fraction(1)}, _sqrt_const(-v))
    sq = _squarefree(v.numerator * v.denominator)  # √(a/b) = √(ab)/b
    if sq is None:
        raise NotPolynomial("radicand too large")
    s, primes = sq
    return {tuple(sorted((RADICAL + str(p), 1) for p in primes)): Fraction(s, v.denominator)}


def _inverse_constant(p: Poly) -> Optional[Poly]:
    """1/p for p = c·√p1·…·√pk (= √p1·…·√pk / (c·p1·…·pk)); None for anything else."""
    if len(p) != 1:
        return None
    ((m, c),) = p.items()
    if not all(v[0] == RADICAL and v[1:].isdigit() and e == 1 for v, e in m):
        return None
    prod = 1
    for v, _ in m:
        prod *= int(v[1:])
    return {m: 1 / (c * prod)}


def _add(p: Poly, q: Poly, sign: int = 1) -> Poly:
    out = dict(p)
    for m, c in q.items():
        v = out.get(m, 0) + sign * c
        if v:
            out[m] = v
        else:
            out.pop(m, None)
    return out


def _mul(p: Poly, q: Poly) -> Poly:
    if len(p) * len(q) > MAX_TERMS * 4:
        raise _arith().TooLarge("expression too large for a symbolic check")
    out: Poly = {}
    check = _arith()._check_size
    for m1, c1 in p.items():
        for m2, c2 in q.items():
            m = _mono_mul(m1, m2)
            v = out.get(m, 0) + c1 * c2
            if v:
                out[m] = check(v)
            else:
                out.pop(m, None)
    if len(out) > MAX_TERMS:
        raise _arith().TooLarge("expression too large for a symbolic check")
    return _reduce(out)


def _const(p: Poly) -> Optional[Fraction]:
    if not p:
        return Fraction(0)
    if len(p) == 1 and () in p:
        return p[()]
    return None


def to_poly(node) -> Poly:
    """Exact expansion of an arith AST into a polynomial (see module docstring for limits)."""
    a = _arith()
    kind = node[0]
    if kind == "num":
        return {(): node[1]} if node[1] else {}
    if kind == "var":
        return {((node[1], 1),): Fraction(1)}
    if kind == "neg":
        return {m: -c for m, c in to_poly(node[1]).items()}
    if kind == "bin":
        op = node[1]
        if op in "+-":
            return _add(to_poly(node[2]), to_poly(node[3]), 1 if op == "+" else -1)
        if op == "*":
            return _mul(to_poly(node[2]), to_poly(node[3]))
        if op == "/":
            den_poly = to_poly(node[3])
            den = _const(den_poly)
            if den is None:
                inverse = _inverse_constant(den_poly)  # `1/√2` is √2/2
                if inverse is None:
                    raise NotPolynomial("symbol in a denominator")
                return _mul(to_poly(node[2]), inverse)
            if den == 0:
                raise ZeroDivisionError
            return {m: c / den for m, c in to_poly(node[2]).items()}
        if op == "^":
            if a.has_var(node[3]):
                return _exponential_poly(to_poly(node[2]), to_poly(node[3]))
            e = a.eval_exact(node[3])
            base = to_poly(node[2])
            c = _const(base)
            if c is not None:
                return {(): a.eval_exact(("bin", "^", ("num", c, None), ("num", e, None)))} if c else {}
            if e.denominator != 1 or e < 0:
                raise NotPolynomial("fractional or negative power of a symbol")
            k = int(e)
            if len(base) == 1 and k <= MAX_MONOMIAL_EXPONENT:
                (m, c), = base.items()  # a monomial: x^{120} costs nothing to raise
                return _reduce({tuple((v, ex * k) for v, ex in m if ex * k): a._check_size(c**k)})
            if k > MAX_SYM_EXPONENT:
                raise a.TooLarge(f"exponent {k} too large for a symbolic check")
            out: Poly = {(): Fraction(1)}
            for _ in range(k):
                out = _mul(out, base)
            return out
    if kind == "const":
        return {((PI, 1),): Fraction(1)}
    if kind == "sqrt" and node[2] is None:
        inner = node[1]
        if inner[0] == "var" and not (inner[1] == "i" and COMPLEX["on"]):
            return {((RADICAL + inner[1], 1),): Fraction(1)}
        if not a.has_var(inner):
            try:
                return _sqrt_const(a.eval_exact(inner))
            except a._NeedsSymbolic:
                raise NotPolynomial("irrational radicand")
    if kind == "binom" and a.has_var(node):
        return _binomial_poly(to_poly(node[1]), to_poly(node[2]))
    if kind in ("sqrt", "fact", "func", "binom", "floor", "ceil", "gcd", "lcm"):
        if a.has_var(node):
            raise NotPolynomial(f"symbol inside {kind}")
        try:
            v = a.eval_exact(node)
        except a._NeedsSymbolic:
            raise NotPolynomial("irrational constant")
        return {(): v} if v else {}
    raise NotPolynomial(kind)


def poly_sub(p: Poly, q: Poly) -> Poly:
    return _add(p, q, -1)


def _mono_degree(m: Mono) -> int:
    return sum(e for v, e in m if not _const_symbol(v))


def degree(p: Poly) -> int:
    return max((_mono_degree(m) for m in p), default=0)


def is_homogeneous(p: Poly) -> bool:
    return len({_mono_degree(m) for m in p}) <= 1


def symbols(p: Poly) -> set:
    """The free symbols (π and √p are constants)."""
    return {v for m in p for v, _ in m if not _const_symbol(v)}


def _has_constant_symbols(p: Poly) -> bool:
    return any(_const_symbol(v) for m in p for v, _ in m)


def _fmt_coef(c: Fraction) -> str:
    return _arith().fmt_number(c) if c.denominator == 1 or len(str(c)) > 12 else f"{c.numerator}/{c.denominator}"


def _fmt_power(v: str, e: int) -> str:
    if "^" in v:
        v = f"({v})"  # 2^n as a symbol: (2^n)^3, 3/2(2^n)
    return v if e == 1 else f"{v}^{e}"


def fmt_poly(p: Poly, max_terms: int = 8) -> str:
    """`x^2 + 2x + 1`, highest degree first (readable reasons on the step flags)."""
    if not p:
        return "0"
    items = sorted(p.items(), key=lambda mc: (-sum(e for _, e in mc[0]), tuple((v, -e) for v, e in mc[0])))
    parts = []
    for k, (m, c) in enumerate(items[:max_terms]):
        mono = "".join(_fmt_power(v, e) for v, e in m)
        mag = abs(c)
        coef = "" if (mono and mag == 1) else _fmt_coef(mag)
        term = f"{coef}{mono}" if mono else coef
        sign = "-" if c < 0 else "+"
        parts.append(("-" + term) if k == 0 and c < 0 else term if k == 0 else f" {sign} {term}")
    if len(items) > max_terms:
        parts.append(" + …")
    return "".join(parts)


def _unexpanded(node) -> bool:
    """A product or power with a sum inside that holds a symbol: `(a-b)^2`, `2(x+3)`."""
    a = _arith()
    kind = node[0]
    if kind == "bin" and node[1] in ("*", "^"):
        for child in (node[2],) if node[1] == "^" else (node[2], node[3]):
            inner = child[1] if child[0] == "neg" else child
            if inner[0] == "bin" and inner[1] in "+-" and a.has_var(inner):
                return True
    return any(_unexpanded(c) for c in node[1:] if isinstance(c, tuple) and c and isinstance(c[0], str))


def _numeric_op(node) -> bool:
    """Does the expression hold an operation between two numbers (`4·4`, `37^2`, `(-5)^2`)?"""
    a = _arith()
    if node[0] == "bin" and node[1] in "/^" and node[2][0] == "num" and node[3][0] == "num":
        # `\frac{9}{4}`: a rational coefficient as written; `4^2`, `450^2`: how the Pythagorean theorem
        # and its kin are written (`y^2 + 4^2 = (3y)^2`) — neither is arithmetic left undone
        return False
    if node[0] == "bin" and not a.has_var(node[2]) and not a.has_var(node[3]) and not _irrational(node):
        return node[2][0] in ("num", "neg", "bin") and node[3][0] in ("num", "neg", "bin")
    return any(_numeric_op(c) for c in node[1:] if isinstance(c, tuple) and c and isinstance(c[0], str))


def _irrational(node) -> bool:
    """Holds √ or π: `\\frac{9}{4}\\sqrt{3} + 9\\pi` is a closed form, nothing left to compute."""
    if node[0] in ("sqrt", "const"):
        return True
    return any(_irrational(c) for c in node[1:] if isinstance(c, tuple) and c and isinstance(c[0], str))


def _complex_numbers(lhs_node, rhs_node, lhs_text, rhs_text):
    """Both sides are complex numbers (`i` the imaginary unit): they must be equal."""
    a = _arith()
    try:
        pl, pr = to_poly(lhs_node), to_poly(rhs_node)
    except (NotPolynomial, a.TooLarge, ZeroDivisionError, a._ParseError, a._NeedsSymbolic):
        return "equation", None, None, None, False
    diff = poly_sub(pl, pr)
    if not diff:
        return "ok", "algebra", None, diff, False
    note = f"arithmetic slip (complex numbers): {lhs_text} is {fmt_poly(pl)}, not {fmt_poly(pr)}"
    return "mismatch", "algebra", note, diff, False


def _share_terms(p: Poly, q: Poly) -> bool:
    """An expansion that went wrong keeps some terms right: the two sides have a non-constant
    term in common (an equation such as 3(x − 2) = 2x + 5 would have it cancelled)."""
    return any(_mono_degree(m) and q.get(m) == c for m, c in p.items())


def linear_solution(diff: Poly) -> Optional[tuple[str, Fraction]]:
    """(x, v) when diff = c1·x + c0 with c1 ≠ 0 in one symbol x: the equation's solution."""
    syms = symbols(diff)
    if len(syms) != 1 or degree(diff) != 1 or _has_constant_symbols(diff):
        return None
    (x,) = syms
    c1 = diff.get(((x, 1),), Fraction(0))
    if not c1:
        return None
    return x, -diff.get((), Fraction(0)) / c1


def _reason(lhs_node, rhs_node, pl: Poly, pr: Poly, diff: Poly, lhs_text: str, rhs_text: str) -> str:
    if not symbols(diff):
        return f"algebra slip: {lhs_text} = {rhs_text} is not an identity (the sides differ by {fmt_poly(diff)} for every value)"
    # a single term whose sign was flipped: diff = ±2·t for a term t of one side
    if len(diff) == 1:
        (m, dc), = diff.items()
        for side in (pl, pr):
            t = side.get(m)
            if t is not None and abs(dc) == 2 * abs(t):
                term = fmt_poly({m: abs(t)})
                return f"algebra slip (sign): in {lhs_text} = {rhs_text} the term {term} has the wrong sign"
    lu, ru = _unexpanded(lhs_node), _unexpanded(rhs_node)
    if lu and not ru:
        return f"algebra slip (expansion): {lhs_text} expands to {fmt_poly(pl)}, not {fmt_poly(pr)}"
    if ru and not lu:
        return f"algebra slip (factoring): {rhs_text} expands to {fmt_poly(pr)}, not {fmt_poly(pl)}"
    return f"algebra slip: {lhs_text} = {rhs_text} is not an identity ({lhs_text} − ({rhs_text}) = {fmt_poly(diff)})"


def classify(lhs_node, rhs_node, lhs_text: str, rhs_text: str, equation_context=False):
    """Verdict for a link with free symbols.

    Returns (status, kind, note, diff, tentative):
    status ok | mismatch | equation | assign | symbolic (needs SymPy) | unchecked;
    kind "algebra" for a slip; diff the polynomial lhs − rhs (None when not polynomial).
    `equation_context`: the step speaks of solving/testing an equation (arith.EQUATION_CUE),
    so the degree rules (leading terms agree, homogeneous forms) do not apply there; a tuple
    (equation_context, no_solution, middle): no_solution — the step says the equation has no
    solution ("impossible", "≠"), so a constant difference is intended; middle — a later link
    of a chain `A = B = C`, which rewrites one quantity, so any difference is a slip."""
    no_solution = middle = identity = False
    if isinstance(equation_context, tuple):
        equation_context, no_solution, middle, identity = (tuple(equation_context) + (False, False))[:4]
    if identity:
        middle = "identity"  # announced as a rewrite ("Factoring, we have"): see _poly_rules
    solving = bool(equation_context) and not middle  # an equation the step solves, not a rewrite
    a = _arith()
    lv, rv = a.has_var(lhs_node), a.has_var(rhs_node)
    if COMPLEX["on"]:
        lv, rv = bool(_vars(lhs_node) - {"i"}), bool(_vars(rhs_node) - {"i"})
        if not lv and not rv:
            return _complex_numbers(lhs_node, rhs_node, lhs_text, rhs_text)
    squared = _squared_roots(lhs_node, rhs_node) if lv and rv else None
    if squared is not None:
        # `√(3^2 + w^2 + 12^2) = √(153 − w^2)`, `√(324 + 36s^2) = 3√(s^2 + 9)`: nonnegative multiples of
        # square roots are equal exactly when their squares are (both sides are principal roots), so
        # c1²·P1 and c2²·P2 are compared by the same rules
        verdict = classify(squared[0], squared[1], lhs_text, rhs_text,
                           (equation_context, no_solution, middle, False) if middle != "identity" else (equation_context, no_solution, False, True))
        if verdict[0] in ("ok", "mismatch"):
            return verdict
    bare = lhs_node[1] if lhs_node[0] == "var" else rhs_node[1] if rhs_node[0] == "var" else None
    if bare is not None and bare != "i" and bare not in (_vars(rhs_node) if lhs_node[0] == "var" else _vars(lhs_node)):
        # (`x + 4·38 = x` is no definition of x: the symbol is on both sides, the rules below decide)
        diff = None
        try:
            diff = poly_sub(to_poly(lhs_node), to_poly(rhs_node))
        except (NotPolynomial, a.TooLarge, ZeroDivisionError, a._ParseError, a._NeedsSymbolic):
            pass
        if diff is not None and not diff:
            return "ok", "algebra", None, diff, False
        return "assign", None, None, diff, False
    try:
        pl, pr = to_poly(lhs_node), to_poly(rhs_node)
    except a.TooLarge as exc:
        return "unchecked", None, f"unchecked: {exc}", None, False
    except ZeroDivisionError:
        return "unchecked", None, "unchecked: division by zero", None, False
    except (NotPolynomial, a._NeedsSymbolic, a._ParseError):
        cleared = _cleared(lhs_node, rhs_node)
        if cleared is not None:
            # rational functions: compare N1·D2 with N2·D1 (or N1 with N2 over one denominator) by the same rules
            pl, pr = cleared
            if lv != rv and not no_solution and poly_sub(pl, pr) and not symbols(poly_sub(pl, pr)):
                # `(n + 18)/n = 1` is n + 18 = n: no value of the symbol satisfies it
                note = f"algebra slip: {lhs_text} = {rhs_text} holds for no value (cleared of fractions, the sides differ by {fmt_poly(poly_sub(pl, pr))})"
                return "mismatch", "algebra", note, poly_sub(pl, pr), False
            verdict = _poly_rules(lhs_node, rhs_node, pl, pr, lhs_text, rhs_text, lv, rv, equation_context, no_solution, middle)
            if verdict[0] == "mismatch" and verdict[2] and "the sides differ by" in verdict[2] and _same_denominator(lhs_node, rhs_node):
                verdict = (verdict[0], verdict[1], verdict[2].replace("the sides differ by", "over the same denominator the numerators differ by"), *verdict[3:])
            return verdict
        if (_symbol_exponent(lhs_node) or _symbol_exponent(rhs_node)) and lv and rv and not COMPLEX["on"]:
            verdict = _exponential(lhs_node, rhs_node, lhs_text, rhs_text, no_solution, solving)
            if verdict is not None:
                return verdict
        same = _vars(lhs_node) == _vars(rhs_node) and not (COMPLEX["on"] and "i" in _vars(lhs_node))
        return _by_points(lhs_node, rhs_node, lhs_text, rhs_text, lv and rv, no_solution, same and middle)
    verdict = _poly_rules(lhs_node, rhs_node, pl, pr, lhs_text, rhs_text, lv, rv, equation_context, no_solution, middle)
    if verdict[0] == "equation" and lv and rv and not COMPLEX["on"] and (_symbol_exponent(lhs_node) or _symbol_exponent(rhs_node)):
        # `2^{2n} = (2^n)^3`: two powers set equal only agree at n = 0 (see _exponential)
        found = _exponential(lhs_node, rhs_node, lhs_text, rhs_text, no_solution, solving)
        if found is None and middle is True and not no_solution and _vars(lhs_node) == _vars(rhs_node):
            # `9^{18n} = (3^2)^{18n} = 3^{2 + 18n}`: a later link of a chain rewrites one power, so exponents that
            # disagree are a wrong power rule, not an equation. Tentative: a chain that does switch to the
            # equation being solved (`4^x = 2^{2x} = 2^{x+3}`, then x = 3) keeps its own values
            note = (f"algebra slip (exponent): {lhs_text} = {rhs_text} is not an identity (the powers agree only "
                    f"at some values of {', '.join(sorted(_vars(lhs_node)))})")
            return "mismatch", "algebra", note, verdict[3], "switch"
        return found or verdict
    return verdict


def _root_form(node) -> Optional[tuple]:
    """(c, P) for `√P`, `c√P` or `√P·c` with c a positive number: the side is c·√P."""
    if node[0] == "sqrt" and node[2] is None:
        return Fraction(1), node[1]
    if node[0] == "bin" and node[1] == "*":
        for k, other in ((2, 3), (3, 2)):
            if node[k][0] == "sqrt" and node[k][2] is None and node[other][0] == "num" and node[other][1] > 0:
                return node[other][1], node[k][1]
    return None


def _squared_roots(lhs_node, rhs_node) -> Optional[tuple]:
    """Both sides c·√P (see _root_form), or roots of one index: the nodes c1²·P1 and c2²·P2 (the
    radicands); None otherwise."""
    if lhs_node[0] == "sqrt" and rhs_node[0] == "sqrt" and lhs_node[2] == rhs_node[2]:
        return lhs_node[1], rhs_node[1]  # roots of one index: the radicands
    lf, rf = _root_form(lhs_node), _root_form(rhs_node)
    if lf is None or rf is None:
        return None
    scale = lambda c, p: p if c == 1 else ("bin", "*", ("num", c * c, None), p)
    return scale(*lf), scale(*rf)


def _symbol_exponent(node) -> bool:
    """Does a symbol stand in an exponent (`2^{3n}`, `(5^3)^x`)?"""
    a = _arith()
    if node[0] == "bin" and node[1] == "^" and a.has_var(node[3]):
        return True
    return any(_symbol_exponent(c) for c in node[1:] if isinstance(c, tuple) and c and isinstance(c[0], str))


def _exponential(lhs_node, rhs_node, lhs_text, rhs_text, no_solution, solving=False):
    """Links with a symbol in an exponent (`4^n = 2^{2n}`), compared through logarithms.

    Exact evaluation cannot reach them (2^{3n} at a random rational n), but at small real points
    the logarithm of each side is cheap: D = ln(lhs) − ln(rhs). An identity has D ≡ 0. If D is a
    nonzero constant (`2^{n−3} = 2^{n+3}`: the sides differ by a factor 2^6 for every n) no value
    satisfies the link, so it is no equation anybody solves: a slip. If D is c·n in one symbol
    (`(2^2)^x = 2^{3x}`, `2^{2n} = (2^n)^3`) it would only say n = 0, which no solution derives
    that way: a slip too, tentatively (withdrawn when the solution's own values satisfy it).
    `5^{x+4} = 5^{3x}` (D = (4 − 2x)·ln 5) is an equation being solved: not flagged.
    None when the sides cannot be evaluated (then the caller's rules apply)."""
    import cmath

    names = sorted(_vars(lhs_node) | _vars(rhs_node))
    rng = random.Random(f"{lhs_text}={rhs_text}")
    pts = []
    for _ in range(NUM_POINTS * 3):
        env = {v: complex(rng.uniform(0.6, 2.9)) for v in names}
        try:
            lv_, rv_ = num_eval(lhs_node, env), num_eval(rhs_node, env)
        except (_NoValue, RecursionError):
            continue
        if lv_ == 0 or rv_ == 0 or abs(lv_.imag) > 1e-12 * abs(lv_) or abs(rv_.imag) > 1e-12 * abs(rv_):
            continue
        if (lv_.real > 0) != (rv_.real > 0):
            pts.append((env, None))  # opposite signs: not equal here, and not a power identity
            continue
        pts.append((env, (cmath.log(abs(lv_.real)) - cmath.log(abs(rv_.real))).real))
        if len(pts) == NUM_POINTS + 1:
            break
    if len(pts) < NUM_POINTS + 1 or any(d is None for _, d in pts):
        return None
    ds = [d for _, d in pts]
    tol = NUM_TOL * 100
    if all(abs(d) <= tol for d in ds):
        return "ok", "algebra", None, None, False
    if no_solution:
        return "equation", None, None, None, False
    if all(abs(d - ds[0]) <= tol * max(1.0, abs(ds[0])) for d in ds):
        factor = cmath.exp(ds[0]).real
        note = (f"algebra slip: {lhs_text} = {rhs_text} is not an identity (the left side is "
                f"{factor:.6g} times the right side for every value)")
        return "mismatch", "algebra", note, None, False
    if len(names) == 1:
        (x,) = names
        ratios = [d / env[x].real for env, d in pts]
        if all(abs(r - ratios[0]) <= tol * max(1.0, abs(ratios[0])) for r in ratios):
            note = (f"algebra slip (exponent): {lhs_text} = {rhs_text} is not an identity (the exponents "
                    f"disagree; the sides are equal only at {x} = 0)")
            return "mismatch", "algebra", note, None, True
    if not solving and _vars(lhs_node) == _vars(rhs_node):
        # `a^m a^n = a^{m−n}`: one edited token from an identity (`a^{m+n}`) is a slip, as _one_edit for polynomials
        edit = _exponential_edit(lhs_node, rhs_node, [env for env, _ in pts], tol,
                                 numeric_exponents=not (_one_term(lhs_node) and _one_term(rhs_node)))
        if edit is not None:
            return "mismatch", "algebra", f"algebra slip: {lhs_text} = {rhs_text} is not an identity; it would be with {edit}", None, True
    return None


def abs_rewrite(lhs_terms: list, rhs_terms: list, lhs_text: str, rhs_text: str) -> Optional[tuple[str, Optional[str]]]:
    """A rewrite `c1|A1| + … = d1|B1| + …` (a later link of a chain, so meant for every value): ("ok", None)
    when the terms pair up with equal coefficients and contents equal up to sign (`|5i − z| = |z − 5i|`),
    ("mismatch", reason) when one edited token in one content makes them pair up, None
    otherwise (|A| = |B| holds for other A, B: `|3 + 4i| = |5|`, `|x − 3| = 3 − x` for x < 3)."""
    left = [(c, _poly_or_none(n)) for c, n in lhs_terms]
    right = [(c, _poly_or_none(n)) for c, n in rhs_terms]
    if any(p is None for _, p in left + right):
        return None
    if not any(symbols(p) - {"i"} for _, p in left + right):
        return None  # numbers only (`|-7 - 3| = |10|`): not a rewrite of symbols
    if _abs_terms_pair(left, right):
        return "ok", None
    for side, terms, where in ((rhs_terms, right, "right side"), (lhs_terms, left, "left side")):
        for k, (c, node) in enumerate(side):
            # (one edited token only: `|a + bi − 1| = |a + bi| = 8` states two conditions, not a dropped term)
            for edited, dsc in _edits(node, where, False):
                p = _poly_or_none(edited)
                if p is None:
                    continue
                changed = terms[:k] + [(c, p)] + terms[k + 1 :]
                if _abs_terms_pair(left if where == "right side" else changed, changed if where == "right side" else right):
                    return "mismatch", f"algebra slip: {lhs_text} = {rhs_text} is not an identity; it would be with {dsc}"
    return None


def _poly_or_none(node) -> Optional[Poly]:
    try:
        return to_poly(node)
    except (NotPolynomial, ZeroDivisionError, _arith().TooLarge, _arith()._ParseError, _arith()._NeedsSymbolic):
        return None


def _abs_terms_pair(left: list, right: list) -> bool:
    """Every term c|P| of one side matches one of the other with the same c and P = ±Q."""
    if len(left) != len(right):
        return False
    rest = list(right)
    for c, p in left:
        match = next((k for k, (d, q) in enumerate(rest) if d == c and (not poly_sub(p, q) or not _add(p, q))), None)
        if match is None:
            return False
        rest.pop(match)
    return True


def _one_term(node) -> bool:
    """No sum or difference outside exponents: `2^m a^2`, `a^{m−n}`, `\\frac{a^m}{a^n}`."""
    kind = node[0]
    if kind == "bin":
        if node[1] in "+-":
            return False
        return _one_term(node[2]) and (node[1] == "^" or _one_term(node[3]))
    if kind == "neg":
        return _one_term(node[1])
    return True


def _exponential_edit(lhs_node, rhs_node, envs: list, tol: float, numeric_exponents: bool = True) -> Optional[str]:
    """The description of the first single-token edit or dropped term (see symbolic_edits) after which
    ln(lhs) − ln(rhs) vanishes at every point of `envs`, or None (at most MAX_SYMBOLIC_EDITS tried).
    `numeric_exponents=False`: two single terms (`2^m a^2 = 2^m a`) are an equation to solve when a number
    exponent is all that differs, as `x^2 = x^3` (_one_edit); an edit inside a symbolic exponent still counts."""
    import cmath

    for edited, other, _, dsc in _one_slip_edits(lhs_node, rhs_node):
        if edited == other or (not numeric_exponents and dsc.startswith("the exponent")):
            continue  # both sides written the same proves nothing
        ok = True
        for env in envs:
            try:
                e, o = num_eval(edited, env), num_eval(other, env)
            except (_NoValue, RecursionError, ZeroDivisionError, OverflowError):
                ok = False
                break
            if e == 0 or o == 0 or (e.real > 0) != (o.real > 0) or abs(e.imag) > 1e-12 * abs(e) or abs(o.imag) > 1e-12 * abs(o):
                ok = False
                break
            if abs((cmath.log(abs(e.real)) - cmath.log(abs(o.real))).real) > tol:
                ok = False
                break
        if ok:
            return dsc
    return None


def _to_frac(node):
    """(numerator, denominator) polynomials of a rational expression (NotPolynomial otherwise)."""
    a = _arith()
    kind = node[0]
    one = {(): Fraction(1)}
    if kind == "neg":
        n, d = _to_frac(node[1])
        return {m: -c for m, c in n.items()}, d
    if kind == "bin" and node[1] in "+-*/":
        n1, d1 = _to_frac(node[2])
        n2, d2 = _to_frac(node[3])
        if node[1] == "*":
            return _mul(n1, n2), _mul(d1, d2)
        if node[1] == "/":
            if not n2:
                raise ZeroDivisionError
            return _mul(n1, d2), _mul(d1, n2)
        return _add(_mul(n1, d2), _mul(n2, d1), 1 if node[1] == "+" else -1), _mul(d1, d2)
    if kind == "bin" and node[1] == "^" and not a.has_var(node[3]):
        e = a.eval_exact(node[3])
        if e.denominator == 1 and -MAX_SYM_EXPONENT <= e < 0:
            n, d = _to_frac(node[2])
            k = -int(e)
            pn, pd = dict(one), dict(one)
            for _ in range(k):
                pn, pd = _mul(pn, d), _mul(pd, n)
            return pn, pd
    return to_poly(node), one


def _same_denominator(lhs_node, rhs_node) -> bool:
    a = _arith()
    try:
        d1, d2 = _to_frac(lhs_node)[1], _to_frac(rhs_node)[1]
    except (NotPolynomial, a.TooLarge, ZeroDivisionError, a._ParseError, a._NeedsSymbolic):
        return False
    return ratio(d1, d2) is not None and bool(symbols(d1))


def _cleared(lhs_node, rhs_node):
    a = _arith()
    try:
        n1, d1 = _to_frac(lhs_node)
        n2, d2 = _to_frac(rhs_node)
        k = ratio(d1, d2)
        if k is not None:
            # the same denominator (up to a constant) on both sides: N1/D = N2/D holds exactly when
            # N1 = N2 (poles aside), so the numerators are compared as they are written — cross-
            # multiplying would turn a constant slip (`(5 − x)/(x − 3) = (−x − 5)/(x − 3)`) into a
            # product that reads as an equation
            return n1, {m: c * k for m, c in n2.items()}
        return _mul(n1, d2), _mul(n2, d1)
    except (NotPolynomial, a.TooLarge, ZeroDivisionError, a._ParseError, a._NeedsSymbolic):
        return None


def _poly_rules(lhs_node, rhs_node, pl, pr, lhs_text, rhs_text, lv, rv, equation_context, no_solution, middle):
    diff = poly_sub(pl, pr)
    if not diff:
        return "ok", "algebra", None, diff, False
    if not (lv and rv):
        const = _const(pr) if lv else _const(pl)
        if const and len(diff) == 1 and symbols(diff) and not no_solution and not middle:
            # `5^2 − 4·2·b = 25`, `437 + 42d − 429 = 8`: the constants agree and one term is gone; as
            # an equation it would only say b = 0, which a solution writes as such. A dropped term,
            # tentatively (a value stated right there, "so b = 0", keeps it an equation). Not in a chain
            # `1 = … + x + x = 5/8`: its two ends already say what is wrong
            note = (f"algebra slip: {lhs_text} = {rhs_text} is not an identity (the sides differ by the single "
                    f"term {fmt_poly(diff)}; it seems dropped)")
            return "mismatch", "algebra", note, diff, "values"
        return "equation", None, None, diff, False
    if not symbols(diff):  # a constant, √2 and π included
        if no_solution:
            return "equation", None, None, diff, False
        return "mismatch", "algebra", _reason(lhs_node, rhs_node, pl, pr, diff, lhs_text, rhs_text), diff, False
    if COMPLEX["on"] and symbols(diff) <= {"i"}:
        # `(x − 2 − i)(x − 2 + i) = (x − 2)^2 − i^3`: with i the imaginary unit the sides differ by
        # a complex constant (1 − i) for every x, so no value satisfies it: not an equation anybody solves
        if no_solution:
            return "equation", None, None, diff, False
        note = (f"algebra slip: {lhs_text} = {rhs_text} is not an identity (the sides differ by "
                f"{fmt_poly(diff)} for every value)")
        return "mismatch", "algebra", note, diff, False
    sl, sr = symbols(pl), symbols(pr)
    if sl == sr and len(diff) == 1:
        # the sides differ by one term c·x^k: as an equation it would only say x = 0, which
        # nobody derives this way (`2·15·n = 32n`), and which has a solution, so a step saying
        # "cannot" or "impossible" does not explain it: a wrong coefficient or sign. Tentative: a
        # solution that does derive it (`1 + 2c + 1 = 1 + 1 + c, so c = 0`) keeps it an equation
        return "mismatch", "algebra", _reason(lhs_node, rhs_node, pl, pr, diff, lhs_text, rhs_text), diff, "values"
    if (sl < sr or sr < sl) and len(diff) == 1 and not no_solution and len(pl) + len(pr) > 2 and symbols(diff) <= (sl ^ sr):
        # `x + y + z = x + z`, `\frac12(2u)(u − v) = u^2`: one side holds a symbol the other lacks and
        # the sides differ by that single term; as an equation it would only say y = 0 (or uv = 0),
        # which a solution states as such, not as two expressions. A term dropped or mis-multiplied.
        # Only when that term is made of the extra symbols alone: `(b − 3)x^3 = −3x^3` (b·x^3 apart)
        # is how coefficients are matched ("which we solve to get b = 0").
        # Tentative: a solution whose own values satisfy it (it does set y = 0) keeps it an equation
        (m, _), = diff.items()
        term = fmt_poly({m: Fraction(1)})
        note = (f"algebra slip: {lhs_text} = {rhs_text} is not an identity (the sides differ by the single "
                f"term {fmt_poly(diff)}; a term with {term} seems dropped or wrong)")
        return "mismatch", "algebra", note, diff, True
    if sl & sr and not no_solution and len(diff) > 1:
        k = _proportional(pl, pr) if middle != "zero" else None  # (an equation = 0 may be scaled)
        if k is not None:
            # `4x + 4y = 5(x + y)`: one side is k times the other; as an equation it would only say
            # x + y = 0, which a solution writes that way, not as two multiples of it
            note = (f"algebra slip (coefficient): {lhs_text} = {rhs_text} is not an identity "
                    f"(the left side is {_fmt_coef(k)} times the right side)")
            return "mismatch", "algebra", note, diff, True
        if middle == "identity" and sl == sr and _unexpanded(lhs_node) != _unexpanded(rhs_node):
            # the step announced a rewrite ("Factoring, we have", "expanding gives") of one side
            # into the other: a difference is a slip whatever its shape
            return "mismatch", "algebra", _reason(lhs_node, rhs_node, pl, pr, diff, lhs_text, rhs_text), diff, True
    if sl == sr and not no_solution:
        fix = _one_edit(lhs_node, rhs_node, pl, pr, middle is True) if (middle or not equation_context) else None
        if fix is not None:
            # the sides are the same polynomial but for one written number or sign: a slip in
            # that token (`(x+3)^3` for `(x+3)^2`, `7(x^2−4x)` for `5(x^2−4x)`); a genuine equation
            # is almost never one token away from an identity. Tentative: the solution's own values
            # satisfying it still make it an equation (checks.equation_checks)
            note = f"algebra slip: {lhs_text} = {rhs_text} is not an identity; it would be with {fix}"
            return "mismatch", "algebra", note, diff, "values"
        lonely = _lone_factor(lhs_text, rhs_text, pl, pr)
        if lonely is not None:
            return "mismatch", "algebra", f"algebra slip (factoring): {lonely}", diff, True
    if sl == sr and not no_solution:
        top = max(degree(pl), degree(pr))
        lower = top >= 2 and degree(diff) < top  # the leading terms agree: a wrong expansion
        forms = (
            len(sl) >= 2 and is_homogeneous(pl) and is_homogeneous(pr) and degree(pl) == degree(pr) >= 2
            and _unexpanded(lhs_node) != _unexpanded(rhs_node)
        )
        shared = _unexpanded(lhs_node) != _unexpanded(rhs_node) and _share_terms(pl, pr)
        # one side still holds arithmetic on numbers (`b^2 − 4·4`) that the other has done: a simplification
        numeric = _numeric_op(lhs_node) != _numeric_op(rhs_node)
        # in a rewrite (a later link of a chain) the structural rules apply even where the step
        # speaks of an equation; a chain can still switch to an equation (`... = z^2 + w^2 = 9 − 2zw`),
        # so a difference alone is not enough
        if (lower or forms or shared or numeric) and (middle or not equation_context):
            # *tentatively* (checks.equation_checks withdraws it when the solution's own values
            # satisfy it, or it is stated as a condition)
            return "mismatch", "algebra", _reason(lhs_node, rhs_node, pl, pr, diff, lhs_text, rhs_text), diff, True
    return "equation", None, None, diff, False


MAX_EDITS = 80  # single-token edits tried per link (each one polynomial expansion)


def _edits(node, where: str, top: bool = True):
    """(edited node, description) for every single-token edit of an expression: a number
    (coefficient or exponent) changed by ±1 or ±2, an operator + / − flipped, a leading minus dropped."""
    a = _arith()
    kind = node[0]
    if kind == "num":
        v = node[1]
        if v.denominator == 1 and 0 < v <= 1000:
            for d in (1, -1, 2, -2):
                w = v + d
                if w > 0:
                    yield ("num", w, None), f"{a.fmt_number(w)} in place of {a.fmt_number(v)} on the {where}"
        return
    if kind == "neg":
        if not top:  # a whole side negated (`X = −X`) is how an equation with no solution is shown
            yield node[1], f"no minus sign before {fmt_node(node[1])} on the {where}"
        for e, dsc in _edits(node[1], where, False):
            yield ("neg", e), dsc
        return
    if kind == "bin":
        op = node[1]
        if op in "+-":
            yield ("bin", "-" if op == "+" else "+", node[2], node[3]), (
                f"{'−' if op == '+' else '+'} in place of {'+' if op == '+' else '−'} before {fmt_node(node[3])} on the {where}")
        for e, dsc in _edits(node[2], where, False):
            yield ("bin", op, e, node[3]), dsc
        for e, dsc in _edits(node[3], where, False):
            if op == "^" and node[3][0] == "num":
                dsc = "the exponent " + dsc
            yield ("bin", op, node[2], e), dsc
        return
    if kind == "sqrt":
        for e, dsc in _edits(node[1], where, False):
            yield ("sqrt", e, node[2]), dsc
    if kind == "func":  # `\sin 7x` for `\sin 5x`: the argument of a function
        for e, dsc in _edits(node[2], where, False):
            yield ("func", node[1], e), dsc


def _dropped_terms(node, where: str):
    """(node with one term of a sum left out, description), at any depth: `\\sin x \\cos y` for
    `\\sin x \\cos y + \\cos x \\sin y`."""
    kind = node[0]
    if kind == "bin" and node[1] in "+-":
        yield node[2], f"the term {_latexish(node[3])} dropped from the {where}"
        yield (node[3] if node[1] == "+" else ("neg", node[3])), f"the term {_latexish(node[2])} dropped from the {where}"
    if kind == "bin":
        for e, dsc in _dropped_terms(node[2], where):
            yield ("bin", node[1], e, node[3]), dsc
        for e, dsc in _dropped_terms(node[3], where):
            yield ("bin", node[1], node[2], e), dsc
    elif kind in ("neg", "sqrt", "func"):
        k = 2 if kind == "func" else 1
        for e, dsc in _dropped_terms(node[k], where):
            yield node[:k] + (e,) + node[k + 1 :], dsc


def _latexish(node) -> str:
    try:
        return _arith().to_sympy_source(node).replace("Symbol('", "").replace("')", "")[:40]
    except Exception:  # noqa: BLE001 - only for the message
        return "a term"


MAX_SYMBOLIC_EDITS = 48  # edited links sent to SymPy per differing link (each a few sample points)


def _one_slip_edits(lhs_node, rhs_node):
    """(edited side, the other side, where, description) for one edited token or one dropped term of either
    side, right side first, at most MAX_SYMBOLIC_EDITS."""
    tried = 0
    for node, other, where in ((rhs_node, lhs_node, "right side"), (lhs_node, rhs_node, "left side")):
        for edited, dsc in list(_edits(node, where)) + list(_dropped_terms(node, where)):
            tried += 1
            if tried > MAX_SYMBOLIC_EDITS:
                return
            yield edited, other, where, dsc


def symbolic_edits(lhs_node, rhs_node) -> list[tuple[str, str, str]]:
    """(lhs source, rhs source, description) of a link with one side edited by one token (see
    _edits) or by one dropped term, as SymPy sources: the candidates a wrong trigonometric or
    closed-form identity is one slip away from (`\\sin 4x + \\sin 6x = 2 \\sin 7x \\cos x`)."""
    a = _arith()
    out: list[tuple[str, str, str]] = []
    try:
        ls, rs = a.to_sympy_source(lhs_node), a.to_sympy_source(rhs_node)
    except Exception:  # noqa: BLE001 - an unconvertible side has no edits
        return out
    for edited, _, where, dsc in _one_slip_edits(lhs_node, rhs_node):
        try:
            src = a.to_sympy_source(edited)
        except Exception:  # noqa: BLE001 - an edit that cannot be written is skipped
            continue
        out.append((ls, src, dsc) if where == "right side" else (src, rs, dsc))
    return out


def fmt_node(node) -> str:
    try:
        return fmt_poly(to_poly(node), 4)
    except Exception:  # noqa: BLE001 - only for the message
        return "a term"


def _one_edit(lhs_node, rhs_node, pl: Poly, pr: Poly, rewrite: bool = False) -> Optional[str]:
    """The single-token edit of one side (see _edits) that makes the link an identity, if any.
    `rewrite`: a later link of a chain, where two monomials are one quantity rewritten."""
    if len(pl) + len(pr) > 40:
        return None
    if (len(pl) == 1 and len(pr) == 1 and not rewrite
            and max(_symbol_factors(lhs_node), _symbol_factors(rhs_node)) < 2
            and max(_factors(lhs_node), _factors(rhs_node)) < 3):
        # `x^2 = x^3`, `12A^2 = 12A`: two monomials set equal is an equation to solve; a product
        # still to be multiplied out (`54x^3 · 3x = 162x^5`, `10(4x^5) = 40x^4`) is a computation
        return None
    tried = 0
    for node, other, where in ((rhs_node, pl, "right side"), (lhs_node, pr, "left side")):
        for edited, dsc in _edits(node, where):
            tried += 1
            if tried > MAX_EDITS:
                return None
            # cross-multiplied, so rational functions count too (`2/(x+1) − x = (2 − x^3 − x)/(x+1)`)
            pair = _cleared(edited, rhs_node) if where == "left side" else _cleared(lhs_node, edited)
            if pair is not None and pair[0] and not poly_sub(*pair):
                return dsc
    return None


def _symbol_factors(node) -> int:
    """Factors holding a symbol in a product `54x^3 · 3x` (2), `12A^2` (1); a power or a quotient
    of a product still to be multiplied out counts as two (`(3n)^3`, `(x/2)^2`, `(-a)^3`)."""
    a = _arith()
    if node[0] == "bin" and node[1] in "*/":
        return _symbol_factors(node[2]) + _symbol_factors(node[3])
    if node[0] == "bin" and node[1] == "^" and node[2][0] in ("bin", "neg") and a.has_var(node[2]):
        return 2
    return 1 if a.has_var(node) else 0


def _factors(node) -> int:
    """Factors of a product, numbers included: `10(4x^5)` has 3, `12A^2` has 2."""
    if node[0] == "bin" and node[1] in "*/":
        return _factors(node[2]) + _factors(node[3])
    return 1


def _lone_factor(lhs_text: str, rhs_text: str, pl: Poly, pr: Poly) -> Optional[str]:
    """`x^2 − 16x + 60 = (x − 6)`: one side is a single bracketed sum — the way a product of
    factors is written — of lower degree than the other side, which it does not equal: a
    factorization with a factor missing."""
    for text, p, other, otext in ((rhs_text, pr, pl, lhs_text), (lhs_text, pl, pr, rhs_text)):
        t = text.strip().strip("{}").strip()
        if not (t.startswith("(") and t.endswith(")")) or len(p) < 2:
            continue
        depth = 0
        closed_early = False
        for k, ch in enumerate(t):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(t) - 1:
                closed_early = True
                break
        if closed_early or degree(p) >= degree(other) or len(other) < 2:
            continue
        return (f"{text.strip()} has lower degree than {otext} ({fmt_poly(other)}), so they are not equal "
                f"for every value: a factor seems to be missing")
    return None


def ratio(p: Poly, q: Poly) -> Optional[Fraction]:
    """k when p = k·q for a nonzero constant k (any k, including 1), both nonzero."""
    if not p or set(p) != set(q):
        return None
    ratios = {c / q[m] for m, c in p.items()}
    return next(iter(ratios)) if len(ratios) == 1 else None


def _proportional(p: Poly, q: Poly) -> Optional[Fraction]:
    """k when p = k·q (k ≠ 0, 1) and both are non-constant with the same monomials."""
    if set(p) != set(q) or not p or _const(p) is not None:
        return None
    ratios = {c / q[m] for m, c in p.items()}
    if len(ratios) != 1:
        return None
    (k,) = ratios
    # k = −1 is left alone: `1 − iz = −(1 − iz)` is how an equation X = −X is written out
    return k if k not in (0, 1, -1) else None


def random_points_equal(lhs_node, rhs_node, seed_text: str):
    """Exact comparison at POINTS random rational points (Schwartz–Zippel, see docstring).

    Returns ("ok" | "const" | "differs" | "symbolic" | "unchecked", constant difference or None)."""
    a = _arith()
    names = sorted(_vars(lhs_node) | _vars(rhs_node))
    rng = random.Random(seed_text)
    diffs = []
    tries = 0
    while len(diffs) < POINTS and tries < POINTS * 3:
        tries += 1
        env = {v: Fraction(rng.randint(1, POINT_RANGE), rng.randint(1, 97)) for v in names}
        try:
            L = a.eval_exact(lhs_node, env)
            R = a.eval_exact(rhs_node, env)
        except ZeroDivisionError:
            continue  # a pole of the rational function: draw another point
        except a._NeedsSymbolic:
            return "symbolic", None
        except (a.TooLarge, a._ParseError, a._FreeSymbol):
            return "unchecked", None
        diffs.append(L - R)
    if len(diffs) < POINTS:
        return "unchecked", None
    if all(d == 0 for d in diffs):
        return "ok", None
    if all(d == diffs[0] for d in diffs):
        return "const", diffs[0]
    return "differs", None


def _by_points(lhs_node, rhs_node, lhs_text, rhs_text, both_sides, no_solution=False, rewrite=False):
    verdict, c = random_points_equal(lhs_node, rhs_node, f"{lhs_text}={rhs_text}")
    if verdict == "ok":
        return "ok", "algebra", None, None, False
    if verdict == "const" and both_sides and not no_solution:
        note = f"algebra slip: {lhs_text} = {rhs_text} is not an identity (the sides differ by {_fmt_coef(c)} for every value)"
        return "mismatch", "algebra", note, None, False
    if verdict == "symbolic":
        return "symbolic", None, None, None, False
    if verdict == "unchecked":
        return "unchecked", None, "unchecked: not evaluable at sample points", None, False
    return "equation", None, None, None, False


def _has_root(node) -> bool:
    """√ and |·| make rewrites depend on signs (√((c−a)^2) = c − a when c > a): not checked by points."""
    if node[0] in ("sqrt", "func") or (node[0] == "bin" and node[1] == "^" and node[3][0] != "num"):
        return True
    return any(_has_root(c) for c in node[1:] if isinstance(c, tuple) and c and isinstance(c[0], str))


def is_monomial(node) -> bool:
    """A single term: symbols and numbers multiplied, raised to number powers (`YZ^2`, `4n`, `x_1`)."""
    kind = node[0]
    if kind in ("var", "num"):
        return True
    if kind == "bin" and node[1] == "*":
        return is_monomial(node[2]) and is_monomial(node[3])
    if kind == "bin" and node[1] == "^":
        return is_monomial(node[2]) and node[3][0] == "num"
    return False


def var_names(node) -> set:
    """The symbols of an expression (public name of `_vars` for arith)."""
    return _vars(node)


def _linear(node) -> bool:
    """A polynomial of degree ≤ 1 (`r + 1`, `4a − 8(a + 1)`); anything else, or not a polynomial, is not."""
    try:
        return degree(to_poly(node)) <= 1
    except (NotPolynomial, ZeroDivisionError):
        return False


def has_root_of_symbol(node, nonlinear_only: bool = False) -> bool:
    """Does a √ (or a fractional power) hold a symbol? `nonlinear_only`: not counting √ of a linear
    polynomial (`\\sqrt{r+1}`), which no identity turns into a sign-ambiguous form as √(1 − cos²θ) = |sin θ|."""
    a = _arith()
    if node[0] == "sqrt" and a.has_var(node[1]) and not (nonlinear_only and _linear(node[1])):
        return True
    if node[0] == "bin" and node[1] == "^" and node[3][0] == "bin" and node[3][1] == "/" and a.has_var(node[2]):
        return True
    return any(has_root_of_symbol(c, nonlinear_only) for c in node[1:] if isinstance(c, tuple) and c and isinstance(c[0], str))


def _vars(node) -> set:
    if node[0] == "var":
        return {node[1]}
    out = set()
    for c in node[1:]:
        if isinstance(c, tuple) and c and isinstance(c[0], str):
            out |= _vars(c)
    return out


# --------------------------------------------------------------------------- whole chains
# A chain `S0 = S1 = … = Sn` names one quantity in every side. A link of it may still be an
# equation (`|n + 6| = n + 6 = 2 − n`), so a single link that is not an identity proves nothing
# on its own; but when the two neighbours of a side are the *same function* (S(k−1) ≡ S(k+1)) and
# that side is not, the chain itself shows the slip: whatever S(k−1) = S(k) meant, S(k) = S(k+1)
# would have to undo it exactly. Checked numerically (√, π, functions of a symbol included), so
# it also covers the links SymPy only evaluates at points.

NUM_POINTS = 3
NUM_TOL = 1e-9
MAX_NUM_DEPTH = 200  # a deeper AST is not evaluated (recursion guard)
_FUNCS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "log": "log", "ln": "log", "exp": "exp",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
}


class _NoValue(Exception):
    """Not evaluable numerically here (an unknown function, an overflow, a huge exponent)."""


def num_eval(node, env: dict, depth: int = 0) -> complex:
    """Floating (complex) value of an arith AST at `env` (symbol -> value). Principal branches;
    raises _NoValue when the value is not a finite number or the expression is too deep."""
    import cmath

    if depth > MAX_NUM_DEPTH:
        raise _NoValue("too deep")
    kind = node[0]
    try:
        if kind == "num":
            return complex(float(node[1]))
        if kind == "var":
            if node[1] not in env:
                raise _NoValue(node[1])
            return env[node[1]]
        if kind == "const":
            if node[1] in ("pi", "\\pi", "π"):
                return complex(math.pi)
            if node[1] == "e":
                return complex(math.e)
            raise _NoValue(str(node[1]))
        if kind == "neg":
            return -num_eval(node[1], env, depth + 1)
        if kind == "bin":
            x = num_eval(node[2], env, depth + 1)
            y = num_eval(node[3], env, depth + 1)
            op = node[1]
            if op == "+":
                v = x + y
            elif op == "-":
                v = x - y
            elif op == "*":
                v = x * y
            elif op == "/":
                if y == 0:
                    raise _NoValue("pole")
                v = x / y
            elif op == "^":
                if abs(y) > MAX_SYM_EXPONENT or (x == 0 and y.real <= 0):
                    raise _NoValue("power")
                if y.imag == 0 and y.real == int(y.real):
                    v = x ** int(y.real)
                else:
                    v = x**y
            else:
                raise _NoValue(op)
        elif kind == "sqrt":
            k = 2 if node[2] is None else num_eval(node[2], env, depth + 1)
            if k == 0:
                raise _NoValue("root")
            x = num_eval(node[1], env, depth + 1)
            v = x ** (1 / k)
        elif kind == "binom":
            n, k = num_eval(node[1], env, depth + 1), num_eval(node[2], env, depth + 1)
            if n.imag or k.imag or n.real != int(n.real) or k.real != int(k.real) or not 0 <= n.real <= 1000:
                raise _NoValue("binomial")
            v = complex(math.comb(int(n.real), int(k.real)) if k.real >= 0 else 0)
        elif kind == "fact":
            x = num_eval(node[1], env, depth + 1)
            if x.imag != 0 or x.real > 170 or x.real < 0:
                raise _NoValue("factorial")
            v = complex(math.gamma(x.real + 1))
        elif kind == "func" and str(node[1]).startswith("log_"):
            b, r = _arith().log_base(node[1])
            if b < 2:
                raise _NoValue("logarithm to the base 0 or 1")
            v = cmath.log(num_eval(node[2], env, depth + 1)) / (math.log(b) * float(r))
        elif kind == "func":
            name = _FUNCS.get(str(node[1]).lstrip("\\"))
            if name is None:
                raise _NoValue(str(node[1]))
            v = getattr(cmath, name)(num_eval(node[2], env, depth + 1))
        else:
            raise _NoValue(kind)
    except (OverflowError, ZeroDivisionError, ValueError, TypeError) as exc:
        raise _NoValue(str(exc)) from None
    if not (math.isfinite(v.real) and math.isfinite(v.imag)):
        raise _NoValue("not finite")
    return v


def _points(names, seed_text: str, imaginary: bool):
    rng = random.Random(seed_text)
    for _ in range(NUM_POINTS * 3):
        env = {v: complex(rng.uniform(0.6, 2.9)) for v in names}
        if imaginary and "i" in env:
            env["i"] = 1j
        yield env


def same_function(a_node, b_node, imaginary: bool = False) -> Optional[bool]:
    """Are two expressions equal for every value of their symbols? Numerically at NUM_POINTS random
    points (relative tolerance NUM_TOL): True / False, None when not evaluable at enough points."""
    try:
        names = sorted(_vars(a_node) | _vars(b_node))
    except RecursionError:
        return None  # deeper than the parser ever builds: not evaluated
    hits = []
    for env in _points(names, f"{a_node!r}|{b_node!r}", imaginary):
        try:
            x, y = num_eval(a_node, env), num_eval(b_node, env)
        except (_NoValue, RecursionError):
            continue
        hits.append(abs(x - y) <= NUM_TOL * max(1.0, abs(x), abs(y)))
        if len(hits) == NUM_POINTS:
            break
    if len(hits) < NUM_POINTS:
        return None
    return all(hits)


def _chains(sm) -> list[list]:
    """The links of one step grouped into chains (link k's left side is link k−1's right side)."""
    out: list[list] = []
    for link in sm.links:
        if out and out[-1][-1].rhs is link.lhs:
            out[-1].append(link)
        else:
            out.append([link])
    return [c for c in out if len(c) >= 2]


def _side_node(side):
    if side.node is not None:
        return side.node
    return ("num", side.value, None) if side.value is not None else None


def chain_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for each chain side that breaks a chain whose neighbours agree (see above)."""
    flags: list[tuple[int, str]] = []
    for i, sm in enumerate(maths):
        for chain in _chains(sm):
            sides = [chain[0].lhs] + [link.rhs for link in chain]
            for k in range(1, len(sides) - 1):
                before, mid, after = sides[k - 1], sides[k], sides[k + 1]
                nb, nm, na = _side_node(before), _side_node(mid), _side_node(after)
                if nb is None or nm is None or na is None:
                    continue
                if not (_vars(nb) and _vars(nm)):
                    # the first two must be expressions in a symbol: `(a+b)^2 = 9 = a^2 + 2ab + b^2` states an
                    # equation and then rewrites its left side, which is how a number in the middle reads
                    # (a number last is fine: `(1 − sin²x)/cos²x = cos³x/cos²x = 1` breaks at the middle)
                    continue
                verdict = _breaks(nb, nm, na)
                if verdict:
                    flags.append((i, f"algebra slip: {mid.text} breaks the chain {before.text} = {mid.text} = {after.text}: "
                                     f"{before.text} and {after.text} are equal for every value, {mid.text} is not"))
                    break
    return flags


_MODULAR_RE = re.compile(r"\\(?:equiv|pmod|bmod|mod)\b|\bmod(?:ulo)?\b|\\circ|\\approx|≈")


def _side_value(side) -> Optional[Fraction]:
    """The number a chain side stands for: a closed form, or an expression whose symbols cancel
    (`x − x − 8`); None for anything that still depends on a symbol."""
    if not side.free:
        return side.value
    if side.node is None:
        return None
    try:
        p = to_poly(side.node)
    except Exception:  # noqa: BLE001 - not a polynomial: no value
        return None
    return _const(p) if not symbols(p) else None


def chain_value_checks(maths, steps=None) -> list[tuple[int, str]]:
    """A chain `S0 = S1 = … = Sn` names one quantity, so two of its sides that are numbers must
    be the same number: `1 = 3/8 + 1/4 + x + x = 5/8` or `2x^3 − … = (x − x − 8) = 0` went wrong
    in between. (Two numbers side by side are the arithmetic check's; a chain with ≈, degrees,
    or modular arithmetic is left alone.)"""
    flags: list[tuple[int, str]] = []
    for i, sm in enumerate(maths):
        for chain in _chains(sm):
            if any(link.approx or link.status == "unchecked" for link in chain):
                continue
            sides = [chain[0].lhs] + [link.rhs for link in chain]
            if any(_MODULAR_RE.search(side.text) for side in sides) or (steps is not None and _MODULAR_RE.search(steps[i])):
                continue
            values = [(k, _side_value(side)) for k, side in enumerate(sides)]
            values = [(k, v) for k, v in values if v is not None]
            bad = next(((j, k) for (j, u), (k, v) in zip(values, values[1:])
                        if u != v and (k > j + 1 or sides[j].free or sides[k].free)), None)
            if bad is not None:
                j, k = bad
                a, b = sides[j], sides[k]
                flags.append((i, f"algebra slip: the chain {a.text} = {'' if k == j + 1 else '… = '}{b.text} gives two different values "
                                 f"({_arith().fmt_number(_side_value(a))} and {_arith().fmt_number(_side_value(b))})"))
    return flags


def _breaks(before, mid, after) -> bool:
    """S(k−1) ≡ S(k+1) but S(k) differs from them, under every reading of `i` (a symbol or √−1)."""
    readings = (False, True) if "i" in (_vars(before) | _vars(mid) | _vars(after)) else (False,)
    bracket = False
    for imaginary in readings:
        if same_function(before, after, imaginary):
            bracket = True
        if same_function(before, mid, imaginary) is not False:
            return False
    return bracket


def solution_checks(maths, steps=None, given_links=(), question: str = "") -> list[tuple[int, str]]:
    """Algebra slips that only the solution as a whole shows (core.py adds them to d5).
    Pure Python and bounded: numeric evaluation at a few points, exact polynomial arithmetic
    within the to_poly guards, gcds of degree ≤ MAX_ROOT_DEGREE; an expression too deep to walk
    is skipped, never a crash."""
    out: list[tuple[int, str]] = []
    for check in (chain_checks, chain_value_checks, root_checks, factor_root_checks, linear_relation_checks,
                  list_rewrite_checks, plus_minus_checks, determinant_checks, case_root_checks):
        try:
            out += check(maths, steps)
        except RecursionError:
            continue
    for check, extra in ((stated_root_checks, given_equations(given_links)), (back_substitution_checks, given_links),
                         (undefined_root_checks, given_links), (dropped_case_checks, question),
                         (scaled_equation_checks, given_links)):
        try:
            out += check(maths, steps, extra)
        except RecursionError:
            continue
    return out


# --------------------------------------------------------------------------- solution sets
# Equations being solved are checked by what they *mean*: the set of values that satisfy them.
# In a chain `S0 = S1 = … = c` (or `c = S0 = S1 = …`) every side equals c at every solution, so
# a rewrite S(k−1) = S(k) must keep the roots: S(k−1) − c and S(k) − c vanish at the same values.
# A link such as `x^2 − x − 6 = (x + 3)(x + 2) = 0` (the roots 3, −2 against −3, −2) cannot be
# rescued by reading it as an equation, whatever values the solution assigns afterwards.
# (Univariate polynomials only, exact: the root sets are compared through the square-free parts,
# rad(P) = P / gcd(P, P'), so multiplicities do not matter: `(x − 2)^2 = 0` and `x − 2 = 0` agree.)

MAX_ROOT_DEGREE = 32
# a chain introduced as a case or a trial value is not a derivation
_TRIAL_RE = re.compile(
    r"\b(?:if|when|whenever|suppose|assum\w*|case|unless|plug\w*|substitut\w*|test\w*|try\w*|check\w*)\b", re.IGNORECASE)


def _univariate(p: Poly) -> Optional[tuple[str, list]]:
    """(x, dense coefficients, lowest degree first) for a polynomial in one symbol (or a constant)."""
    syms = symbols(p)
    if len(syms) > 1 or "i" in syms or _has_constant_symbols(p):
        return None  # `i` may be the imaginary unit (the step's reading is not known here)
    x = next(iter(syms)) if syms else ""
    deg = degree(p)
    if deg > MAX_ROOT_DEGREE:
        return None
    coeffs = [Fraction(0)] * (deg + 1)
    for m, c in p.items():
        coeffs[sum(e for _, e in m)] = Fraction(c)
    return x, coeffs


def _trim(a: list) -> list:
    while a and a[-1] == 0:
        a = a[:-1]
    return a


def _pmod(a: list, b: list) -> list:
    a = _trim(list(a))
    b = _trim(b)
    while len(a) >= len(b) and a:
        f = a[-1] / b[-1]
        shift = len(a) - len(b)
        for k, c in enumerate(b):
            a[k + shift] -= f * c
        a = _trim(a)
    return a


def _pdiv(a: list, b: list) -> list:
    a = _trim(list(a))
    b = _trim(b)
    q = [Fraction(0)] * max(1, len(a) - len(b) + 1)
    while len(a) >= len(b) and a:
        f = a[-1] / b[-1]
        shift = len(a) - len(b)
        q[shift] = f
        for k, c in enumerate(b):
            a[k + shift] -= f * c
        a = _trim(a)
    return _trim(q)


def _pgcd(a: list, b: list) -> list:
    a, b = _trim(a), _trim(b)
    while b:
        a, b = b, _pmod(a, b)
    return [c / a[-1] for c in a] if a else a


def _radical(a: list) -> list:
    """Square-free part, monic: the same roots, each once."""
    a = _trim(a)
    if len(a) <= 1:
        return a
    da = [k * c for k, c in enumerate(a)][1:]
    g = _pgcd(a, da)
    r = _pdiv(a, g) if len(g) > 1 else a
    return [c / r[-1] for c in r]


def same_roots(p: Poly, q: Poly) -> Optional[bool]:
    """Do p = 0 and q = 0 have the same solutions (over ℂ)? None when not two univariate
    polynomials in the same symbol of positive degree."""
    up, uq = _univariate(p), _univariate(q)
    if up is None or uq is None or not up[0] or up[0] != uq[0]:
        return None
    if len(_trim(up[1])) <= 1 or len(_trim(uq[1])) <= 1:
        return None
    return _radical(up[1]) == _radical(uq[1])


def root_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for a rewrite inside a chain that ends (or starts) in a number and changes
    the roots (see above)."""
    from .arith import NO_SOLUTION_CUE

    a = _arith()
    flags: list[tuple[int, str]] = []
    for i, sm in enumerate(maths):
        if steps is not None and i < len(steps) and NO_SOLUTION_CUE.search(steps[i]):
            continue  # `2t = 3t + 1 = 4t + 2 = 0, which is not possible`: no common root, on purpose
        for chain in _chains(sm):
            if _TRIAL_RE.search(chain[0].pre):
                continue  # "if x = −1, then …": a case, not a derivation ("or" here means "equivalently")
            sides = [chain[0].lhs] + [link.rhs for link in chain]
            for ends, inner in ((sides[-1], sides[:-1]), (sides[0], sides[1:])):
                if ends.free or ends.value is None or len(inner) < 2:
                    continue
                c = ends.value
                polys = []
                for side in inner:
                    if side.node is not None and "i" in _vars(side.node):
                        polys.append(None)  # `i` may be √−1: to_poly's reading depends on the step
                        continue
                    try:
                        polys.append(poly_sub(to_poly(side.node), {(): c} if c else {}) if side.node is not None and side.free else None)
                    except (NotPolynomial, a.TooLarge, ZeroDivisionError, a._ParseError, a._NeedsSymbolic):
                        polys.append(None)
                for k in range(1, len(inner)):
                    p, q = polys[k - 1], polys[k]
                    if p is None or q is None or not poly_sub(p, q):
                        continue
                    na, nb = inner[k - 1].node, inner[k].node
                    if na[0] == "var" or nb[0] == "var" or max(degree(p), degree(q)) < 2:
                        continue  # `x = x^3 = −1` evaluates at one value; linear sides are the equation rules' job
                    if len(to_poly(na)) < 2 and len(to_poly(nb)) < 2:
                        continue  # `z^6 = z·z^2 = 1`: monomials reduced by a relation (z^3 = 1), not a rewrite
                    if same_roots(p, q) is False:
                        x = next(iter(symbols(p)))
                        flags.append((i, f"algebra slip: {inner[k - 1].text} = {inner[k].text} = {ends.text} changes the "
                                         f"solutions: {inner[k - 1].text} = {ends.text} and {inner[k].text} = {ends.text} "
                                         f"do not have the same roots in {x}"))
                        break
                else:
                    continue
                break
    return flags


def _bindings(maths) -> dict:
    """symbol -> values the solution assigns (`x = 3`) or solves a linear equation for."""
    out: dict = {}
    for sm in maths:
        for link in sm.links:
            if link.kind != "algebra" or link.status not in ("assign", "equation"):
                continue
            if link.status == "assign" and link.lhs.node is not None and link.lhs.node[0] == "var" and not link.rhs.free:
                if link.rhs.value is not None:
                    out.setdefault(link.lhs.node[1], []).append(link.rhs.value)
                continue
            sol = linear_solution(link.diff) if link.diff is not None else None
            if sol is not None:
                out.setdefault(sol[0], []).append(sol[1])
    return out


def factor_root_checks(maths, steps=None) -> list[tuple[int, str]]:
    """A factorization or expansion that is wrong but keeps a root (`x^3 − 3x^2 − 3x − 4 =
    (x − 4)(x^2 − x + 1)`, later x = 4): the solution's value satisfies it only because both sides
    vanish there, which says nothing about it being an equation being solved. Such a tentative
    slip is withdrawn elsewhere (checks.equation_checks: values satisfy it); here it stands when
    every value the solution gives that symbol makes both sides zero and the link is not
    introduced as a case or a condition."""
    from .checks import CASE_RE  # read only: the same case words as the withdrawal

    a = _arith()
    flags: list[tuple[int, str]] = []
    bindings = None
    for i, sm in enumerate(maths):
        for link in sm.links:
            if link.kind != "algebra" or link.status != "mismatch" or not link.tentative or link.diff is None:
                continue
            if link.lhs.node is None or link.rhs.node is None or CASE_RE.search(link.pre):
                continue
            if _unexpanded(link.lhs.node) == _unexpanded(link.rhs.node):
                continue  # a factorization / expansion: one side a product of sums, the other not
            syms = _vars(link.lhs.node) | _vars(link.rhs.node)
            if len(syms) != 1 or "i" in syms:
                continue
            if _linear(link.lhs.node) and _linear(link.rhs.node):
                continue  # `4a − 8(a + 1) = a + 2` at a = −2: a linear equation's root, nothing factored
            if bindings is None:
                bindings = _bindings(maths)
            (x,) = syms
            values = bindings.get(x, [])[:6]
            if not values:
                continue
            zero_only = True
            for v in values:
                try:
                    L, R = a.eval_exact(link.lhs.node, {x: v}), a.eval_exact(link.rhs.node, {x: v})
                except Exception:  # noqa: BLE001 - not evaluable here: no evidence either way
                    zero_only = False
                    break
                if L == R and L != 0:
                    zero_only = False  # a value satisfies it with both sides nonzero: an equation being solved
                    break
            if zero_only and any(_safe_zero(a, link, x, v) for v in values):
                flags.append((i, f"algebra slip: {link.text} is not an identity; {x} = {a.fmt_number(values[0]) if len(values) == 1 else 'the values found'} "
                                 f"only makes both sides 0, which a wrong factorization keeps"))
    return flags


# the words before a value that give it as a solution of what came before: "so x = 2 or x = 4"
_GIVES_ROOT_RE = re.compile(
    r"\b(?:so|thus|hence|therefore|gives?|giving|get|yields?|implies|means|find|solutions?|roots?|zeros?|or|"
    r"then)\b|\\implies|\\rightarrow|⇒|→|^[\s$,;:.\\(){}]*$")  # ("either" is a case: CASE_RE, on the wider pre)
# a value the words reject, doubt or only suppose is no stated root: "none of x = 1, 5", "we may have introduced"
_NOT_GIVEN_RE = re.compile(
    r"\b(?:not|none|neither|nor|no|never|extraneous|reject\w*|exclud\w*|except|may|might|could|would|cannot)\b|n't\b",
    re.IGNORECASE)


def _words_around(link, lone_symbols: bool = False) -> tuple[str, str]:
    """The words between the previous formula and this link, and between it and the next formula (pre and post
    reach across formulas). With `lone_symbols`, a formula that is one letter is a word ("Solving for $a$, $a = …$")."""
    pre, post = (_LONE_SYMBOL_RE.sub(" x ", link.pre), _LONE_SYMBOL_RE.sub(" x ", link.post)) if lone_symbols else (link.pre, link.post)
    before = re.split(r"\$|\\\]|\\\)", pre.rstrip().rstrip("$").rstrip("\\[("))[-1]
    after = re.split(r"\$|\\\[|\\\(", post.lstrip().lstrip("$").lstrip("\\])"))[0]
    return before, after


_LONE_SYMBOL_RE = re.compile(r"\$\s*[A-Za-z]\s*\$|\\\(\s*[A-Za-z]\s*\\\)")


def _given_as_root(link, before: str, after: str, listed: bool = False) -> bool:
    """Do the words give the value at `link` as a solution ("so", "the roots are"; or, `listed`, only go on a list
    of them: ", and"), exactly, and not one they reject, doubt or only try?"""
    return (not link.approx and not link.rounding and bool(listed or _GIVES_ROOT_RE.search(before))
            and not _NOT_GIVEN_RE.search(before + " " + after))


def _one_symbol_equations(links) -> dict:
    """symbol -> the links among `links` that are equations in that one symbol (the question's, for instance)."""
    out: dict[str, list] = {}
    for link in links:
        syms = _equation_symbols(link)
        if syms is not None and len(syms) == 1:
            out.setdefault(next(iter(syms)), []).append(link)
    return out


# after a value: more values ("x = 1, 5, 10", one of a list) or a rounding ("r = 7, to the nearest integer")
_LIST_OR_ROUNDED_RE = re.compile(r"\s*,\s*-?\d|.*\b(?:nearest|approximately|about|roughly|rounded)\b")


def _value_of(link, x: str) -> Optional[Fraction]:
    """c for a link that states `x = c` (the symbol alone on one side, a number on the other), else None."""
    sol = linear_solution(link.diff) if link.diff is not None else None
    if sol is None or sol[0] != x:
        return None
    if not any(one.text.strip() == x and not other.free for one, other in ((link.lhs, link.rhs), (link.rhs, link.lhs))):
        return None  # `5e − 100 = e` is an equation in e, not its value
    return sol[1]


def given_equations(links) -> dict:
    """symbol -> [(text, coefficients)] of the polynomial equations in one symbol among `links` (the question's
    own, `x^2 − 4x − 14 = 3x + 16`): what the solution's first equations in that symbol must keep a root of."""
    out: dict[str, list] = {}
    for link in links:
        if link.kind != "algebra" or link.status != "equation" or link.diff is None:
            continue
        uni = _univariate(link.diff)
        if uni is not None and uni[0] and len(_trim(uni[1])) >= 2:
            out.setdefault(uni[0], []).append((link.text, uni[1]))
    return out


def stated_root_checks(maths, steps=None, given=None) -> list[tuple[int, str]]:
    """(step, reason) for a polynomial equation in one symbol that the solution derives, or a value it gives as a
    solution, which keeps none of the roots of the equations in that symbol just before it (in the same step or
    the previous one with a formula; the question's own equations, `given`, before the first one):

    - a value: `x^2 − 5x + 6 = 0`, which factors as `(x − 2)(x − 3) = 0`, "so x = 2 or x = 4" (the latest
      equation of degree ≥ 2: linear ones are checks.equation_checks' job);
    - an equation: `x^2 = 1/12`, then `x^4 = 1/24`; the question's `x^2 − 4x − 14 = 3x + 16`, then
      `x^2 − x − 30 = 0` (a term moved across "=" without its sign changed). A derivation may lose roots
      (dividing by a factor, taking a square root) or gain some (squaring both sides), never all of them:
      two equations with no common root (over ℂ; exact, through the gcd) cannot both hold.

    Left alone: a case or trial value, a value the words reject or only suppose, a value already stated for
    that symbol (a recap), an equation that only evaluates at a value given before it in the step (`for
    n = 19, n(n + 1) = 380`), alternatives (`x^2 = 4 or x^2 = 9`, the same left side twice), a pair of linear
    equations (equation_checks), a step that says there is no solution. A root the solution leaves out is no
    slip here: it may be rejected for a reason this check cannot see."""
    from .arith import NO_SOLUTION_CUE
    from .checks import CASE_RE, previous_math_steps

    flags: list[tuple[int, str]] = []
    # symbol -> [(step, "lhs = rhs", its coefficients)], oldest first; the question's at step −1
    recent: dict[str, list] = {x: [(-1, text, c) for text, c in eqs] for x, eqs in (given or {}).items()}
    stated: dict[str, set] = {}  # symbol -> the values stated for it so far
    last_math = previous_math_steps(maths)
    for i, sm in enumerate(maths):
        if steps is not None and i < len(steps) and (_TRIAL_RE.search(steps[i][:40]) or NO_SOLUTION_CUE.search(steps[i])):
            recent.clear()
            continue
        set_here: set[str] = set()  # symbols given a value earlier in this step
        for link in sm.links:
            if link.kind != "algebra" or link.diff is None or link.status not in ("assign", "equation"):
                continue
            uni = _univariate(link.diff)
            if uni is None or not uni[0]:
                for x in symbols(link.diff):  # an equation this check cannot read: what follows may solve it
                    recent.pop(x, None)
                continue
            x, coeffs = uni
            if CASE_RE.search(link.pre) or _TRIAL_RE.search(link.pre):
                recent.pop(x, None)
                set_here.add(x)
                continue
            # the question's equations count until the solution's first equation in x; the solution's, for a step
            eqs = [e for e in recent.get(x, []) if e[0] in (i, last_math[i]) or (e[0] == -1 and x not in stated)]
            value = _value_of(link, x)
            before, after = _words_around(link)
            if value is None:
                if x in set_here:
                    continue  # evaluated at the value just given, not solved
                # what it must keep a root of: the equations just before it and every equation of the question
                # (`the second quadratic factors as …` keeps a root of the question's second quadratic)
                known = [e for e in eqs if e[0] >= 0] + [(-1, text, c) for text, c in (given or {}).get(x, [])]
                if (known and _derived(link, before, i, sm, [e[0] for e in eqs], steps)
                        and not _AMBIGUOUS_SLASH_RE.search(" ".join([link.text] + [e[1] for e in known]))
                        and max(len(_trim(c)) for c in [coeffs] + [e[2] for e in known]) >= 3
                        and not any(text.split("=")[0].replace(" ", "") == link.lhs.text.replace(" ", "") for _, text, _ in known)
                        and all(len(_pgcd(coeffs, c)) <= 1 for _, _, c in known)):
                    step, text, _ = eqs[-1] if eqs else known[0]
                    flags.append((i, f"algebra slip: {link.text} keeps none of the roots of {text}"
                                     f"{' (the question)' if step == -1 else '' if step == i else f' (step {step})'}"))
                    eqs = []  # what follows is derived from this one
                recent[x] = eqs + [(i, link.text, coeffs)]
                stated.setdefault(x, set())
                continue
            set_here.add(x)
            seen = stated.setdefault(x, set())
            if (eqs and len(_trim(eqs[-1][2])) >= 3 and value not in seen and _given_as_root(link, before, after)
                    and not _LIST_OR_ROUNDED_RE.match(after)
                    and all(_horner(c, value) != 0 for _, _, c in eqs)):
                step, text, _ = eqs[-1]
                flags.append((i, f"algebra slip: {x} = {_arith().fmt_number(value)} does not solve {text}"
                                 f"{' (the question)' if step == -1 else '' if step == i else f' (step {step})'}"))
                recent.pop(x)  # one flag per equation: the values after the first wrong one follow from it
            seen.add(value)
    return flags


# an equation named as an object, or one of several: "the roots of", "the polynomial", "either", "or"
_NOT_DERIVED_RE = re.compile(
    r"\b(?:roots?|zeros?|solutions?|polynomials?|quadratics?|equations?|either|or|and|case|cases|if|when|suppose|"
    r"first|second|third|similarly|also|another|other|consider|construct\w*)\b", re.IGNORECASE)


def _derived(link, before: str, i: int, sm, previous_steps: list, steps=None) -> bool:
    """Is the equation at `link` derived from the one just before it? Words that derive it ("so", "squaring both
    sides") and none that name it as an object or an alternative; or no words at all: a display that opens its
    step right after a step with an equation (`\\[ 6b - 9 = 27 \\]`, a heading, `\\[ 6b = 18 \\]`), where the
    step before does not end by naming an object ("We can then construct the polynomial")."""
    from .checks import DERIVATION_RE, step_head

    if _NOT_DERIVED_RE.search(before) or _NOT_GIVEN_RE.search(before):
        return False
    if DERIVATION_RE.search(before):
        return True
    if re.search(r"[A-Za-z]{2,}", before) or link is not sm.links[0] or steps is None or i >= len(steps):
        return False
    head = step_head(steps[i])  # "Subtract $x + 3$: $4 = \\sqrt{3x}$"
    if re.search(r"[A-Za-z]{2,}", head) and (_NOT_DERIVED_RE.search(head) or not DERIVATION_RE.search(head)):
        return False  # words open the step ("Our second equation $f(a) = 2a - 20 = 14$")
    if i > 0 and (_NOT_DERIVED_RE.search(steps[i - 1][-80:]) or _NOT_GIVEN_RE.search(steps[i - 1][-80:])):
        return False
    return any(j < i for j in previous_steps)


# `1/3b`: a third of b or 1/(3b)? GSM8K writes the first and the parser reads the second
_AMBIGUOUS_SLASH_RE = re.compile(r"\d\s*/\s*\d+\s*[a-zA-Z]")


# --------------------------------------------------------------------------- values put back
def back_substitution_checks(maths, steps=None, given_links=()) -> list[tuple[int, str]]:
    """(step, reason) for the step of a derivation that changed the solutions, found by putting the solution's
    own value back. In E0 → E1 → … → En, "so x = v", each equation implies the next, so v, a root of En, solves
    every Ek unless a step changed the solutions: where v solves E(k+1), …, En and not Ek, the step that wrote
    E(k+1) is the slip. (`√(x + 7) = √x + √3`, squared as `x + 7 = x + √(3x) + 3`, then `4 = √(3x)`, `16 = 3x`,
    x = 16/3: it solves every equation after the squaring and not the one before.) Numeric (radicals,
    fractions, absolute values, powers), so it reaches what the polynomial checks above cannot.

    A derivation is a run of equations in one symbol, each in the same step as the one before or the next
    step with a formula, with no case, trial or alternative words before it (`_derived`); the question's own
    equations in that symbol open the first one. Left alone: a solution that says a value is extraneous, or
    that there is none (squaring adds roots, which it may reject), rounded or approximate values, values a
    derivation of one equation gives, and any equation not evaluable at the value."""
    from .arith import NO_SOLUTION_CUE
    from .checks import CASE_RE, previous_math_steps

    if steps is not None and any(NO_SOLUTION_CUE.search(s) for s in steps):
        return []
    last_math = previous_math_steps(maths)
    # symbol -> [(step, link)] of the derivation so far
    chains: dict[str, list] = {x: [(-1, link) for link in links] for x, links in _one_symbol_equations(given_links).items()}
    flags: list[tuple[int, str]] = []
    for i, sm in enumerate(maths):
        if steps is not None and i < len(steps) and _TRIAL_RE.search(steps[i][:40]):
            chains.clear()
            continue
        values: dict[str, list] = {}  # symbol -> the values this step states for it
        for link in sm.links:
            syms = _equation_symbols(link)
            if syms is None or len(syms) != 1:
                continue
            (x,) = syms
            if CASE_RE.search(link.pre) or _TRIAL_RE.search(link.pre):
                chains.pop(x, None)
                continue
            if link.lhs.node[0] == "var" and not _vars(link.rhs.node):
                if _given_as_root(link, *_words_around(link)):  # (not "Taking x = 2": a value tried)
                    values.setdefault(x, []).append(link)
                continue
            chain = chains.get(x, [])
            before, _ = _words_around(link)
            near = [j for j, _ in chain if j in (i, last_math[i]) or (j == -1 and all(k == -1 for k, _ in chain))]
            if chain and near and _derived(link, before, i, sm, near, steps):
                chain.append((i, link))
            else:
                chain = [(i, link)]
            chains[x] = chain
        for x, links in values.items():
            chain = chains.pop(x, [])
            if len(chain) < 2 or not any(j >= 0 for j, _ in chain) or not any(_nonlinear(link) for _, link in chain):
                continue  # (linear equations one after another are checks.equation_checks' job)
            if any(_AMBIGUOUS_SLASH_RE.search(link.text) for _, link in chain):
                continue
            vals = [v for v in (_num_value(l.rhs.node) for l in links) if v is not None]
            solves = [_solves(link, x, vals) for _, link in chain]
            if not vals or None in solves or not solves[-1]:
                continue
            k = max((k for k, ok in enumerate(solves) if not ok), default=None)
            if k is None:
                continue
            (j0, e0), (j1, e1) = chain[k], chain[k + 1]
            where = "the question" if j0 == -1 else f"step {j0}" if j0 != j1 else "the equation before it"
            flags.append((j1, f"algebra slip: {e1.text} changed the solutions: {x} = {links[0].rhs.text} solves it, "
                              f"and not {e0.text} ({where})"))
    return flags


def _equation_symbols(link) -> Optional[set]:
    """The symbols of an equation or assignment whose sides could be read (None otherwise)."""
    if link.kind != "algebra" or link.lhs.node is None or link.rhs.node is None:
        return None
    if link.status not in ("assign", "equation", "symbolic-id", "symbolic") and not (link.status == "mismatch" and link.tentative):
        return None  # (a tentative mismatch may be an equation being solved: `x^2 − 3x − 6 = 324 − 18x + x^2`)
    if link.modulus:
        return None
    syms = _vars(link.lhs.node) | _vars(link.rhs.node)
    return None if "i" in syms else syms


def _nonlinear(link) -> bool:
    """An equation of degree ≥ 2, or not a polynomial (radicals, fractions of the unknown, absolute values)."""
    if link.diff is None:
        return True
    uni = _univariate(link.diff)
    return uni is None or len(_trim(uni[1])) >= 3


def _num_value(node) -> Optional[complex]:
    try:
        v = num_eval(node, {})
    except (_NoValue, ArithmeticError, ValueError, OverflowError, RecursionError):
        return None
    return v if abs(v.imag) <= 1e-12 * max(1.0, abs(v)) else None


def _solves(link, x: str, values: list) -> Optional[bool]:
    """Does one of the values make both sides agree (1e-9, relative)? None when a side is not evaluable at all of them."""
    seen = False
    for v in values[:4]:
        try:
            lv, rv = num_eval(link.lhs.node, {x: v}), num_eval(link.rhs.node, {x: v})
        except (_NoValue, ArithmeticError, ValueError, OverflowError, RecursionError):
            continue
        if max(abs(lv.imag), abs(rv.imag)) > 1e-12 * max(1.0, abs(lv), abs(rv)):
            continue  # `√(49 − 16k) = √(−15)`: principal branches do not survive squaring; real values only
        seen = True
        if abs(lv - rv) <= 1e-9 * max(1.0, abs(lv), abs(rv)):
            return True
    return False if seen else None


def _horner(coeffs: list, v: Fraction) -> Fraction:
    out = Fraction(0)
    for c in reversed(coeffs):
        out = out * v + c
    return out


def _safe_zero(a, link, x, v) -> bool:
    try:
        return a.eval_exact(link.lhs.node, {x: v}) == 0 == a.eval_exact(link.rhs.node, {x: v})
    except Exception:  # noqa: BLE001
        return False


# --------------------------------------------------------------------------- relations and domains
# the words a step may put between an equation and the one it derives from it: derivation words
# (checks.DERIVATION_RE) and these, nothing else ("The difference is 2, so $x - y = 2$" states a new relation)
_GLUE_WORDS = frozenset(
    "we us it this that which by for to the both sides side each from now can again further".split())


_EACH_RE = re.compile(r"\b(?:for|each|every)\b", re.IGNORECASE)  # "for b/a = 3/6, b = 2a": one of several
# (and "b/a = 6/3, or b/a = 3/6. So b = 2a or a = 2b": alternatives, paired in any order)
def linear_relation_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for a linear equation in two or more symbols derived from the one just before it in the
    same symbols, which is not a multiple of it: `3x = 8y`, "we get" `x = \\frac{3y}{8}`. Rearranging, scaling
    and solving for one symbol keep a linear relation up to a constant factor; nothing else does.

    Only ratios (no constant term), or an equation that follows an arrow in the same formula (`10n + D = n + 619
    \\implies 11n + D = 619`): equations with a constant (`x + y = 10`, then "so" `3a + 5b = 16`) are as often
    the next equation of a system, derived from another one or from the question, as a rearrangement. Only neighbours
    with nothing but derivation words between them ("so", "we get", "dividing by 3"): a sentence between two
    equations ("The difference is 2, so") states a new relation. A case, a trial value ("for b/a = 3/6") or
    another equation in between parts them; the same left side twice is two alternatives."""
    from .checks import CASE_RE, DERIVATION_RE, previous_math_steps

    flags: list[tuple[int, str]] = []
    last_math = previous_math_steps(maths)
    prev = None  # (step, link) of the last equation or assignment read
    for i, sm in enumerate(maths):
        if steps is not None and i < len(steps) and _TRIAL_RE.search(steps[i][:40]):
            prev = None
            continue
        for link in sm.links:
            if link.kind != "algebra" or link.status not in ("assign", "equation"):
                continue
            diff = link.diff
            if (diff is None or degree(diff) != 1 or len(symbols(diff)) < 2 or _has_constant_symbols(diff)
                    or CASE_RE.search(link.pre) or _TRIAL_RE.search(link.pre)):
                prev = None
                continue
            if (prev is not None and prev[0] in (i, last_math[i]) and symbols(prev[1].diff) == symbols(diff)
                    and not _EACH_RE.search(prev[1].pre) and not re.search(r"\bor\b", _words_around(prev[1])[0] + _words_around(link)[1])):
                before = _words_around(link, lone_symbols=True)[0]
                end = before.lower().rfind(prev[1].rhs.text.lower()) if prev[0] == i else -1
                before = before[end + len(prev[1].rhs.text):] if end >= 0 else before  # (E1 in the same formula)
                words = re.findall(r"[A-Za-z]{2,}", before)
                # only ratios (`3x = 8y`), or an equation right after an arrow in one formula (`10n + D = n + 619
                # \implies 11n + D = 619`): an equation with a constant is as often the next one of a system
                ratios = not diff.get(()) and not prev[1].diff.get(())
                arrow = prev[0] == i and re.fullmatch(r"\s*(?:\\implies|\\Rightarrow|⇒|\\therefore|\\rightarrow|→)\s*", before)
                if ((ratios or arrow) and words and DERIVATION_RE.search(before) and not _NOT_DERIVED_RE.search(before)
                        and all(w.lower() in _GLUE_WORDS or DERIVATION_RE.fullmatch(w) for w in words)
                        and prev[1].lhs.text.replace(" ", "") != link.lhs.text.replace(" ", "")
                        and ratio(diff, prev[1].diff) is None):
                    where = "" if prev[0] == i else f" (step {prev[0]})"
                    flags.append((i, f"algebra slip: {link.text} does not follow from {prev[1].text}{where}: "
                                     f"the relation between {', '.join(sorted(symbols(diff)))} changed"))
            prev = (i, link)
    return flags


# words by which a solution sets a value aside: it may list the roots of a cleared equation, then reject one
_SETS_ASIDE_RE = re.compile(
    r"\b(?:extraneous|reject\w*|exclud\w*|undefined|not defined|denominators?|discard\w*|not allowed|domain|invalid|"
    r"not valid|not a (?:valid )?solution|cannot|can't|none of|introduc\w*|check\w*)\b|\\neq|\\ne\b|≠", re.IGNORECASE)


_LIST_GLUE_RE = re.compile(r"[\s$,;.]*(?:and|or)?[\s$,;.]*")


def undefined_root_checks(maths, steps=None, given_links=()) -> list[tuple[int, str]]:
    """(step, reason) for a value given as a solution at which the question's own equation is undefined: for
    `\\frac{x^2 − 3}{x + 2} = \\frac{2x}{x^2 − 4}`, clearing the denominators gives a cubic with the root −2,
    which makes a denominator zero and so is no solution. Exact (rational values only). Left alone: a solution
    whose words set a value aside anywhere ("extraneous", "undefined", "x ≠ −2"), and values tried or doubted."""
    from .checks import CASE_RE

    if steps is None or any(_SETS_ASIDE_RE.search(s) for s in steps):
        return []
    a = _arith()
    questions = _one_symbol_equations(given_links)
    if not questions:
        return []
    for i, sm in enumerate(maths):
        if i < len(steps) and _TRIAL_RE.search(steps[i][:40]):
            continue
        listing = None  # the symbol of the value just given in this step: "x = 1, x = 3, and x = −2" go on listing
        for link in sm.links:
            syms = _equation_symbols(link)
            if syms is None or len(syms) != 1 or link.lhs.node[0] != "var" or _vars(link.rhs.node):
                listing = None
                continue
            (x,) = syms
            before, after = _words_around(link)
            # (a value after "and" goes on the list of the one before: "x = 1, x = 3, and x = −2")
            given = _given_as_root(link, before, after, listed=listing == x and bool(_LIST_GLUE_RE.fullmatch(before)))
            listing = None
            if (x not in questions or CASE_RE.search(link.pre) or _TRIAL_RE.search(link.pre) or not given
                    or re.match(r"\s*,\s*-?\d", after)):  # ("x = 1, 5, 10, 25": the poles listed, not roots)
                continue
            listing = x
            try:
                v = a.eval_exact(link.rhs.node)
            except Exception:  # noqa: BLE001 (not a rational number: nothing exact to put back)
                continue
            for q in questions[x]:
                if _undefined_at(a, q, x, v):
                    return [(i, f"algebra slip: {x} = {link.rhs.text} is no solution: the question's {q.text} "
                                f"is undefined there (a denominator is zero)")]
    return []


def _undefined_at(a, link, x: str, v: Fraction) -> bool:
    """Does a side of the equation divide by zero at x = v (and nothing else stop its evaluation)?"""
    for node in (link.lhs.node, link.rhs.node):
        try:
            a.eval_exact(node, {x: v})
        except ZeroDivisionError:
            return True
        except Exception:  # noqa: BLE001 (a root, a bound: not decided here)
            continue
    return False


# `|A| = c` as a whole formula or a whole side of one: after "$", "=", ",", "\implies"; before "$", ",", ".", "\quad"
_ABS_EQUATION_RE = re.compile(
    r"(?:\\left|\\big|\\Big)?(?:\||\\lvert|\\vert)(?P<inner>[^|$\\]{1,40}?)(?:\\right|\\big|\\Big)?(?:\||\\rvert|\\vert)"
    r"\s*=\s*(?P<c>\d+(?:\.\d+)?|\\d?frac\{\d+\}\{\d+\})(?=\s*(?:$|[$,;]|\.(?!\d)|\\\]|\\\)|\\quad|\\qquad|\\implies|"
    r"\\Rightarrow|\\iff|\\text|\\\\|and\b|or\b|means\b|so\b))")
_ABS_BEFORE_RE = re.compile(r"(?:^|[$=,;:(]|\\\[|\\\(|\\implies|\\Rightarrow|\\iff|\\quad|\\qquad|\\\\|\b[a-z]{2,}\.?)\s*$")
# the question asks for one of the solutions or bounds them; the solution speaks of both signs or sets a case aside
_ONE_ROOT_ASKED_RE = re.compile(
    r"\b(?:positive|negative|nonnegative|non-negative|greatest|largest|least|smallest|maximum|minimum|"
    r"complex|vectors?|modulus|magnitude|matrix|inequalit\w*)\b|\\(?:geq?|leq?|mathbf|vec)\b|[<>≥≤]", re.IGNORECASE)
_BOTH_SIGNS_RE = re.compile(r"\\pm|±|\\mp|\bnegative\b|\bopposite\b|\bboth\b|\bplus or minus\b", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _abs_equations(text: str) -> tuple:
    """(x, the inner polynomial A, c) of each `|A| = c` in text with A linear in one symbol x and c > 0 (cached:
    a question is read again for each of its candidates; the polynomials are shared, so never changed)."""
    a = _arith()
    out = []
    for m in _ABS_EQUATION_RE.finditer(text or ""):
        if not _ABS_BEFORE_RE.search(text[max(0, m.start() - 12):m.start()]):
            continue  # `2 - |x| = 1`, `5|x| = 10`: |A| is part of a side, not the side
        try:
            inner = to_poly(a.parse_span(a.tokenize(m.group("inner"))))
            c = a.eval_exact(a.parse_span(a.tokenize(m.group("c"))))
        except Exception:  # noqa: BLE001 (anything unreadable is left alone)
            continue
        uni = _univariate(inner)
        if uni is None or not uni[0] or len(_trim(uni[1])) != 2 or c <= 0:
            continue
        out.append((uni[0], inner, c))
    return tuple(out)


def dropped_case_checks(maths, steps=None, question: str = "") -> list[tuple[int, str]]:
    """(step, reason) for an absolute-value equation `|A| = c` (c > 0, A linear in x, in the question or the
    solution) of which the solution works one case only: `|x − 1| = 7`, "so x − 1 = 7, which gives x = 8", and
    never x − 1 = −7 (x = −6). A case counts as worked when the solution writes its equation (any multiple of
    A ∓ c = 0) or its root as a value of x. Left alone: questions that ask for one root or bound x ("the
    largest", "positive", "x > 0"), moduli of complex numbers and vectors, and solutions that speak of both signs
    ("±", "negative") or set a value aside."""
    from .arith import NO_SOLUTION_CUE

    if steps is None or _ONE_ROOT_ASKED_RE.search(question or ""):
        return []
    found = [(-1, e) for e in _abs_equations(question or "")]
    found += [(i, e) for i, s in enumerate(steps) for e in _abs_equations(s)]
    flags: list[tuple[int, str]] = []
    done = set()
    for at, (x, inner, c) in found:
        branches = [poly_sub(inner, {(): c}), poly_sub(inner, {(): -c})]
        roots = [linear_solution(b)[1] for b in branches]
        if (x, frozenset(roots)) in done:
            continue  # `|2 − x| = 3` in the question, `|x − 2| = 3` in the solution: one equation
        done.add((x, frozenset(roots)))
        later = steps[max(at, 0):]
        if any(_BOTH_SIGNS_RE.search(s) or _SETS_ASIDE_RE.search(s) or NO_SOLUTION_CUE.search(s) or _ONE_ROOT_ASKED_RE.search(s)
               for s in later):
            continue
        worked: list[Optional[int]] = [None, None]  # the first step that works each case
        for i in range(max(at, 0), len(maths)):
            for link in maths[i].links:
                if link.kind != "algebra" or link.diff is None or link.status not in ("assign", "equation"):
                    continue
                for k in (0, 1):
                    if worked[k] is None and (ratio(link.diff, branches[k]) is not None or _value_of(link, x) == roots[k]):
                        worked[k] = i
        if (worked[0] is None) != (worked[1] is None):
            k = 0 if worked[1] is None else 1
            fmt = _arith().fmt_number
            lost = f"{fmt_poly(inner)} = {fmt(-c if k == 0 else c)}"
            root = f"{x} = {fmt(roots[1 - k])}"
            flags.append((worked[k], f"algebra slip: one case of |{fmt_poly(inner)}| = {fmt(c)} is dropped: "
                                     f"{lost}{f' ({root})' if root != lost else ''} is never worked"))
    return flags


# a formula: `$…$`, `$$…$$`, `\(…\)` or `\[…\]` (inequalities.py and series.py read the same)
_FORMULA_RE = re.compile(r"\\\[(.+?)\\\]|\\\((.+?)\\\)|\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)


def formulas(text: str) -> list[str]:
    """The formulas of a text, in order."""
    return [next(g for g in m.groups() if g is not None) for m in _FORMULA_RE.finditer(text)]


def formula_node(text: str):
    """The AST of a formula's text (one that `formulas` returns, its delimiters gone), read in math mode as
    between them: `bc` is b·c, not a word."""
    a = _arith()
    return a.parse_span(a.tokenize(f"\\({text}\\)")[1:-1])


def formula_poly(text: str) -> Poly:
    """A formula's text as a polynomial (formula_node)."""
    return to_poly(formula_node(text))


_LIST_SEPARATOR_RE = re.compile(r"\s*(?:(?<!\\)[,;]|\\q?quad\b)\s*")  # (not the spaces `\,` and `\;`)


def _list_items(formula: str) -> Optional[list]:
    """The items of a formula that is a list (`(−3x^3)(4), \\quad (−8x)(−7x^2)`), split at separators outside
    brackets; None when it is no list of two or more items, or holds a relation."""
    if re.search(r"=|<|>|\\[lg]eq?\b|\\neq?\b|\\approx|\\cdots|\\ldots|\\dots", formula):
        return None
    items, depth, start = [], 0, 0
    for m in re.finditer(r"[({\[]|[)}\]]|" + _LIST_SEPARATOR_RE.pattern, formula):
        tok = m.group(0)
        if tok in "({[":
            depth += 1
        elif tok in ")}]":
            depth -= 1
        elif depth == 0:
            items.append(formula[start:m.start()])
            start = m.end()
    items.append(formula[start:])
    items = [t for t in (re.sub(r"^(?:\s|\\[;,:! ]|~)+|(?:\s|\\[;,:! ]|~)+$", "", t) for t in items) if t]
    return items if len(items) >= 2 else None


def list_rewrite_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for a list of expressions rewritten item by item in the next formula, where every item
    but one keeps its value: `(−3x^3)(4), (−3x^2)(3x), (−8x)(−7x^2), (1)(2x^3)`, then (a heading between)
    `−12x^3, −9x^3, −56x^3, 2x^3` — the third is 56x^3. Lists of the same length, every item written anew (a list
    of primes, then another with one changed, is two lists, not a rewrite), all items polynomials."""
    if steps is None:
        return []
    prev = None  # (step, items) of the last formula, when it was a list
    flags: list[tuple[int, str]] = []
    for i, step in enumerate(steps):
        found = formulas(step)
        if not found:
            continue
        items = _list_items(found[0]) if len(found) == 1 else None
        if items is not None and prev is not None and len(items) == len(prev[1]):
            try:
                before = [formula_poly(t) for t in prev[1]]
                after = [formula_poly(t) for t in items]
            except Exception:  # noqa: BLE001 (an item that is no polynomial: nothing to compare)
                before = after = None
            if before is not None:
                changed = [k for k, (p, q) in enumerate(zip(before, after)) if poly_sub(p, q)]
                rewritten = all(t1.replace(" ", "") != t2.replace(" ", "") for t1, t2 in zip(prev[1], items))
                if len(changed) == 1 and rewritten:
                    k = changed[0]
                    flags.append((i, f"algebra slip: {prev[1][k]} (step {prev[0]}) is {fmt_poly(before[k])}, not "
                                     f"{items[k]}; the list's other items keep their values"))
        prev = (i, items) if items is not None else None
    return flags


# Positions in a step with its spaces left out: a link's text is spaced ("4a^2+1 = 9"), the step may not be.
def _link_at(step: str, link) -> int:
    """Where the link's text sits in the step (−1 when the step does not hold it)."""
    return re.sub(r"\s+", "", step).find(re.sub(r"\s+", "", link.text))


def _index_at(step: str, index: int) -> int:
    """Where the character step[index] sits, counted the same way."""
    return len(re.sub(r"\s+", "", step[:index]))


# `x = \pm 8`, `x = \pm\sqrt{5}`, `x = \pm \frac{3}{2}`: two values at once
_PLUS_MINUS_RE = re.compile(r"(?<![\w\\])([A-Za-z])\s*=\s*(?:\\pm|±)\s*(\d+(?:\.\d+)?|\\sqrt\s*\{\s*\d+\s*\}|\\sqrt\s*\d|"
                            r"\\d?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\}|\\d?frac\s*\{\s*\\sqrt\s*\{\s*\d+\s*\}\s*\}\s*\{\s*\d+\s*\})"
                            r"(?![\w.^/]|\s*(?:[*+\-^/(]|\\(?:cdot|times|sqrt|pi|d?frac|left)\b))")


def plus_minus_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for `x = ±c` where neither c nor −c solves the equation in x of degree ≥ 2 just before it
    (in the same step, before the `±`, or in the previous step with a formula): `x^2 = 64`, "so x = ±6". One
    of the two failing is no slip (a root the solution rejects next); a trial or case is left alone."""
    from .checks import CASE_RE, previous_math_steps

    if steps is None:
        return []
    a = _arith()
    last_math = previous_math_steps(maths)
    flags: list[tuple[int, str]] = []
    for i, step in enumerate(steps[: len(maths)]):
        for m in _PLUS_MINUS_RE.finditer(step):
            x = m.group(1)
            if _TRIAL_RE.search(step[: m.start()]) or CASE_RE.search(step[: m.start()]):
                continue
            equations = [link for k in (last_math[i], i) if k is not None for link in maths[k].links
                         if link.kind == "algebra" and link.diff is not None and link.status == "equation"
                         and (k < i or -1 < _link_at(step, link) < _index_at(step, m.start()))]
            unis = [(link, u) for link in equations if (u := _univariate(link.diff)) is not None and u[0] == x and len(_trim(u[1])) >= 3]
            if not unis:
                continue
            link, (_, coeffs) = unis[-1]
            try:
                c = num_eval(a.parse_span(a.tokenize(m.group(2))), {})
            except Exception:  # noqa: BLE001 (a value the parser cannot read: nothing to check)
                continue
            scale = max(1.0, max(abs(float(k)) for k in coeffs) * max(1.0, abs(c)) ** (len(coeffs) - 1))
            if all(abs(sum(complex(k) * v**n for n, k in enumerate(coeffs))) > 1e-9 * scale for v in (c, -c)):
                flags.append((i, f"algebra slip: {m.group(0).strip()} does not solve {link.text}: neither sign is a root"))
    return flags


# "Multiply the first equation by 3:", "multiplying (2) by -4", "Multiply both sides by 4:": an equation scaled by k
_SCALE_CUE_RE = re.compile(
    r"\bmultipl\w*\s+(?:(?:the\s+)?(?:(?:first|second|third|top|bottom|1st|2nd|3rd)\s+)?(?:equation|eq\.?|row)|"
    r"\(\s*\d\s*\)|both\s+sides(?:\s+of\s+(?:the|this|that)\s+equation)?)\s*\$?\s*by\s+\$?\s*(-?\d+)(?![\d.^/\w])", re.IGNORECASE)


def scaled_equation_checks(maths, steps=None, given_links=()) -> list[tuple[int, str]]:
    """(step, reason) for an equation announced as another one multiplied by k ("Multiply the first equation by 3:
    $24f + 6g = 2786$") that is k times one of the earlier equations (the question's or the solution's, in any
    symbols) in every term but one: `3 × (8f + 2g = 932)` is `24f + 6g = 2796`. An equation that is k times an
    earlier one, or that differs from every k-multiple in more than one term (another equation was meant), is
    left alone."""
    if steps is None:
        return []
    earlier = [link.diff for link in given_links if link.diff]
    flags: list[tuple[int, str]] = []
    pending = None  # a cue in a heading ("2. **Multiply the second equation by 4:**") scales the next equation
    for i, sm in enumerate(maths[: len(steps)]):
        eqs = [link for link in sm.links if link.kind == "algebra" and link.diff and link.status in ("equation", "mismatch")]
        cue = _SCALE_CUE_RE.search(steps[i])
        if cue is not None and not sm.links:
            pending = cue
            continue
        scaled_link, before = None, []
        if cue is not None:  # the first equation written after the cue; the ones before it count as earlier
            after = [link for link in eqs if _link_at(steps[i], link) >= _index_at(steps[i], cue.end())]
            scaled_link = after[0] if after else None
            before = [link.diff for link in eqs if link not in after]
        elif pending is not None and eqs:
            cue, scaled_link = pending, eqs[0]
        pending = None
        if scaled_link is not None and len(scaled_link.diff) >= 2:
            found = _one_term_off(scaled_link.diff, Fraction(int(cue.group(1))), earlier + before)
            if found is not None:
                k, d, scaled = found
                flags.append((i, f"algebra slip: {scaled_link.text} is not {_arith().fmt_number(k)} × ({fmt_poly(d)} = 0), "
                                 f"which is {fmt_poly(scaled)} = 0 (one term differs)"))
        earlier += [link.diff for link in eqs]
    return flags


def _one_term_off(p: Poly, k: Fraction, earlier: list) -> Optional[tuple[Fraction, Poly, Poly]]:
    """(k, d, k·d) for the latest earlier equation d whose k-multiple (either side first) has p's symbols and differs
    from p in exactly one term; None when p is a multiple of an earlier equation, or k is 0 or ±1."""
    if k in (0, 1, -1) or any(ratio(p, d) in (k, -k) for d in earlier):
        return None
    symbols_of_p = set(p) - {()}
    for d in reversed(earlier):
        scaled = {m: k * c for m, c in d.items()}
        if len(symbols_of_p) < 2 or set(scaled) - {()} != symbols_of_p:
            continue
        for sign in (1, -1):
            if sum(sign * scaled.get(m, 0) != p.get(m, 0) for m in set(scaled) | set(p)) == 1:
                return k, d, scaled
    return None


# --------------------------------------------------------------------------- determinants
# `\begin{vmatrix} a & b \\ c & d \end{vmatrix} = bc - ad`: the equation parser leaves a matrix out, so a determinant
# expanded with the wrong signs or products passes unread. A 2×2 or 3×3 determinant of polynomial entries is
# expanded exactly and compared with the expression after it. Only an expansion is judged: a number against a
# number, or an expression in the same products as the determinant's (`bc − ad`); a determinant of symbols set
# to a number or to another expression (`= 4`, `= x + 2`) is an equation to solve.
_DET_RE = re.compile(r"(?:\\det\s*(?:\\left\s*)?\\begin\{[pb]matrix\}|\\begin\{vmatrix\})(?P<body>[^=]{1,400}?)"
                     r"\\end\{[pbv]matrix\}(?:\s*\\right\s*\)?)?\s*=\s*(?P<rhs>[^=]{1,200})")


def _determinant(rows: list[list[Poly]]) -> Poly:
    if len(rows) == 2:
        (a, b), (c, d) = rows
        return _add(_mul(a, d), _mul(b, c), -1)
    out: Poly = {}
    for k in range(3):
        minor = [[row[j] for j in range(3) if j != k] for row in rows[1:]]
        out = _add(out, _mul(rows[0][k], _determinant(minor)), -1 if k == 1 else 1)
    return out


def determinant_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for a 2×2 or 3×3 determinant whose expansion written after it is not its value."""
    if steps is None:
        return []
    a = _arith()
    flags: list[tuple[int, str]] = []
    for i, step in enumerate(steps):
        if "matrix" not in step:
            continue
        for formula in formulas(step[:a.MAX_STEP_CHARS]):
            for m in _DET_RE.finditer(formula):
                rows = [row.split("&") for row in re.split(r"\\\\", m.group("body").strip()) if row.strip()]
                rhs = re.sub(r"(?:\s|[.,;]|\\[,;:! ]|\\q?quad)+$", "", m.group("rhs"))
                if len(rows) not in (2, 3) or any(len(row) != len(rows) for row in rows) or not rhs:
                    continue
                try:
                    det = _determinant([[formula_poly(t) for t in row] for row in rows])
                    value = formula_poly(rhs)
                except Exception:  # noqa: BLE001 (an entry or a side that is no polynomial: nothing to compare)
                    continue
                numbers = not symbols(det) and not symbols(value)
                expansion = symbols(det) and set(det) == set(value)
                if poly_sub(det, value) and (numbers or expansion):
                    flags.append((i, f"algebra slip: the determinant is {fmt_poly(det)}, not {rhs.strip()}"))
                    break
    return flags


# --------------------------------------------------------------------------- a root outside its case
# "2. **Second piece (x > 3):** 8 − 4x = 0 ⟹ x = 2", then the two roots added: a case solved on its own keeps only
# the roots that satisfy its condition. Read narrowly, as solutions mention bounds for many reasons: a step that
# opens a case ("Case 2", "Second piece", "If", "For", within its first words) and names one bound on one symbol;
# a value solved from an equation in that symbol, in the same step or the next; no word in that step or the two
# after it that sets the value aside ("not", "reject", "no solution").
_CASE_WORDS = (r"^[\W\d]{0,12}(?:case\b|(?:first|second|third|left|right|other)\s+(?:piece|case|branch)\b|piece\b|branch\b|"
               r"if\b|when\b|for\b)")
_CASE_WORD_RE = re.compile(_CASE_WORDS, re.IGNORECASE)
_CASE_OPEN_RE = re.compile(
    _CASE_WORDS + r"[^.:;=]{0,40}?(?<![\w\\])([a-z])\s*(<=|>=|<|>|≤|≥|\\le(?:q)?\b|\\ge(?:q)?\b)\s*(-?\d+(?:\.\d+)?)"
    r"(?![\d.]*\s*(?:<|>|\\le|\\ge|≤|≥))",
    re.IGNORECASE)
_BOUND_BEFORE_RE = re.compile(r"(?:<|>|≤|≥|\\le\w*|\\ge\w*)\s*[$(\\]*\s*$")
_KEPT_ASIDE_RE = re.compile(r"\b(?:not|outside|isn't|doesn't|fails?|violat\w*|excluded?|ignore\w*)\b|\\notin|∉", re.IGNORECASE)
_BOUND_OPS = {"<": lambda v, c: v < c, ">": lambda v, c: v > c, "<=": lambda v, c: v <= c, ">=": lambda v, c: v >= c}


def _bound_op(op: str) -> str:
    op = op.lstrip("\\")
    return {"≤": "<=", "≥": ">=", "le": "<=", "leq": "<=", "ge": ">=", "geq": ">="}.get(op, op)


def case_root_checks(maths, steps=None) -> list[tuple[int, str]]:
    """(step, reason) for a value solved in a case (`x > 3`) that breaks the case's condition and is kept."""
    from .arith import NO_SOLUTION_CUE

    if steps is None:
        return []
    flags: list[tuple[int, str]] = []
    case = None  # (step, symbol, operator, bound) of the case being worked
    for i, step in enumerate(steps[: len(maths)]):
        if _CASE_WORD_RE.match(step):
            m = _CASE_OPEN_RE.search(step[:200])
            # (another case opens, or a bound on both sides, `2 < x \le 3`, which one number cannot stand for)
            chained = m is not None and _BOUND_BEFORE_RE.search(step[: m.start(1)])
            case = (i, m.group(1), _bound_op(m.group(2)), Fraction(m.group(3))) if m and not chained else None
        if case is None or i > case[0] + 1:
            continue
        _, x, op, c = case
        solved = False  # an equation in x read before, in this step
        for link in maths[i].links:
            if link.kind != "algebra" or link.diff is None or link.status not in ("assign", "equation"):
                continue
            sol = linear_solution(link.diff)
            if sol is None or sol[0] != x:
                continue
            if link.status == "equation":
                solved = True
                continue
            if not solved or _BOUND_OPS[op](sol[1], c):
                continue
            after = " ".join(s[:_arith().MAX_STEP_CHARS] for s in steps[i:i + 3])
            if not (_KEPT_ASIDE_RE.search(after) or _SETS_ASIDE_RE.search(after) or NO_SOLUTION_CUE.search(after)):
                flags.append((i, f"algebra slip: {link.text} is outside its case ({x} {op} {_arith().fmt_number(c)}), "
                                 f"yet it is kept"))
            case = None
            break
    return flags
