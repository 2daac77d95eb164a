"""Answer grading: the Step-DPO `eval_math.py` protocol (SPEC §2.6), plus Math-Verify as a second opinion.

Why this exists: the paper reports accuracies measured with Step-DPO's evaluation code, so our
`correct` column must follow the same extraction, normalization and equality rules — including
its known leniencies — or our numbers would not be comparable. Math-Verify's verdict is kept as a
second column because it is the stricter, better-maintained checker.

Pipeline:
1. `extract_answer(completion)` — in order: "final answer is $…$. I hope"; every `\\boxed{…}` with
   brace counting (the last one counts); the text after "he answer is"; the last fenced
   ```` ```output ```` block; the last number.
2. `normalize_answer(s)` — strip_string-style clean-up of both prediction and reference.
3. `answers_equal(pred, ref)` — string, numeric, tuple/interval/matrix element-wise, equations,
   then SymPy. Everything up to SymPy runs in-process (the fast path; it also settles integer
   fractions vs decimals, which is what SymPy would conclude); whatever is left goes to a worker
   process through `hardneg.bounded.call_bounded`, batched. Inside the worker each item has a soft
   SIGALRM deadline (Python-level work); the call has a hard one (C-level work such as a huge
   integer power kills the worker, and the chunk is retried item by item so only the culprit
   pays). Timeouts are settled deterministically: every check starts from a fresh SymPy cache
   (so batch composition and order cannot change a verdict), and a check that overruns is rerun
   alone under `timeout_retry_factor` (default 4) × its limit; only a second overrun is a timeout,
   which counts as not equal (Math-Verify: None). A verdict can differ between two runs only for
   a check whose cost lies within that factor of its limit on a machine that much slower.
   Inputs that can only end in a timeout — power towers such as `10^10^10^10` and factorials of
   4+ digit numbers (`_explosive`) — are decided from the text without running: protocol not
   equal, Math-Verify None (for the whole completion). So is an extracted answer of over 1,000
   characters that is not string/numerically equal (`_hopeless`: no gold answer comes close).
4. `math_verify_equal` / `grade_batch` — Math-Verify's own verdict on the whole completion,
   as the second column SPEC §2.6 asks for, bounded the same way.

In-process work is linear in the input size (no regex or brace scan goes quadratic on
adversarial text), and structural checks are skipped in-process for answers longer than
`_MAX_FAST_CHARS` or nested deeper than `_MAX_DEPTH` (the time-bounded worker decides those).

Known leniencies of the protocol, kept on purpose for comparability (a grader without them would
report different accuracies than the paper's):
- Percent: two plain numbers are equal when pred ≈ ref, ref/100 or ref·100 (so for reference 50,
  the predictions 0.5, 50 and 5000 are all correct); a trailing `%` divides by 100 first
  (`50%` == 0.5, and so `5\\%` == `5`, which is right for MATH's "what percent" golds).
- Commas are deleted before the numeric comparison, so the list `1,2` equals the number `12`.
- Numeric tolerance is absolute 1e-3 with no relative part: 0.0001 == 0.0009, 1000.0004 == 1000.
- Tuples and intervals compare element-wise and ignore bracket types: `(1,2]` == `[1,2)` == `(1,2)`.
- A trailing `\\text{…}` is dropped as a unit whatever it says (`5\\text{ cm}` == `5\\text{ m}` ==
  `5`); also `{cm}`, `{m}^2`, `p.m.` and a `t` right after a digit.
- Degrees `^\\circ` are dropped (30^\\circ == 30; degrees and radians are not told apart).
- `x \\in` is dropped (`x \\in [1,2]` == `[1,2]`); `\\mbox{…}` inside an answer is dropped with
  its content.
- `j` becomes `i` when the answer has no `i` (complex-unit spelling).
- An equation with a left side of at most two characters equals its right side (`x=3` == `3`) —
  here only when that left side is a variable name (see the deviations); two equations are equal
  when lhs−rhs agree up to sign.
- Answers that both contain `\\cup` are split and matched as sets (order ignored).
- SymPy: equal when simplify(a−b) == 0 or N(a), N(b) are within 1e-3.
Known strictness, also kept: after "he answer is" the whole remaining text is the answer (text
following the number makes it wrong); plain-word units ("18 dollars") are not removed.

Deviations from the original code, each a fix that does not change a correct verdict on
well-formed answers:
- LaTeX is parsed by `latex2sympy2_extended` (the antlr-based parser Math-Verify uses);
  SymPy's own `parse_latex` needs antlr 4.11 and the environment has 4.13.
- SymPy's `parse_expr` evaluates Python, so it is only tried on strings whose identifiers are
  single letters or a few math function names (model output is untrusted).
- `\\cdot` becomes `*` instead of being deleted (the original turns `2\\cdot3` into `23`).
- `x \\in` is removed with or without spaces; trailing zeros of any decimal go (`2.50` → `2.5`).
- Tuple/matrix parts are split at top-level commas only (nested brackets stay whole), and a
  string counts as a tuple only when its outer brackets enclose all of it.
- Only the last simple `\\text{…}` counts as a unit; whole-string `\\text{…}` is unwrapped only
  when its braces span the whole string. A whole-string `\\mbox{…}` is unwrapped the same way
  instead of deleted (the original normalizes `\\mbox{Saturday}` and `\\mbox{Sunday}` both to
  the empty string, which then compare equal); `\\mbox{…}` inside an answer is still deleted.
- An empty reference (after normalization) never matches.
- `\\boxed{50}\\%` extracts `50\\%` (the original keeps a stray `}`); a bare word "boxed" without a
  brace does not block the later extraction rules.
- The `^{216}` special case (a hang guard) is gone: every SymPy call is time-bounded instead.
- Issue 15 (row 8), verdicts the original reaches only by accident, now not equal: numbers that
  overflow a float (`1e309` vs `1e307`, `1e400` vs `1e500`: inf == inf), `nan` (even vs `nan`),
  the percent rule's absolute tolerance applied at the /100 scale (`0` vs `0.1`, `0.09`,
  `-0.05`: pred ≈ ref/100 is now tested as pred·100 ≈ ref), an equation whose left side is a
  number (`10=5` vs `5`), and a completion whose *last* `\\boxed{` is unclosed (`\\boxed{3} …
  \\boxed{4`: cut off inside the final answer, so no answer; it used to grade the draft 3).
- Issue 15 (row 9), equivalent forms now equal (the original's strip_string or Math-Verify
  would say so): `\\text{5 apples}` == 5 (a number and words in one text box: a unit);
  `\\{1,2\\}` == `\\{2,1\\}` (sets, order ignored); `x=2 \\text{ or } x=3` == `2, 3` and
  `a=1, b=2` == `(1,2)` (lists of values: a repeated or absent variable makes the order free,
  distinct names keep it); `1<x<2` == `(1,2)` (a double inequality in one variable is an
  interval); `1\\,000` == 1000 (thin-space thousands groups); `6\\text{ cm}^2` == 6 (a unit
  with a power); `\\log_2 8` == 3 (the base is braced before spaces go); `0.\\overline3` ==
  `1/3` (repeating decimals become exact fractions); `\\textbf{Saturday}` == Saturday; and
  `\\boxed{72} \\boxed{}` extracts 72 (empty boxes are skipped).
- eval_math's multi-answer handling (splitting a box at `\\text{ and }`, or at commas when the
  question says "separated by commas", then matching answer lists) is not reproduced: `grade`
  gets no question, and against a single gold string the original compares only the last piece
  (so `\\boxed{1, 2}` would lose against the gold `1, 2`). The whole box is compared instead.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hardneg.bounded import TIMEOUT, BoundedCallError, call_bounded

__all__ = [
    "GradeResult",
    "GradingConfig",
    "answers_equal",
    "extract_answer",
    "grade",
    "grade_batch",
    "gsm8k_reference_answer",
    "math_reference_answer",
    "math_verify_equal",
    "normalize_answer",
]

NUMERIC_TOLERANCE = 1e-3  # the protocol's absolute tolerance (abs_tol=1e-3 everywhere)
logger = logging.getLogger(__name__)


@dataclass
class GradingConfig:
    """Knobs of `grade_batch`. Defaults follow SPEC §2.6."""

    symbolic_timeout: float = field(
        default=3.0,
        metadata={"help": "Seconds allowed for one SymPy equality check; an overrun counts as not-equal."},
    )
    math_verify: bool = field(
        default=True,
        metadata={"help": "Also compute Math-Verify's verdict (`correct_math_verify`); False leaves it None."},
    )
    math_verify_timeout: float = field(
        default=5.0,
        metadata={"help": "Seconds allowed for one Math-Verify parse+verify; an overrun gives None."},
    )
    timeout_retry_factor: float = field(
        default=4.0,
        metadata={
            "help": "A check that overruns its limit is rerun alone, in a fresh worker state, under this many "
            "times the limit; only a second overrun is a timeout. Keeps verdicts independent of batch and load."
        },
    )
    chunk_size: int = field(
        default=16,
        metadata={
            "help": "Items sent to the worker per bounded call. Larger saves round trips; smaller "
            "limits the rework when one item overruns and the chunk is retried item by item."
        },
    )

    def __post_init__(self) -> None:
        for name in ("symbolic_timeout", "math_verify_timeout"):
            if not (isinstance(getattr(self, name), (int, float)) and math.isfinite(getattr(self, name))
                    and getattr(self, name) > 0):
                raise ValueError(f"GradingConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not (isinstance(self.timeout_retry_factor, (int, float)) and math.isfinite(self.timeout_retry_factor)
                and self.timeout_retry_factor >= 1):
            raise ValueError(f"GradingConfig.timeout_retry_factor must be >= 1, got {self.timeout_retry_factor!r}")
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ValueError(f"GradingConfig.chunk_size must be an int >= 1, got {self.chunk_size!r}")


@dataclass
class GradeResult:
    """One graded completion: the extracted answer, the protocol verdict, Math-Verify's verdict."""

    extracted: str | None
    correct: bool
    correct_math_verify: bool | None


