"""Facts a solution states in words: which numbers are prime, even, divisible, perfect squares, and the radius
or semi-axes of a conic.

Why: a model that searches for primes (three consecutive primes summing to 269, the prime factors of n)
often names a composite one ("the consecutive primes 87, 89, 93") and then computes correctly with it; one
that reasons by parity calls 99 even. No equation is wrong, so the slip and value checks see nothing; the
claim itself is checkable and exact.

Read, per step, with the maths wrappers taken out:
- a list right after "primes", "prime numbers", "prime factors" or "prime divisors" (optionally "are" or ":"),
  and one number after "the prime": every item must be prime;
- "N is prime", "N and M are primes": every number must be prime; "N is not prime": N must not be;
- "N is even / odd / divisible by d / a multiple of d / a perfect square (cube)", "d divides N", and their
  negations.
A claim inside a hypothesis or a test ("if 91 is prime", "check whether 87 is prime", "is 87 prime?") is no
claim, and a number that is part of an expression (`2^5 - 1 is prime`, `p + 2 is prime`) or of a phrase about
another number ("divisible by both 3 and 4 is a multiple of 12", "the sum of the two prime factors is 40") is
not read. Each step is read up to MAX_STEP_CHARS, lists up to 41 items: linear time on any text.

The same slip in geometry: the solution writes a circle `(x - h)^2 + (y - k)^2 = C` and calls C its radius,
or an ellipse `x^2/A + y^2/B = 1` and names A and B (squares of the semi-axes) as the semi-axes.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Optional

from .arith import MAX_STEP_CHARS, THOUSANDS_RE

# maths wrappers and spacing commands: "$87$", "\\(89\\)", "\\;"; words in a text command are words
_WRAPPERS_RE = re.compile(r"\\[()\[\]]|\$|\\[,;:! ]|\\quad|\\qquad|~")
_TEXT_COMMAND_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
# a whole number on its own: not a digit of 12,\!345, an exponent or index (`2^{10}`, `a_3`), a command's argument
# (`\binom{31}{10}`, `\frac{n(n+1)}{2}`), a coefficient (`3a`) or an operand (`54 \cdot 2`, `2 + 3`)
_NUM = (r"(?<![\d.,^_/{])\d{1,15}(?![\d^_/}A-Za-z]|\.\d|,\d{3}\b|\s*(?:\\cdot|\\times|[*×+\-/^!=<>]|\\%|%))")
_LIST = rf"{_NUM}(?:\s*(?:,\s*(?:and\s+)?|\s+and\s+)(?:\\l?dots\s*,\s*)?{_NUM}){{0,40}}"  # (bounded: linear time)
# "the consecutive primes 87, 89, 93", "prime factors: 2, 3 and 7", "the prime 91"
_AFTER_RE = re.compile(
    r"\b(?:primes|prime\s+(?:numbers|factors|divisors))[^\S\n]*(?:(?:are|would\s+be|will\s+be)\b[^\S\n]*|:[^\S\n]*)?"
    rf"(?P<list>{_LIST})|\bthe\s+prime\s+(?P<one>{_NUM})", re.IGNORECASE)
# "87 is prime", "87 and 93 are both primes", "91 is not a prime"; not "a prime factor", "prime powers"
_BEFORE_RE = re.compile(
    rf"(?<![\w=<>+\-*/^(])(?P<list>{_LIST})\s+(?:is|are)(?P<neg>\s+not|\s+never|n't)?\s+(?:both\s+|all\s+|also\s+)?"
    r"(?:a\s+)?(?:primes?|prime\s+numbers?)\b(?!\s*(?:factor|divisor|power))", re.IGNORECASE)
# "99 is even", "91 is divisible by 3", "48 is a multiple of 9", "50 is a perfect square", "4 divides 18"
_PROPERTY_RE = re.compile(
    rf"(?<![\w=<>+\-*/^(])(?P<list>{_LIST})\s+(?:(?P<verb>is|are)(?P<neg>\s+not|n't)?\s+(?:both\s+|all\s+|also\s+)?(?:an?\s+)?"
    rf"(?:(?P<parity>even|odd)\b(?!\s*(?:power|exponent|multiple|number\s+of))|divisible\s+by\s+(?P<by>{_NUM})"
    rf"|multiples?\s+of\s+(?P<of>{_NUM})|perfect\s+(?P<power>square|cube)s?\b)|(?P<divides>divides)\s+(?P<into>{_NUM}))",
    re.IGNORECASE)
# "the sum of those two prime factors is 40": a number said of the primes together, not a prime
_AGGREGATE_BEFORE_RE = re.compile(r"\b(?:sum|product|number|count|total|difference|average|mean)\s+of\b[^.;\n]*$",
                                  re.IGNORECASE)
# an operator or a preposition before the numbers: `2^5 - 1 is prime`, "divisible by both 3 and 4 is a multiple
# of 12" (the numbers are part of a phrase about something else)
_OPERATOR_BEFORE_RE = re.compile(
    r"(?:[+\-*/^×]|\\cdot|\\times|\\frac|\b(?:by|of|both|than|to|from|with|between|and|or|nor|neither|for|besides|"
    r"except|but))\s*$", re.IGNORECASE)
# the claim is a hypothesis, a question or a test, not a statement
_HYPOTHESIS_RE = re.compile(r"\b(?:if|whether|suppose|assum\w*|check\w*|test\w*|determine|unless)\b|\?",
                            re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.;?!](?:\s|$)|\n")


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3 * 10^24 (every number read here)."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _factor(n: int) -> Optional[str]:
    """"3 · 29" for a composite n with a small factor; None when none is found quickly."""
    for p in range(2, min(int(n**0.5), 10**5) + 1):
        if n % p == 0:
            return f"{p} · {n // p}"
    return None


def _numbers(text: str) -> list[int]:
    return [int(m.group(0)) for m in re.finditer(_NUM, text)]


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence around text[start:end], up to the claim's end."""
    begin = max((m.end() for m in _SENTENCE_END_RE.finditer(text, 0, start)), default=0)
    return text[begin:end]


