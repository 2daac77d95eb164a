"""Programmatic checks that need no model: value flow and consistency (d4), formula-level
errors (d5), and equations checked by substitution (d5, `equation_checks`).

d4 offline is graded (`logic_checks`, combined by noisy-or in core.py): besides value flow,
a quantity that silently changes between steps (0.6), a number contradicting the question
(0.5) and a final answer contradicting the step before (0.8). These read numbers as
quantities, so they run on word problems only (a question without LaTeX); in MATH solutions
numbers are as often function arguments (`f(4) = 7`, then `g(7)`).

Value flow (the paper's Table 2: "Total after discount = $12 − $1.20 = $10.80", then
"Change = $20 − $12 = $8"): a result r computed from an operand x is *superseded* when r
is never used again (not mentioned by any later step, not the final answer) while a later
computation that leads to the answer uses x again. The solution computed an updated
quantity and then went on with the stale one: a contradiction between two steps, flagged
on the later step. Not when x is worked the same way three or more times (`100 − 2`,
`100 − 3`, `100 − 5`, …): that is a list of cases, and an unused result a rejected case.

Formula-level errors (d5 = 1.0; right arithmetic, wrong formula). Heuristics, each chosen
to fire only on a specific pattern:
1. geometry: the question asks for a perimeter/circumference but a step multiplies two
   of the given dimensions (or squares a radius with π), or asks for an area but a step
   adds the dimensions (a+b, 2(a+b), 2a+2b) or takes 2πr — and that result is the final
   answer or the step names the other quantity ("area", "perimeter"); a perimeter divided
   by 2, 3 or 4 later (Heron's s, a regular shape's side) and a sum of values found earlier (two
   areas) are no such error, nor is a product with π (an arc) for a perimeter;
2. percentages: the question gives p% (p never appears as a plain number) and a step
   combines p itself with another quantity without /100 (10% of $12 computed as 12 × 10), unless the
   step counts "percentage points";
3. wrong operation (`wrong_operation`): `a op b = c` is false but c is exactly another operation
   on a and b (`12 × 4 = 16`), and not also a near miss of the right result;
4. reference operations: a correct computation uses exactly the operands of a reference
   computation but a different operation and gets a result the reference never has
   (20 + 12 where the reference computes 20 − 12).
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from .arith import MAX_STEP_CHARS, NUMBER_WORD_VALUES, ROUNDING_CUE, TABLE_RE, Computation, StepMath, analyse_step, close_enough, declared_functions, eval_exact, fmt_number, normalize, numbers_in, parse_span, tokenize
from .steps import split_sentences

__all__ = [
    "QuestionInfo", "question_info", "answer_value", "value_flow", "formula_errors", "ref_dependencies",
    "equation_checks", "logic_checks", "method_starts", "wrong_operation", "other_base_links", "reversed_offsets",
]

_TARGET_START = re.compile(r"^\s*(?:find|what|how|compute|calculate|determine|evaluate|express|give)\b", re.IGNORECASE)
_BASE_RE = re.compile(r"\bbase[- ]?\$?\{?\d|_\{?\d{1,2}\}?(?![\d])")
_BASE_NUMBER_RE = re.compile(r"\bbase[- ]?\$?\{?(\d{1,2}|[a-z]+)\b|_\{?(\d{1,2})\}?(?!\d)", re.IGNORECASE)
# "If $a*b=a^2+ab-b^2$, find $3*2$": the question defines `*` by an equation between letters
_STAR_DEFINITION = re.compile(r"(?<![\w\\])[a-zA-Z]\s*(?:\*|\\star|\\ast)\s*[a-zA-Z](?!\w)\s*=")
_CUSTOM_OP_RE = re.compile(r"\boperations?\b|\bdefined?\b|\bfor all\b", re.IGNORECASE)


# LaTeX commands, $$, or a symbol between dollars ("$x$"): a MATH-style question; "$20 bill" is currency
_MATH_QUESTION = re.compile(r"\\[a-zA-Z(\[]|\$\$|\$[^$\d\s.,-][^$\n]{0,80}\$")


@dataclass
class QuestionInfo:
    conditions: list[str] = field(default_factory=list)
    target: str = ""
    numbers: set = field(default_factory=set)  # plain numbers given (abs values)
    percents: set = field(default_factory=set)  # p for every "p%" / "p percent" given
    word_numbers: set = field(default_factory=set)  # numbers written as words ("five jackets", "forty-two", a dime's 0.1): given too
    choice_labels: frozenset = frozenset()  # labels of listed answer choices ("A. $43$", "(B) 23"): a step may take them one by one
    wants: Optional[str] = None  # perimeter | area | circumference | circle_area
    opaque_star: bool = False
    other_base: bool = False
    bases: set = field(default_factory=set)  # the number bases the question names ("base 7", "_6", "base six")
    word_problem: bool = True  # no LaTeX in the question: its numbers are quantities (value-flow checks apply)
    functions: frozenset = frozenset()  # letters the question declares functions ("Let $e(x)$ be an even function")
    figure: bool = False  # an [asy] figure: the solution may read numbers off it that the text never gives
    bounds: bool = False  # its numbers bound a range ("between 4000 and 7000") or have digits read: a solution may use the ends or digits


_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(NUMBER_WORD_VALUES) + r")\b", re.IGNORECASE)
# Coins name their values: "3 dimes" gives 0.1 (and a dime's 10 cents), as "five" gives 5. A quarter's 25 cents only
# where the question speaks of cents or coins: "a quarter of the cake" gives 1/4, not 25.
_COIN_VALUES = {  # coin: (its value in dollars, in cents)
    "penny": (Fraction(1, 100), Fraction(1)), "pennies": (Fraction(1, 100), Fraction(1)), "nickel": (Fraction(1, 20), Fraction(5)),
    "dime": (Fraction(1, 10), Fraction(10)), "quarter": (Fraction(1, 4), Fraction(25)), "half-dollar": (Fraction(1, 2), Fraction(50))}
_COIN_RE = re.compile(r"\b(pennies|penny|nickel|dime|quarter|half[- ]dollar)s?\b", re.IGNORECASE)
_CENTS_RE = re.compile(r"\bcents?\b|\bcoins?\b|¢", re.IGNORECASE)
# "forty-two 75-pound bales", "twenty one": a tens word and a unit word are one number
_COMPOUND_NUMBER_RE = re.compile(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ]"
                                 r"(one|two|three|four|five|six|seven|eight|nine)\b", re.IGNORECASE)


# "the area of the visible red border", "in square inches": a border, fence or trim whose area is asked
_AREA_ASKED = re.compile(r"\barea of\b|\bsquare (?:units|inches|feet|foot|meters|metres|centimeters|yards|miles)\b")


# An Asymptote drawing: its coordinates and sizes are not quantities the question gives
_ASY_RE = re.compile(r"\[asy\].*?(?:\[/asy\]|$)", re.DOTALL | re.IGNORECASE)


# "the integers between -12.1 and 3.3", "greater than 3 and less than 12", "between 4000 and 7000", "the digits
# of 271-3147": the question's numbers bound a range or are read digit by digit, and a solution uses the
# range's ends (−12, 4, 11), the leading digits (4 for 4000) or the digits themselves
_RANGE_RE = re.compile(r"\bdigits?\b|\bbetween\b|\b(?:greater|less|more|fewer|larger|smaller) than\b|\bat (?:least|most)\b|\bfrom\b[^.?]{0,40}\bto\b", re.IGNORECASE)


# "A. $43$" / "(B) 23" on lines of their own: answer choices a solution may take one at a time
_CHOICE_LABEL_RE = re.compile(r"(?m)^[ \t]*\(?([A-H])[.)][ \t]")


def question_info(question: str) -> QuestionInfo:
    info = QuestionInfo()
    q = (question or "")[:4000]
    if not q.strip():
        return info
    sentences = split_sentences(" ".join(q.split()))
    targets = [s for s in sentences if s.rstrip().endswith("?") or _TARGET_START.match(s)]
    info.target = " ".join(targets) if targets else (sentences[-1] if sentences else q)
    info.conditions = [s for s in sentences if s not in targets]
    info.bounds = bool(_RANGE_RE.search(q))
    plain: Counter = Counter()
    for tok in numbers_in(_ASY_RE.sub(" ", q)):
        if tok.pct:
            info.percents.add(abs(tok.value * 100))
        else:
            info.numbers.add(abs(tok.value))
            plain[abs(tok.value)] += 1
    for m in _NUMBER_WORD_RE.finditer(q):  # "five jackets": a given 5 (not a 5% misused)
        info.word_numbers.add(Fraction(NUMBER_WORD_VALUES[m.group(1).lower()]))
    for m in _COMPOUND_NUMBER_RE.finditer(q):
        info.word_numbers.add(Fraction(NUMBER_WORD_VALUES[m.group(1).lower()] + NUMBER_WORD_VALUES[m.group(2).lower()]))
    cents = bool(_CENTS_RE.search(q))
    for m in _COIN_RE.finditer(q):
        coin = m.group(1).lower()
        dollars, in_cents = _COIN_VALUES["half-dollar" if coin.startswith("half") else coin]
        info.word_numbers.add(dollars)
        if cents or coin != "quarter":
            info.word_numbers.add(in_cents)
    spelled = Counter(Fraction(m.group(1)) for m in re.finditer(r"(\d+(?:\.\d+)?)\s*percent", q, re.IGNORECASE))
    for p, k in spelled.items():
        info.percents.add(p)
        if plain[p] <= k:  # "10 stone statues ... 10 percent in taxes": the other 10 is a given number
            info.numbers.discard(p)
    t = info.target.lower()
    circle = bool(re.search(r"\bcirc(?:le|ular)\b|\bradius\b|\bdiameter\b", q.lower()))
    if "circumference" in t:
        info.wants = "circumference"
    elif "perimeter" in t or (re.search(r"\b(?:fenc\w*|border|trim)\b", t) and not _AREA_ASKED.search(t)):
        info.wants = "circumference" if circle and "perimeter" not in t else "perimeter"
    elif re.search(r"\barea\b", t) and "surface" not in t:
        info.wants = "circle_area" if circle else "area"
    info.opaque_star = ("*" in q or "\\star" in q or "\\ast" in q) and bool(_CUSTOM_OP_RE.search(q) or _STAR_DEFINITION.search(q))
    info.other_base = bool(_BASE_RE.search(q)) and "base" in q.lower()
    if info.other_base:
        for m in _BASE_NUMBER_RE.finditer(q):
            b = m.group(1) or m.group(2)
            b = int(b) if b.isdigit() else NUMBER_WORD_VALUES.get(b.lower(), 0)
            if 2 <= b <= 36 and b != 10:
                info.bases.add(b)
    info.word_problem = not _MATH_QUESTION.search(q)
    info.functions = declared_functions(q)
    info.figure = bool(_ASY_RE.search(q))
    labels = _CHOICE_LABEL_RE.findall(q)
    info.choice_labels = frozenset(labels) if len(set(labels)) >= 2 else frozenset()
    return info


def answer_value(answer: Optional[str]) -> Optional[Fraction]:
    """The exact value of an extracted final answer, when it is a closed-form number."""
    if not answer or len(answer) > 200:
        return None
    toks = [t for t in tokenize(normalize(answer.replace("$", " "))) if t.kind not in ("WORD", "PUNCT", "BOX")]
    if not toks:
        return None
    try:
        return abs(eval_exact(parse_span(toks)))
    except Exception:  # noqa: BLE001 - anything unparseable simply has no value
        return None


def _same(a, b) -> bool:
    """Equal up to a relative 1e-6 (floats: this runs thousands of times per candidate)."""
    if a == b:
        return True
    fa, fb = float(a), float(b)
    return abs(fa - fb) <= 1e-6 * max(abs(fa), abs(fb), 1.0)


def _in(x, values) -> bool:
    fx = float(x)
    for v in values:
        fv = float(v)
        if abs(fx - fv) <= 1e-6 * max(abs(fx), abs(fv), 1.0):
            return True
    return False


def _key(x) -> float:
    """A hashable value that equal-up-to-rounding numbers share (9 significant digits)."""
    return float(f"{float(x):.9g}")


def _recomputes(later: Computation, earlier: Computation) -> bool:
    """Does `later` start again from all of `earlier`'s operands? ("10·9 = 90", then
    "10·9/2 = 45" or "(29+23)/2" after "29 − 23"): a fresh computation from the same
    givens, not a stale value used in place of the earlier result."""
    remaining = Counter(_key(x) for x in later.operands)
    for x in earlier.operands:
        k = _key(x)
        if remaining[k] <= 0:
            return False
        remaining[k] -= 1
    return True


def value_flow(maths: list[StepMath], final: Optional[Fraction], starts: Optional[list[int]] = None,
               live: frozenset = frozenset()) -> list[tuple[int, str]]:
    """(step index, flag) for every superseded value used again later. `starts` (`method_starts`): a use in a
    method or case that begins after the result was computed ("Or we know that 84° + 360° = 444°", then
    "444° − 288°" after "288° − 84° = 204°") works the question again; it does not go on with a stale value.
    `live` (`reused_values` of the reference): where the reference computes the same result from the same value
    and uses that value again later ("14/2 = 7 cheesecakes", then "14 - 10 = 4 boxes left"), the value is not stale.
    (The paper's Table 2 reference computes 10.80 from 12 and never uses 12 again: "$20 − $12" stays flagged.)

    Indexed by value, so a 64-step candidate with hundreds of numbers stays linear."""
    n = len(maths)
    first_seen: dict[float, int] = {}
    last_seen: dict[float, int] = {}
    for i, sm in enumerate(maths):
        for x in sm.mentions:
            k = _key(x)
            first_seen.setdefault(k, i)
            last_seen[k] = i
    operand_uses: dict[float, list[tuple[int, Computation]]] = {}
    # `100 − 2`, `100 − 3`, `100 − 5`, `100 − 7`: one number worked the same way three or more times is a list
    # of cases, each tried and most rejected; a result left unused there is a rejected case, not an update
    forms: Counter = Counter()
    for j, sm in enumerate(maths):
        for comp in sm.computations:
            for x in comp.operands:
                operand_uses.setdefault(_key(x), []).append((j, comp))
            if comp.operands:
                forms[_key(comp.operands[0]), comp.ops] += 1
    final_key = _key(final) if final is not None else None
    flags: list[tuple[int, str]] = []
    flagged_steps: set[int] = set()
    for i, sm in enumerate(maths):
        for comp in sm.computations:
            r = abs(comp.result)
            if r == 0 or i + 1 >= n or comp.ok is False or not comp.operands:
                continue  # a wrong result that is not reused is a slip (d5), not a stale value
            if "^" in comp.ops or "!" in comp.ops:
                continue  # 12^2 = 144 names a new quantity (a square, a count), it does not update 12
            kr = _key(r)
            if last_seen.get(kr, -1) > i or kr == final_key or first_seen.get(kr, n) < i:
                continue  # used later, the answer, or used before it was computed (an order problem: d3)
            # A line of prose may hold several computations ("He bought 200 / 40 = 5 ties. So he bought
            # 5 * 2 = 10."): another one of the step that uses the result or also gives it ("160 + 5 = 165
            # ... because 11 x 15 = 165", a check) counts as a later step would. Either order: the parser
            # lists a step's computations by kind (symbols, then prose), not by position.
            if any(_key(abs(e.result)) == kr or any(_key(o) == kr for o in e.operands)
                   for e in sm.computations if e is not comp):
                continue
            # the quantity being updated is the first operand: 12 in "12 − 1.20 = 10.80"
            x = comp.operands[0]
            kx = _key(x)
            if x in (0, 1, 2) or kx == kr or forms[kx, comp.ops] >= 3 or (kx, kr) in live:
                continue
            for j, comp2 in operand_uses.get(kx, ()):
                if j <= i or j in flagged_steps or _recomputes(comp2, comp) or (starts is not None and starts[j] > i):
                    continue
                k2 = _key(abs(comp2.result))
                if k2 == final_key or last_seen.get(k2, -1) > j:  # the stale value flows on to the answer
                    flagged_steps.add(j)
                    flags.append(
                        (
                            j,
                            f"value-flow contradiction: {comp.result_text or fmt_number(comp.result)} was computed from "
                            f"{fmt_number(x)} in step {i}, but {fmt_number(x)} is used here ({comp2.text})",
                        )
                    )
                    break
    return flags


def _is_perimeter_like(comp: Computation, given: set) -> bool:
    ops = comp.ops
    if "+" not in ops or not ops <= {"+", "*"}:
        return False
    dims = [x for x in comp.operands if x != 2]
    if len(dims) < 2 or not all(_in(x, given) for x in dims):
        return False
    if "*" in ops and 2 not in comp.operands:
        return False
    r = abs(comp.result)
    return _same(r, sum(dims)) or _same(r, 2 * sum(set(dims)))


def formula_errors(
    maths: list[StepMath],
    steps: list[str],
    q: QuestionInfo,
    final: Optional[Fraction],
    ref_comps: Optional[list[Computation]] = None,
) -> list[tuple[int, str]]:
    """(step index, flag) for every formula-level error found (see module docstring)."""
    flags: list[tuple[int, str]] = []
    computed_before: list[Fraction] = []
    ref_index: dict[tuple, list[Computation]] = {}
    for rc in ref_comps or ():
        ref_index.setdefault(_signature(rc.operands), []).append(rc)
    mentioned_after: list[set] = []  # [i]: every number steps i, i+1, … mention (read by the area rule only)
    if q.wants == "area":
        mentioned_after = [set() for _ in range(len(maths) + 1)]
        for i in range(len(maths) - 1, -1, -1):
            mentioned_after[i] = mentioned_after[i + 1] | set(maths[i].mentions)
    for i, sm in enumerate(maths):
        low = steps[i].lower()
        for link in sm.links:
            msg = wrong_operation(link)
            if msg is not None:
                flags.append((i, f"formula error: {msg}"))
        for comp in sm.computations:
            r = abs(comp.result)
            is_answer = final is not None and _same(r, final)
            msg = _geometry(comp, q, low, is_answer, computed_before, mentioned_after[i + 1] if mentioned_after else set())
            if msg is None:
                msg = _percent(comp, q, computed_before, low)
            if msg is None and ref_comps:
                msg = _reference_operation(comp, ref_comps, ref_index)
            if msg is not None:
                flags.append((i, f"formula error: {msg}"))
            computed_before.append(r)
    return flags


# the operators a two-operand computation is written with, read as + - * /
_OP_NAMES = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "x": "*", "·": "*", "\\times": "*",
             "\\cdot": "*", "/": "/", "÷": "/", "\\div": "/"}
_OP_SHOW = {"+": "+", "-": "−", "*": "×", "/": "÷"}


def _apply(op: str, a: Fraction, b: Fraction) -> Optional[Fraction]:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b != 0 else None


def _near_miss(c: Fraction, v: Fraction) -> bool:
    """Could c be a slip for the value v (one wrong digit, two digits swapped, off by 1, 2 or 10, a
    factor of 10)? Then `3 × 2 = 5` stays an arithmetic slip although 3 + 2 = 5."""
    d = abs(c - v)
    if d <= 2 or d == 10 or c == v * 10 or c * 10 == v:
        return True
    return (c < 0) == (v < 0) and _digit_confusion(fmt_number(abs(c)), fmt_number(abs(v)))


def _digit_confusion(sa: str, sb: str) -> bool:
    """Same length, and one digit changed or two adjacent digits swapped."""
    if len(sa) != len(sb):
        return False
    diffs = [k for k in range(len(sa)) if sa[k] != sb[k]]
    if len(diffs) == 1:
        return True
    return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and sa[diffs[0]] == sb[diffs[1]] and sa[diffs[1]] == sb[diffs[0]]


def _one_operation(operands, ops) -> Optional[tuple]:
    """(operation, a, b, a op b) of two operands and one operation (the value None for a division by 0), else None."""
    if len(operands) != 2 or len(ops) != 1:
        return None
    op = _OP_NAMES.get(next(iter(ops)))
    if op is None:
        return None
    a, b = operands
    return op, a, b, _apply(op, a, b)


def wrong_operation(link) -> Optional[str]:
    """`a op b = c` is false, but c is exactly what another operation gives on the same operands
    (`12 × 4 = 16` is 12 + 4; `20 − 8 = 160` is 20 × 8): a wrong operation, a formula-level error
    (d5 1.0), not a slip of the result. Only for two literal operands and one operator, when the
    other operation's result differs from the written one's and c is not also a near miss of the
    right result (`3 × 2 = 5` is a slip, 5 being both 3 + 2 and 6 − 1)."""
    if link.kind != "arith" or link.status != "mismatch" or link.approx:
        return None
    lhs, rhs = link.lhs, link.rhs
    if rhs.single_num is None or rhs.value is None or lhs.value is None or lhs.has_pct or rhs.has_pct:
        return None
    parts = _one_operation(lhs.operands, lhs.ops)
    if parts is None or lhs.text.lstrip().startswith(("-", "−", "(")) or parts[3] != lhs.value:
        return None  # not plainly `a op b` (brackets, signs, more terms): leave it a slip
    op, a, b, _ = parts
    right, c = lhs.value, rhs.value
    if c == right or _near_miss(c, right):
        return None
    for other in ("+", "-", "*", "/"):
        v = _apply(other, a, b)
        if other == op or v is None or v == right or v != c:
            continue
        shown = f"{fmt_number(a)} {_OP_SHOW[other]} {fmt_number(b)}"
        return (f"wrong operation: {link.text}: {rhs.text} is {shown}, the operation is wrong "
                f"({lhs.text} = {fmt_number(right)})")
    return None


def computes_with_exact(link, carried: dict) -> bool:
    """`100 / 12 = 8.33`, then `8.33 × 4 = 33.33`: the later step computed with the exact 8.333… that the step
    before only wrote rounded (`carried`: written value -> exact value). True when `a op b`, one of a and b
    replaced by its exact value, gives the written result by the rounding rules of `close_enough`."""
    lhs, rhs = link.lhs, link.rhs
    parts = _one_operation(lhs.operands, lhs.ops)
    if parts is None or parts[3] != lhs.value or rhs.value is None or lhs.has_pct or rhs.has_pct:
        return False  # not plainly `a op b`
    op, a, b, _ = parts
    for x, y in ((carried.get(a), b), (a, carried.get(b))):
        v = None if x is None or y is None else _apply(op, x, y)
        if v is not None and close_enough(lhs, rhs, v, rhs.value, link.approx, rounding=link.rounding):
            return True
    return False


def other_base_links(sm: StepMath, q: QuestionInfo) -> StepMath:
    """In a problem about other number bases, `1+6=10` may be base 7. Keep only the plain arithmetic
    links (two literal sides, no symbols) and call one wrong only when it is false in base 10 and in
    every base the question names (`83-72=10` has an 8: it cannot be base 6). Without a named base,
    or for anything else (symbols, SymPy, units), nothing is checked, as before."""
    if not q.bases:
        kept = []
    else:
        kept = [link for link in sm.links if _base10_only(link, q.bases)]
    if len(kept) < len(sm.links):
        sm.notes.append("note: the problem uses another number base; arithmetic not checked"
                        + (" except equations false in base 10 and in every base it names" if kept else ""))
    sm.links = kept
    sm.computations = []
    return sm


def _base10_only(link, bases: set) -> bool:
    if link.kind != "arith" or link.status not in ("ok", "mismatch") or link.lhs.node is None or link.rhs.node is None:
        return False
    if link.status == "ok":
        return True
    for b in bases:
        try:
            lv, rv = _in_base(link.lhs.node, b), _in_base(link.rhs.node, b)
        except ValueError:
            continue  # a digit ≥ b, a decimal point: not a base-b numeral
        try:
            if eval_exact(lv) == eval_exact(rv):
                return False  # true in base b: "1+6=10" in base 7
        except Exception:  # noqa: BLE001 - not evaluable in base b: no evidence either way
            return False
    return True


def _in_base(node, b: int):
    """The AST with every integer literal read as a base-b numeral (ValueError if one cannot be)."""
    if node[0] == "num":
        text = node[2].text if len(node) > 2 and node[2] is not None else str(node[1])
        if not text.isdigit():
            raise ValueError(text)
        return ("num", Fraction(int(text, b)), node[2] if len(node) > 2 else None)
    if node[0] in ("var", "const"):
        raise ValueError(node[0])
    return (node[0],) + tuple(_in_base(c, b) if isinstance(c, tuple) and c and isinstance(c[0], str) else c for c in node[1:])


def _geometry(comp: Computation, q: QuestionInfo, low: str, is_answer: bool, computed_before: list, later: set) -> Optional[str]:
    if q.wants is None:
        return None
    given = q.numbers
    if q.wants == "perimeter":
        ops_ok = comp.ops == frozenset({"*"}) and len(comp.operands) == 2 and not comp.has_pi  # 2·(π·r): an arc, not an area
        if ops_ok and all(_in(x, given) for x in comp.operands) and (is_answer or "area" in low):
            if not (4 in comp.operands and "square" in q.target.lower()):
                return f"area-style product {comp.text} computed, but the question asks for the perimeter"
    elif q.wants == "circumference":
        if comp.has_pi and comp.has_square and (is_answer or "area" in low):
            return f"πr²-style {comp.text} computed, but the question asks for the circumference"
    elif q.wants == "area":
        if _is_perimeter_like(comp, given) and (is_answer or "perimeter" in low):
            if any(_in(x, computed_before) for x in comp.operands if x != 2):
                return None  # a sum of values found earlier (two triangles' areas, 14 + 14), not of given sides
            if not is_answer and any(_in(abs(comp.result) / k, later) for k in (2, 3, 4)):
                return None  # the semiperimeter (Heron, A = rs) or a side of a regular shape follows: on the way to the area
            return f"perimeter-style sum {comp.text} computed, but the question asks for the area"
    elif q.wants == "circle_area":
        if comp.has_pi and not comp.has_square and (is_answer or "circumference" in low) and "^" not in comp.ops:
            if any(x == 2 for x in comp.operands) or "diameter" in low:
                return f"circumference-style {comp.text} computed, but the question asks for the area"
    return None


# unit conversion factors and the unit words that explain them: "2*60 = 120 minutes" converts hours,
# it does not misuse a "60% longer" of the question
_CONVERSIONS = {
    60: ("minute", "second", "hour", "min", "sec"), 24: ("hour", "day"), 7: ("day", "week"), 52: ("week", "year"),
    12: ("month", "year", "dozen", "inch", "feet", "foot"), 365: ("day", "year"), 1000: ("gram", "meter", "ml", "liter", "litre"),
    3: ("feet", "foot", "yard"), 16: ("ounce", "pound", "oz"), 4: ("quart", "gallon", "quarter"),
}


def _percent(comp: Computation, q: QuestionInfo, computed_before: list[Fraction], low: str = "") -> Optional[str]:
    if not q.percents or len(comp.operands) != 2 or "/" in comp.ops or not comp.ops:
        return None
    if any(_same(x, Fraction(100)) for x in comp.operands):
        return None
    for p in q.percents:
        if p in (0, 100) or _in(p, q.numbers) or _in(p, q.word_numbers) or _in(p, computed_before):
            continue
        if p.denominator == 1 and any(u in low for u in _CONVERSIONS.get(int(p), ())):
            continue  # a unit conversion named in the step ("5*60 = 300 seconds")
        if "percentage point" in low:
            continue  # "4 × 83 = 332 percentage points": the step counts in percent on purpose
        if _in(p, comp.operands):
            other = [x for x in comp.operands if not _same(x, p)]
            if other and _in(other[0], q.numbers | set(computed_before)):
                return f"{fmt_number(p)}% used as the number {fmt_number(p)} in {comp.text} (should be {fmt_number(p / 100)})"
    return None


def _reference_operation(comp: Computation, ref_comps: list[Computation], ref_index: dict) -> Optional[str]:
    if comp.ok is not True or len(comp.operands) < 2:
        return None
    if all(x in (0, 1, 2, 10, 100) for x in comp.operands):
        return None
    same_operands = ref_index.get(_signature(comp.operands), [])
    if not same_operands:
        return None
    if any(rc.ops == comp.ops for rc in same_operands):
        return None
    r = abs(comp.result)
    if any(_same(r, abs(rc.result)) for rc in ref_comps):
        return None
    rc = same_operands[0]
    return f"{comp.text} combines the reference's quantities with a different operation (reference: {rc.text})"


def _signature(operands) -> tuple:
    return tuple(sorted(round(float(x), 6) for x in operands))


def off_path(maths: list[StepMath], ref_comps: list[Computation], ref_final: Optional[Fraction], q: QuestionInfo,
             final: Optional[Fraction], steps: Optional[list[str]] = None) -> Optional[tuple[int, str]]:
    """(step, message) of the first step that leaves the reference's path, for a candidate whose final answer
    is wrong while no check found a wrong step: a misread question or a wrong method is arithmetic done right
    on the wrong quantities ("10 × 2/3 = 20/3" where one litre was spilt first), which no slip check sees.

    A computation is on the path when its result is a number the reference computes or brings in (not one
    the question gives: "80 × 0.25 = 20" where the question says "20 more than" is no way back).
    The first one off it that the solution goes on from (a later computation or mention uses it, or it is,
    or rounds to, the final answer) is the error, unless
    - a later computation brings the result back onto the path, to a value the reference computes: another
      way to the same quantities ("60 − 15 = 45", then "45 − 20 = 25");
    - it uses a value of the path where the reference goes on from that value first: a reference step is
      left out. The step that leaves it out is the error ("25 − 5 = 20" good oranges, where the reference
      counts 1 + 5 + 2 = 8 bad ones first), unless the left-out step adds the value to, or takes it from, a
      number it was computed from: then a change was taken for the quantity ("40 × 0.5 = 20" dollars for a
      red tie, where the reference goes on to 40 + 20 = 60), and the step that computed it is the error;
    - the next computation made from it reaches a value the reference computes with another operation
      ("45 + 20 = 65", where 45 − 20 = 25), or with a number of the question for one of its operands
      ("15.625 × 8 = 125" calories, where 15.625 × 12 = 187.5), and no other operation in the first one would
      through the next one as written: then the first was a correct detour and the next one is the error. Where both
      would ("15/4 = 3.75", then "60 × 3.75 = 225": 4/15, and 60 ÷ 3.75, both give 16) the earlier is.
    A final answer the reference reaches on its way (the cost of the red ties, not of all the ties) is
    answered too early: the error is the first step after its computation that states it (not one that
    computes on with it: "So 90 units are unoccupied"), or, where only the answer line does (`steps` given) and
    the solution computes nothing after it, the computation itself ("So the family now has 21 + 12 = 33 kittens",
    "The answer is 33").
    Only the first such step is named: after it every value differs from the reference's."""
    given = [Fraction(x) for x in (*q.numbers, *q.word_numbers)]
    given += [Fraction(p) / 100 for p in q.percents] + [Fraction(p) for p in q.percents]
    targets = [rc.result for rc in ref_comps] + ([ref_final] if ref_final is not None else [])
    # the reference's numbers: what it computes, and what it brings in beyond the question (7 days a week)
    given_values = _Values((x, 0) for x in given)
    known = _Values([(t, 0) for t in targets] + [(x, 0) for rc in ref_comps for x in rc.operands if not given_values.near(x)])
    reached = _Values((t, 0) for t in targets)
    # how often the reference reaches each value: a second way to it ("4 × 3 = 12" walking, where the
    # reference's one 12 is "2 × 6 = 12" running) is a coincidence, not the path
    # (in distinct operands: a GSM8K reference writes `3*2 = 6` twice, in its annotation and its text)
    left = Counter(kr for kr, _ in {(_key(abs(rc.result)), _signature(rc.operands)) for rc in ref_comps})
    ref_results_by_operand: dict[tuple, set] = {}  # (operation, operand) -> results (`_other_factor`)
    for rc in ref_comps:
        parts = _binary(rc)
        for x in parts[1:] if parts else ():
            ref_results_by_operand.setdefault((parts[0], _key(x)), set()).add(_key(rc.result))
    claimed: dict[float, set] = {}
    produced: dict[float, tuple[int, Computation]] = {}  # a value of the path -> the step and computation giving it
    comps = [(i, c) for i, sm in enumerate(maths) for c in sm.computations if c.operands]
    # (indexed, so a hostile candidate of thousands of computations stays near linear)
    uses = _Values((x, k2) for k2, (_, c2) in enumerate(comps) for x in c2.operands)
    mentioned = _Values((x, j) for j, sm in enumerate(maths) for x in sm.mentions)
    for k, (i, c) in enumerate(comps):
        r = abs(c.result)
        if _close(r, c.operands) and not _other_factor(c, ref_results_by_operand):  # (`60 × 1 = 60` keeps a number)
            if known.near(r):
                produced.setdefault(_key(r), (i, c))  # (`2/5 × 5 = 2` more articles)
            continue
        is_final = final is not None and _close(r, [final])
        if is_final and reached.near(r):
            # (the step that states it: one that only computes on with it, "60 × 0.5 = 30", does not)
            j = min((j for j in mentioned.near(r) if j > i and not any(_close(r, c2.operands) for c2 in maths[j].computations)),
                    default=i)
            if steps is not None and j < len(steps) and _ANSWER_ONLY_RE.match(steps[j]) and i == comps[-1][0]:
                j = i  # (where the solution computes on past it, the answer line picked the wrong value)
            return j, _off_path_note(f"the final answer {fmt_number(r)} is a value the reference reaches on its way "
                                     f"({c.text}), not its answer")
        if not is_final and known.near(r) and _on_path(r, c, left, claimed):
            produced.setdefault(_key(r), (i, c))
            continue
        later = [comps[k2] for k2 in sorted({k2 for k2 in uses.near(r) if k2 > k})]
        rounded = (final is not None and final.denominator == 1 and r.denominator != 1
                   and final in (math.floor(r), math.ceil(r)))  # "3.75 toys, which rounds to 4"
        goes_on = later or is_final or rounded or any(j > i for j in mentioned.near(r))
        # (back on the path means a value the reference computes: "180 + 185 = 365" days is no way back)
        if not goes_on or any(reached.near(c2.result) for _, c2 in later):
            continue
        left_out = _left_out(i, c, ref_comps, targets, produced)
        if left_out is not None:
            return left_out
        if later:
            j, c2 = later[0]
            # (a number of the question in place of r itself says r was wrong: "2 + 6 = 8" minutes a group, then
            # "110 / 8", where 110 ÷ 10 reaches the reference's value, left the exit's 2 minutes out)
            shown = _other_operations(c2, targets) or _other_operand(c2, given, targets, undoes=tuple(c.operands), kept=r)
            if shown and not _other_operations(c, targets, through=c2):
                return j, _off_path_note(f"{c2.text}, but {shown[0]} reaches the reference's value")
        hint = (_other_operations(c, targets) or _other_operand(c, given, targets))[:1]
        would = f" ({hint[0]} would)" if hint else ""
        return i, _off_path_note(f"{c.text} gives {fmt_number(r)}, which the reference never reaches{would}, and the "
                                 f"solution goes on from it")
    return None


# a step that only gives the final answer ("Therefore, the final answer is \\(\\boxed{600}\\).")
_ANSWER_ONLY_RE = re.compile(r"^\W*(?:(?:so|thus|therefore|hence)\W+)?(?:the (?:final )?answer is|final answer)\b|^\W*\\boxed|^\s*####",
                             re.IGNORECASE)


def _off_path_note(reason: str) -> str:
    return f"off the reference's path: {reason} (the final answer is wrong; no other check found a wrong step)"


class _Values:
    """Numbers looked up as `_close` compares them (a rounding away, sign aside), each with a tag, in
    O(log n): `near(x)` gives the tags of the numbers close to x."""

    def __init__(self, pairs) -> None:
        self._rows = sorted((abs(float(v)), tag) for v, tag in pairs)
        self._keys = [v for v, _ in self._rows]

    def near(self, x) -> list:
        fx = abs(float(x))
        tol = max(0.0051, 1.01e-6 * fx)
        lo, hi = bisect.bisect_left(self._keys, fx - tol), bisect.bisect_right(self._keys, fx + tol)
        return [tag for v, tag in self._rows[lo:hi] if _close(fx, [v])]


def _left_out(i: int, c: Computation, ref_comps: list[Computation], targets: list[Fraction],
              produced: dict) -> Optional[tuple[int, str]]:
    """A reference step left out before `c` (step i, `a op b`): an operand x that an earlier step computed on
    the path, where the reference computes y from x and `a op b` with y for x gives a value of the reference.
    (step in error, message), or None."""
    parts = _binary(c)
    if parts is None:
        return None
    op, a, b = parts
    for pos, x in enumerate((a, b)):
        if _key(x) not in produced:
            continue
        step, source = produced[_key(x)]
        for rc in ref_comps:
            y = rc.result
            if _close(y, [x]) or not _close(x, rc.operands):
                continue
            v = _apply(op, y, b) if pos == 0 else _apply(op, a, y)
            if v is None or not _close(v, targets):
                continue
            base = [o for o in rc.operands if not _close(o, [x])]
            if ({_OP_NAMES.get(o) for o in rc.ops} <= {"+", "-"} and len(base) == 1 and _close(base[0], source.operands)
                    and x < base[0]):  # (a change is a part of its base: "2 × 60 = 120" boys is no change of 60)
                return step, _off_path_note(f"{source.text} is a change, not the quantity: the reference goes on to "
                                            f"{rc.text}, and {c.text} uses {fmt_number(x)} for {fmt_number(y)}")
            return i, _off_path_note(f"{c.text} uses {fmt_number(x)} where the reference first goes on to {rc.text} "
                                     f"(a step left out)")
    return None


def _other_factor(c: Computation, ref_results_by_operand: dict) -> bool:
    """`185 × 1 = 185` where the reference computes 185 × 2 = 370: the same number, the same operation, another
    result (a wrong rate, not a number kept as it is)."""
    parts = _binary(c)
    if parts is None:
        return False
    op, a, b = parts
    kr = _key(c.result)
    return any(other != kr for x in (a, b) for other in ref_results_by_operand.get((op, _key(x)), ()))


def _on_path(r: Fraction, c: Computation, left: Counter, claimed: dict) -> bool:
    """r, a value of the reference, on the path here: not reached yet by the candidate from other operands
    more often than the reference reaches it."""
    kr = _key(r)
    signature = _signature(c.operands)
    ways = claimed.setdefault(kr, set())
    if signature in ways:
        return True  # the same computation again (a check, a restatement)
    if ways and len(ways) >= left.get(kr, 1):
        return False
    ways.add(signature)
    return True


def _close(x: Fraction, values) -> bool:
    """x among `values`, exactly or as its rounding to cents (6.67 for 20/3, 24.38 for 24.375)."""
    fx = float(x)
    for v in values:
        fv = float(v)
        if fx.is_integer() and fv.is_integer():
            if abs(fx - fv) <= 1e-6 * max(abs(fx), abs(fv), 1.0):
                return True
        elif abs(fx - fv) <= 0.005 + 1e-9:
            return True
    return False


def _binary(c: Computation) -> Optional[tuple[str, Fraction, Fraction]]:
    """(operation, a, b) of a computation written `a op b` with one operation, else None."""
    parts = _one_operation(c.operands, c.ops)
    if parts is None or parts[3] is None or not _close(abs(parts[3]), [abs(c.result)]):
        return None
    return parts[:3]


def _other_operand(c: Computation, given: list[Fraction], targets: list[Fraction], undoes: tuple = (),
                   kept: Optional[Fraction] = None) -> list[str]:
    """`a op b` with a number of the question in place of a or b, as text, where that gives one of `targets`.
    Not a number of `undoes` (the operands of the computation that made a or b: "400 + 3 × 400 = 1600", then
    1600 − 400 only takes back what was added), nor a number that leaves the other one as it is (`3 × 1`), nor
    one in place of `kept`."""
    parts = _binary(c)
    if parts is None:
        return []
    op, a, b = parts
    found = []
    for g in dict.fromkeys(given):
        if _close(g, list(undoes)):
            continue
        for x, y in ((g, b), (a, g)):
            replaced = a if x is g else b
            if kept is not None and _close(replaced, [kept]):
                continue
            v = _apply(op, x, y)
            if (x, y) != (a, b) and v is not None and _close(v, targets) and not _close(v, [x, y]):
                found.append(f"{fmt_number(x)} {_OP_SHOW[op]} {fmt_number(y)}")
    return found


def _other_operations(c: Computation, targets: list[Fraction], through: Optional[Computation] = None) -> list[str]:
    """Other operations on c's operands (either order), as text, whose result is one of `targets`; with
    `through` (the next computation, as written), whose result fed into it in place of c's gives one."""
    parts = _binary(c)
    nxt = _binary(through) if through is not None else None
    if parts is None or (through is not None and nxt is None):
        return []
    op, a, b = parts
    found = []
    for other in ("+", "-", "*", "/"):
        for x, y in ((a, b), (b, a)):
            if other == op and (x, y) == (a, b) or other in "+*" and (x, y) == (b, a):
                continue
            v = _apply(other, x, y)
            if v is not None and nxt is not None:
                op2, a2, b2 = nxt
                v = _apply(op2, v, b2) if _close(abs(c.result), [a2]) else _apply(op2, a2, v)
            if v is not None and _close(v, targets):
                found.append(f"{fmt_number(x)} {_OP_SHOW[other]} {fmt_number(y)}")
    return found


def reused_values(maths: list[StepMath]) -> frozenset:
    """(x, r) as value_flow keys wherever a step computes r from x (x its first operand) and a later step computes
    with x again: in this solution x stays current after r."""
    last_use: dict[float, int] = {}
    for i, sm in enumerate(maths):
        for comp in sm.computations:
            for x in comp.operands:
                last_use[_key(x)] = i
    return frozenset((_key(comp.operands[0]), _key(abs(comp.result)))
                     for i, sm in enumerate(maths) for comp in sm.computations
                     if comp.operands and last_use[_key(comp.operands[0])] > i)


def shows_result(source: StepMath, step: StepMath) -> bool:
    """Does `step` write a number that `source` computed (the order check: does it need that step)?"""
    results = [abs(c.result) for c in source.computations]
    return any(_in(x, results) for x in step.mentions)


def ref_dependencies(maths: list[StepMath], given: set) -> dict[int, set[int]]:
    """Reference step -> earlier reference steps whose computed results it uses."""
    produced: list[tuple[int, Fraction]] = []
    deps: dict[int, set[int]] = {}
    for i, sm in enumerate(maths):
        used = [x for c in sm.computations for x in c.operands]
        for k, r in produced:
            if r in (0, 1, 2) or _in(r, given):
                continue
            if _in(r, used):
                deps.setdefault(i, set()).add(k)
        for c in sm.computations:
            produced.append((i, abs(c.result)))
    return deps


# --------------------------------------------------------------------------- algebra
# Words before an equation that make it a condition or a trial value, not a derivation:
# "if x = 2", "when x = -2", "plugging in x = 3", "for n = 1".
# Words that name, not a condition put on what follows: "Let x be the number of apples", "let $n$ denote the count",
# "the equation for the combined length" (cut, as a link's `pre` is its last 30 characters: "ation for the combined
# length"). "Solving for $x$" keeps its "for": of "For the second case, solving for $x$", 30 characters keep only that.
_NAMING_WORDS = ("equation", "expression", "formula")
_NAMING_RE = re.compile(r"\blet\s+\$?\s*[a-zA-Z](?:_\{?\w+\}?)?\s*\$?\s+(?:be|denote|represent|stand for|equal the)\b[^.;]*"
                        r"|(?:\b(?:" + "|".join(_NAMING_WORDS) + r")|^(?:" + "|".join(w[k:] for w in _NAMING_WORDS for k in range(1, len(w) - 3))
                        + r"))s?\s+for\b")
_CONDITION_RE = re.compile(
    r"\b(?:if|when|whenever|suppose|supposing|assume|assuming|let|for|case|where|at|unless|say|try|trying|plug\w*|"
    r"substitut\w*|test\w*|check\w*|set\w*(?!\s+(?:the\s+|these\s+|them\s+|both\s+)?(?:[a-z]{2,}\s+){0,2}equal\b)|put\w*|take|taking|choose|choosing|other|another|either|or|first|second|third|former|latter)\b"
)
# a condition that sets one symbol: "set $x = -1$:", "if $n = 3$, then"
_OTHER_SYMBOL_SET_RE = re.compile(
    r"(?:set\w*|plug\w*|substitut\w*|put\w*|if|when|at|for)\s+\$?\s*([a-zA-Z])\s*=\s*[^$,:;=]{1,20}\$?\s*(?::|,|\s+then\b)",
    re.IGNORECASE)


# words that make an equation a case or a trial, not a derivation ("either x − 7 = x + 1 or ...")
# the equation is a requirement whose coefficients are matched, not a rewrite that went wrong
_MATCHING_RE = re.compile(r"\bfor (?:this|these|it|them|the equation|the identity) to (?:hold|be true)|"
                          r"\b(?:compar|match|equat)\w* (?:the )?coefficients|\bcoefficients? must", re.IGNORECASE)
# (not "or" alone: MATH writes "\[A = B,\] or \[C = D\]" for "equivalently", and a slip there is a slip)
CASE_RE = re.compile(r"\b(?:if|when|whenever|suppose|assume|either|case|unless|plug\w*|substitut\w*|test\w*|try\w*)\b")


_SOME_RE = re.compile(r"\bfor some (?:\w+ ){0,2}?(?:integers?|reals?|real numbers?|numbers?|constants?|values?)?\s*\$\s*([a-zA-Z])\s*\$")


def _link_vars(link) -> set:
    return _node_vars(link.lhs.node) | _node_vars(link.rhs.node)


_SENTENCE_END = re.compile(r"[.;!?]\$?(?:\s|$)")


def _last_sentence(step: str) -> str:
    """"… the third root is $t = -r - s.$  Also,": the cue of a lead-in must be in its own sentence."""
    ends = [m.end() for m in _SENTENCE_END.finditer(step)]
    return step[ends[-1]:] if ends else step


def _holds_with_definitions(link, definitions: dict) -> bool:
    """Equal at 3 random points once the symbols defined in the solution (`y = 1 − 1/z`, or a value
    `a = 0`) are replaced by their definitions (evaluated in order, up to 3 levels), and not only
    because both sides vanish."""
    import random

    used = _link_vars(link)
    if not definitions or not used & set(definitions):
        return False
    names = set(used)
    for _ in range(3):
        for v in list(names):
            if v in definitions:
                names |= _node_vars(definitions[v])
    rng = random.Random(link.text)
    zero = True
    for _ in range(3):
        env = {v: Fraction(rng.randint(1, 2**20), rng.randint(1, 97)) for v in names}
        try:
            for _ in range(3):
                for v, node in definitions.items():
                    if v in names:
                        env[v] = eval_exact(node, env)
            lv = eval_exact(link.lhs.node, env)
            if lv != eval_exact(link.rhs.node, env):
                return False
            zero = zero and lv == 0
        except Exception:  # noqa: BLE001 - not evaluable: no evidence
            return False
    # a value that makes both sides 0 (`x = 1/4` in `… = \frac{(1 − 4x)(49x^2 − …)}{32}`) keeps a wrong factor:
    # no evidence, as in algebra.factor_root_checks
    return not zero


def _sum_of_symbols(node) -> Optional[list[str]]:
    if node[0] == "var":
        return [node[1]]
    if node[0] == "bin" and node[1] == "+":
        a, b = _sum_of_symbols(node[2]), _sum_of_symbols(node[3])
        return a + b if a is not None and b is not None else None
    return None


def _pair_definition(link) -> Optional[tuple[str, tuple]]:
    """`xy = c` -> (y, c / x); `x + y = c` -> (y, c − x), `r + s + t = 0` -> (t, 0 − (r + s)): the
    last symbol in terms of the others."""
    if link.kind != "algebra" or link.status not in ("equation", "assign") or link.lhs.node is None or link.rhs.node is None:
        return None
    node = link.lhs.node
    if node[0] != "bin" or node[1] not in ("*", "+") or node[3][0] != "var":
        return None
    rest = [node[2][1]] if node[2][0] == "var" else (_sum_of_symbols(node[2]) if node[1] == "+" else None)
    if not rest or node[3][1] in rest or len(set(rest)) != len(rest):
        return None
    if _node_vars(link.rhs.node):
        return None
    inverse = "/" if node[1] == "*" else "-"
    return node[3][1], ("bin", inverse, link.rhs.node, node[2])


def _node_vars(node) -> set:
    if node is None:
        return set()
    if node[0] == "var":
        return {node[1]}
    out = set()
    for c in node[1:]:
        if isinstance(c, tuple) and c and isinstance(c[0], str):
            out |= _node_vars(c)
    return out


def _closed_form_value(link) -> Optional[complex]:
    """The value of `x = <constant>` whose constant is no fraction (`r = \\frac{9}{4\\sqrt{2}}`)."""
    from .algebra import _NoValue, num_eval

    if link.status != "assign" or link.lhs.node is None or link.lhs.node[0] != "var" or link.rhs.node is None:
        return None
    if _node_vars(link.rhs.node):
        return None
    try:
        return num_eval(link.rhs.node, {})
    except (_NoValue, ArithmeticError, ValueError, OverflowError):
        return None


def _holds_at_closed_form(link, name: str, values: list) -> bool:
    """Both sides agree (to 1e-9, relative) with `name` set to one of `values`."""
    from .algebra import _NoValue, num_eval

    for v in values[:4]:
        try:
            lv, rv = num_eval(link.lhs.node, {name: v}), num_eval(link.rhs.node, {name: v})
        except (_NoValue, ArithmeticError, ValueError, OverflowError):
            continue
        if abs(lv - rv) <= 1e-9 * max(1.0, abs(lv), abs(rv)):
            return True
    return False


# integer points (exponents stay exact) for the symbols left free; three agreeing by chance is unlikely
_PROBE_POINTS = [(Fraction(2), Fraction(7), Fraction(-3)), (Fraction(5), Fraction(-4), Fraction(11)), (Fraction(-6), Fraction(3), Fraction(13))]


def _holds(link, env: dict) -> bool:
    try:
        return eval_exact(link.lhs.node, env) == eval_exact(link.rhs.node, env)
    except Exception:  # noqa: BLE001 - not evaluable at these values: no evidence either way
        return False


# the words that derive an equation from the one before it: "so", "we get", "move the x terms to the left",
# "squaring both sides" (algebra.py's derivation checks read the same words)
DERIVATION_RE = re.compile(
    r"\b(?:so|thus|hence|therefore|gives?|giving|get|gets|getting|yields?|implies|means|find|found|solv\w*|simplif\w*|"
    r"subtract\w*|divid\w*|multipl\w*|becomes?|leaves?|obtain\w*|isolat\w*|then|have|add\w*|squar\w*|cub\w*|"
    r"rais\w*|expand\w*|rearrang\w*|mov\w*|collect\w*|combin\w*|cancel\w*|clear\w*|cross-multipl\w*|both sides|"
    r"reduc\w*)\b|\\rightarrow|\\Rightarrow|\\implies|⇒|→|\\therefore", re.IGNORECASE
)


_WORD_RE = re.compile(r"(?<!\\)\b[A-Za-z]{2,}")
_AND_ONLY_RE = re.compile(r"[\s,$()\\]*and[\s,$()\\]*")


def question_equation_links(question: str) -> list:
    """The equations the question states, one sentence at a time (`Solve for x: 3x + 5 = 20`)."""
    q = question_info(question)
    if q.other_base:
        return []
    return [link for sentence in split_sentences(" ".join((question or "")[:2000].split()))
            for link in analyse_step(sentence, opaque_star=q.opaque_star).links
            if link.kind == "algebra" and link.status == "equation" and link.diff is not None
            # a whole formula or a line of an align: `4:x^2 = x:16` is no x^2 = x
            and link.pre.rstrip().endswith(("$", "\\[", "\\(", "\\\\"))]


def question_equations(links: list) -> dict:
    """symbol -> (solution, text) for each symbol that exactly one linear equation of the question (its
    question_equation_links) determines: the candidate's value of it can be substituted back."""
    from .algebra import linear_solution

    found: dict[str, list] = {}
    for link in links:
        sol = linear_solution(link.diff)
        if sol is not None:
            found.setdefault(sol[0], []).append((sol[1], link.text))
    return {x: v[0] for x, v in found.items() if len(v) == 1}


def step_head(step: str) -> str:
    """The words that open a step, before its first formula ("Move the $x$ terms …" gives "Move the ")."""
    return re.split(r"\$|\\\[|\\\(", step, maxsplit=1)[0]


def previous_math_steps(maths: list[StepMath]) -> list[Optional[int]]:
    """For each step, the last step before it with a formula (None for the first): headings and words between
    two displays do not part a derivation."""
    out: list[Optional[int]] = []
    last = None
    for i, sm in enumerate(maths):
        out.append(last)
        if sm.links:
            last = i
    return out


def equation_checks(
    maths: list[StepMath], steps: Optional[list[str]] = None, question_eqs: Optional[dict] = None
) -> tuple[list[tuple[int, str]], set]:
    """Equations and assignments checked by substitution (algebra.py explains the kinds).

    Returns (flags, withdrawn): `flags` are (step, reason) for a linear equation in one symbol
    whose solution differs from the one of the equation just before it (same symbol, same or
    previous step, neither introduced as a condition: `3x + 5 = x + 11` then `2x = 7`), and
    `withdrawn` holds id(link) of tentative algebra mismatches that values assigned elsewhere
    in the solution satisfy (an equation being solved, e.g. `(x+1)(x+2) = x^2 + 5` ... `x = 1`),
    or that follow a step speaking of an equation ("Squaring both sides, we get").

    The substitution check compares E2 with E1 only when E2 is introduced as a derivation
    ("so", "we get", "⇒": DERIVATION_RE) and not as a condition, and E1 is not a sibling
    alternative with the same left side (`49 − 4c = 1`, `49 − 4c = 9`: cases, not steps)."""
    from .arith import EQUATION_CUE
    from .algebra import linear_solution, ratio, symbols

    bindings: dict[str, list[Fraction]] = {}
    assigned: dict[str, list[tuple[int, Fraction]]] = {}  # (step, value) of `x = value` (the "values" withdrawal)
    closed_forms: dict[str, list[tuple[int, complex]]] = {}  # (step, value) of `r = 9/(4√2)`: not a fraction
    stated: list[tuple[int, object]] = []  # (step, lhs − rhs) of every equation and assignment
    eqs = []
    ordinal = 0
    for i, sm in enumerate(maths):
        for link in sm.links:
            if link.kind != "algebra" or link.status not in ("assign", "equation"):
                continue
            ordinal += 1
            if link.diff is not None and symbols(link.diff):
                stated.append((i, link.diff))
            sol = linear_solution(link.diff) if link.diff is not None else None
            if sol is None:
                value = _closed_form_value(link)
                if value is not None:
                    closed_forms.setdefault(link.lhs.node[1], []).append((i, value))
                continue
            bindings.setdefault(sol[0], []).append(sol[1])
            if link.status == "assign":
                assigned.setdefault(sol[0], []).append((i, sol[1]))
            eqs.append((i, link, sol, ordinal))
    # symbols defined in terms of others (`y = 1 − 1/z`), by step: a rewrite may substitute a
    # definition stated before it, not one of a later case (`so either x = 0, y = 0, ...`)
    defined: list[tuple[int, str, tuple]] = []
    paired: list[tuple[int, str, tuple]] = []
    for i, sm in enumerate(maths):
        for link in sm.links:
            if CASE_RE.search(link.pre):
                continue
            if link.status == "assign" and link.lhs.node is not None and link.lhs.node[0] == "var" and link.rhs.node is not None:
                defined.append((i, link.lhs.node[1], link.rhs.node))
            # a given product or sum of two symbols (`xy = -5`, `a + b = 7`) pins one symbol to the
            # other: `12xy = 12(-5)` substitutes it, it is no wrong rewrite
            pair = _pair_definition(link)
            if pair is not None:
                paired.append((i,) + pair)

    def definitions_until(step: int, values: bool = True) -> dict:
        # a value (`a = 0`) counts from the steps before only: in its own step it is what the step concludes
        # (`so c = 0 or c = 1`), not what the link may use
        out = {name: node for j, name, node in defined
               if (j < step and (values or _node_vars(node))) or (j == step and _node_vars(node))}
        for j, name, node in paired:
            if j <= step and name not in out:
                out[name] = node
        return out

    withdrawn = set()
    for i, sm in enumerate(maths):
        for link in sm.links:
            if link.kind == "algebra" and link.status == "mismatch" and not link.rewrite and CASE_RE.search(link.pre):
                withdrawn.add(id(link))  # "either x − 7 = x + 1 or ...", "if 4a = 4(a − 3)": a case, not a derivation
                continue
            if link.status != "mismatch" or not link.tentative:
                continue
            if steps is not None and _MATCHING_RE.search(steps[i]):
                withdrawn.add(id(link))  # "For this to hold for all x, we must have a^2 = 1": coefficients to match
                continue
            if steps is not None and (_link_vars(link) & set(_SOME_RE.findall(steps[i]))):
                withdrawn.add(id(link))  # "`11 · 11^{-1} = 10^3 k + 1` for some integer k": k is introduced, not computed
                continue
            lead_in = steps is not None and i > 0 and steps[i - 1].rstrip()[-1:] not in (".", "!", "?", "$")
            if lead_in and not link.rewrite and link.tentative is True and EQUATION_CUE.search(_last_sentence(steps[i - 1])[-120:]):
                withdrawn.add(id(link))  # "Squaring both sides, we get" ends the step before
                continue
            if link.diff is not None and any(i - 1 <= j <= i and ratio(link.diff, d) for j, d in stated):
                withdrawn.add(id(link))  # `x² + y² + z² = −2(xy + yz + zx)` after `(x² + y² + z²) + 2(xy + yz + zx) = 0`: rearranged
                continue
            syms = sorted(_link_vars(link))
            # (the symbolic definitions alone first: "x = 0 is not a root" is no value to substitute)
            if _holds_with_definitions(link, definitions_until(i, values=False)) or _holds_with_definitions(link, definitions_until(i)):
                withdrawn.add(id(link))  # `x + 1/y = x + 1/(1 − 1/z)` with y = 1 − 1/z defined before
                continue
            if link.rewrite and link.tentative != "switch":
                continue  # a rewrite must hold for every value; a wrong one may still agree at the roots
            # a "values" mismatch (`1 + 2c + 1 = 1 + 1 + c`) is withdrawn only by a value the solution
            # states right there (`so c = 0`, in this step or the next), not by one solved from another
            # equation that may carry the same slip, nor by a value found much later: `(3n)^3 = 27n^4`
            # holds at n = 1, which a later case may well try
            if link.tentative == "values":
                values = {x: [v for j, v in vs if i <= j <= i + 1] for x, vs in assigned.items()}
                values = {x: vs for x, vs in values.items() if vs}
            else:
                values = bindings
            if len(syms) == 1 and _holds_at_closed_form(link, syms[0], [v for j, v in closed_forms.get(syms[0], []) if i <= j <= i + 1]):
                withdrawn.add(id(link))  # `r² = 1 + (2√2 − r)²`, then `r = 9/(4√2)` right there: the equation solved
                continue
            bound = [v for v in syms if v in values]
            # symbols the solution gives no value stay free: the values must make it hold for all of them
            # (`\frac{ax − a^2 + bx − b^2}{ab} = \frac{…}{(x − a)(x − b)}`, and `x = 0`: an identity in a and b);
            # not for a slip-shaped mismatch ("values": one edit or one term from an identity)
            free = [v for v in syms if v not in values]
            if not bound or len(syms) > 3 or (free and link.tentative == "values"):
                continue
            from itertools import product

            points = [dict(zip(free, pt)) for pt in _PROBE_POINTS] if free else [{}]
            for combo in product(*[values[v][:4] for v in bound]):
                env = dict(zip(bound, combo))
                if all(_holds(link, env | pt) for pt in points):
                    withdrawn.add(id(link))  # the solution's own values satisfy it: an equation being solved
                    break
    flags: list[tuple[int, str]] = []
    # the question's own equation, substituted back: `x = 6` for "3x + 5 = 20" is wrong
    for i, link, (x, v), ordinal in eqs:
        if question_eqs and x in question_eqs and link.status == "assign" and not CASE_RE.search(link.pre):
            qv, qtext = question_eqs[x]
            if v != qv:
                flags.append((i, f"algebra slip: {link.text} does not satisfy the question's {qtext} ({x} = {fmt_number(qv)})"))
                break
    # `x = −7/3 gives 3x + 7 = 0 and x = 2 gives x − 2 = 0`, `solving … we find n = 5 and n = 2`: a step
    # that lists several roots pairs them with their equations in any order
    roots: dict[tuple[int, str], set] = {}
    for i, link, (x, v), _ in eqs:
        if link.status == "assign":
            roots.setdefault((i, x), set()).add(v)
    # a step with no formula between two equations (a heading, "5. **Solve for b:**") does not part them
    last_math = previous_math_steps(maths)
    prev: dict[str, tuple] = {}
    for i, link, (x, v), ordinal in eqs:
        pre = _NAMING_RE.sub(" ", link.pre)
        # ("Set $x = -1$: $-2B = 1$, so $B = …$": the last condition fixes x; what follows in B is derived under it)
        last = None
        for last in _CONDITION_RE.finditer(pre):
            pass
        other = _OTHER_SYMBOL_SET_RE.match(pre, last.start()) if last is not None else None
        cond = last is not None and not (other is not None and other.group(1) != x)
        p = prev.get(x)
        between = link.pre
        if p is not None and p[0] == i and (k := between.rfind(p[1].rhs.text.lower())) >= 0:
            between = between[k + len(p[1].rhs.text) :]  # `x − 3 = 0, x − 7 = 0, or …`: only words after E1 derive E2
        # (or nothing but the equation, right after the one before: lines or displays of a derivation,
        # `s + (s + 30) = 110`, then `2s = 140`, say nothing of how they follow)
        derived = bool(DERIVATION_RE.search(between)) or (p is not None and p[0] == last_math[i] and not _WORD_RE.search(between))
        # (`so 2x = 8 and x = 16`: a value after "and" in the same step is the one just solved for)
        derived = derived or (p is not None and p[0] == i and link.status == "assign" and _AND_ONLY_RE.fullmatch(between) is not None)
        # (or the words that open the step, before its first formula: "Move the $x$ terms to the left …: $x - 2x = 2 - 9$")
        derived = derived or (p is not None and p[0] == last_math[i] and steps is not None and link is maths[i].links[0]
                              and bool(DERIVATION_RE.search(head := step_head(steps[i])))
                              and not CASE_RE.search(head.lower()))
        if p is not None and not cond and derived:
            pi, plink, pv, pcond, pord = p
            sibling = plink.lhs.text.replace(" ", "") == link.lhs.text.replace(" ", "")
            # E1 must be the equation right before E2 (no other equation in between)
            listed = pv in roots.get((i, x), ()) or pv in roots.get((pi, x), ())
            if pord == ordinal - 1 and pi in (i, last_math[i]) and not pcond and not sibling and plink.status == "equation" and v != pv and not listed:
                flags.append(
                    (i, f"algebra slip: {link.text} gives {x} = {fmt_number(v)}, but {plink.text} (step {pi}) "
                        f"gives {x} = {fmt_number(pv)}")
                )
        prev[x] = (i, link, v, cond, ordinal)
    return flags, withdrawn


# --------------------------------------------------------------------------- d4 (offline)
# Quantities that solutions introduce from world knowledge, not from the question.
_WORLD = {Fraction(x) for x in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 24, 30, 31, 52, 60, 100, 360, 365, 1000, 2000)}