# --------------------------------------------------------------------------------------------
# Extraction


_BOX_OPEN = re.compile(r"(?:boxed|fbox)\s*\{")
_LAST_NUMBER = re.compile(r"-?\d*\.?\d+")
# Where a completion states its final answer: `extract_answer`'s rules other than its last-number
# fallback (a box, "the answer is", "final answer is $…$", a fenced output block), plus GSM8K's
# "####". RE2 reads it as Python does (the funnel matches it in DuckDB).
STATED_ANSWER_PATTERN = "|".join([_BOX_OPEN.pattern, "he answer is", "final answer is", "####", "```output"])


def _brace_pairs(text: str) -> dict[int, int]:
    """Index of each `{` -> index of its matching `}` (one linear pass; unmatched ones are absent)."""
    pairs, stack = {}, []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def _boxed_contents(text: str) -> list[str]:
    """Contents of every `\\boxed{…}` / `\\fbox{…}` in order; unclosed (truncated) ones are dropped."""
    if "boxed" not in text and "fbox" not in text:
        return []
    closes = _brace_pairs(text)
    found = []
    for match in _BOX_OPEN.finditer(text):
        close = closes.get(match.end() - 1)
        if close is None:
            continue
        content = text[match.end() : close]
        if text.startswith("\\%", close + 1) or text.startswith("%", close + 1):
            content += "\\%"  # `\boxed{50}\%`: the percent sign belongs to the answer
        found.append(content)
    return found