def _not_prime(n: int) -> str:
    if n < 2:
        return f"{n} is not prime"
    f = _factor(n)
    return f"{n} is not prime ({n} = {f})" if f else f"{n} is not prime"


def number_claims(steps: list[str]) -> list[tuple[int, str]]:
    """(step, reason) for every step that calls a composite number (or 0, 1) prime, a prime not prime, or states
    a parity, divisibility or perfect power that the number does not have."""
    flags: list[tuple[int, str]] = []
    for i, step in enumerate(steps):
        text = THOUSANDS_RE.sub("", step[:MAX_STEP_CHARS])  # "54,\\!321 is not even": one number
        text = _WRAPPERS_RE.sub(" ", _TEXT_COMMAND_RE.sub(r" \1 ", text))
        wrong: list[str] = []
        for m in _AFTER_RE.finditer(text):
            if _HYPOTHESIS_RE.search(_sentence(text, m.start(), m.end())) or _AGGREGATE_BEFORE_RE.search(_sentence(text, m.start(), m.start())):
                continue
            wrong += [_not_prime(n) for n in _numbers(m.group("list") or m.group("one")) if not is_prime(n)]
        for m in _BEFORE_RE.finditer(text):
            if _HYPOTHESIS_RE.search(_sentence(text, m.start(), m.end())) or _OPERATOR_BEFORE_RE.search(text[: m.start()]):
                continue
            numbers = _numbers(m.group("list"))
            if m.group("neg"):
                wrong += [f"{n} is prime" for n in numbers if is_prime(n)]
            else:
                wrong += [_not_prime(n) for n in numbers if not is_prime(n)]
        for m in _PROPERTY_RE.finditer(text):
            if _HYPOTHESIS_RE.search(_sentence(text, m.start(), m.end())) or _OPERATOR_BEFORE_RE.search(text[: m.start()]):
                continue
            numbers = _numbers(m.group("list"))
            if (m.group("verb") or "").lower() == "are" and len(numbers) == 1:
                continue  # "60/3 = 20 are multiples of 3", "of these, 20 are even": a count, not a number's property
            wrong += [w for n in numbers if (w := _false_property(n, m, bool(m.group("neg"))))]
        if wrong:
            flags.append((i, "arithmetic slip: " + "; ".join(dict.fromkeys(wrong))))
    return flags


def _false_property(n: int, m: re.Match, negated: bool) -> Optional[str]:
    """The true fact about n when the claim `m` (negated or not) is false ("99 is even": "99 is odd"), else None."""
    if m.group("parity"):
        holds, fact = (n % 2 == 0) == (m.group("parity").lower() == "even"), f"{n} is {'odd' if n % 2 else 'even'}"
    elif m.group("by") or m.group("of"):
        d = int(m.group("by") or m.group("of"))
        if d == 0:
            return None
        holds = n % d == 0
        fact = f"{n} is divisible by {d}" if holds else f"{n} is not divisible by {d} ({n} = {d} · {n // d} + {n % d})"
    elif m.group("power"):
        kind = m.group("power").lower()
        k = 2 if kind == "square" else 3
        root = round(n ** (1 / k))
        holds = any((root + e) ** k == n for e in (-1, 0, 1))  # (the float root may be off by one)
        fact = f"{n} is {'' if holds else 'not '}a perfect {kind}"
    else:
        into = int(m.group("into"))
        if n == 0 or into < n:
            return None  # "9 divides 5 of the numbers": a count, no claim of divisibility
        holds = into % n == 0
        fact = f"{n} {'divides' if holds else 'does not divide'} {into}"
    return fact if holds == negated else None