def _round_pair(x: Fraction, r: Fraction) -> bool:
    """Round numbers that differ only in their leading digit (2000 and 7000, 300 and 500): in a solution that
    used r again they are as often a list of cases (1,000 steps a day, then 2,000) as a confusion."""
    if x.denominator != 1 or r.denominator != 1:
        return False
    sx, sr = str(abs(int(x))), str(abs(int(r)))
    return len(sx) == len(sr) >= 3 and sx[1:] == sr[1:] and set(sx[1:]) == {"0"}


# A step that starts another method or case works the question again: "Alternatively, ...", "Or we know that ...",
# "Case 2:", "Otherwise,", "In the second case". Its results are not the earlier method's carried on, nor are they
# what an earlier step should have waited for.
_NEW_METHOD_RE = re.compile(
    r"^\W{0,4}(?:alternatively\b|(?:an? |the )?(?:alternative|another|second|2nd|other) (?:way|approach|method|solution)\b"
    r"|(?:method|solution|approach) (?:2|ii|two)\b|or\b|otherwise,|case\s*(?:\d+|[ivx]+\b|\(\w+\))"
    r"|in the (?:first|second|third|other|last) case\b)",
    re.IGNORECASE)
_CHOICE_STEP_RE = re.compile(r"^\W{0,2}\(?([A-H])[.)]\s")