def _boxes_with_unclosed(text: str) -> list[str | None]:
    """Like `_boxed_contents`, but an unclosed box is kept as None (so callers can see that the
    *last* box was cut off)."""
    if "boxed" not in text and "fbox" not in text:
        return []
    closes = _brace_pairs(text)
    found: list[str | None] = []
    for match in _BOX_OPEN.finditer(text):
        close = closes.get(match.end() - 1)
        if close is None:
            found.append(None)
            continue
        content = text[match.end() : close]
        if text.startswith("\\%", close + 1) or text.startswith("%", close + 1):
            content += "\\%"
        found.append(content)
    return found


def _output_block(text: str) -> str:
    """The last fenced ```output block (program output), or ''."""
    if "```output" not in text:
        return ""
    return text.split("```output")[-1].split("```")[0].strip()


def _clean_extracted(answer: str) -> str:
    answer = answer.strip().lstrip(":").rstrip(".").rstrip("/")
    return answer.strip()


def extract_answer(completion: str) -> str | None:
    """The final answer of a completion by the protocol's rules, lightly trimmed (not normalized).

    None when nothing can be extracted: no rule applies, every box is empty, or the *last* box is
    unclosed (a generation cut off inside its final box has no final answer: an earlier box was a
    draft, and a truncated generation does not fall back to "the last number"). Empty boxes
    (`\\boxed{72} \\boxed{}`) are skipped: the last non-empty box counts.
    """
    return extract_stated_answer(completion)[0]


def extract_stated_answer(completion: str) -> tuple[str | None, bool]:
    """(`extract_answer`'s answer, whether the completion states it): stated is a box, "the answer is"
    or an output block; not the last-number fallback (a cut-off generation's last number is no answer)."""
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}")
    text = completion
    stated = True
    if "final answer is $" in text and "$. I hope" in text:
        answer = text.split("final answer is $", 1)[1].split("$. I hope", 1)[0]
    elif _BOX_OPEN.search(text):
        boxes = _boxes_with_unclosed(text)
        if not boxes or boxes[-1] is None:
            return None, True
        filled = [b for b in boxes if b is not None and _clean_extracted(b)]
        if not filled:
            return None, True
        answer = filled[-1]
    elif "he answer is" in text:
        answer = text.split("he answer is")[-1]
    else:
        answer = _output_block(text)
        if not answer:
            stated = False
            numbers = _LAST_NUMBER.findall(text.replace(",", ""))
            answer = numbers[-1] if numbers else ""
    answer = _clean_extracted(answer)
    return answer or None, stated


def gsm8k_reference_answer(answer_field: str) -> str:
    """The gold number of a GSM8K `answer` field: `'…\\n#### 1,234'` → `'1234'`."""
    if not isinstance(answer_field, str) or "####" not in answer_field:
        raise ValueError(f"GSM8K answer field has no '####' marker: {answer_field!r:.80}")
    answer = answer_field.split("####")[-1].strip().replace(",", "")
    if not answer:
        raise ValueError(f"GSM8K answer field has nothing after '####': {answer_field!r:.80}")
    return answer


def math_reference_answer(solution: str) -> str:
    """The content of the last `\\boxed{…}` of a MATH solution (raw, not normalized)."""
    if not isinstance(solution, str):
        raise ValueError(f"MATH solution must be a str, got {type(solution).__name__}")
    boxes = _boxed_contents(solution)
    if not boxes:
        raise ValueError(f"MATH solution has no closed \\boxed{{}}: {solution[-80:]!r}")
    return boxes[-1].strip()


# --------------------------------------------------------------------------------------------
# Normalization


def _matching_close(s: str, open_index: int, opens: str = "([{", closes: str = ")]}") -> int:
    """Index of the bracket closing the one at `open_index`, or -1. Bracket kinds are not told
    apart (so the half-open interval `[1,2)` is one group)."""
    depth = 0
    for i in range(open_index, len(s)):
        if s[i] in opens:
            depth += 1
        elif s[i] in closes:
            depth -= 1
            if depth == 0:
                return i
    return -1


_NUMBER_WITH_WORDS = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z][A-Za-z\s.]*")


def _unwrap_whole_text(s: str) -> str:
    """`\\text{Saturday}` / `\\mbox{Saturday}` / `\\textbf{Saturday}` spanning the whole answer -> `Saturday`.

    `\\text{5 apples}` (a number and words, all inside one text box) is a number with its unit:
    -> `5`, as `5\\text{ apples}` already was.
    """
    for command in ("\\text{", "\\mbox{", "\\textbf{", "\\textit{", "\\textrm{"):
        end = len(command) - 1
        if s.startswith(command) and s.endswith("}") and _matching_close(s, end, "{", "}") == len(s) - 1:
            inner = s[end + 1 : -1]
            m = _NUMBER_WITH_WORDS.fullmatch(inner.strip())
            return m.group(1) if m else inner
    return s


def _repeating_decimal(s: str) -> str:
    """`0.\\overline3` / `0.1\\overline{6}` -> the exact fraction `\\frac{1}{3}` / `\\frac{1}{6}`."""
    m = re.fullmatch(r"(-?)(\d*)\.(\d*)\\overline\{?(\d{1,12})\}?", s)
    if not m or len(m.group(2)) + len(m.group(3)) > 30:
        return s
    from fractions import Fraction

    sign, whole, fixed, repeat = m.groups()
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(repeat), 10 ** len(fixed) * (10 ** len(repeat) - 1))
    if sign:
        value = -value
    if value.denominator == 1:
        return str(value.numerator)
    neg = "-" if value < 0 else ""
    return f"{neg}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


_LESS = r"(<|\\leq|\\le|≤)"  # `\\left` is gone by now, so `\\le` is "less or equal"
_DOUBLE_INEQUALITY = re.compile(rf"([^<>=]+?){_LESS}([A-Za-z]){_LESS}([^<>=]+)")