# ----------------------------------------------------------------------------- conics
# a number that is the whole value: not `4 \\cos^2 2\\theta`, `4x`, `4^2`, `25\\pi`
_NUMERAL = r"(\d+(?:\.\d+)?)(?![\d^/A-Za-z]|\.\d|\s*(?:[*^/(\[{]|\\(?!text|q?quad)[A-Za-z]))"
_SQUARE = r"\s*\^\s*\{?\s*2\s*\}?"
_CIRCLE_RE = re.compile(rf"(?:\(\s*x\s*[-+]\s*[\d.]+\s*\)|(?<![\w\\])x){_SQUARE}\s*\+\s*"
                        rf"(?:\(\s*y\s*[-+]\s*[\d.]+\s*\)|y){_SQUARE}\s*=\s*{_NUMERAL}(?!\s*[-+])")
_ELLIPSE_RE = re.compile(rf"\\d?frac\s*\{{\s*(?:\(\s*x[^()]*\)|x){_SQUARE}\s*\}}\s*\{{\s*(\d+)\s*\}}\s*\+\s*"
                         rf"\\d?frac\s*\{{\s*(?:\(\s*y[^()]*\)|y){_SQUARE}\s*\}}\s*\{{\s*(\d+)\s*\}}\s*=\s*1(?![\d.])")
_RADIUS_RE = re.compile(rf"(?<!square of the )(?<!square of )\bradius\b(?:\s+(?:is|of|equals)\b)?\s*(?:[:=]\s*)?(?:r\s*=\s*)?{_NUMERAL}"
                        rf"|(?<![\w\\])r\s*=\s*{_NUMERAL}", re.IGNORECASE)
_SEMI_AXES_RE = re.compile(r"\bsemi-?\s?(?:major|minor)?\s*-?\s*ax[ie]s", re.IGNORECASE)
_AXIS_VALUE_RE = re.compile(rf"(?<![\w\\])[ab]\s*=\s*{_NUMERAL}|\b(?:is|are|of)\s+{_NUMERAL}(?:\s*(?:,|and)\s*{_NUMERAL})?")


def conic_claims(steps: list[str]) -> list[tuple[int, str]]:
    """(step, reason) for a radius read as r^2, or semi-axes read as their squares, from the solution's equation."""
    flags: list[tuple[int, str]] = []
    circle: Optional[Fraction] = None
    ellipse: Optional[tuple[Fraction, Fraction]] = None
    for i, step in enumerate(steps):
        text = step[:MAX_STEP_CHARS].replace("$", " ")
        wrong = []
        # the circle's equation and the radii, in the order written (`x^2 + y^2 = 16`, so `r = 16`)
        events = sorted([(m.start(), "circle", Fraction(m.group(1))) for m in _CIRCLE_RE.finditer(text)]
                        + [(m.start(), "radius", Fraction(m.group(1) or m.group(2))) for m in _RADIUS_RE.finditer(text)])
        for at, what, v in events:
            if what == "circle":
                circle = v
            elif v == circle and circle not in (0, 1) and not _HYPOTHESIS_RE.search(_sentence(text, at, at + 1)):
                wrong.append(f"the radius of a circle with r^2 = {circle} is not {v}")
        named = _SEMI_AXES_RE.search(text)  # in this step, or in the heading or words just before it
        if ellipse is not None and (named or any(_SEMI_AXES_RE.search(s) for s in steps[max(0, i - 2) : i])):
            values = {Fraction(g) for m in _AXIS_VALUE_RE.finditer(text[named.start() if named else 0 :])
                      for g in m.groups() if g is not None}
            squares = set(ellipse)
            if values and values <= squares and not any(v * v in squares for v in values) and squares - {1}:
                wrong.append(f"the semi-axes of x^2/{ellipse[0]} + y^2/{ellipse[1]} = 1 are the square roots of "
                             f"{ellipse[0]} and {ellipse[1]}")
        if wrong:
            flags.append((i, "formula error: " + "; ".join(wrong)))
        for m in _ELLIPSE_RE.finditer(text):
            ellipse = (Fraction(m.group(1)), Fraction(m.group(2)))
    return flags