def method_starts(steps: list[str], q: QuestionInfo) -> list[int]:
    """Per step, the index of the step its method or case begins at: 0 throughout a solution worked one way; a
    step opening another method, a case, or one of the question's answer choices ("B. 23 is between ...")
    starts a new one."""
    out, start = [], 0
    for i, st in enumerate(steps):
        label = _CHOICE_STEP_RE.match(st)
        if i and (_NEW_METHOD_RE.match(st) or (label is not None and label.group(1) in q.choice_labels)):
            start = i
        out.append(start)
    return out


def _computed_later(maths: list[StepMath], i: int, x: Fraction, stop: int) -> Optional[int]:
    """The first step after i, before `stop`, that computes x (or x as a percent) from numbers that steps i..j-1
    did not compute."""
    since: list = []
    for j in range(i, stop):
        if j > i:
            for c in maths[j].computations:
                r = abs(c.result)
                if (_same(r, x) or _same(r, x * 100) or _same(r * 100, x)) and not any(_in(abs(y), since) for y in c.operands):
                    return j
        since.extend(abs(c.result) for c in maths[j].computations)
    return None


def _carried_wrongly(x: Fraction, r: Fraction) -> bool:
    """Could x be the computed r carried into a later step wrongly? `_near`, or a zero dropped or added (8
    computed, 80 used), or, from 10 on, off by 2 or 10 (52 computed, 50 used). Only asked of a result that is
    never used again, by a number neither the question nor an earlier step gives."""
    if _near(x, r):
        return True
    if x == r or x.denominator != 1 or r.denominator != 1 or x <= 1 or r <= 1:
        return False
    return x == 10 * r or r == 10 * x or (min(x, r) >= 10 and abs(x - r) in (2, 10))