def _inequality_as_interval(s: str) -> str:
    """`1<x<2` -> `(1,2)`, `1\\le x<2` -> `[1,2)`: a double inequality in one variable is an interval."""
    m = _DOUBLE_INEQUALITY.fullmatch(s)
    if not m:
        return s
    low, op1, _, op2, high = m.groups()
    left = "(" if op1 == "<" else "["
    right = ")" if op2 == "<" else "]"
    return f"{left}{low},{high}{right}"


def _remove_mbox(s: str) -> str:
    """Drop every `\\mbox{…}` with its (brace-balanced) content; an unclosed one stays."""
    if "\\mbox{" not in s:
        return s
    closes = _brace_pairs(s)
    out, position = [], 0
    for match in re.finditer(r"\\mbox\{", s):
        close = closes.get(match.end() - 1)
        if match.start() < position or close is None:
            continue
        out.append(s[position : match.start()])
        position = close + 1
    out.append(s[position:])
    return "".join(out)


def _fix_fracs(s: str) -> str:
    # \frac12 -> \frac{1}{2}; \frac1{72} -> \frac{1}{72}; \frac{72}1 is left alone (as the protocol does)
    s = re.sub(r"\\frac([^{\s\\])([^{\s\\])", r"\\frac{\1}{\2}", s)
    return re.sub(r"\\frac([^{\s\\])\{", r"\\frac{\1}{", s)


def _is_int_literal(part: str) -> bool:
    return bool(re.fullmatch(r"-?(0|[1-9]\d*)", part))


def _fix_a_slash_b(s: str) -> str:
    parts = s.split("/")
    if len(parts) == 2 and all(_is_int_literal(p) or ("sqrt" in p) for p in parts):
        return f"\\frac{{{parts[0]}}}{{{parts[1]}}}"
    return s


_DECIMAL = re.compile(r"(?<!\d)(\d+)\.(\d+)(?!\d)")  # the lookbehind keeps long digit runs linear


def _strip_decimal_zeros(s: str) -> str:
    """2.50 -> 2.5, 2.00 -> 2."""

    def strip(match: re.Match) -> str:
        fraction = match.group(2).rstrip("0")
        return f"{match.group(1)}.{fraction}" if fraction else match.group(1)

    return _DECIMAL.sub(strip, s)


def normalize_answer(s: str) -> str:
    """The protocol's strip_string (SPEC §2.6 list), applied to predictions and references alike."""
    s = str(s).strip().replace("\n", "").rstrip(".")
    s = s.replace("\\!", "")
    s = _unwrap_whole_text(s)
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("cfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    # A trailing unit: `5\\text{ cm}`, also with a power (`6\\text{ cm}^2`).
    without_unit = re.sub(r"\\text\{[^{}]*\}(\^\{?[23]\}?)?$", "", s).strip()
    if without_unit:
        s = without_unit
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").strip()
    s = re.sub(r"\{(c|m)?m\}(\^(2|3))?", "", s).strip()
    s = re.sub(r"p\.m\.$", "", s).strip()
    s = re.sub(r"(\d)\s*t$", r"\1", s).strip()
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"x\s*\\in\s*", "", s)
    s = s.replace("\\%", "%")
    # Thousands groups written with a thin space or `{,}`: `1\\,000` / `1{,}000` -> `1000`.
    s = re.sub(r"(?<=\d)(?:\\,|\{,\}|\\ )(?=\d{3}(?!\d))", "", s)
    # `\\log_2 8` -> `\\log_{2}(8)` before spaces go (`\\log_28` would be a base-28 logarithm).
    s = re.sub(r"\\log_(\d+|\{[^{}]*\})\s*(\d+|\{[^{}]*\})",
               lambda m: f"\\log_{{{m.group(1).strip('{}')}}}({m.group(2).strip('{}')})", s)
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    s = s.replace("\\cdot", "*")
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("\\mathbf", "").replace("\\mathrm", "")
    s = _remove_mbox(s)
    if "j" in s and "i" not in s:
        s = s.replace("j", "i")
    s = _strip_decimal_zeros(s)
    if s.startswith("."):
        s = "0" + s
    s = re.sub(r"\\sqrt(-?[0-9.a-zA-Z]+)", r"\\sqrt{\1}", s)
    s = re.sub(r"\\sqrt\s+(\w+)$", r"\\sqrt{\1}", s)
    s = re.sub(r"\\tan(-?[0-9.a-zA-Z]+)", r"\\tan{\1}", s)
    s = re.sub(r"\\tan\s+(\w+)$", r"\\tan{\1}", s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    s = _fix_a_slash_b(s)
    s = _repeating_decimal(s)
    s = _inequality_as_interval(s)
    return s.rstrip("\\,.")  # trailing backslashes, commas, dots


# --------------------------------------------------------------------------------------------
# Equality (one implementation: `symbolic=False` in-process, `symbolic=True` in the worker)


def _parse_digits(s: str) -> float | None:
    """A plain number the way the protocol reads one: commas dropped, trailing % divides by 100."""
    t = s.replace(",", "")
    try:
        value = float(t)
    except ValueError:
        value = None
        if t.endswith("%"):
            try:
                value = float(t[:-1].rstrip("\\")) / 100
            except ValueError:
                return None
    # Overflow (`1e309` -> inf) and NaN are not numbers to compare: inf == inf would make
    # `1e400` equal `1e500`, and nan would match by its spelling.
    if value is None or not math.isfinite(value):
        return None
    return value


_SIMPLE_FRAC = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")


def _simple_value(s: str) -> float | None:
    """Value of a plain number or an integer fraction, without `%` (whose reading SymPy may differ on)."""
    m = _SIMPLE_FRAC.fullmatch(s)
    if m:
        try:
            num, den = int(m.group(2)), int(m.group(3))
            return (-1 if m.group(1) else 1) * num / den
        except (ValueError, ZeroDivisionError, OverflowError):  # x/0, or too many digits for int()/float
            return None
    if "%" in s:
        return None
    return _parse_digits(s)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=NUMERIC_TOLERANCE)