def _near(a: Fraction, b: Fraction) -> bool:
    """Two different whole numbers a person could confuse: ±1 (from 10 on), or, with at least two
    digits, one digit changed or two adjacent digits swapped. (Small numbers and decimals are
    left alone: 4.5 and 1.5 are different quantities far more often than a confusion.)"""
    if a == b or a.denominator != 1 or b.denominator != 1 or a < 10 or b < 10:
        return False
    if abs(a - b) == 1:
        return True
    sa, sb = fmt_number(a), fmt_number(b)
    return len(sa) >= 2 and _digit_confusion(sa, sb)


# a step that only states the final answer ("The answer is: 72", "#### 72", "Final answer: 72")
_ANSWER_STATEMENT = re.compile(r"^\W{0,4}(?:####|the (?:final )?answer is|final answer|answer:)", re.IGNORECASE)


def _bound_used(bound: Fraction, x: Fraction) -> bool:
    if abs(x - bound) <= 1:
        return True
    if x.denominator == 1 and 0 <= x <= 9 and bound.denominator == 1 and bound >= 10 and str(int(x)) in str(int(bound)):
        return True  # "the digits in his phone number 271-3147": `2 + 7 + 1 + …` reads the given number digit by digit
    return x != 0 and bound.denominator == 1 and any(x * 10**k == bound for k in range(1, 7))


def _halved_or_doubled(givens: list, mentions: list) -> int:
    """How many givens the solution uses halved or doubled (the half-diagonals 5 and 12 of diagonals 10 and 24, a
    radius for a diameter): two of them are a use of the question, one may be chance."""
    return sum(1 for g in givens if any(x > 2 and (_same(x * 2, g) or _same(x, g * 2)) for x in mentions))


def logic_checks(
    maths: list[StepMath], steps: list[str], q: QuestionInfo, final: Optional[Fraction], starts: Optional[list[int]] = None
) -> list[tuple[int, str, str]]:
    """Programmatic d4 signals besides value flow: (step, kind, reason).

    - "changed quantity": a computation uses a number that neither the question gives (in
      digits, in words or as a coin: a dime's 0.1) nor an earlier step (as written or as a
      percent: 80% and 80), while an earlier step computed a number it is easily confused with
      (±1, one digit changed, two digits swapped, a zero dropped or added, ±2 or ±10): the
      quantity silently changed between steps (24 computed, then 25 used). The computed number
      may be used elsewhere too (60 boys, then 100 − 60 girls, then 70 − 40 more boys than
      girls), unless the two are round numbers apart only in their leading digit (a list of
      cases) or the question has a figure to read numbers from;
    - "used before computed": a computation uses a number that no earlier step and not the
      question gives, and a later step computes exactly that number from numbers that do not
      come from this step or the ones between (`220 × 0.95`, then `100 − 5 = 95`%): the steps are
      out of order (a result computed from this step's own result is a check, not an inversion).
      Both read one method at a time (`method_starts`): a step in a case or a second method
      ("Alternatively", "Case 2", "B. 23 is ...") is not compared with another case's results, and
      what a later method computes does not count as computed later;
    - "question contradiction": the same, with a number of the question that the solution
      never uses: the step contradicts a condition of the question;
    - "conclusion contradiction": the last step only states the final answer, which no
      earlier step mentions, while the step before it computed a different number (unless a
      table the parser skips, such as a column sum, may hold it);
    - "question ignored": the question gives at least two distinctive numbers and the solution
      computes with numbers of its own without using any of them: it answers another question
      (every condition of this one is contradicted by omission). Two givens used halved or doubled
      (the half-diagonals of a rhombus) are a use."""
    out: list[tuple[int, str, str]] = []
    n = len(maths)
    mentioned_before: set = set()
    computed: list[tuple[int, Fraction]] = []
    used_anywhere: dict[float, int] = {}
    for i, sm in enumerate(maths):
        for x in sm.mentions:
            used_anywhere[_key(x)] = used_anywhere.get(_key(x), 0) + 1
    q_numbers = set(q.numbers) | {p / 100 for p in q.percents} | set(q.percents)
    word_problem = q.word_problem
    starts = method_starts(steps, q) if starts is None else starts  # one per step, as maths
    trunk = next((s for s in starts if s), n)  # the steps before any other method or case: every case may use them
    for i, sm in enumerate(maths):
        stop = next((s for s in starts[i + 1 :] if s > starts[i]), n)
        flagged = False
        for comp in sm.computations:
            if flagged:
                break
            # `2+5-3-1+10 = 13, so 18 - 13 = 5`: a result of the step's other computations (in any order:
            # the parser lists them by kind, not position)
            step_results = [abs(c.result) for c in sm.computations if c is not comp]
            for x in comp.operands:
                if (x in _WORLD or _in(x, q_numbers) or _in(x, q.word_numbers) or _in(x, mentioned_before)
                        or _in(x, step_results) or _in(x * 100, mentioned_before) or _in(x / 100, mentioned_before)
                        or _in(x / 100, step_results)):  # "100% − 20% = 80%", then "50 days * 80%"
                    continue
                later = _computed_later(maths, i, x, stop)
                if later is not None:
                    out.append((i, "used before computed", f"used before computed: {fmt_number(x)} is used here, but only "
                                                            f"step {later} computes it"))
                    flagged = True
                    break
                for j, r in reversed(computed):
                    if trunk <= j < starts[i]:
                        continue  # another case's result
                    once = used_anywhere.get(_key(r), 0) <= 1
                    if abs(x - r) == 1 and comp.ops <= {"*", "/"} and _in(r, comp.operands):
                        continue  # `\binom{12}{2} = \frac{12 \times 11}{2}`, n(n + 1): consecutive factors, 12 used as computed
                    if _carried_wrongly(x, r) and (once or not (_round_pair(x, r) or q.figure)) and not (final is not None and _same(r, final)):
                        out.append((i, "changed quantity", f"changed quantity: {fmt_number(x)} is used here, but step {j} "
                                                           f"computed {fmt_number(r)}" + (" (never used again)" if once else "")))
                        flagged = True
                        break
                if flagged:
                    break
                parts = [y for y in comp.operands if y is not x]
                for qn in q.numbers if word_problem else ():
                    if any(x + y == qn or x * y == qn for y in parts):
                        continue  # `(90 + 5)^2` for the question's 95: the number taken apart, not changed
                    if abs(x - qn) != 1 and _near(x, qn) and used_anywhere.get(_key(qn), 0) == 0 and qn not in _WORLD:
                        out.append((i, "question contradiction", f"question contradiction: {fmt_number(x)} is used here, "
                                                                 f"but the question gives {fmt_number(qn)}"))
                        flagged = True
                        break
                if flagged:
                    break
        for comp in sm.computations:
            computed.append((i, abs(comp.result)))
        mentioned_before.update(sm.mentions)
    if final is not None and n >= 2 and _ANSWER_STATEMENT.match(steps[-1]):
        last = maths[-1]
        if not last.computations and not any(l.status in ("ok", "mismatch") for l in last.links):
            before = set()
            for sm in maths[:-1]:
                before.update(sm.mentions)
            prev_results = [abs(c.result) for c in maths[-2].computations]
            as_percent = {r * 100 for r in prev_results} | {r / 100 for r in prev_results}  # "0.25" then "25" (%)
            # a table (`\begin{array}`, a column sum) is work the parser skips: the answer may be read from it
            tabled = any(TABLE_RE.search(s) for s in steps[:-1])
            # "66.666...%, which rounds up to 67%": a step that says it rounds may state the whole number next to its result
            rounded = (final.denominator == 1 and bool(ROUNDING_CUE.search(steps[-2]))
                       and any(abs(final - r) < 1 for r in (*prev_results, *as_percent)))
            if prev_results and not tabled and not rounded and not _in(final, before) and not _in(final, prev_results) and not _in(final, as_percent):
                r = prev_results[-1]
                out.append((n - 1, "conclusion contradiction", f"conclusion contradiction: the final answer {fmt_number(final)} "
                                                               f"contradicts step {n - 2}, which computed {fmt_number(r)}"))
    givens = sorted({x for x in q.numbers if x > 2})  # 0, 1, 2 are as often words ("a pair") as givens
    n_comps = sum(len(sm.computations) for sm in maths)
    mentions = [x for sm in maths for x in sm.mentions]
    if (word_problem and len(givens) >= 2 and n_comps >= 2 and not any(_in(x, q_numbers) for x in mentions)
            and not (q.bounds and any(_bound_used(g, x) for g in givens for x in mentions))
            and _halved_or_doubled(givens, mentions) < 2):
        shown = ", ".join(fmt_number(x) for x in givens[:4])
        out.append((0, "question ignored", f"question ignored: the question gives {shown}, and no step uses any of them"))
    return out