def _numeric_equal(pred: float, ref: float) -> bool:
    """The protocol's percent leniency: pred ≈ ref, ref/100 or ref·100 — each compared at the larger
    scale. (pred ≈ ref/100 is tested as pred·100 ≈ ref: with the absolute tolerance at the /100
    scale, `0` would equal every reference below 0.1 in size.)"""
    return _close(pred, ref) or _close(pred * 100, ref) or _close(pred, ref * 100)


def _split_top_level(s: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _tuple_parts(s: str) -> list[str] | None:
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _matching_close(s, 0) == len(s) - 1:
        return _split_top_level(s[1:-1], ",")
    return None


_MATRIX = re.compile(r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}", re.S)


def _matrix_cells(s: str) -> list[list[str]] | None:
    m = _MATRIX.fullmatch(s)
    if not m:
        return None
    rows = [row.strip() for row in m.group(1).split("\\\\") if row.strip()]
    return [row.split("&") for row in rows]


def _all_equal(pairs: list[tuple[str, str]], symbolic: bool, depth: int) -> bool | None:
    """True if every pair is equal, False if one is decided unequal, None if undecided."""
    undecided = False
    for a, b in pairs:
        verdict = _equal_normalized(a, b, symbolic, depth + 1)
        if verdict is False:
            return False
        undecided |= verdict is None
    return None if undecided else True


def _match_as_sets(preds: list[str], refs: list[str], symbolic: bool, depth: int) -> bool | None:
    if not symbolic and len(preds) * len(refs) > _MAX_SET_PAIRS:
        return None  # quadratic: leave it to the time-bounded worker
    matched_pred, matched_ref, undecided = set(), set(), False
    for i, a in enumerate(preds):
        for j, b in enumerate(refs):
            verdict = _equal_normalized(a, b, symbolic, depth + 1)
            if verdict:
                matched_pred.add(i)
                matched_ref.add(j)
            undecided |= verdict is None
    if len(matched_pred) == len(preds) and len(matched_ref) == len(refs):
        return True
    return None if undecided else False


_MAX_DEPTH = 8  # nesting of tuples/sets/equations; real answers stay far below
_MAX_SET_PAIRS = 256  # `\cup` pieces compared pairwise in-process
_MAX_FAST_CHARS = 4000  # longer answers skip the in-process structural checks


def _equal_normalized(pred: str, ref: str, symbolic: bool, depth: int = 0) -> bool | None:
    """The protocol's equality on normalized strings.

    With `symbolic=False` (in-process fast path) it returns None wherever SymPy would be needed;
    with `symbolic=True` (worker only) it always decides.
    """
    if depth > _MAX_DEPTH:
        return False if symbolic else None
    if _NOT_A_NUMBER.fullmatch(pred) or _NOT_A_NUMBER.fullmatch(ref):
        return False  # "nan" is no answer, even spelled the same on both sides
    if "\\cup" in pred and "\\cup" in ref:
        return _match_as_sets(pred.split("\\cup"), ref.split("\\cup"), symbolic, depth)
    if pred == ref:
        return True
    pred_set, ref_set = _set_elements(pred), _set_elements(ref)
    if pred_set is not None and ref_set is not None:
        if len(pred_set) != len(ref_set):
            return False
        return _match_as_sets(pred_set, ref_set, symbolic, depth)
    pred_num, ref_num = _parse_digits(pred), _parse_digits(ref)
    if pred_num is not None and ref_num is not None:
        return _numeric_equal(pred_num, ref_num)  # decisive: the protocol never goes on to SymPy here
    if not pred:
        return False
    if not symbolic and len(pred) + len(ref) > _MAX_FAST_CHARS:
        return None  # keep in-process work small on absurd inputs; the worker is time-bounded
    if not symbolic:
        # Integer fractions vs numbers: exactly what simplify/N() would conclude, without SymPy.
        pred_val, ref_val = _simple_value(pred), _simple_value(ref)
        if pred_val is not None and ref_val is not None:
            return _close(pred_val, ref_val)

    undecided = False
    pred_parts, ref_parts = _tuple_parts(pred), _tuple_parts(ref)
    if pred_parts is not None and ref_parts is not None and len(pred_parts) == len(ref_parts):
        verdict = _all_equal(list(zip(pred_parts, ref_parts)), symbolic, depth)
        if verdict:
            return True
        undecided |= verdict is None

    pred_cells, ref_cells = _matrix_cells(pred), _matrix_cells(ref)
    if pred_cells is not None and ref_cells is not None and len(pred_cells) == len(ref_cells):
        if all(len(a) == len(b) for a, b in zip(pred_cells, ref_cells)):
            pairs = [(x.strip(), y.strip()) for a, b in zip(pred_cells, ref_cells) for x, y in zip(a, b)]
            verdict = _all_equal(pairs, symbolic, depth)
            if verdict:
                return True
            undecided |= verdict is None

    if pred.count("=") == 1 and ref.count("=") == 1:
        if not symbolic:
            return None
        p_lhs, p_rhs = pred.split("=")
        r_lhs, r_rhs = ref.split("=")
        p_diff, r_diff = f"{p_lhs}-({p_rhs})", f"{r_lhs}-({r_rhs})"
        if _symbolic_equal(p_diff, r_diff) or _symbolic_equal(f"-({p_diff})", r_diff):
            return True
    elif pred.count("=") == 1 and _VARIABLE.fullmatch(pred.split("=")[0]) and "=" not in ref:
        verdict = _equal_normalized(pred.split("=")[1], ref, symbolic, depth + 1)
        if verdict:
            return True
        undecided |= verdict is None
    elif ref.count("=") == 1 and _VARIABLE.fullmatch(ref.split("=")[0]) and "=" not in pred:
        verdict = _equal_normalized(pred, ref.split("=")[1], symbolic, depth + 1)
        if verdict:
            return True
        undecided |= verdict is None

    pred_values, ref_values = _value_list(pred), _value_list(ref)
    if pred_values is not None and ref_values is not None and len(pred_values[0]) == len(ref_values[0]):
        verdict = _all_equal(list(zip(pred_values[0], ref_values[0])), symbolic, depth)
        if verdict is False and not (pred_values[1] and ref_values[1]):
            verdict = _match_as_sets(pred_values[0], ref_values[0], symbolic, depth)  # solutions: order free
        if verdict:
            return True
        undecided |= verdict is None

    if not symbolic:
        return None
    return _symbolic_equal(pred, ref)


_NOT_A_NUMBER = re.compile(r"[-+]?nan", re.I)
# The protocol's "an equation with a left side of at most two characters equals its right side"
# (`x=3` == `3`), kept for variables only: `10=5` is not an answer 5.
_VARIABLE = re.compile(r"[A-Za-z][A-Za-z0-9_']?")
_SEPARATOR_WORDS = re.compile(r"\\text\{(?:or|and)\}|\\(?:q)?quad|(?<![A-Za-z])(?:or|and)(?![A-Za-z])")


def _set_elements(s: str) -> list[str] | None:
    """`\\{1,2\\}` / `{1,2}` -> ["1", "2"]; None if `s` is not a brace-delimited set."""
    for left, right in (("\\{", "\\}"), ("{", "}")):
        if s.startswith(left) and s.endswith(right) and len(s) > len(left) + len(right):
            inner = s[len(left) : -len(right)]
            if left == "{" and _matching_close(s, 0, "{", "}") != len(s) - 1:
                return None
            return [p for p in _split_top_level(inner, ",")]
    return None


def _value_list(s: str) -> tuple[list[str], bool] | None:
    """A list of values and whether its order matters: `a=1,b=2` -> (["1","2"], True),
    `x=2\\text{or}x=3` -> (["2","3"], False), `(1,2)` -> (["1","2"], True), `2,3` -> (["2","3"], False).

    Each value loses a variable left side (`x=`). None for fewer than two values.
    """
    ordered = False
    parts = _tuple_parts(s)
    if parts is not None:
        ordered = True
    else:
        pieces = _split_top_level(_SEPARATOR_WORDS.sub(",", s), ",")
        parts = [p for p in pieces if p]
        # Named values with distinct names (`a=1,b=2`) are a tuple; the same name repeated
        # (`x=2 or x=3`) or bare values are a list of solutions, whose order is free.
        names = [p.split("=")[0] for p in parts if p.count("=") == 1 and _VARIABLE.fullmatch(p.split("=")[0])]
        ordered = len(names) == len(parts) and len(set(names)) == len(names)
    if len(parts) < 2:
        return None
    values = []
    for part in parts:
        if part.count("=") == 1 and _VARIABLE.fullmatch(part.split("=")[0]):
            part = part.split("=")[1]
        if not part:
            return None
        values.append(part)
    return values, ordered


# --------------------------------------------------------------------------------------------
# Worker side: SymPy and Math-Verify (only ever run through call_bounded)

_SAFE_NAMES = {"sqrt", "pi", "sin", "cos", "tan", "log", "ln", "exp", "E", "I", "oo"}
_SAFE_EXPR_CHARS = re.compile(r"[0-9A-Za-z+\-*/^().\s]+")


def _parse_safe_expr(s: str) -> Any:
    """SymPy's parse_expr, which evals Python, only on strings made of harmless names."""
    if not _SAFE_EXPR_CHARS.fullmatch(s):
        raise ValueError("not a plain expression")
    for name in re.findall(r"[A-Za-z]+", s):
        if len(name) > 1 and name not in _SAFE_NAMES:
            raise ValueError(f"name {name!r} not allowed")
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = standard_transformations + (implicit_multiplication_application, convert_xor)
    return parse_expr(s, transformations=transformations)


def _parse_latex(s: str) -> Any:
    from latex2sympy2_extended import latex2sympy

    return latex2sympy(s)


def _to_sympy(s: str) -> Any:
    for parse in (_parse_latex, _parse_safe_expr):
        try:
            return parse(s)
        except Exception:  # noqa: BLE001 - any parse failure means "try the next parser"
            pass
    return None


def _symbolic_equal(a: str, b: str) -> bool:
    from sympy import Basic, N, simplify
    from sympy.matrices import MatrixBase

    ea, eb = _to_sympy(a), _to_sympy(b)
    # N()/simplify() of a raw string would sympify (eval) it: only ever touch parsed objects.
    if not all(isinstance(e, (Basic, MatrixBase)) for e in (ea, eb)):
        return False
    try:
        diff = simplify(ea - eb)
        if diff == 0 or (isinstance(diff, MatrixBase) and all(x == 0 for x in diff)):
            return True
    except Exception:  # noqa: BLE001
        pass
    try:
        return math.isclose(complex(N(ea)).real, complex(N(eb)).real, abs_tol=NUMERIC_TOLERANCE) and (
            math.isclose(complex(N(ea)).imag, complex(N(eb)).imag, abs_tol=NUMERIC_TOLERANCE)
        )
    except Exception:  # noqa: BLE001
        return False


class _SoftTimeout(BaseException):
    """Raised by SIGALRM inside the worker; a BaseException so SymPy's `except Exception` can't eat it."""


def _with_soft_deadline(seconds: float, func: Callable[..., Any], *args: Any) -> Any:
    """Interrupt Python-level work after `seconds` so the worker survives (restarting it costs an import).

    C-level work (a huge integer power) is not interruptible this way; the caller's hard timeout
    catches that by killing the worker.
    """
    if threading.current_thread() is not threading.main_thread():
        return func(*args)

    def on_alarm(signum, frame):
        raise _SoftTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_WARMED = False


def warm_worker() -> bool:
    """Import the heavy modules once per worker, outside any per-item deadline.

    One throw-away check also loads what SymPy and the LaTeX parser import lazily (~0.5 s),
    which would otherwise eat into the first real item's time limit.
    """
    global _WARMED
    if _WARMED:
        return True
    _symbolic_equal("x+1", "1+x")
    _symbolic_equal(r"18\text{dollars}", r"\frac{2}{3}")  # simplify() lazily imports sympy.physics
    try:
        import math_verify

        # We disable Math-Verify's own signal timeouts (ours wraps it); silence its one-time warning.
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _math_verify_one(r"\boxed{\frac{1}{2}}", "0.5")
    except ImportError:  # the protocol check must still work without the second opinion
        pass
    _WARMED = True
    return True


_OVERRUN = "overrun"  # a check hit its soft deadline (picklable marker)


def _fresh_state() -> None:
    """Forget SymPy's global cache before each check, so a verdict (and its cost) cannot depend on
    which checks ran before it in the same worker: bulk and single-row runs then agree."""
    try:
        from sympy.core.cache import clear_cache

        clear_cache()
    except ImportError:  # pragma: no cover - SymPy is a dependency
        pass


def _symbolic_batch(pairs: list[tuple[str, str]], per_item_timeout: float) -> list[bool | str]:
    results: list[bool | str] = []
    for pred, ref in pairs:
        _fresh_state()
        try:
            results.append(bool(_with_soft_deadline(per_item_timeout, _equal_normalized, pred, ref, True)))
        except _SoftTimeout:
            results.append(_OVERRUN)
        except Exception:  # noqa: BLE001 - a failed check is "not equal"
            results.append(False)
    return results


def _math_verify_one(pred: str, ref: str) -> bool | None:
    from math_verify import parse, verify

    # A bare gold answer is boxed so Math-Verify reads all of it (`\$40`, `x = 4`) as one answer.
    first = ref if "\\boxed" in ref else f"\\boxed{{{ref}}}"
    for wrapped in (first, f"${ref}$", ref):
        gold = parse(wrapped, parsing_timeout=None)
        if gold:
            break
    else:
        return None
    target = parse(pred, parsing_timeout=None)
    return bool(verify(gold, target, timeout_seconds=None))


def _math_verify_batch(pairs: list[tuple[str, str]], per_item_timeout: float) -> list[bool | None | str]:
    results: list[bool | None | str] = []
    for pred, ref in pairs:
        _fresh_state()
        try:
            results.append(_with_soft_deadline(per_item_timeout, _math_verify_one, pred, ref))
        except _SoftTimeout:
            results.append(_OVERRUN)
        except Exception:  # noqa: BLE001 - Math-Verify failing means "no opinion"
            results.append(None)
    return results


# --------------------------------------------------------------------------------------------
# Caller side: bounded, batched dispatch

_WARM_TIMEOUT = 120.0  # first SymPy/antlr import on a busy machine; paid once per worker
_HARD_SLACK = 1.0  # the soft deadline fires first; the hard one only catches C-level hangs


def _bounded(func: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """call_bounded that turns a timeout or a worker-side crash into None."""
    try:
        if call_bounded(warm_worker, timeout=_WARM_TIMEOUT) is TIMEOUT:
            return None
        result = call_bounded(func, *args, timeout=timeout)
    except BoundedCallError as exc:  # e.g. a missing parser package: say so, grade as "not equal"
        logger.warning("bounded %s failed in the worker: %s", getattr(func, "__name__", func), exc)
        return None
    return None if result is TIMEOUT else result


def _run_chunked(func: Callable[..., list], pairs: list[tuple[str, str]], per_item_timeout: float,
                 failed: Any, chunk_size: int, retry_factor: float = 4.0) -> list:
    """Run `func` over `pairs` in chunks, then settle overruns deterministically.

    A timeout's verdict must not depend on what else was in the batch or how loaded the machine
    was (issue 15: 5 of 149 `correct_math_verify` verdicts differed between single-row and bulk
    runs). So: every item starts from a fresh SymPy cache (`_fresh_state`); an item that overruns
    its soft deadline — or sits in a chunk that overran its hard deadline — is rerun *alone*
    under `retry_factor` × the limit; only if it overruns again does it get the fixed timeout
    verdict `failed` (protocol: not equal; Math-Verify: None). A verdict can then flip between
    runs only for a check whose cost is within a `retry_factor` slowdown of the limit.
    """
    results: list = []
    for start in range(0, len(pairs), max(1, chunk_size)):
        chunk = pairs[start : start + max(1, chunk_size)]
        out = _bounded(func, chunk, per_item_timeout, timeout=per_item_timeout * len(chunk) + _HARD_SLACK)
        results.extend(out if out is not None and len(out) == len(chunk) else [_OVERRUN] * len(chunk))
    retry_timeout = per_item_timeout * max(1.0, retry_factor)
    for i, verdict in enumerate(results):
        if not (isinstance(verdict, str) and verdict == _OVERRUN):
            continue
        single = _bounded(func, [pairs[i]], retry_timeout, timeout=retry_timeout + _HARD_SLACK)
        value = single[0] if single else failed
        results[i] = failed if isinstance(value, str) and value == _OVERRUN else value
    return results


def _check_str(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value if isinstance(value, str) else str(value)


# Power towers (`10^10^10^10`, `9^{9^{9}}`, `2**2**2**2`) and factorials of 4+ digit numbers:
# evaluating them is astronomically expensive, so a check on them can only end in its time limit,
# after a cost that depends on the machine. Deciding them from the text keeps the verdict
# deterministic and the row fast. (A tower: an exponent that is itself a number raised to a power,
# `a^{b^c}` / `a^b^c`; `(x^2)^3` is not one.)
_EXPLOSIVE = re.compile(r"(\^|\*\*)[\s{(]*-?[\d.]+\s*(\^|\*\*)|\d{4,}\s*!")


def _explosive(text: str) -> bool:
    return bool(_EXPLOSIVE.search(text))


# No gold answer normalizes to more than 73 characters (MATH test, all 5,000); an "answer" of over
# 1,000 characters is the rest of a rambling completion after "The answer is". Only string and
# numeric equality (already tried) can hold for it; parsing it as LaTeX costs seconds for nothing.
_MAX_SYMBOLIC_CHARS = 1000


def _hopeless(pred_n: str, ref_n: str) -> bool:
    """A pair the fast path left open that SymPy can only time out on, or need not look at."""
    return len(pred_n) > _MAX_SYMBOLIC_CHARS or len(ref_n) > _MAX_SYMBOLIC_CHARS or _explosive(pred_n + " " + ref_n)


def answers_equal(pred: str | None, ref: str | None, timeout: float = 3.0, retry_factor: float = 4.0) -> bool:
    """Protocol equality of an extracted answer and a gold answer (both raw; normalized here).

    A SymPy check that overruns `timeout` seconds, and again `retry_factor` × `timeout` when rerun
    alone, counts as not equal; the call returns within about (1 + retry_factor) × `timeout` + 2 s
    (plus a one-time worker start).
    """
    if pred is None or ref is None:
        return False
    pred_n = normalize_answer(_check_str(pred, "pred"))
    ref_n = normalize_answer(_check_str(ref, "ref"))
    if not ref_n:
        return False  # nothing to grade against
    verdict = _equal_normalized(pred_n, ref_n, symbolic=False)
    if verdict is not None:
        return verdict
    if _hopeless(pred_n, ref_n):
        return False
    return _symbolic_verdict(pred_n, ref_n, timeout, retry_factor)


# A verdict depends only on the normalized pair and the limits (`_run_chunked` makes even a
# timeout deterministic), and a pool repeats pairs: the variants of one problem mostly keep its
# answer. Remembering verdicts saves a round trip to the worker per repeat (a quarter of the
# verifier's time on the inject pool once its vectors are cached).
@functools.lru_cache(maxsize=8192)
def _symbolic_verdict(pred_n: str, ref_n: str, timeout: float, retry_factor: float) -> bool:
    return bool(_run_chunked(_symbolic_batch, [(pred_n, ref_n)], timeout, False, 1, retry_factor)[0])


def math_verify_equal(pred_completion_or_answer: str, ref: str, timeout: float = 5.0,
                      retry_factor: float = 4.0) -> bool | None:
    """Math-Verify's verdict on a completion (or a bare answer) against a gold answer.

    None when the gold answer cannot be parsed, Math-Verify fails, or it overruns `timeout`.
    """
    pred = _check_str(pred_completion_or_answer, "pred_completion_or_answer")
    gold = _check_str(ref, "ref")
    if _explosive(pred) or _explosive(gold):
        return None
    return _run_chunked(_math_verify_batch, [(pred, gold)], timeout, None, 1, retry_factor)[0]


def grade_batch(items: Sequence[tuple[str, str]], config: GradingConfig | None = None) -> list[GradeResult]:
    """Grade (completion, reference) pairs; output keeps input order.

    Extraction and the fast path run in-process; the undecided pairs and all Math-Verify checks go
    to the worker in chunks of `config.chunk_size`. A row that is not a pair of strings raises
    TypeError naming its index.
    """
    config = config or GradingConfig()
    completions, references = [], []
    for i, item in enumerate(items):
        try:
            completion, reference = item
        except (TypeError, ValueError):
            raise TypeError(f"items[{i}] must be a (completion, reference) pair") from None
        completions.append(_check_str(completion, f"items[{i}].completion"))
        references.append(None if reference is None else _check_str(reference, f"items[{i}].reference"))

    extracted = [extract_answer(c) for c in completions]
    correct: list[bool] = [False] * len(items)
    pending: list[int] = []
    pending_pairs: list[tuple[str, str]] = []
    for i, (pred, ref) in enumerate(zip(extracted, references)):
        if pred is None or ref is None:
            continue
        pred_n, ref_n = normalize_answer(pred), normalize_answer(ref)
        if not ref_n:
            continue  # nothing to grade against
        verdict = _equal_normalized(pred_n, ref_n, symbolic=False)
        if verdict is None and _hopeless(pred_n, ref_n):
            verdict = False  # deterministic: SymPy would only run into its time limit (see _hopeless)
        if verdict is None:
            pending.append(i)
            pending_pairs.append((pred_n, ref_n))
        else:
            correct[i] = verdict
    if pending:
        verdicts = _run_chunked(_symbolic_batch, pending_pairs, config.symbolic_timeout, False, config.chunk_size,
                                config.timeout_retry_factor)
        for i, verdict in zip(pending, verdicts):
            correct[i] = bool(verdict)

    mv: list[bool | None] = [None] * len(items)
    if config.math_verify:
        # A completion with a power tower gets no Math-Verify opinion (None), decided from the text
        # rather than by a timeout: Math-Verify would evaluate the tower and overrun.
        with_ref = [i for i, ref in enumerate(references)
                    if ref is not None and ref.strip() and not _explosive(completions[i]) and not _explosive(ref)]
        verdicts = _run_chunked(
            _math_verify_batch,
            [(completions[i], references[i]) for i in with_ref],
            config.math_verify_timeout,
            None,
            config.chunk_size,
            config.timeout_retry_factor,
        )
        for i, verdict in zip(with_ref, verdicts):
            mv[i] = verdict
    return [GradeResult(e, c, m) for e, c, m in zip(extracted, correct, mv)]


def grade(completion: str, reference: str, config: GradingConfig | None = None) -> GradeResult:
    """Grade one completion against a gold final answer (see `grade_batch`)."""
    return grade_batch([(completion, reference)], config)[0]