# "2 less than three times as many", "five more than twice": an offset from a multiple, whose direction a
# misreading flips. With a multiplier, no rephrasing from the other side keeps the words (the other side of
# "b = 3c − 2" is "c = (b + 2)/3"), so the same offset and multiple with the other direction is a misread.
# (the number words: every one that is no multiple itself, "twice" and "double" being multiples here)
_COUNT_WORDS = "|".join(w for w in NUMBER_WORD_VALUES if w not in ("twice", "double", "triple", "hundred", "dozen"))
_MULTIPLES = {"twice": 2, "double": 2, "thrice": 3, "triple": 3, "half": Fraction(1, 2)}
_OFFSET_RE = re.compile(
    rf"(?<!not )\b(\d+|{_COUNT_WORDS})\s+(?:[a-z]+\s+)?(more|less|fewer|greater|larger|smaller|older|younger)\s+than\s+"
    rf"(twice|double|thrice|triple|half|(?:\d+|{_COUNT_WORDS})\s+times)\b", re.IGNORECASE)
_DIRECTION = {"more": 1, "greater": 1, "larger": 1, "older": 1, "less": -1, "fewer": -1, "smaller": -1, "younger": -1}


def _offsets(text: str) -> list[tuple[Fraction, Fraction, int, str]]:
    """(offset, multiple, direction, words) of every "N more/less than M times" in a text."""
    out = []
    for m in _OFFSET_RE.finditer(text):
        n, direction, multiple = m.group(1).lower(), _DIRECTION[m.group(2).lower()], m.group(3).lower()
        offset = Fraction(int(n)) if n.isdigit() else Fraction(NUMBER_WORD_VALUES[n])
        if multiple in _MULTIPLES:
            factor = Fraction(_MULTIPLES[multiple])
        else:
            k = multiple.split()[0]
            factor = Fraction(int(k)) if k.isdigit() else Fraction(NUMBER_WORD_VALUES[k])
        out.append((offset, factor, direction, m.group(0)))
    return out


def reversed_offsets(steps: list[str], question: str) -> list[tuple[int, str]]:
    """(step, reason) for the first step that restates the question's "N less than M times" as "N more than M
    times" (or the other way round) and does not also quote the question's words."""
    given = _offsets(question[:MAX_STEP_CHARS])
    if not given:
        return []
    for j, step in enumerate(steps):
        here = _offsets(step[:MAX_STEP_CHARS])
        for offset, factor, direction, words in here:
            for q_offset, q_factor, q_direction, q_words in given:
                if (offset, factor) == (q_offset, q_factor) and direction != q_direction and not any(
                        h[:3] == (q_offset, q_factor, q_direction) for h in here):
                    return [(j, f"question contradiction: \"{words}\" reverses the question's \"{q_words}\"")]
    return []
