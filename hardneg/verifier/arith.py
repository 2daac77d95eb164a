"""Find and evaluate the equalities written in a solution step (the d5 / value-flow input).

A step such as `Total = 4 × $3 = $12.` or `$r = \\sqrt{0^2+3^2} = 3.$` or GSM8K's
`48/2 = <<48/2=24>>24` is tokenized once (plain text and LaTeX alike: `$` is ignored,
words end an expression), cut into equality chains `e0 = e1 = ... = en`, and each
adjacent pair `(e_k, e_k+1)` becomes a `Link` that is checked when both sides are
complete, closed-form expressions.

Why a hand-written parser and exact fractions rather than SymPy for everything: almost
every GSM8K/MATH step is plain arithmetic, which `fractions.Fraction` decides exactly in
microseconds in-process, and a recursive-descent parser with explicit guards cannot be
made to hang: exponents, factorials, literal sizes, token counts and nesting depth are
bounded *before* anything is computed (`10^10^10^10` is refused, not evaluated). Only
closed forms that need real symbolic work (`\\sqrt{2}`, `\\pi`, `\\sin`) are handed to
SymPy, and that always goes through `hardneg.bounded.call_bounded` (see symbolic.py).
A link with a free symbol (`(x+1)^2 = x^2 + 1`, `3x + 1 = 7`, `x = 2`) is classified by
algebra.py: identities are checked (exact polynomial expansion, random points, SymPy),
equations and assignments are recorded and checked by substitution in checks.py. Word
problems that write units between the numbers (`30 snakes * 3 birds/snake = 90 birds`) are
read back by `_unit_links` when the words are plain units, and arithmetic written in words ("12 minus
5 is 7", "half of 30 is 15", "the sum of 3 and 4 is 7", as models write chains of thought) by
`_verbal_links`, one operation at a time and only where nothing around it continues the expression.

Guards against false alarms (a wrong "slip" flag is worse than a missed one):
- an expression next to a connective word (`half of 48 = 24`, `= 1/2 of 48`) is
  incomplete and not checked on its own; after the connective it is a slip only when no
  reading gives the result (`at 3*2 = 7` alone, `4 boxes at 3*2 = 24` with the 4 before it:
  _tied_slip); words end a chain, so `60 minutes = 1 hour` is not a link;
- no tolerance without a reason: a result written with k decimals may be rounded only
  when the exact value needs more digits (`12/7 = 1.71`); an integer for a non-integer value
  needs a word that says so (`10/3 = 3 full boxes`, "about", "rounded", ≈), so
  `12 − 1.20 = 11` and `3 × 1.5 = 5` are slips; `x·100 = 10%` holds, and `≈` allows 2 %;
  a decimal inside an expression may be an intermediate rounded to its digits when the exact
  value needs more (`452 ÷ (1.05)^{14} = 452 ÷ 1.98 = 228.29`), but `2.5 × 100 = 245` is a slip;
- `2+2=4 \\boxed{4}`: a box after a complete result ends the expression (it repeats it);
- a step that shows an equation has no solution ("0 = 8, impossible"), a value tested and
  rejected (`1 = \\sqrt{11-2} + 4`, "which is not true") and a contradiction shown are no slips;
- next to a modulus (`\\pmod{1199}`, "modulo 7", not 2) an equality is one of residues (`50^{-1} = 24`);
- ratios/times (`1:2`), subscripts, absolute values and unknown commands make a side
  opaque (unchecked).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

__all__ = [
    "Tok",
    "Link",
    "Computation",
    "StepMath",
    "tokenize",
    "analyse_step",
    "numbers_in",
    "close_enough",
    "fmt_number",
    "TooLarge",
]

# -- limits (why: each one keeps a hostile input from costing more than microseconds) --
MAX_NUM_CHARS = 60          # longer digit strings are not quantities anybody computes with
MAX_SPAN_TOKENS = 160
MAX_DEPTH = 40
MAX_POW_EXPONENT = 4096
MAX_RESULT_BITS = 20000
MAX_FACTORIAL = 300
MAX_STEP_CHARS = 4000

_TOKEN_RE = re.compile(
    r"""
 (?P<ws>\s+|[&¢€£~])
|(?P<brk>\$\$|\$|\\\\|\\[\[\]()])
|(?P<delim>\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|bigg|Bigg|big|Big)\s{0,3}(?:\\[{}|]|[()\[\]|.]))
|(?P<textcmd>\\(?:text|mbox|mathrm|textbf|textit|operatorname|mathbf|unit|textrm)\s{0,3}\{[^{}]{0,200}\})
|(?P<cmd>\\[a-zA-Z]{1,30}|\\[%$,;:!{}| ])
|(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)
|(?P<rel><=|>=|!=|=>|->|[≠≤≥<>→⇒⟹⟺])
|(?P<eq>:=|==|=)
|(?P<approx>[≈≃])
|(?P<op>\*\*|[+\-*/^×÷·⋅−])
|(?P<fact>!)
|(?P<pct>%)
|(?P<lp>[(\[])
|(?P<rp>[)\]])
|(?P<lb>\{)
|(?P<rb>\})
|(?P<word>[^\W\d_]+)
|(?P<other>.)
""",
    re.VERBOSE | re.DOTALL,
)

# functions written without a backslash, read as functions only where an argument follows ("sin A", "cos^2 x",
# "log_2 8", "ln(x)"), so "a tan bucket" or "a log 12 feet long" stay words ("sec" is seconds: left out); not
# before a number, which plain text often gives in degrees ("sin 30 = 0.5")
_PLAIN_FUNC_ARG_RE = re.compile(r"(?:\^\s*\{?-?\d{1,2}\}?)?[ \t]{0,2}(?:\((?!\s*\d)|[A-Za-zθαβγφ](?![A-Za-z])|\\(?:theta|alpha|beta|gamma|phi|pi)\b)")
_PLAIN_LOG_ARG_RE = re.compile(r"_|\(|[ \t]{0,2}[A-Za-z](?![A-Za-z])")
_OP_MAP = {"**": "^", "×": "*", "÷": "/", "·": "*", "⋅": "*", "−": "-"}
_FUNCS = {"sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "log", "ln", "exp"}
_PLAIN_FUNCS = _FUNCS - {"sec", "csc"}
_TRIG_WORDS = _PLAIN_FUNCS - {"log", "ln", "exp"}
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
    "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
}
_SKIP_CMDS = {
    "$", ",", ";", ":", "!", " ", "displaystyle", "textstyle", "left", "right", "limits",
    "mathbf", "mathrm", "bf", "rm", "it", "nonumber", "notag", "hline",
    "begin", "end", "big", "Big", "bigg", "Bigg",
}
_REL_CMDS = {
    "le", "leq", "ge", "geq", "neq", "ne", "lt", "gt", "ll", "gg", "to", "implies", "Rightarrow",
    "rightarrow", "Leftrightarrow", "iff", "subset", "subseteq", "in", "notin", "equiv", "cup", "cap",
    "mid", "leqslant", "geqslant", "because", "therefore",
}
_APPROX_CMDS = {"approx", "simeq", "sim", "thickapprox"}
CONNECTIVES_LEFT = {
    "times", "plus", "minus", "by", "from", "than", "over", "and", "twice", "half", "double", "triple",
    "add", "subtract", "less", "more", "divided", "multiplied", "quarter", "third", "thrice", "at", "each",
    "through",
}
# "half of 48 = 24" is incomplete, "a total of 12 + 24 = 36" is not: it depends on the word before "of"
FRACTION_WORDS = {
    "half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth", "fifths", "tenth",
    "tenths", "twice", "double", "triple", "percent", "fraction", "times", "each", "most", "rest", "part",
}
# "Week 1 + Week 2 = 35 + 35", "day 1 * 2": a number right after these names is a label
LABEL_WORDS = {
    "day", "days", "week", "weeks", "month", "year", "step", "level", "page", "chapter", "grade", "part",
    "round", "game", "room", "floor", "section", "stage", "phase", "version", "number", "no", "question",
    "problem", "line", "row", "column", "lap", "case", "option", "equation", "item", "figure", "table",
}
# the values of number words ("five", "a dozen", "twice"), read by the checks and by _tied_slip
NUMBER_WORD_VALUES = {
    w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
     "dozen": 12, "twice": 2, "double": 2, "triple": 3}
# letters that name functions in MATH ("f(x) = x^2"); "a(2)" stays a product
FUNCTION_LETTERS = {"f", "g", "h", "p", "q"} | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# ... and any letter (or Greek letter) the text calls a function: "the function $b(x)$", "functions $a(x)$
# and $c(x)$", "the function $\psi$ satisfies", "Let $e(x)$ be an even function"
_FUNCTION_DECL_RE = re.compile(
    r"\bfunctions?\s+\$?\s*(?:\\([a-zA-Z]+)|([a-zA-Z]))(?![a-zA-Z])\s*(?:\(\s*[a-z]\s*\)|\$)"
    r"|\$\s*(?:\\([a-zA-Z]+)|([a-zA-Z]))\s*\(\s*[a-z]\s*\)\s*\$\s*(?:is|be)\s+an?\s+(?:[a-z]+\s+){0,2}?function"
)


def declared_functions(text: str) -> frozenset:
    """The letters `text` calls functions ("Let $e(x)$ be an even function" → {"e"})."""
    if "function" not in text:
        return frozenset()
    return frozenset(g for m in _FUNCTION_DECL_RE.finditer(text) for g in m.groups() if g)
# a step that says it rounds: only then may an integer stand for a non-integer result
ROUNDING_CUE = re.compile(
    r"≈|\\approx|\\sim|\\lfloor|\\lceil|\b(?:about|around|approximately|approx|roughly|nearly|almost|"
    r"round\w*|nearest|whole|full|complete|floor|ceil\w*|truncat\w*|estimat\w*|at (?:least|most)|only|can't|cannot|"
    r"can not|maximum|minimum|integer|remainder|remaining|left over|leftover)\b",
    re.IGNORECASE,
)
# a step that is solving or testing an equation: there, `(1 - x^2)(1 - 4x^2) = (2x^2 + 3x)^2`
# ("squaring both sides") is an equation whose leading terms cancel, not a wrong expansion
EQUATION_CUE = re.compile(
    r"both sides|equat|coefficients|solv|squaring|root|zero|satisf|condition|must|need|want|only if|\\iff|remainder|modul|"
    r"\\equiv|\\pmod|\bmod\b|suppos|assum|\bif\b|\bwhen|substitut|plug|\\implies|\\rightarrow|\\quad|"
    r"intersect|\bset\b|\bsetting\b|equal to each other|rearrang|isolat",
    re.IGNORECASE,
)
# "4a = 4(a-3) ⇒ 0 = -12, impossible": an equation shown to have no solution, on purpose
NO_SOLUTION_CUE = re.compile(r"no solution|impossible|not true|isn't true|not satisfied|does not hold|doesn't hold|not possible|contradict|never|cannot|can't|absurd|extraneous|\bfalse\b|invalid|not valid|not work|doesn't work|not a solution|\\neq|\\ne\b|≠", re.IGNORECASE)
# a step that announces a rewrite of one expression ("Factoring, we have", "expanding gives",
# "which simplifies to", "we can write ... as"): the equality right after it is claimed for every
# value, so a difference there is a slip even when it could be read as an equation (issue 12)
IDENTITY_CUE = re.compile(
    r"\b(?:factor\w*|expand\w*|distribut\w*|rewrit\w*|written as|write (?:this|it|the \w+) as|"
    r"complet\w* the square|combin\w* like terms|multiply\w* out|foil\w*|difference of (?:two )?squares|"
    r"sum of (?:two )?cubes|difference of (?:two )?cubes|identity)\b",
    re.IGNORECASE,
)
_COMPLEX_CUE = re.compile(r"\bi\^|\d\s*i\b|[+\-]\s*[a-z]?i\b|complex|imaginary")
# a solution that names i as an unknown ("let $i$ = the cost of the ink", "$i$ be the index", `i = .05`)
_I_UNKNOWN_RE = re.compile(r"\$\s*i\s*\$\s*(?:=|be\b|is the\b|denotes?\b|represents?\b)")
_I_VALUE_RE = re.compile(r"(?:^|[$(,]|\band)\s*i\s*=\s*-?(?:\d+\.?\d*|\.\d+)\s*(?:[$,;]|\.(?!\d)|$|\band\b)")
CONNECTIVES_RIGHT = {"of", "times", "plus", "minus", "divided", "multiplied", "over"}
MATH_KINDS = {"NUM", "OP", "FACT", "LP", "RP", "LB", "RB", "CMD", "CONST", "FUNC", "VAR", "OPAQUE", "SEP"}


class TooLarge(ArithmeticError):
    """An exponent/factorial/result beyond the guards: the link is left unchecked."""


class _NeedsSymbolic(Exception):
    pass


class _FreeSymbol(Exception):
    pass


class _ParseError(Exception):
    pass


class _CutOff(_ParseError):
    """Nesting or length beyond the guards: reported on the step ("cut off"), never a hang."""


@dataclass(slots=True)
class Tok:
    kind: str
    text: str
    start: int
    end: int
    value: object = None
    pct: bool = False
    decimals: int = 0


def _num_token(text: str, start: int, end: int) -> Tok:
    if len(text) > MAX_NUM_CHARS:
        return Tok("OPAQUE", text, start, end)
    clean = text.replace(",", "") if "," in text else text
    if "." in clean:
        whole, frac = clean.split(".", 1)
        decimals = len(frac)
        value = Fraction(int(whole or "0") * 10**decimals + int(frac), 10**decimals)
    else:
        decimals = 0
        value = Fraction(int(clean))
    return Tok("NUM", text, start, end, value, decimals=decimals)


_LATEX_HINT = re.compile(r"\\[a-zA-Z(\[]|\$\$")
# "$1+2+3 = 6$": a formula between dollars (the closing "$" right after a digit, letter, bracket or
# a comma/period ending the formula, unlike currency: "$12 - $1.20 = $10.80"; a sentence may end
# right after it: "is $3-(-2)=5$.", but "$.50" is currency)
_MATH_PAIR = re.compile(r"\$[^$\s][^$\n]{0,200}?[=+^*/][^$\n]{0,200}?[\w})\],.]\$(?!\d|\.\d)")
# lower-case words that stay words inside math (everything else of 2-4 letters is a product of symbols)
_MATH_WORDS = {
    "max", "min", "gcd", "lcm", "mod", "det", "log", "ln", "sin", "cos", "tan", "exp", "lim", "deg", "and", "or",
    "if", "for", "in", "is", "to", "of", "the", "cm", "mm", "km", "kg", "mph", "ft", "sec", "hr", "hrs", "min", "lb",
    "lbs", "oz", "pm", "am", "th", "st", "nd", "rd", "cis", "arg", "ker", "dim", "inf", "sup", "mid", "not", "so",
    "but", "as", "we", "has", "are", "at", "be", "by", "on", "it", "an", "all", "any", "per", "sum", "avg", "eq",
}
_ORDINALS = {"st", "nd", "rd", "th"}
_MATH_CONNECTIVES = {"or", "and", "if", "for", "is", "so", "but", "as", "we", "are", "then", "where", "when"}
_CURRENCY_AFTER = re.compile(r"[ ]?-?\.?\d")
TABLE_RE = re.compile(r"\\begin\{(array|tabular)\}.*?\\end\{\1\}", re.DOTALL)
_ENV_RE = re.compile(r"\\(?:begin|end)\{[a-zA-Z*]{1,20}\}")
# align lines that continue the expression of the line before: "\\\\ &\\;\\; + 3x^2y" (a line
# "\\\\ &= B" is not joined: in MATH it as often transforms an equation, `0 &= A \\\\ &= A/4`)
_CONTINUATION_RE = re.compile(r"\\\\\s*&\s*(?:\\[;:, !]\s*|\\q?quad\s*)*(?=[+\-−]|\\cdot|\\times|\\div)")
# ... and a line "\\\\ &= B" joins the chain when B is plain numbers (`&= -25 + 21 \\\\ &= \\boxed{-4}`): an
# evaluation, which a slip cannot hide in; a symbolic B stays its own line (see above)
_NUMERIC_LINE_RE = re.compile(r"\\\\\s*&\s*(?==(?:[^A-Za-z\\&$]|\\(?:(?:frac|dfrac|tfrac|cdot|times|div|boxed|left|right|sqrt)(?![A-Za-z])|[;:, !]))*(?:\\\\|\$|$))")
_ORDINAL_RE = re.compile(r"\^\{?\\text\{(?:st|nd|rd|th)\}\}?")
# an equation's number in display math: `\tag{2}`, `\label{eq:1}`, `2a^2 + 5b^2 = 0 \ \ \ (2)`, `\qquad (1)`
_TAG_RE = re.compile(r"\\tag\*?\{[^{}]{0,20}\}|\\label\{[^{}]{0,40}\}|(?:\\[ ;:,!]\s*|\\q?quad\s*|~){1,12}\(\s*\d{1,2}\s*\)(?=\s*(?:$|\$|\\\]|\\\\|&|,|\.))")
# `{n \choose k}` is `\binom{n}{k}` (plain arguments only: a nested brace is left as it is)
_CHOOSE_RE = re.compile(r"\{([^{}]{1,40})\\choose([^{}]{1,40})\}")
# "a 6-8-10 triangle", "$30-60-90$ triangle": the name of a triangle, not a subtraction
_TRIPLE = r"(?<![\w.^{}+\-*/])\d+-\d+-\d+(?![\w.\-])"
_TRIANGLE_NAME_RE = re.compile(rf"{_TRIPLE}(?:\s*=\s*{_TRIPLE})*(?=\s*\$?\s*(?:right\s+|special\s+)?triangle)", re.IGNORECASE)
_TEXT_OF_RE = re.compile(r"\\text(?:rm)?\{\s*of\s*\}")
THOUSANDS_RE = re.compile(r"(?<=\d)(?:,\\!|\{,\}|\\,)(?=\d{3})")
# "^\\circ", "^{\\circ}": degrees
_DEGREE_RE = re.compile(r"\s*(?:\\circ\b|\{\s*\\circ\s*\})")
# a subscript that names a term of a sequence or one of several unknowns: "_1", "_n", "_{12}", "_{n+1}", "_{k-1}"
_SUBSCRIPT_RE = re.compile(r"\{\s*([A-Za-z0-9]{1,3}|[A-Za-z]\s*[+-]\s*\d{1,2})\s*\}|(\d(?!\d)|[A-Za-z](?![A-Za-z]))")
# the base of "\\log_2", "\\log_{10}": a whole number of at most three digits, its square root
# ("\\log_{\\sqrt8}", "\\log_{\\sqrt{2}}") or its reciprocal ("\\log_{1/2}", "\\log_{\\frac{1}{3}}")
_LOG_BASE_RE = re.compile(
    r"\s*(?:\{\s*(\d{1,3})\s*\}|(\d)(?!\d)|\{\s*\\sqrt\s*(?:\{\s*([2-9]|[1-9]\d{1,2})\s*\}|([2-9]|[1-9]\d{1,2}))\s*\}"
    r"|\{\s*(?:1\s*/\s*|\\d?frac\s*\{?\s*1\s*\}?\s*)\{?\s*([2-9]|[1-9]\d{1,2})\s*\}?\s*\})")  # (bases ≥ 2 only)
# a base that is one letter: "\\log_x 6", "\\log_{b} 8" (not "\\log_e", the natural logarithm written out)
_LOG_SYMBOL_BASE_RE = re.compile(r"\s*(?:\{\s*([A-DF-Za-z])\s*\}|([A-DF-Za-z])(?![A-Za-z]))")
_ANGLE_RE = re.compile(r"\s*([A-Z]{1,3}|[A-Z]?\{[A-Z]{1,3}\})(?![A-Za-z])")
# `3 \text{ Y } 2`, `(-2)\ \$\ 3`: a letter or sign between two operands names an operation the problem defines
_TEXT_OPERATOR_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf)\{\s*(?:[A-Z]|[^\w\s{}\\])\s*\}")
_OPERAND_NEXT_RE = re.compile(r"(?:\s|\\[ ,;:!])*[\d(]")
_CUSTOM_OPS = set("@#") | {"\\ast", "\\star", "\\diamond", "\\nabla", "\\oplus", "\\otimes", "\\odot", "\\circledast", "\\bullet", "\\clubsuit", "\\heartsuit", "\\spadesuit", "\\triangle", "\\Box", "\\square"}


# a word of two letters or more after one space ("$1 a pair": "a" is an article there)
_WORD_NEXT_RE = re.compile(r" [A-Za-z]{2}")
# the end of "that's", "Pam's", "don't", "they're" after a word of two letters or more
_CONTRACTION_RE = re.compile(r"(?:s|t|re|ll|ve|d|m)(?![A-Za-z])")
# a unit or an ordinal glued to a result ("= 160kg", "= 5km", "= 16th"): a label, not a factor that continues the
# side. Not _MATH_WORDS: those keep "pm" (a clock time, no result) and lack "mi", "mg", "kb" (products in math).
_GLUED_UNITS = _ORDINALS | {"kg", "mg", "km", "cm", "mm", "ml", "lb", "lbs", "oz", "ft", "mi", "mph", "kph", "hr", "hrs",
                            "min", "mins", "sec", "secs", "gb", "mb", "kb"}


def normalize(text: str) -> str:
    """Join LaTeX thousands separators (`90,\\!000`, `148{,}000`) before tokenizing."""
    if "," in text:
        text = THOUSANDS_RE.sub("", text)
    if ".\\overline" in text:
        text = text.replace(".\\overline", "\\overline")  # "0.\\overline{6}" is one (opaque) number
    if "\\begin" in text or "\\end" in text:
        if "{array}" in text or "{tabular}" in text:
            # a table's cells (`&300/11 &=& ab&.ababab`) are split by `&`: what is written across them is not an equality
            text = TABLE_RE.sub(" $$ $$ ", text)
        text = _ENV_RE.sub(" $$ ", text)
    if "\\\\" in text:
        text = _CONTINUATION_RE.sub(" ", text)  # "\\\\ &\\;\\; + 3x^2y": the line continues the expression
        text = _NUMERIC_LINE_RE.sub(" ", text)
    if "\\text" in text:
        text = _ORDINAL_RE.sub("", text)  # "the $4+1=5^\\text{th}$ day": an ordinal suffix, not a power
        text = _TEXT_OF_RE.sub(" of ", text)  # "1\\% \\text{ of } 5": the word, read as in plain text
    if "\\choose" in text:
        text = _CHOOSE_RE.sub(r"\\binom{\1}{\2}", text)
    if "triangle" in text.lower():
        text = _TRIANGLE_NAME_RE.sub(lambda m: "\\text{" + m.group().replace("-", ":") + "}", text)
    if "\\tag" in text or "\\label" in text or "\\ " in text or "quad" in text:
        text = _TAG_RE.sub(" ", text)
    if " as " in text:
        text = _STATED_AS_RE.sub(_stated_as, text)
    return text


# a rewrite stated in words: "We expand $(x + y)^2$ as $x^2 + xy + y^2$" claims the identity `(x + y)^2 = x^2 + xy + y^2`
_STATED_AS_RE = re.compile(
    r"(\b(?:expand\w*|factor\w*|rewrit\w*|writ\w*|express\w*)\b[^.$\n]{0,40})\$([^$=<>]{1,200})\$(\s*as\s*)\$([^$=<>]{1,200})\$",
    re.IGNORECASE)


def _letters(formula: str) -> set:
    return set(re.findall(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", " ", formula)))


def _stated_as(m: re.Match) -> str:
    """`$A$ as $B$` -> `$A = B$` when both sides hold the same letters (`write $n$ as $10a + b$` introduces
    new unknowns: a substitution, left as words)."""
    a, b = m.group(2), m.group(4)
    if not _letters(a) or _letters(a) != _letters(b):
        return m.group(0)
    return f"{m.group(1)}${a} = {b}$"


_CONTINUES = tuple("=+-−*/×÷·<>≤≥^)]}")  # a line opening with these goes on with the line before


def tokenize(text: str, opaque_star: bool = False, functions: frozenset = frozenset()) -> list[Tok]:
    """Tokens of a step. Currency `$` and spacing commands are dropped; a math `$`,
    `$$` or `\\\\` ends an expression. `opaque_star`: the problem defines its own `*`
    operation, so `a * b` is not a product."""
    toks: list[Tok] = []
    in_math = False
    # with LaTeX around, every "$" delimits math; so does a "$...$" pair around a formula ("$1+2+3 = 6$")
    latex = bool(_LATEX_HINT.search(text)) or bool(_MATH_PAIR.search(text))
    skip_to = 0
    functions = FUNCTION_LETTERS | functions | declared_functions(text)
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        s = m.group()
        a, b = m.start(), m.end()
        if (kind == "ws" and "\n" in s and not in_math and a >= skip_to and toks and toks[-1].kind in ("VAR", "WORD")
                and not text.startswith(_CONTINUES, b)):
            toks.append(Tok("PUNCT", "\n", a, b))  # a line ending on a word ends there: "Solve for b\n5b = 30" is no b·5b
            continue
        if kind == "ws" or a < skip_to:
            continue
        if s == "^" and (deg := _DEGREE_RE.match(text, b)) and not any(t.kind == "FUNC" for t in toks):
            # after "\\sin" (even "\\sin (600^\\circ - 360^\\circ)") a degree mark changes the value the
            # function sees, and the evaluator reads radians: left opaque, as before
            skip_to = deg.end()  # "180^\\circ": a unit of angle, not a power
            if toks and toks[-1].end == a:
                toks[-1].end = deg.end()  # the link reads "130^\\circ", not "130"
            continue
        if s in ("'", "\u2019") and toks and toks[-1].kind == "WORD" and toks[-1].end == a and (c := _CONTRACTION_RE.match(text, b)):
            toks[-1].end = skip_to = c.end()  # "that's 240/60", "Pam's 10*6": part of the word, not a prime times s
            continue
        if s == "\\angle" and (ang := _ANGLE_RE.match(text, b)):
            # "\\angle ABC": the measure of one angle, an unknown like any other
            toks.append(Tok("VAR", text[a : ang.end()], a, ang.end(), "angle_" + ang.group(1).replace("{", "").replace("}", "")))
            skip_to = ang.end()
            continue
        if s == "_" and toks and toks[-1].kind == "FUNC" and toks[-1].value == "log" and (base := _LOG_BASE_RE.match(text, b)):
            # "\\log_2 8", "\\log_{10} 1000": one function, the logarithm to that base
            prev = toks[-1]
            whole, root, reciprocal = base.group(1) or base.group(2), base.group(3) or base.group(4), base.group(5)
            prev.value = f"log_{whole}" if whole else f"log_{root}^1/2" if root else f"log_{reciprocal}^-1"
            prev.end = skip_to = base.end()
            continue
        if s == "_" and toks and toks[-1].kind == "FUNC" and toks[-1].value == "log" and (base := _LOG_SYMBOL_BASE_RE.match(text, b)):
            # "\\log_x 6": log 6 / log x, an expression in the unknown x (the parser builds the quotient)
            toks[-1].value = "log@" + (base.group(1) or base.group(2))
            toks[-1].end = skip_to = base.end()
            continue
        if s == "_" and toks and toks[-1].kind == "VAR" and toks[-1].end == a and (sub := _SUBSCRIPT_RE.match(text, b)):
            # "a_1", "x_{n+1}": one indexed name, not a product with an unknown operator
            index = re.sub(r"\s+", "", sub.group(1) or sub.group(2))
            prev = toks[-1]
            prev.value = f"{prev.value}_{index}"
            prev.text = text[prev.start : sub.end()]
            prev.end = sub.end()
            skip_to = sub.end()
            continue
        if kind == "brk" and s == "$" and not latex and _CURRENCY_AFTER.match(text, b):
            continue  # "$12", "$ 6": a currency sign in plain text
        if kind == "brk" and s == "$" and not latex and not in_math and toks and toks[-1].kind == "NUM" and text[toks[-1].end : a] in ("", " "):
            continue  # "sells at 20$", "gave 20 $ to Jack": a currency sign written after the amount
        if kind == "brk":
            # math delimiters end an expression and switch math mode (where "ab" is a product)
            if s in ("$", "$$"):
                in_math = not in_math
            elif s in ("\\[", "\\("):
                in_math = True
            elif s in ("\\]", "\\)"):
                in_math = False
            toks.append(Tok("PUNCT", s, a, b))
            continue
        if kind == "num":
            prev = toks[-1] if toks else None
            if "," in s and a > 0 and text[a - 1] in "([":
                toks.append(Tok("OPAQUE", s, a, b))  # "(28,365)" is a pair, not 28365
            elif in_math and len(s) > 1 and prev is not None and prev.kind == "OP" and prev.value == "^" and prev.end == a:
                toks.append(Tok("OPAQUE", s, a, b))  # LaTeX "2^03" is 2^0·3: too ambiguous
            else:
                toks.append(_num_token(s, a, b))
        elif kind == "op":
            if opaque_star and s == "*":
                toks.append(Tok("OPAQUE", s, a, b))
            else:
                toks.append(Tok("OP", s, a, b, _OP_MAP.get(s, s)))
        elif kind == "eq":
            toks.append(Tok("EQ", s, a, b))
        elif kind == "approx":
            toks.append(Tok("APPROX", s, a, b))
        elif kind == "rel":
            if s == "!=" and toks and toks[-1].kind in ("NUM", "RP", "RB") and toks[-1].end == a:
                toks.append(Tok("FACT", "!", a, a + 1))  # "5!=120" is 5! = 120
                toks.append(Tok("EQ", "=", a + 1, b))
            else:
                toks.append(Tok("REL", s, a, b))
        elif kind == "fact":
            prev = toks[-1] if toks else None
            if prev is not None and prev.kind in ("NUM", "RP") and prev.end == a:
                toks.append(Tok("FACT", s, a, b))
            else:
                toks.append(Tok("PUNCT", s, a, b))
        elif kind == "pct":
            _attach_pct(toks, s, a, b)
        elif kind in ("lp", "rp", "lb", "rb"):
            if kind == "lp":
                _function_power(toks)  # "f^{-1}(9)", "g^2(x)": a function application
            prev = toks[-1] if toks else None
            if kind == "lp" and s == "(" and prev is not None and prev.kind == "VAR" and prev.end == a and prev.value in functions:
                inner = text[b : b + 80].split(")", 1)[0]
                if not re.search(r"(?<![A-Za-z\\])" + prev.value + r"(?![A-Za-z])", inner):
                    prev.kind = "OPAQUE"  # "f(x)", "q(7)": a function application; "p(130-5p)" stays a product
            toks.append(Tok(kind.upper(), s, a, b))
        elif kind == "delim":
            ch = s[-1]
            prev = toks[-1] if toks else None
            if s.endswith("\\{") or s.endswith("\\}") or ch == "|":
                toks.append(Tok("OPAQUE", s, a, b))
            elif ch == "(" and prev is not None and prev.kind == "VAR" and prev.value in functions and not text[prev.end : a].strip():
                prev.kind = "OPAQUE"  # "f \\left( 3 \\right)": a function application
                toks.append(Tok("LP", s, a, b))
            elif ch in "([":
                toks.append(Tok("LP", s, a, b))
            elif ch in ")]":
                toks.append(Tok("RP", s, a, b))
            # "\right." is an empty delimiter: nothing
        elif kind == "textcmd":
            if s.startswith("\\operatorname"):
                toks.append(Tok("OPAQUE", s, a, b))  # a named function we do not evaluate
            elif toks and toks[-1].kind in ("NUM", "RP") and _TEXT_OPERATOR_RE.fullmatch(s) and _OPERAND_NEXT_RE.match(text, b):
                toks.append(Tok("OPAQUE", s, a, b))  # `3 \text{ Y } 2`: an operation the problem defines
            else:
                toks.append(Tok("WORD", s, a, b, s.lower()))
        elif kind == "cmd":
            if s in _CUSTOM_OPS or s in ("\\pm", "\\mp") or (s == "\\$" and toks and toks[-1].kind in ("NUM", "RP")
                                                             and _OPERAND_NEXT_RE.match(text, b)):
                toks.append(Tok("OPAQUE", s, a, b))
            else:
                _command_token(toks, s, a, b)
        elif kind == "word" and s in _PLAIN_FUNCS and (_PLAIN_FUNC_ARG_RE if s in _TRIG_WORDS else _PLAIN_LOG_ARG_RE).match(text, b):
            toks.append(Tok("FUNC", s, a, b, s))  # "sin A = 2 cos A", "cos^2 x", "log_5 N": a function without its backslash
        elif kind == "word":
            # "st" in `(rs + st + tr)^2` is s·t; after a digit ("1st", "2nd") it is an ordinal suffix
            ordinal_product = s in _ORDINALS and not (a > 0 and text[a - 1].isdigit())
            if in_math and 2 <= len(s) <= 4 and s.isascii() and s.islower() and (s not in _MATH_WORDS or ordinal_product):
                for k, ch in enumerate(s):  # "rx", "2mn": in math, juxtaposed letters are a product
                    toks.append(Tok("VAR", ch, a + k, a + k + 1, ch))
            elif in_math and s in _MATH_CONNECTIVES:
                toks.append(Tok("WORD", s, a, b, s))  # `$e = 0 or e = 3$`: two statements, not a product
            elif s == "a" and not in_math and toks and toks[-1].kind == "NUM" and toks[-1].end < a and _WORD_NEXT_RE.match(text, b):
                toks.append(Tok("WORD", s, a, b, s))  # "= $1 a pair", "20 a day": the article of a rate, not a product
            elif (len(s) == 1 and s.isascii()) or (len(s) <= 4 and s.isascii() and (s.isupper() or in_math)):
                toks.append(Tok("VAR", s, a, b, s))  # x, or a geometry name such as AC
            else:
                toks.append(Tok("WORD", s, a, b, s.lower()))
        else:  # other
            if s == "√":
                toks.append(Tok("CMD", s, a, b, "sqrt"))
            elif s in "_|'\\^@#":
                toks.append(Tok("OPAQUE", s, a, b))
            elif s == ":" and toks and toks[-1].kind == "NUM" and _is_ratio_colon(text, a, b):
                toks.append(Tok("OPAQUE", s, a, b))  # a ratio or a time of day
            elif s in "–°":
                toks.append(Tok("OPAQUE", s, a, b))  # an en dash is a range, not a minus
            else:
                toks.append(Tok("PUNCT", s, a, b))
    return _rewrite(_gcd_calls(toks))


_NAME_WRAPPERS_RE = re.compile(r"\\(?:text|operatorname|mathrm|mathop|rm)|[^a-z]")


def _gcd_calls(toks: list[Tok]) -> list[Tok]:
    """`\\gcd(12, 18)`, `\\text{lcm}[4,6]`: the name becomes a command and the commas of its brackets separate
    its arguments (anywhere else a comma ends an expression: `(28,365)=1` is a pair, not a number)."""
    for i in range(len(toks) - 1):
        t = toks[i]
        if t.kind not in ("OPAQUE", "WORD") or toks[i + 1].kind != "LP" or toks[i + 1].value is not None:
            continue
        name = _NAME_WRAPPERS_RE.sub("", t.text.lower())
        if name not in ("gcd", "lcm"):
            continue
        depth, commas, grouped = 0, [], []
        for j in range(i + 1, len(toks)):
            u = toks[j]
            depth += (u.kind in ("LP", "LB")) - (u.kind in ("RP", "RB"))
            if depth == 1 and u.kind == "PUNCT" and u.text == ",":
                commas.append(j)
            elif depth == 1 and u.kind == "NUM" and "," in u.text:
                grouped.append(j)
            if depth == 0:
                t.kind, t.value = "CMD", name
                for k in commas:
                    toks[k] = Tok("SEP", ",", toks[k].start, toks[k].end)
                if grouped and any(toks[k + 1].start == toks[k].end for k in commas):
                    # `\\text{lcm}(15,9,15,105)`: arguments written without spaces, so "15,105" is two of them
                    for k in reversed(grouped):
                        toks[k : k + 1] = _split_grouped(toks[k])
                break
    return toks


def _split_grouped(tok: Tok) -> list[Tok]:
    """"15,105" read as 15105 -> the tokens 15 , 105."""
    out: list[Tok] = []
    pos = tok.start
    for k, part in enumerate(tok.text.split(",")):
        if k:
            out.append(Tok("SEP", ",", pos, pos + 1))
            pos += 1
        out.append(_num_token(part, pos, pos + len(part)))
        pos += len(part)
    return out


def _function_power(toks: list[Tok]) -> None:
    """Mark the function letter of `f^{-1}(`, `f^2(` opaque (called when "(" comes)."""
    if len(toks) < 3:
        return
    k = len(toks) - 1
    if toks[k].kind == "RB":
        depth = 0
        while k >= 0:
            depth += toks[k].kind == "RB"
            depth -= toks[k].kind == "LB"
            if depth == 0:
                break
            k -= 1
        k -= 1
    elif toks[k].kind == "NUM":
        k -= 1
    else:
        return
    if k >= 1 and toks[k].kind == "OP" and toks[k].value == "^" and toks[k - 1].kind == "VAR" and toks[k - 1].value in FUNCTION_LETTERS:
        toks[k - 1].kind = "OPAQUE"


def _is_ratio_colon(text: str, a: int, b: int) -> bool:
    """"3:30", "1:2", "$7,980 : $420" are ratios/times; "gives away 20: 50 - 20" is a label."""
    after = text[b : b + 4]
    if after[:1].isdigit():
        return True
    spaced_before = a > 0 and text[a - 1] == " "
    return spaced_before and after.lstrip(" $")[:1].isdigit()


def _attach_pct(toks: list[Tok], s: str, a: int, b: int) -> None:
    prev = toks[-1] if toks else None
    if prev is not None and prev.kind == "NUM" and not prev.pct:
        prev.pct = True
        prev.value = prev.value / 100
        prev.text += s
        prev.end = b
    else:
        toks.append(Tok("PUNCT", s, a, b))


def _command_token(toks: list[Tok], s: str, a: int, b: int) -> None:
    name = s[1:]
    if name == "%":
        _attach_pct(toks, s, a, b)
    elif name in ("frac", "dfrac", "tfrac", "cfrac"):
        toks.append(Tok("CMD", s, a, b, "frac"))
    elif name == "sqrt":
        toks.append(Tok("CMD", s, a, b, "sqrt"))
    elif name in ("lfloor", "lceil"):
        toks.append(Tok("LP", s, a, b, name[1:]))  # a bracket that rounds what it holds ("floor", "ceil")
    elif name in ("rfloor", "rceil"):
        toks.append(Tok("RP", s, a, b, name[1:]))
    elif name in ("binom", "dbinom", "tbinom"):
        toks.append(Tok("CMD", s, a, b, "binom"))
    elif name in ("cdot", "times"):
        toks.append(Tok("OP", s, a, b, "*"))
    elif name == "div":
        toks.append(Tok("OP", s, a, b, "/"))
    elif name == "pi":
        toks.append(Tok("CONST", s, a, b, "pi"))
    elif name in _FUNCS:
        toks.append(Tok("FUNC", s, a, b, name))
    elif name in _APPROX_CMDS:
        toks.append(Tok("APPROX", s, a, b))
    elif name in _REL_CMDS:
        toks.append(Tok("REL", s, a, b))
    elif name in _GREEK:
        toks.append(Tok("VAR", s, a, b, name))
    elif name in ("boxed", "fbox"):
        toks.append(Tok("BOX", s, a, b))  # ends an expression that is already open: "2+2=4 \\boxed{4}"
    elif name in _SKIP_CMDS:
        return
    elif name in ("quad", "qquad"):
        toks.append(Tok("PUNCT", s, a, b))  # a separator between formulas
    elif name in ("{", "}", "|"):
        toks.append(Tok("OPAQUE", s, a, b))
    else:
        toks.append(Tok("OPAQUE", s, a, b))


def _rewrite(toks: list[Tok]) -> list[Tok]:
    """Context rules: `0.2 x 50` is a product, `4 notebooks × 3` drops the unit word,
    `10% of 12` and `1/2 of 48` are products."""
    out: list[Tok] = []
    n = len(toks)
    skip_until = -1
    # "10x6 = 60": a glued x between two numbers is a product unless the step uses x as an unknown ("3x2 + 2x",
    # a square written without its superscript)
    times_x = {i for i in range(1, n - 1) if toks[i].kind == "VAR" and toks[i].value in ("x", "X")
               and toks[i - 1].kind == "NUM" and toks[i + 1].kind == "NUM"
               and toks[i - 1].end == toks[i].start and toks[i].end == toks[i + 1].start}
    x_unknown = any(t.kind == "VAR" and t.value in ("x", "X") and i not in times_x for i, t in enumerate(toks))
    for i, t in enumerate(toks):
        if i <= skip_until:
            continue
        if (
            t.kind == "NUM"
            and i + 2 < n
            and out
            and out[-1].kind == "OP"
            and out[-1].value == "/"
            and out[-1].end < t.start
            and toks[i + 1].kind == "OP"
            and toks[i + 1].value == "/"
            and toks[i + 1].start == t.end
            and toks[i + 2].kind == "NUM"
            and toks[i + 2].start == toks[i + 1].end
        ):
            # "2000 / 2/3": a tight fraction after a spaced "/" is one divisor
            out.append(Tok("LP", "", t.start, t.start))
            out.extend([t, toks[i + 1], toks[i + 2]])
            out.append(Tok("RP", "", toks[i + 2].end, toks[i + 2].end))
            skip_until = i + 2
            continue
        if (
            t.kind == "NUM" and t.decimals == 0 and i + 3 < n and not (out and out[-1].kind == "OP" and out[-1].value in "/^")
            and toks[i + 1].kind == "OP" and toks[i + 1].value == "/" and _glued(t, toks[i + 1])
            and toks[i + 2].kind == "NUM" and toks[i + 2].decimals == 0 and _glued(toks[i + 1], toks[i + 2])
            and toks[i + 3].kind == "LP" and toks[i + 3].text == "("
        ):
            # "1/2 (68) + 10 = 44", "3/4(12)": a written fraction times a bracket, not 1 over 2·68
            out.append(Tok("LP", "", t.start, t.start))
            out.extend(toks[i : i + 3])
            out.append(Tok("RP", "", toks[i + 2].end, toks[i + 2].end))
            skip_until = i + 2
            continue
        prev = out[-1] if out else None
        nxt = toks[i + 1] if i + 1 < n else None
        if t.kind == "VAR" and t.value in ("x", "X") and prev is not None and nxt is not None:
            if prev.kind in ("NUM", "RP") and nxt.kind in ("NUM", "LP") and prev.end < t.start and t.end < nxt.start:
                out.append(Tok("OP", t.text, t.start, t.end, "*"))  # "5 x 3" (spaced); "2x(7)" is a product with x
                continue
            if i in times_x and not x_unknown:
                out.append(Tok("OP", t.text, t.start, t.end, "*"))
                continue
        if t.kind == "WORD" and prev is not None and prev.kind == "NUM" and nxt is not None:
            if nxt.kind == "OP" and nxt.value in ("*", "/") and len(t.text) <= 15 and t.value not in CONNECTIVES_LEFT:
                continue  # a unit between a quantity and × or ÷
            if t.value == "of" and nxt.kind in ("NUM", "LP"):
                is_fraction = len(out) >= 3 and out[-2].kind == "OP" and out[-2].value == "/" and out[-3].kind == "NUM"
                start = out[-4] if is_fraction and len(out) >= 4 else None
                after_eq = start is not None and start.kind in ("EQ", "APPROX")  # "= 1/3 of $150" may restart
                if prev.pct or (is_fraction and not after_eq):
                    out.append(Tok("OP", t.text, t.start, t.end, "*"))
                    continue
        out.append(t)
    return out


# ----------------------------------------------------------------------------- parser
# AST nodes are tuples: ("num", Fraction, Tok) ("var", name) ("const", "pi")
# ("bin", op, a, b) ("neg", a) ("fact", a) ("sqrt", a, index|None) ("func", name, a)


class _Parser:
    def __init__(self, toks: list[Tok]):
        self.toks = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> Optional[Tok]:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise _ParseError("unexpected end")
        self.i += 1
        return t

    def parse(self):
        if not self.toks:
            raise _ParseError("empty")
        if len(self.toks) > MAX_SPAN_TOKENS:
            raise _CutOff(f"longer than {MAX_SPAN_TOKENS} tokens")
        node = self.expr()
        if self.i != len(self.toks):
            raise _ParseError("trailing tokens")
        return node

    def _enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _CutOff(f"nested deeper than {MAX_DEPTH}")

    def expr(self):
        self._enter()
        node = self.term()
        while (t := self.peek()) is not None and t.kind == "OP" and t.value in "+-":
            self.i += 1
            node = ("bin", t.value, node, self.term())
        self.depth -= 1
        return node

    def term(self):
        node = self.implicit()
        while (t := self.peek()) is not None and t.kind == "OP" and t.value in "*/":
            self.i += 1
            node = ("bin", t.value, node, self.implicit())
        return node

    def implicit(self):
        """Juxtaposition (`6\\pi`, `3(4)`) binds tighter than × and ÷: `a \\div 6\\pi`."""
        node = self.unary()
        while True:
            t = self.peek()
            if t is None:
                break
            if t.kind in ("VAR", "CONST", "LP", "LB", "CMD", "FUNC") or (
                t.kind == "NUM" and self.toks[self.i - 1].kind in ("RP", "RB", "FACT")  # `\\frac{6!}{4!2!}`
            ):
                rhs = self.power()
                after = self.peek()
                neg = node[0] == "neg" and node[1][0] == "num"
                base = node[1] if neg else node
                if (
                    base[0] == "num"
                    and base[1].denominator == 1
                    and t.kind == "CMD"
                    and t.value == "frac"
                    and rhs[0] == "bin"
                    and rhs[2][0] == "num"
                    and rhs[3][0] == "num"
                    and 0 < rhs[2][1] < rhs[3][1]
                    and (after is None or after.kind not in ("VAR", "CONST", "LP", "LB", "CMD", "FUNC"))
                ):
                    mixed = ("bin", "+", base, rhs)  # "6\\frac{3}{4}" is the mixed number 6 3/4
                    node = ("neg", mixed) if neg else mixed  # "-3\\frac{3}{4}" is -(3 3/4)
                else:
                    node = ("bin", "*", node, rhs)  # implicit product: 2\\pi, 3(4), (2)(3)
            else:
                break
        return node

    def unary(self):
        t = self.peek()
        if t is not None and t.kind == "OP" and t.value in "+-":
            self.i += 1
            self._enter()
            inner = self.unary()
            self.depth -= 1
            return ("neg", inner) if t.value == "-" else inner
        return self.power()

    def power(self):
        base = self.postfix()
        t = self.peek()
        if t is not None and t.kind == "OP" and t.value == "^":
            self.i += 1
            self._enter()
            exp = self.unary()  # right-associative: 2^3^2 = 2^9
            self.depth -= 1
            return ("bin", "^", base, exp)
        return base

    def postfix(self):
        node = self.primary()
        while (t := self.peek()) is not None and t.kind == "FACT":
            self.i += 1
            node = ("fact", node)
        return node

    def _func_argument(self):
        """The argument of `\\sin` without brackets: the number and letters written together after
        it, as MATH writes them — `\\sin 4x` is sin(4x), `\\cos 2\\theta` is cos(2θ), `\\sin \\pi x` is
        sin(πx) — stopping at an operator or the next function (`\\sin x \\cos y` is sin(x)·cos(y))."""
        node = self.power()
        if node[0] not in ("num", "var", "const"):
            return node  # `\\sin (x + y)`, `\\sin \\frac{a}{2}`: the bracket or fraction is the argument
        # `\\log_3 27\\sqrt3` is log(27√3): a root written after the number belongs to the argument too
        while (t := self.peek()) is not None and (t.kind in ("VAR", "CONST") or (t.kind == "CMD" and t.value == "sqrt")):
            node = ("bin", "*", node, self.power())
        return node

    def group(self):
        """A LaTeX argument: {expr}, or a single digit/letter (`\\frac12`)."""
        t = self.take()
        if t.kind == "LB":
            node = self.expr()
            if self.take().kind != "RB":
                raise _ParseError("unbalanced brace")
            return node
        if t.kind == "NUM":
            return ("num", t.value, t)
        if t.kind in ("VAR", "CONST"):
            return ("var", t.value) if t.kind == "VAR" else ("const", t.value)
        raise _ParseError("bad argument")

    def primary(self):
        self._enter()
        t = self.take()
        if t.kind == "NUM":
            node = ("num", t.value, t)
        elif t.kind == "VAR":
            node = ("var", t.value)
        elif t.kind == "CONST":
            node = ("const", t.value)
        elif t.kind in ("LP", "LB"):
            node = self.expr()
            close = self.take()
            if close.kind not in ("RP", "RB") or close.value != t.value:
                raise _ParseError("unbalanced parenthesis")  # also `\\lfloor x )`
            if t.value is not None:
                node = (t.value, node)  # `\\lfloor 3.7 \\rfloor`: ("floor", 3.7)
        elif t.kind == "CMD" and t.value == "frac":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "NUM" and nxt.decimals == 0 and len(nxt.text) == 2 and nxt.text.isdigit():
                self.i += 1  # \frac12
                node = ("bin", "/", ("num", Fraction(int(nxt.text[0])), nxt), ("num", Fraction(int(nxt.text[1])), nxt))
            else:
                num = self.group()
                den = self.group()
                node = ("bin", "/", num, den)
        elif t.kind == "CMD" and t.value == "sqrt":
            index = None
            nxt = self.peek()
            if nxt is not None and nxt.kind == "LP" and nxt.text == "[":
                self.i += 1
                index = self.expr()
                if self.take().kind != "RP":
                    raise _ParseError("bad root index")
            node = ("sqrt", self.group(), index)
        elif t.kind == "CMD" and t.value == "binom":
            node = ("binom", self.group(), self.group())
        elif t.kind == "CMD" and t.value in ("gcd", "lcm"):
            if self.take().kind != "LP":
                raise _ParseError("gcd without its arguments")
            args = [self.expr()]
            while (sep := self.peek()) is not None and sep.kind == "SEP":
                self.i += 1
                args.append(self.expr())
            if self.take().kind != "RP" or len(args) < 2:
                raise _ParseError("gcd arguments")
            node = (t.value, *args)
        elif t.kind == "FUNC":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "OP" and nxt.value == "^":
                # `\sin^2 x` is (sin x)^2; `\sin^{-1} x` is arcsin, not a power: left opaque
                self.i += 1
                exp = self.group()
                if exp[0] != "num":
                    raise _ParseError("function power")
                node = ("bin", "^", ("func", t.value, self._func_argument()), exp)
            elif t.value.startswith("log@"):
                # change of base: the quotient of two logarithms has the same value whatever base "log" means
                node = ("bin", "/", ("func", "log", self._func_argument()), ("func", "log", ("var", t.value[4:])))
            else:
                node = ("func", t.value, self._func_argument())
        else:
            raise _ParseError(f"unexpected {t.kind}")
        self.depth -= 1
        return node


def parse_span(toks: list[Tok]):
    return _Parser(toks).parse()


# ------------------------------------------------------------------------- evaluation


def _check_size(x: Fraction) -> Fraction:
    if x.numerator.bit_length() > MAX_RESULT_BITS or x.denominator.bit_length() > MAX_RESULT_BITS:
        raise TooLarge("number too large")
    return x


def _exact_root(x: Fraction, k: int) -> Optional[Fraction]:
    if x < 0:
        if k % 2 == 0:
            return None
        r = _exact_root(-x, k)
        return -r if r is not None else None
    out = []
    for part in (x.numerator, x.denominator):
        r = round(part ** (1.0 / k)) if part.bit_length() < 1000 else None
        if r is None:
            return None
        hit = next((c for c in (r - 1, r, r + 1) if c >= 0 and c**k == part), None)
        if hit is None:
            return None
        out.append(hit)
    return Fraction(out[0], out[1])


def eval_exact(node, env: Optional[dict] = None) -> Fraction:
    """Exact value of a closed-form arithmetic AST (symbols looked up in `env`, if given).

    Raises _FreeSymbol (a variable), _NeedsSymbolic (irrational/transcendental), TooLarge
    (guards), ZeroDivisionError."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        if env is not None and node[1] in env:
            return env[node[1]]
        raise _FreeSymbol(node[1])
    if kind == "const":
        raise _NeedsSymbolic()
    if kind == "neg":
        return -eval_exact(node[1], env)
    if kind == "bin":
        op, a, b = node[1], node[2], node[3]
        if op == "^":
            e = eval_exact(b, env)
            base = eval_exact(a, env)
            if e.denominator != 1:
                root = _exact_root(base, e.denominator) if e.denominator <= 64 else None
                if root is None:
                    raise _NeedsSymbolic()
                base, e = root, Fraction(e.numerator)
            k = int(e)
            if abs(k) > MAX_POW_EXPONENT:
                raise TooLarge(f"exponent {fmt_number(e)} too large")
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if bits * abs(k) > MAX_RESULT_BITS:
                raise TooLarge("power too large")
            if base == 0 and k < 0:
                raise ZeroDivisionError
            return _check_size(base**k)
        x, y = eval_exact(a, env), eval_exact(b, env)
        if op == "+":
            return _check_size(x + y)
        if op == "-":
            return _check_size(x - y)
        if op == "*":
            return _check_size(x * y)
        if op == "/":
            return _check_size(x / y)
        raise _ParseError(op)
    if kind == "fact":
        v = eval_exact(node[1], env)
        if v.denominator != 1 or v < 0:
            raise _NeedsSymbolic()
        if v > MAX_FACTORIAL:
            raise TooLarge("factorial too large")
        return Fraction(math.factorial(int(v)))
    if kind == "sqrt":
        v = eval_exact(node[1], env)
        k = 2 if node[2] is None else eval_exact(node[2], env)
        if isinstance(k, Fraction):
            if k.denominator != 1 or not (1 <= k <= 64):
                raise _NeedsSymbolic()
            k = int(k)
        r = _exact_root(v, k)
        if r is None:
            raise _NeedsSymbolic()
        return r
    if kind == "binom":
        n, k = eval_exact(node[1], env), eval_exact(node[2], env)
        if n.denominator != 1 or k.denominator != 1 or n < 0 or k < 0:
            raise _NeedsSymbolic()
        if n > MAX_FACTORIAL:
            raise TooLarge("binomial coefficient too large")
        return Fraction(math.comb(int(n), int(k)))
    if kind in ("floor", "ceil"):
        v = eval_exact(node[1], env)
        return Fraction(v.numerator // v.denominator if kind == "floor" else -(-v.numerator // v.denominator))
    if kind in ("gcd", "lcm"):
        args = [eval_exact(c, env) for c in node[1:]]
        if any(v.denominator != 1 for v in args):
            raise _ParseError(f"{kind} of a fraction")
        return Fraction((math.gcd if kind == "gcd" else math.lcm)(*(int(v) for v in args)))
    if kind == "func":
        if node[1].startswith("log_"):
            b, r = log_base(node[1])
            return _exact_log(eval_exact(node[2], env), b) / r
        raise _NeedsSymbolic()
    raise _ParseError(kind)


def _any_node(node, pred) -> bool:
    """Does `pred` hold for the AST node or any node inside it?"""
    return pred(node) or any(_any_node(c, pred) for c in node[1:] if isinstance(c, tuple))


def _plain_log(node) -> bool:
    return node[0] == "func" and node[1] == "log"


def _number_theory(node) -> bool:
    return node[0] in ("floor", "ceil", "gcd", "lcm")


def log_base(name: str) -> tuple[int, Fraction]:
    """(b, r) for the function "log_b^r" (the logarithm to the base b^r; "log_8" is (8, 1), "log_8^1/2" the
    logarithm to the base √8, "log_2^-1" to the base 1/2): log_{b^r} x = log_b x / r."""
    b, _, r = name[4:].partition("^")
    return int(b), Fraction(r) if r else Fraction(1)


def _exact_log(x: Fraction, base: int) -> Fraction:
    """log_base(x) when it is rational (`\\log_2 8 = 3`, `\\log_8 2 = 1/3`, `\\log_3 \\frac{1}{9} = -2`)."""
    if x <= 0 or base < 2:
        raise _NeedsSymbolic()
    guess = math.log(x.numerator) - math.log(x.denominator)
    for q in range(1, 7):  # exponents p/q with a small denominator: roots of the base
        p = round(guess / math.log(base) * q)
        if abs(p) <= 64 * q and Fraction(base) ** p == x**q:
            return Fraction(p, q)
    raise _NeedsSymbolic()


def has_var(node) -> bool:
    kind = node[0]
    if kind == "var":
        return True
    if kind in ("num", "const"):
        return False
    return any(has_var(c) for c in node[1:] if isinstance(c, tuple))


def to_sympy_source(node) -> str:
    """Python source for SymPy (`Rational`, `sqrt`, ...), built from our own AST only.

    Exponents and factorials must be small exact numbers here (guard before SymPy)."""
    kind = node[0]
    if kind == "num":
        v = node[1]
        return f"Rational({v.numerator},{v.denominator})"
    if kind == "const":
        return "pi"
    if kind == "var":
        return f"Symbol({node[1]!r})"  # a name from our tokenizer (ASCII letters), never raw text
    if kind == "neg":
        return f"(-({to_sympy_source(node[1])}))"
    if kind == "bin":
        op = node[1]
        if op == "^":
            try:
                e = eval_exact(node[3])
            except (_NeedsSymbolic, _FreeSymbol, _ParseError, ZeroDivisionError):
                raise TooLarge("symbolic exponent")
            if abs(e) > 256:
                raise TooLarge(f"exponent {fmt_number(e)} too large")
            return f"(({to_sympy_source(node[2])})**(Rational({e.numerator},{e.denominator})))"
        return f"(({to_sympy_source(node[2])}){op}({to_sympy_source(node[3])}))"
    if kind == "fact":
        v = eval_exact(node[1])
        if v.denominator != 1 or not (0 <= v <= MAX_FACTORIAL):
            raise TooLarge("factorial argument")
        return f"factorial({int(v)})"
    if kind == "sqrt":
        if node[2] is None:
            return f"sqrt({to_sympy_source(node[1])})"
        k = eval_exact(node[2])
        if k.denominator != 1 or not (1 <= k <= 64):
            raise TooLarge("root index")
        return f"root({to_sympy_source(node[1])},{int(k)})"
    if kind == "binom":
        return f"binomial({to_sympy_source(node[1])},{to_sympy_source(node[2])})"
    if kind in ("floor", "ceil"):
        return f"{'floor' if kind == 'floor' else 'ceiling'}({to_sympy_source(node[1])})"
    if kind == "func" and node[1].startswith("log_"):
        b, r = log_base(node[1])
        return f"log({to_sympy_source(node[2])},{b})" if r == 1 else f"(log({to_sympy_source(node[2])},{b})/Rational({r.numerator},{r.denominator}))"
    if kind == "func":
        name = {"ln": "log", "arcsin": "asin", "arccos": "acos", "arctan": "atan"}.get(node[1], node[1])
        return f"{name}({to_sympy_source(node[2])})"
    raise _ParseError(kind)


def _sci(n: int) -> str:
    """An integer of any size in scientific notation (str() refuses > 4300 digits)."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    e = max(0, int(n.bit_length() * 0.30102999566398) - 1)
    while 10 ** (e + 1) <= n:
        e += 1
    while e > 0 and 10**e > n:
        e -= 1
    lead = n // 10 ** max(0, e - 5)
    digits = str(lead)
    return f"{sign}{digits[0]}.{digits[1:6]}e+{e}"


def fmt_number(x) -> str:
    """A human-readable number for flags: 12, 10.8, 1/3 -> 0.333333, huge -> 1.23456e+789."""
    if isinstance(x, Fraction):
        if max(x.numerator.bit_length(), x.denominator.bit_length()) > 64:
            if x.denominator == 1:
                return _sci(x.numerator)
            q = x.numerator // x.denominator
            if abs(q).bit_length() > 64:
                return _sci(q)
            return f"{x.numerator / x.denominator:.6g}"  # int/int true division does not overflow for q < 2^64
        if x.denominator == 1:
            return str(x.numerator)
        d = x.denominator
        for k in range(1, 7):
            if (10**k) % d == 0:
                s = f"{float(x):.{k}f}"
                return s
        return f"{float(x):.6g}"
    if isinstance(x, float):
        if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.6g}"
    return str(x)


# -------------------------------------------------------------------- chains and links


@dataclass
class Span:
    toks: list[Tok]
    before: Optional[Tok]
    after: Optional[Tok]
    op_before_words: bool = False  # "4 + Chad has 6 = ...": an operator sits before the words
    before2: Optional[Tok] = None  # the token before `before`
    after2: Optional[Tok] = None  # the token after `after`


@dataclass
class Side:
    """One side of a link, parsed and (when closed-form) evaluated."""

    text: str
    value: Optional[Fraction] = None
    sympy_src: Optional[str] = None  # set when SymPy must evaluate this side
    single_num: Optional[Tok] = None  # the side is one literal (rounding rules apply)
    operands: list[Fraction] = field(default_factory=list)
    ops: frozenset = frozenset()
    has_pi: bool = False
    has_square: bool = False
    has_pct: bool = False
    per_hundred: bool = False  # followed by "cents"/"percent": the value is written ×100
    node: Optional[tuple] = None  # the parsed AST (kept for sides with free symbols)
    free: bool = False  # holds a free symbol (x, a, AB): an identity, equation or assignment
    abs_terms: Optional[list] = None  # `|A| + 2|B|`: [(1, A), (2, B)] (only rewrites of such sums are checked)


@dataclass
class Link:
    """`lhs = rhs` with its verdict.

    status: "ok", "mismatch", "symbolic" (pending SymPy), "symbolic-id" (an identity with free
    symbols pending SymPy), "equation" / "assign" (free symbols, not an identity: see
    algebra.classify), "unchecked" (guard)."""

    lhs: Side
    rhs: Side
    approx: bool
    status: str
    note: Optional[str] = None
    source: str = "text"  # or "annotation"
    kind: str = "arith"  # "algebra": a link with free symbols (identity, equation, assignment)
    # an algebra mismatch that an equation context may explain (checks.py); "values": only the
    # solution's own values satisfying it do (`1 + 2c + 1 = 1 + 1 + c, so c = 0`); "switch": a rewrite
    # that the solution's values may show to be the chain switching to the equation it solves
    tentative: bool | str = False
    diff: Optional[dict] = None  # lhs − rhs as a polynomial (algebra.Poly), when both sides are polynomials
    pre: str = ""  # the words just before the link ("if x = 2", "when"): conditions are not derivations
    post: str = ""  # the words just after the last link of a chain ("x = 12 is too big", "x = 1, 5, 10")
    rounding: bool = False  # the step says it rounds (ROUNDING_CUE)
    rewrite: bool = False  # a later link of a chain, or one followed by a closed form: an identity is meant
    closed_only: bool = False  # a rewrite only because a number or a bound follows (`A = B = c`), which may state values
    solving: bool = False  # an equation cue in its clause ("solve", "we need", "if"): it may be an equation
    modulus: Optional[int] = None  # a congruence `lhs ≡ rhs (mod m)`, checked modulo m (StepMath.congruences)

    @property
    def text(self) -> str:
        sep = " ≡ " if self.modulus else " ≈ " if self.approx else " = "
        return f"{self.lhs.text}{sep}{self.rhs.text}"


@dataclass
class Computation:
    """A result computed from literal operands (value flow, formula checks)."""

    operands: list[Fraction]
    ops: frozenset
    result: Fraction
    text: str
    has_pi: bool = False
    has_square: bool = False
    result_text: str = ""
    ok: Optional[bool] = None  # the arithmetic holds (None: not decidable exactly)


@dataclass
class StepMath:
    links: list[Link] = field(default_factory=list)
    computations: list[Computation] = field(default_factory=list)
    mentions: list[Fraction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unbalanced: bool = False
    # `1024 \\equiv 3 \\pmod 7`: kept apart from `links`, whose sides are equal values (value flow, carried results)
    congruences: list[Link] = field(default_factory=list)


def _span_text(text: str, toks: list[Tok]) -> str:
    return " ".join(text[toks[0].start : toks[-1].end].split())


def _trim_brackets(toks: list[Tok], keep: str) -> list[Tok]:
    """Drop an unmatched bracket and what lies beyond it (`1) 3+4` -> `3+4`)."""
    stack: list[int] = []
    unmatched: list[int] = []
    for i, t in enumerate(toks):
        if t.kind in ("LP", "LB"):
            stack.append(i)
        elif t.kind in ("RP", "RB"):
            if stack:
                stack.pop()
            else:
                unmatched.append(i)
    unmatched.extend(stack)
    if not unmatched:
        return toks
    if keep == "tail":
        return toks[max(unmatched) + 1 :]
    return toks[: min(unmatched)]


def _complete_left(span: Span) -> bool:
    b = span.before
    first = span.toks[0]
    if span.op_before_words:
        return False
    if b is not None and b.kind == "WORD" and b.end == first.start:
        return False  # "x2", "AB3": glued to a name
    if b is not None and b.kind == "WORD":
        if b.value == "and" and b.text == "And":
            pass  # "And 12+3=15 seconds.": a sentence opening with "And" adds nothing to the sum
        elif b.value == "by" and _by_starts(span):
            pass  # "higher by 40 * 40/100 = 16", "beat the record by 372-300=72": the amount of a change
        elif b.value in LABEL_WORDS and span.before2 is not None and span.before2.kind == "WORD" and span.before2.value in _EVERY:
            pass  # "Every day 20+8+5 = 33 birds": a time phrase, not "Day 20" as a label
        elif b.value in CONNECTIVES_LEFT or b.value in LABEL_WORDS:
            return False
        if b.value == "of":
            b2 = span.before2
            if b2 is None or b2.kind == "NUM" or (b2.kind == "WORD" and b2.value in FRACTION_WORDS):
                return False
        if first.kind == "OP" and first.value in "+-":
            return False  # "40 cupcakes - 18 = 22": the first operand sits before the unit word
    return not (first.kind == "OP" and first.value in "*/^") and first.kind != "FACT"


_EVERY = {"every", "each", "per", "a", "one"}

# words before "by" that make what follows the amount of a change ("higher by", "increased by",
# "beat the record by"), not the second operand of "divide 12 by 3"
_BY_CHANGE = {
    "increase", "increases", "increased", "decrease", "decreases", "decreased", "reduce", "reduces", "reduced",
    "rose", "rises", "grew", "grows", "up", "down", "dropped", "drops", "fell", "falls", "raised", "raises",
    "exceeds", "exceeded", "record", "cut", "goes", "went", "differ", "differs",
}


def _by_starts(span: Span) -> bool:
    """"increased by 10/100 * 600 = 60", "higher by 40 * 40/100 = 16": after a change word, the whole
    computation after "by" is the amount (it holds an operator); "divided it by 2 + 1" is not."""
    b2 = span.before2
    if b2 is None or b2.kind != "WORD":
        return False
    w = b2.value
    if not (w in _BY_CHANGE or (w.endswith("er") and w not in ("other", "order", "number", "either", "after"))):
        return False
    return any(t.kind == "OP" and t.value in "+-*/" for t in span.toks)


_REMAINDER_RE = re.compile(r"\\text\{\s*r\s*\}|r$|remainder")


_TEXT_FUNCTIONS = {"cis", "lcm", "gcd", "mod", "sgn", "proj", "rem"}


def _complete_right(span: Span) -> bool:
    a = span.after
    if a is not None and a.kind == "WORD" and a.value.startswith("\\text") and a.value.split("{", 1)[-1].strip(" }") in _TEXT_FUNCTIONS:
        return False  # `\sqrt{2}\,\text{cis}\,\frac{\pi}{4}`: a function written as text continues the product
    if a is not None and a.kind == "WORD" and a.value.startswith(("\\text", "\\mbox", "\\textnormal")) and a.start == span.toks[-1].end:
        inner = a.value.split("{", 1)[-1].strip(" }").split()
        if inner and inner[0] not in CONNECTIVES_RIGHT:
            return span.toks[-1].kind != "OP"  # "=450\\text{ four digit numbers}": a unit label, not a factor
    ends = span.after2 is None or (span.after2.kind == "PUNCT" and span.after2.text in ".,;!?")
    if a is not None and a.kind == "WORD" and a.value == "times" and a.start > span.toks[-1].end and ends:
        return span.toks[-1].kind != "OP"  # "50/5 = 10 times.": a count, nothing is multiplied after it
    if a is not None and a.kind == "WORD" and a.value in _GLUED_UNITS and a.start == span.toks[-1].end and span.toks[-1].kind == "NUM":
        return True  # "= 160kg of meat", "= 16th place"
    if a is not None and a.kind == "WORD" and (a.value in CONNECTIVES_RIGHT or a.start == span.toks[-1].end):
        return False  # "= 1/2 of 48", "= \\frac{1}{2}bh": the expression goes on
    if a is not None and a.kind == "WORD" and a.value == "and" and span.after2 is not None and span.after2.kind in ("NUM", "LP"):
        return False  # "17/3 = 5 and 2/3": a mixed number written in words
    if a is not None and a.kind == "WORD" and _REMAINDER_RE.match(a.value):
        return False  # "100 \\div 12 = 8 R 4": a quotient with a remainder
    return span.toks[-1].kind != "OP"


def _glued(a: Tok, b: Tok) -> bool:
    return a.end == b.start


def _opaque(toks: list[Tok]) -> Tok:
    return Tok("OPAQUE", "".join(t.text for t in toks), toks[0].start, toks[-1].end)


_ELLIPSIS_DOTS = 2  # ".." or "...": fewer dots is a decimal point or a full stop


def _opaque_at(toks: list[Tok], k: int) -> bool:
    """Does one of _opaque_notation's patterns show at toks[k]: a second glued dot, `0.a`, or `355\\boxed`?"""
    t, before = toks[k], toks[k - 1]
    if t.kind == "BOX":
        return before.kind == "NUM" and before.end == t.start
    if t.kind != "PUNCT" or t.text != "." or before.end != t.start:
        return False
    if before.kind == "PUNCT" and before.text == ".":
        return True
    return before.kind == "NUM" and k + 1 < len(toks) and toks[k + 1].kind in ("VAR", "WORD") and t.end == toks[k + 1].start


def _opaque_notation(toks: list[Tok]) -> list[Tok]:
    """Mark the spans whose written value is not the value of their tokens, so that the
    link holding them is skipped: an ellipsis inside a sum ("14 + 21 + ... + 98" is not
    14 + 21 + 98), a decimal with digit letters ("0.abc", "0.ababab"), and a number split
    by a box ("355\\boxed{680}" is 355680)."""
    n = len(toks)
    if not any(_opaque_at(toks, k) for k in range(1, n)):
        return toks  # most steps: a plain loop over every token costs more than this scan
    out: list[Tok] = []
    i = 0
    while i < n:
        t = toks[i]
        j = i
        while j < n and toks[j].kind == "PUNCT" and toks[j].text == "." and (j == i or _glued(toks[j - 1], toks[j])):
            j += 1
        if j - i >= _ELLIPSIS_DOTS:
            prev_op = bool(out) and out[-1].kind == "OP"
            next_op = j < n and toks[j].kind == "OP"
            if prev_op or next_op:  # "0.333..." (a repeating decimal) stays a number
                out.append(_opaque(toks[i:j]))
                i = j
                continue
        if (
            t.kind == "NUM" and i + 2 < n and toks[i + 1].text == "." and toks[i + 2].kind in ("VAR", "WORD")
            and _glued(t, toks[i + 1]) and _glued(toks[i + 1], toks[i + 2])
        ):
            out.append(_opaque(toks[i : i + 3]))
            i += 3
            continue
        if t.kind == "NUM" and i + 1 < n and toks[i + 1].kind == "BOX" and _glued(t, toks[i + 1]):
            out.append(_opaque([t]))
            i += 1
            continue
        out.append(t)
        i += 1
    return out


def _chains(toks: list[Tok]) -> list[tuple[list[Span], list[str]]]:
    toks = _opaque_notation(toks)
    chains = []
    spans: list[Span] = []
    seps: list[str] = []
    cur: list[Tok] = []
    cur_before: Optional[Tok] = None
    last: Optional[Tok] = None
    op_before = False
    before2: Optional[Tok] = None

    def close(after, after2=None):
        nonlocal spans, seps, cur
        spans.append(Span(cur, cur_before, after, op_before, before2, after2))
        if len(spans) >= 2:
            chains.append((spans, seps))
        spans, seps, cur = [], [], []

    for idx, t in enumerate(toks):
        if t.kind == "BOX":
            if cur and cur[-1].kind != "OP":
                close(t)  # "= 4 \\boxed{4}": the box repeats the result, it is not a factor
                last = t
            continue  # "= \\boxed{6}", "3 \\times \\boxed{2}": the boxed expression is (part of) the side
        if t.kind in MATH_KINDS:
            if not cur:
                cur_before = last
                before2 = toks[idx - 2] if idx >= 2 else None
                k = idx - 1
                while k >= 0 and idx - k <= 6 and (toks[k].kind == "WORD" or _hyphen(toks, k)):
                    k -= 1
                op_before = k < idx - 1 and k >= 0 and toks[k].kind == "OP"
            cur.append(t)
        elif t.kind in ("EQ", "APPROX"):
            spans.append(Span(cur, cur_before, t, op_before, before2))
            seps.append(t.kind)
            cur = []
            cur_before = t
            op_before = False
        else:
            close(t, toks[idx + 1] if idx + 1 < len(toks) else None)
        last = t
    close(None)
    return chains


def _hyphen(toks: list[Tok], k: int) -> bool:
    """Is toks[k] the hyphen of a word such as "one-fifth" or "small-sized" (a `-` glued between two words)?"""
    t = toks[k]
    return (t.kind == "OP" and t.text == "-" and 0 < k < len(toks) - 1 and toks[k - 1].kind == "WORD"
            and toks[k + 1].kind == "WORD" and toks[k - 1].end == t.start and t.end == toks[k + 1].start)


def _short_fraction(toks: list[Tok], i: int) -> bool:
    """Is toks[i] the two digits of a short-form fraction ("\\frac34" is 3/4, as the parser reads it)?"""
    t = toks[i]
    prev = toks[i - 1] if i > 0 else None
    return (
        prev is not None and prev.kind == "CMD" and prev.value == "frac"
        and t.decimals == 0 and len(t.text) == 2 and t.text.isdigit()
    )


def _fraction_of_numbers(toks: list[Tok]) -> bool:
    """`\\frac{a}{b}` of two written numbers, alone (brackets around it aside)."""
    while len(toks) >= 3 and toks[0].kind in ("LP", "LB") and toks[-1].kind in ("RP", "RB"):
        toks = toks[1:-1]
    return [t.kind for t in toks] == ["CMD", "LB", "NUM", "RB", "LB", "NUM", "RB"] and toks[0].value == "frac"


def literal_values(toks: list[Tok]) -> list[Fraction]:
    """The numbers written in `toks` (absolute values), "\\frac34" giving 3 and 4, not 34."""
    out: list[Fraction] = []
    for i, t in enumerate(toks):
        if t.kind != "NUM":
            continue
        if _short_fraction(toks, i):
            out += [Fraction(int(t.text[0])), Fraction(int(t.text[1]))]
        else:  # not abs(): Fraction.__abs__ builds a new Fraction, and most numbers are already >= 0
            out.append(t.value if t.value >= 0 else -t.value)
    return out


def _side(text: str, toks: list[Tok]) -> Side:
    side = Side(_span_text(text, toks))
    side.operands = literal_values(toks)
    side.ops = frozenset(t.value for t in toks if t.kind == "OP")
    side.has_pct = any(t.kind == "NUM" and t.pct for t in toks)
    side.has_pi = any(t.kind == "CONST" for t in toks) or any(
        t.kind == "NUM" and t.text in ("3.14", "3.1416", "3.14159") for t in toks
    )
    side.has_square = any(
        t.kind == "OP" and t.value == "^" and i + 1 < len(toks) and toks[i + 1].text == "2" for i, t in enumerate(toks)
    )
    inner = toks
    while len(inner) >= 3 and inner[0].kind in ("LP", "LB") and inner[-1].kind in ("RP", "RB") and inner[0].value is None:
        inner = inner[1:-1]  # "\\boxed{74726}", "(12)"; not `\\lfloor 3.7 \\rfloor`, which rounds
    toks_for_literal = inner
    if len(toks_for_literal) == 1 and toks_for_literal[0].kind == "NUM":
        side.single_num = toks_for_literal[0]
    elif len(toks) == 1 and toks[0].kind == "NUM":
        side.single_num = toks[0]
    elif len(inner) == 2 and inner[0].kind == "OP" and inner[0].value == "-" and inner[1].kind == "NUM":
        side.single_num = inner[1]
    return side


def _evaluate(side: Side, toks: list[Tok]) -> Optional[str]:
    """Fill side.value (exact) or side.sympy_src; return a skip/unchecked reason."""
    if any(t.kind == "OPAQUE" for t in toks):
        side.abs_terms = _abs_terms(toks)
        if side.abs_terms and not any(has_var(node) for _, node in side.abs_terms):
            try:  # `|3 - 8| + 2|-1|`: absolute values of numbers
                side.value = sum((coef * abs(eval_exact(node)) for coef, node in side.abs_terms), Fraction(0))
                return None
            except (_NeedsSymbolic, _ParseError, ZeroDivisionError, TooLarge):
                pass
        if side.abs_terms and (modulus := _complex_modulus(side.abs_terms)) is not None:
            side.value, side.sympy_src = modulus
            return None
        return "skip"
    try:
        node = parse_span(toks)
    except _CutOff as exc:
        return f"unchecked: cut off, {exc}"
    except (_ParseError, RecursionError):
        return "skip"
    side.node = node
    if has_var(node):
        if _any_node(node, _number_theory):
            return "skip"  # `\\gcd(m, n) = 1`, `x^{\\lfloor x \\rfloor}`: a condition on integers, not an identity to sample
        side.free = True
        return None  # classified with the other side (algebra.classify)
    try:
        side.value = eval_exact(node)
        return None
    except TooLarge as exc:
        return f"unchecked: {exc}"
    except ZeroDivisionError:
        return "unchecked: division by zero"
    except _FreeSymbol:
        return "skip"
    except _ParseError:
        return "skip"
    except _NeedsSymbolic:
        pass
    if _any_node(node, _plain_log):
        return "skip"  # `\\log 1000 = 3`: a base-10 logarithm in MATH, natural in SymPy; its base is not written
    try:
        side.sympy_src = to_sympy_source(node)
        return None
    except TooLarge as exc:
        return f"unchecked: {exc}"
    except (_ParseError, _FreeSymbol, _NeedsSymbolic, ZeroDivisionError):
        return "skip"


_BARS = {"|", "\\lvert", "\\rvert", "\\left|", "\\right|", "\\vert", "\\left\\vert", "\\right\\vert"}


def _complex_modulus(terms: list) -> Optional[tuple[Optional[Fraction], Optional[str]]]:
    """(exact value, None) or (None, SymPy source) of `|1 - i| + 2|3 + 4i|` in a step about complex numbers:
    each modulus is √(re² + im²), exact when that is a rational square. None when a term is no a + bi."""
    from . import algebra

    if not algebra.COMPLEX["on"]:
        return None
    squares = []
    for coef, node in terms:
        try:
            p = algebra.to_poly(node)
        except Exception:  # noqa: BLE001 (not a polynomial: no complex number)
            return None
        if not set(p) <= {(), (("i", 1),)} or (("i", 1),) not in p:
            return None  # a real number (done above) or a symbol: not a complex constant
        squares.append((coef, Fraction(p.get((), 0)) ** 2 + Fraction(p[(("i", 1),)]) ** 2))
    roots = [(c, _rational_sqrt(q)) for c, q in squares]
    if all(r is not None for _, r in roots):
        return sum((c * r for c, r in roots), Fraction(0)), None
    return None, " + ".join(f"({c})*sqrt(Rational({q.numerator},{q.denominator}))" for c, q in squares)


def _rational_sqrt(q: Fraction) -> Optional[Fraction]:
    n, d = math.isqrt(q.numerator), math.isqrt(q.denominator)
    return Fraction(n, d) if n * n == q.numerator and d * d == q.denominator else None


def _abs_terms(toks: list[Tok]) -> Optional[list]:
    """`|A| − 2|B|` -> [(1, A), (−2, B)] (signed integer coefficient, parsed contents), or None when the side
    is anything else: bars pair in order, and nothing but a sign and a whole number stands between terms."""
    out, i, n = [], 0, len(toks)
    while i < n:
        sign = 1
        if toks[i].kind == "OP" and toks[i].value in "+-":
            sign = -1 if toks[i].value == "-" else 1
            i += 1
        elif out:
            return None
        coef = 1
        if i < n and toks[i].kind == "NUM" and toks[i].value.denominator == 1 and not toks[i].pct:
            coef = int(toks[i].value)
            i += 1
        if i >= n or toks[i].kind != "OPAQUE" or toks[i].text not in _BARS:
            return None
        j = next((k for k in range(i + 1, n) if toks[k].kind == "OPAQUE"), None)
        if j is None or toks[j].text not in _BARS or j == i + 1:
            return None
        try:
            node = parse_span(toks[i + 1 : j])
        except (_ParseError, _CutOff, RecursionError):
            return None
        out.append((sign * coef, node))
        i = j + 1
    return out or None


def close_enough(lhs: Side, rhs: Side, L, R, approx: bool, _percent_rule: bool = True, rounding: bool = False) -> bool:
    """Equality with the rounding conventions people write (see module docstring).

    No tolerance without a reason: a written result may differ from the exact value only
    when the step says it rounds (`rounding`: ≈, "about", "rounded", "full boxes", ...; `≈`
    also allows 2 %), or when the exact value cannot be written with the digits shown
    (`12/7 = 1.71`). `12 − 1.20 = 11` and `3 × 1.5 = 5` are slips."""
    if L == R:
        return True
    L = Fraction(L) if not isinstance(L, Fraction) else L
    R = Fraction(R) if not isinstance(R, Fraction) else R
    diff = abs(L - R)
    scale = max(abs(L), abs(R), Fraction(1))
    if diff <= scale * Fraction(1, 10**9):
        return True  # float noise from SymPy
    if approx and diff <= Fraction(2, 100) * scale:
        return True
    if _percent_rule and (rhs.per_hundred or lhs.per_hundred):
        a, b = (L * 100, R) if rhs.per_hundred else (L, R * 100)
        if close_enough(lhs, rhs, a, b, approx, _percent_rule=False, rounding=rounding):
            return True  # "$2.50 - $2.24 = 26 cents"
    for pct_side, other, pv, ov in ((lhs, rhs, L, R), (rhs, lhs, R, L)):
        if pct_side.has_pct and pct_side.single_num is None:
            # "9 / 21 * 100% = 42.857": the result written as a number of percent
            if _percent_rule:
                a, b = (pv * 100, ov) if pct_side is lhs else (ov, pv * 100)
                if close_enough(lhs, rhs, a, b, approx, _percent_rule=False, rounding=rounding):
                    return True
    for lit_side, exact in ((rhs, L), (lhs, R)):
        tok = lit_side.single_num
        if tok is None:
            continue
        if tok.pct:
            # "x*100 = 10%": the percentage written as its number of percent
            lit = tok.value * (-1 if lit_side.text.startswith("-") else 1)
            if abs(exact - lit * 100) <= Fraction(1, 10**6) * max(abs(exact), Fraction(1)):
                return True
            decimals = tok.decimals + 2
        else:
            decimals = tok.decimals
        unit = Fraction(1, 10**decimals)
        if (exact * 10**decimals).denominator == 1:
            continue  # the exact value fits the digits written: nothing to round
        if rounding and diff < unit:
            return True  # the step says it rounds, floors or ceils ("10/3 = 3 full boxes")
        if decimals == 0:
            continue  # an integer for a non-integer value, and no word saying it was rounded
        if diff <= unit / 2 or (diff < unit and abs(exact) > abs(lit_side.value or 0)):
            return True  # rounded to the digits written, or truncated (toward zero)
    # (not in the ×100 re-checks above: there L and R are no longer the values of the sides' ASTs)
    for side, exact in ((rhs, L), (lhs, R)) if _percent_rule else ():
        if side.single_num is None and side.node is not None and _rounded_literal(side.node, exact):
            return True  # `452 ÷ (1.05)^{14} = 452 ÷ 1.98`: 1.98 is (1.05)^{14} rounded to the digits written
    return False


def _decimal_literals(node) -> list:
    """The decimal literals (`1.98`, not `2`) of an AST, at most 4."""
    out, stack = [], [node]
    while stack and len(out) < 4:
        n = stack.pop()
        if n[0] == "num":
            if len(n) > 2 and n[2] is not None and n[2].decimals:
                out.append(n)
        else:
            stack.extend(c for c in n[1:] if isinstance(c, tuple))
    return out


def _replace(node, old, new):
    if node is old:
        return new
    if node[0] == "num":
        return node
    return (node[0],) + tuple(_replace(c, old, new) if isinstance(c, tuple) else c for c in node[1:])


def _rounded_literal(node, exact: Fraction) -> bool:
    """Does some value that rounds to one of the side's decimal literals (1.98: [1.975, 1.985]) make the
    side equal `exact`? Then the literal is an intermediate result rounded to the digits written. Only
    for an exact value that needs more digits than that (`2.5 × 100 = 245` stays a slip)."""
    for lit in _decimal_literals(node):
        if (exact * 10 ** (lit[2].decimals + 2)).denominator == 1:
            continue
        half = Fraction(1, 2 * 10 ** lit[2].decimals)
        try:
            ends = [eval_exact(_replace(node, lit, ("num", lit[1] + d, lit[2]))) for d in (-half, half)]
        except Exception:  # noqa: BLE001 — an end that cannot be evaluated (0 in a denominator): no verdict
            continue
        if min(ends) <= exact <= max(ends):
            return True
    return False


def names_i(text: str) -> bool:
    """The solution uses i as an unknown (a value or a meaning given to it), not as √−1."""
    return bool(_I_UNKNOWN_RE.search(text) or _I_VALUE_RE.search(text))


def analyse_step(step: str, opaque_star: bool = False, cued: bool = False, i_unknown: bool = False,
                 functions: frozenset = frozenset()) -> StepMath:
    """All links (checked where possible, SymPy ones left pending), computations and
    numbers mentioned in one step. `cued`: the step before ended on an equation cue
    ("Matching coefficients, we get" and then a display of equations). `i_unknown`: the
    solution names i as an unknown (names_i), so i is no imaginary unit anywhere in it.
    `functions`: letters the question or solution declares functions (declared_functions)."""
    out = StepMath()
    text = step
    if len(text) > MAX_STEP_CHARS:
        text = text[:MAX_STEP_CHARS]
        out.notes.append(f"note: only the first {MAX_STEP_CHARS} characters were checked for equations")
    text = normalize(text)
    # braces only: "a) first case" is a normal list item, an odd "{" is broken LaTeX
    out.unbalanced = text.count("{") != text.count("}")
    annotations = []
    if "<<" in text:
        parts = []
        last = 0
        for m in re.finditer(r"<<([^<>]{0,400})>>", text):
            parts.append(text[last : m.start()])
            annotations.append((m.group(1), text[m.end() : m.end() + 40]))
            last = m.end()
        parts.append(text[last:])
        text = "".join(parts)
    toks = tokenize(text, opaque_star, functions)
    out.mentions = literal_values(toks)
    seen: set[tuple[str, str]] = set()
    rounding = bool(ROUNDING_CUE.search(text))
    # an equation cue counts for the equalities after it in the same clause (per chain, below)
    cues = ([0] if cued else []) + [m.end() for m in EQUATION_CUE.finditer(text)]
    from . import algebra

    # (`p + i = 1.10, … i = .05`: a step that gives i a value uses it as an unknown, not √−1)
    algebra.COMPLEX["on"] = bool(_COMPLEX_CUE.search(text)) and not i_unknown and not _I_VALUE_RE.search(text)
    no_solution = bool(NO_SOLUTION_CUE.search(text))
    scale_words = sorted({w.lower() for w in _SCALE_WORD_RE.findall(text)})
    scales = {_SCALE_WORDS[w] for w in scale_words}
    moduli = sorted({int(g) for m in _MODULUS_RE.finditer(text) for g in m.groups() if g and 2 < int(g) < 10**12})  # mod 2: half of all slips would pass
    for spans, seps in _chains(toks):
        if _list_equality(spans):
            continue
        start = spans[0].toks[0].start if spans and spans[0].toks else 0
        first_new = len(out.links)
        _links_from_chain(text, spans, seps, out, seen, rounding, (_cued(text, cues, start), no_solution, False, _identity_cue(text, start)))
        if moduli:
            for link in out.links[first_new:]:
                if link.kind == "arith" and link.status == "mismatch" and _congruent(link.lhs.value, link.rhs.value, moduli):
                    # `50^{-1} = 24` next to `\pmod{1199}`: an equality of residues (50 · 24 = 1200 ≡ 1)
                    link.status, link.note = "ok", "ok: holds modulo " + ", ".join(map(str, moduli))
        if scales:
            for link in out.links[first_new:]:
                if (link.kind == "arith" and link.status == "mismatch" and link.lhs.value and link.rhs.value
                        and (link.rhs.value / link.lhs.value in scales or link.lhs.value / link.rhs.value in scales)):
                    # "losing 5 thousand dollars a day, so 5 * 3 = $15,000": one side counts in thousands
                    link.status, link.note = "ok", "ok: one side counts in the step's " + " / ".join(scale_words)
        if no_solution and spans[-1].toks:
            rest = _sentence_rest(text, spans[-1].toks[-1].end)
            for link in out.links[first_new:]:
                if link.kind == "arith" and link.status in ("mismatch", "symbolic") and _shown_false(link, rest):
                    link.status, link.note = "unchecked", "unchecked: the step shows it false on purpose"
    for body, after in annotations:
        _annotation_links(body, after, out, seen, rounding)
    if _plain_prose(text):
        _unit_links(text, toks, out, rounding)
    if _VERBAL_OP_RE.search(text):
        _verbal_links(text, out, rounding)
    if _UNITS_DIGIT_CUE.search(text):
        _units_digit_links(out)
    if "\\equiv" in text or "≡" in text:
        _congruence_links(text, toks, out)
    return out


# a number written with a scale word ("5 thousand dollars", "2.5 million"): the step may count in those units
_SCALE_WORDS = {"thousand": 1000, "million": 10**6, "billion": 10**9}
_SCALE_WORD_RE = re.compile(r"(?<=\d )(thousand|million|billion)\b", re.IGNORECASE)

# a modulus the step works in: `\pmod{1199}`, `\bmod 7`, `\mod{9}`, "modulo 13", "(mod 5)"
_MODULUS_RE = re.compile(r"\\pmod\s*\{?\s*(\d+)|\\b?mod\s*\{?\s*(\d+)|\bmodulo\s+\$?(\d+)|\(mod\s*(\d+)\)")


def _congruence_links(text: str, toks: list[Tok], out: StepMath) -> None:
    """`2^{10} = 1024 \\equiv 3 \\pmod 7`: a congruence between two closed numbers, checked modulo the modulus the
    step names (a step that names none, or sides with unknowns, are left alone: the modulus may be the question's)."""
    moduli = sorted({int(g) for m in _MODULUS_RE.finditer(text) for g in m.groups() if g and 2 <= int(g) < 10**12})
    if not moduli or _SUPPOSED_RE.search(text):
        return
    for i, t in enumerate(toks):
        if t.text not in ("\\equiv", "≡"):
            continue
        left, right = _congruence_side(toks, i, -1), _congruence_side(toks, i, 1)
        residues = [_residues(text, side, moduli) for side in (left, right)]
        if None in residues:
            continue
        (lhs, a), (rhs, b) = residues
        hits = [m for m, x, y in zip(moduli, a, b) if x == y]
        status = "ok" if hits else "mismatch"
        m = hits[0] if hits else moduli[0]
        note = None if hits else f"modulo {m} the left side leaves {a[0]}, the right side {b[0]}"
        out.congruences.append(Link(lhs, rhs, False, status, note, modulus=m))


# a congruence supposed, wanted or refuted rather than stated ("suppose … then 2^{20} ≡ 1 (mod 125)")
_SUPPOSED_RE = re.compile(r"suppos|assum|contradict|\bif\b|\bwhether\b|\bwould\b|\bmust\b|\bneed|\bwant|\bseek|\bor\b",
                          re.IGNORECASE)
_MOD_CMDS = ("\\pmod", "\\mod", "\\bmod")


def _congruence_side(toks: list[Tok], i: int, step: int) -> list[Tok]:
    """The operand written next to the congruence sign at toks[i], up to the next relation, word or modulus.
    On the left, a modulus is passed over: in `109 \\pmod{94} \\equiv 15` the left side is 109."""
    run: list[Tok] = []
    j = i + step
    while 0 <= j < len(toks):
        t = toks[j]
        if step < 0 and t.text in _MOD_CMDS and run:
            run, j = [], j - 1  # what was read is the modulus; the operand lies before its command
            continue
        if t.kind not in MATH_KINDS or t.kind == "OPAQUE":
            break
        if t.kind == "LP" and step > 0 and j + 1 < len(toks) and toks[j + 1].kind in ("WORD", "OPAQUE"):
            break  # "2 (\\text{mod} 7)", "2 (\\bmod 7)"
        run.append(t)
        j += step
    return run if step > 0 else run[::-1]


def _residues(text: str, toks: list[Tok], moduli: list[int]) -> Optional[tuple[Side, list]]:
    """The side and its residue modulo each modulus, or None when it is not a closed integer expression (or too
    large to write out: a power of whole numbers, `2^{2005}`, is reduced with modular exponentiation)."""
    if not toks or _trim_brackets(toks, "both") is not toks:
        return None
    try:
        node = parse_span(toks)
        if has_var(node):
            return None
        try:
            v = eval_exact(node)
        except TooLarge:
            if not (node[0] == "bin" and node[1] == "^" and node[2][0] == "num" and node[3][0] == "num"):
                return None
            base, exp = node[2][1], node[3][1]
            if base.denominator != 1 or exp.denominator != 1 or exp < 0 or exp > 10**12:
                return None
            return Side(_span_text(text, toks)), [pow(int(base), int(exp), m) for m in moduli]
    except (_ParseError, _CutOff, _FreeSymbol, _NeedsSymbolic, ZeroDivisionError, RecursionError, TooLarge):
        return None
    if v.denominator != 1:
        return None
    side = Side(_span_text(text, toks))
    side.value = v
    return side, [int(v) % m for m in moduli]


def _congruent(a, b, moduli: list[int]) -> bool:
    """a ≡ b modulo one of `moduli` (a, b rational with denominators prime to it: `50^{-1}` is a residue)."""
    if a is None or b is None:
        return False
    d = Fraction(a) - Fraction(b)
    return any(d.numerator % m == 0 and math.gcd(d.denominator, m) == 1 for m in moduli)


# the rest of a sentence after an equation declares it false: a value tested and rejected
_DECLARED_FALSE_RE = re.compile(
    r"\bnot true\b|\bisn't true\b|\bis false\b|\bextraneous\b|\bnot (?:a )?(?:solution|root)s?\b|"
    r"\bnot satisfied\b|\bdoes not hold\b|\bdoesn't hold\b", re.IGNORECASE)
_CONTRADICTION_RE = re.compile(r"contradict|impossible|absurd", re.IGNORECASE)
_NUMBER_EQUATION_RE = re.compile(r"(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)")


def _shown_false(link: "Link", rest: str) -> bool:
    """Does the sentence go on to say the equality is false? "1 = \\sqrt{11-2} + 4, which is not true"
    declares it so; "…, which simplifies to 6 = 14, contradiction" states its two values as the
    contradiction. A contradiction with something else ("p ≥ 1 · 54 = 45, a contradiction") excuses nothing."""
    if _DECLARED_FALSE_RE.search(rest):
        return True
    if link.lhs.value is None or link.rhs.value is None or not _CONTRADICTION_RE.search(rest):
        return False
    return any(Fraction(a) == link.lhs.value and Fraction(b) == link.rhs.value for a, b in _NUMBER_EQUATION_RE.findall(rest))


def _sentence_rest(text: str, end: int) -> str:
    """The text after `end` up to the end of its sentence (at most 160 characters)."""
    rest = text[end : end + 160]
    m = re.search(r"\.\s+[A-Z]|\n\s*\n", rest)
    return rest[: m.start()] if m else rest


# where a clause ends: "we need n to be a multiple of 3, so the cube is (3n)^3 = 27n^3" derives the
# equality after "so"; the cue "need" before it speaks of another clause
_CLAUSE_BREAK = re.compile(r"[.;!?](?:\s|$)|\b(?:so|thus|hence|therefore)\b", re.IGNORECASE)


# a step that ends by announcing equations shown in the next one: "Matching coefficients, we get",
# "Substituting, we have:" (narrower than EQUATION_CUE: "the remainder is then" announces a rewrite)
_LEAD_CUE = re.compile(
    r"\b(?:coefficients|equat\w*|system|solv\w*|setting|substitut\w*|plugging)\b[^.;!?$]{0,40}"
    r"(?:we (?:get|have|obtain|find)|gives?|yields?)\s*:?\s*$",
    re.IGNORECASE,
)


def ends_on_cue(step: str) -> bool:
    """The step ends by announcing equations, so the next step's display shows equations, not identities."""
    return bool(_LEAD_CUE.search(step[-120:]))


def _cued(text: str, cues: list[int], start: int) -> bool:
    """An equation cue (EQUATION_CUE) ends before `start`, with no clause break between them."""
    before = [end for end in cues if end <= start]
    return bool(before) and not _CLAUSE_BREAK.search(text, before[-1], start)


# "7 · 3 = 1" where the step tracks only the last digit of a product or power
_UNITS_DIGIT_CUE = re.compile(r"units?[- ]digit|ones[- ]digit|last digit|unit's digit", re.IGNORECASE)
_DIGIT_BASE = 10


def _units_digit_links(out: StepMath) -> None:
    """In a step about units digits, `a = d` with d a single digit equal to a's last digit is
    the units-digit arithmetic the step announces, not a slip (a wrong last digit still is)."""
    for link in out.links:
        if link.status != "mismatch" or link.rhs.single_num is None:
            continue
        L, R = link.lhs.value, link.rhs.value
        if L is None or R is None or Fraction(L).denominator != 1 or Fraction(R).denominator != 1:
            continue
        if 0 <= R < _DIGIT_BASE and (L - R) % _DIGIT_BASE == 0:
            link.status, link.note = "unchecked", "unchecked: a units digit"
            for comp in out.computations:
                if comp.text == link.text:
                    comp.ok = None


_LIST_ITEM_END = {"NUM", "RB", "RP", "VAR", "CONST"}
_LIST_ITEM_START = {"NUM", "CMD", "LB", "LP", "VAR", "CONST"}


def _list_equality(spans: list[Span]) -> bool:
    """Is the chain the middle of a list equated to a list ("2/6, 2/8 = 1/3, 1/4": element-wise,
    so 2/8 = 1/3 is not meant)? Both ends must touch a comma with a formula on its other side."""
    first, last = spans[0], spans[-1]

    def comma(t: Optional[Tok]) -> bool:
        return t is not None and t.kind == "PUNCT" and t.text == ","

    return (
        comma(first.before) and first.before2 is not None and first.before2.kind in _LIST_ITEM_END
        and comma(last.after) and last.after2 is not None and last.after2.kind in _LIST_ITEM_START
    )


def _identity_cue(text: str, start: int) -> bool:
    """Does the sentence before a chain announce a rewrite (IDENTITY_CUE) and no equation
    (EQUATION_CUE, "equal")? ("Setting the expansion equal to 5, we get ..." stays an equation.)"""
    before = text[max(0, start - 80) : start]
    cut = max(before.rfind(". "), before.rfind(".$"), before.rfind("\n"))
    before = before[cut + 1 :]
    # any equation cue in the same sentence ("Setting the factored form equal") wins; so does an
    # equation written before the chain ("Expanding $f(f(x)) = f(x)$ gives ...": the cue expands an
    # equation) or one that the text right after goes on to solve ("... from both sides")
    if not IDENTITY_CUE.search(before) or EQUATION_CUE.search(before) or "equal" in before.lower() or "=" in before:
        return False
    return not _SOLVED_AFTER.search(text[start : start + 300])


_SOLVED_AFTER = re.compile(r"both sides|solv|\\implies|\\Rightarrow", re.IGNORECASE)


def _plain_prose(text: str) -> bool:
    """No LaTeX, and every "$" is a currency sign ("$30/painting x 4 paintings = $120"): the
    word-problem prose `_unit_links` reads. A "$" that opens or closes a formula ("$x$", "$3+4=7$.")
    keeps the step out."""
    if "\\" in text or _MATH_PAIR.search(text):
        return False
    return all(_CURRENCY_AFTER.match(text, m.end()) for m in re.finditer(r"\$", text))


_UNIT_OPS = {"*": "*", "x": "*", "×": "*", "/": "/", "÷": "/", "+": "+", "-": "-", "−": "-", "–": "-"}  # noqa: RUF001
_UNIT_STOP = CONNECTIVES_LEFT | FRACTION_WORDS | LABEL_WORDS | {"of", "per", "is", "are", "was", "and", "or", "then", "so"}


def _unit_links(text: str, toks: list[Tok], out: StepMath, rounding: bool) -> None:
    """Word problems write units between the numbers: `30 snakes * 3 birds/snake = 90 birds`,
    `97 – 12 = 85 kilograms`. The chain parser stops at words (on purpose: "half of 48 = 24");
    here a result with no link yet is read back as NUM (unit words) OP NUM (unit words) ... and
    checked only when everything is unambiguous: plain units (no connective such as "of",
    "times", "half"), no mixed numbers (`1 1/2`), no number glued to a letter (`2S`, `5A`), no
    clock times or leading zeros, and a result that ends the expression (not `= 3/4`, `= 16 + 20`)."""
    checked = {l.rhs.single_num.start for l in out.links if l.rhs.single_num is not None}
    checked |= {l.lhs.single_num.start for l in out.links if l.lhs.single_num is not None}
    for m in re.finditer(r"=\s*\$?\s*(\d[\d,]*(?:\.\d+)?)(?=\s+[a-zA-Z]|[.,;!?]?\s*$|[.,;!?]\s|/[a-zA-Z])", text):
        if m.start(1) in checked or _LEADING_ZERO.fullmatch(m.group(1)):
            continue
        after = text[m.end(1) : m.end(1) + 12].strip().lower()
        if after.startswith(("and ", "r ", "remainder", "%", "percent")):
            continue
        rest = text[m.end(1) : m.end(1) + 80]
        if re.match(r"\s*(?:[a-zA-Z][\w'/-]*\s+){0,2}[-+*/×÷−–]\s*\$?\d", rest) or re.match(
            r"(?:\s+[a-zA-Z][\w'/-]*){0,4}\s+[-+*/×÷−–]\s*[A-Za-z(]", rest
        ):
            continue  # "= 240 seconds + 30 seconds", "= 8 bags of leaves / Y": a partial result, the chain goes on
        seq: list[tuple[str, str]] = []  # read right to left
        words = 0
        valid = True
        for piece in reversed(list(_UNIT_PIECES.finditer(text[: m.start()]))):
            g = piece.group()
            a0, b0 = piece.start(), piece.end()
            if piece.lastgroup == "op" and g == "/" and a0 > 0 and text[a0 - 1].isalpha():
                valid = False  # "minutes/100 meters": a rate written with a number, not a division
                break
            if piece.lastgroup == "op" and g == "/" and b0 < len(text) and text[b0].isalpha() and words > 0:
                continue  # "$30/small painting x 4": "per small painting", a unit, not a division
            if piece.lastgroup == "num":
                glued = (b0 < len(text) and text[b0].isalpha()) or (a0 > 0 and (text[a0 - 1].isalpha() or text[a0 - 1] in ":"))
                if glued or (seq and seq[-1][0] == "NUM") or _LEADING_ZERO.fullmatch(g.lstrip("$")):
                    valid = not seq or seq[-1][0] != "NUM"  # "1 1/2": a mixed number, ambiguous
                    if glued:
                        valid = False
                    break
                seq.append(("NUM", g.lstrip("$").replace(",", "")))
                words = 0
            elif piece.lastgroup == "op":
                if g == "x" and not (a0 > 0 and text[a0 - 1] == " " and b0 < len(text) and text[b0] == " "):
                    break
                if not seq or seq[-1][0] != "NUM":
                    valid = False  # two operators in a row ("15 * / 3/5"): not a clean expression
                    break
                seq.append(("OP", _UNIT_OPS[g]))
            elif piece.lastgroup == "word":
                low = g.lower().split("/")[0]
                if seq and seq[-1][0] == "NUM":
                    # the word right before a number: the expression starts there ("Chad has 6 + ...",
                    # "there are 50 fish - 26 fish", "a total of 4 houses * 3 gnomes"), unless the word
                    # ties the number to something before it ("half of 48", "Week 1 + Week 2", "times 3")
                    if low in _UNIT_START_OK or (low == "of" and _of_starts(text[:a0])):
                        break
                    if low in _UNIT_STOP:
                        valid = False
                    break
                # (read right to left) a unit of the number on its left: "30 snakes *", "= 90 birds",
                # "4 hours of practice", "5 weeks", "$900 per iPad" (label words and "of"/"per" are
                # harmless after a number; connectives such as "times", "half", "more" are not).
                # At most two plain words: "29 + 24 decorations already up = 83" is no unit.
                if low in _UNIT_STOP and low not in _UNIT_INNER_OK:
                    valid = False
                    break
                words += low not in ("of", "per")
                if words > 2:
                    valid = False
                    break
            else:
                if g == "$" or g == "–":
                    continue
                if seq and seq[-1][0] == "NUM" and g in ".,;:!?(":
                    break
                valid = False
                break
        while seq and seq[-1][0] == "OP":
            seq.pop()
        if not valid or sum(1 for kind, _ in seq if kind == "OP") < 1:
            continue
        seq.reverse()
        try:
            # a tight fraction ("1/4 cup") is one quantity: brackets keep "2 cups / 1/4 cup" a division by 1/4
            expr = []
            for kind, v in seq:
                if kind == "OP":
                    expr.append(Tok("OP", v, 0, 0, v))
                elif "/" in v:
                    a1, b1 = v.split("/")
                    expr += [Tok("LP", "(", 0, 0), Tok("NUM", a1, 0, 0, Fraction(a1)), Tok("OP", "/", 0, 0, "/"),
                             Tok("NUM", b1, 0, 0, Fraction(b1)), Tok("RP", ")", 0, 0)]
                elif v.endswith("%"):
                    expr.append(Tok("NUM", v, 0, 0, Fraction(v[:-1]) / 100))  # "70% * 90 kids"
                else:
                    expr.append(Tok("NUM", v, 0, 0, Fraction(v)))
            value = eval_exact(parse_span(expr))
        except Exception:  # noqa: BLE001 - not an expression after all
            continue
        res_text = m.group(1)
        res = _num_token(res_text, m.start(1), m.end(1))
        if res.kind != "NUM":
            continue
        lhs = Side(" ".join(v for _, v in seq), value=value, operands=[abs(Fraction(v.rstrip("%"))) / (100 if v.endswith("%") else 1) for k2, v in seq if k2 == "NUM" and "/" not in v],
                   ops=frozenset(v for k2, v in seq if k2 == "OP"), has_pct=any(v.endswith("%") for _, v in seq))
        rhs = Side(res_text, value=res.value, single_num=res)
        # "= 250 cents" for $2.50, "* 100% = 14.28" for 0.1428: the percent rules of close_enough
        rhs.per_hundred = re.match(r"(?:cents?|percent)\b", after) is not None
        good = close_enough(lhs, rhs, value, res.value, False, rounding=rounding)
        out.links.append(Link(lhs, rhs, False, "ok" if good else "mismatch", None, "units", rounding=rounding))
        out.computations.append(Computation(lhs.operands, lhs.ops, res.value, f"{lhs.text} = {res_text}", result_text=res_text, ok=good))


# Arithmetic written in words, as models write it in prose and in long chains of thought: "12 minus 5 is 7",
# "3 times $4 equals $12", "60 divided by 4 = 15", "the sum of 3 and 4 is 7". The chain parser stops at words on
# purpose ("half of 48 = 24" is incomplete), so these are read here, one operation at a time.
_VERBAL_OP_RE = re.compile(r"\b(?:plus|minus|times|multiplied by|divided by|of|between|twice|double|triple|thrice)\s", re.IGNORECASE)


def _vnum(name: str) -> str:
    return rf"\$?(?P<{name}>\d{{1,3}}(?:,\d{{3}})+(?!\d)|\d+(?:\.\d+)?|\.\d+)(?P<{name}pct>%?)"


_VREL = r",?\s+(?:is|are|equals|=|makes|gives(?: us)?|which is|that is|that's|comes to)\s+(?P<approx>(?:about|approximately|roughly|around)\s+)?"
# the result ends the expression: not "is 24-4=20", "is 24 minus 4 is 20", "is 3x", "is 7/2"
_VRESULT = _vnum("r") + r"(?![\d,.]\d|[:/\w^_{(]|\s*[-+*/×÷−]\s*[\d($.]|\s+(?:plus|minus|times|divided|multiplied)\b)"
_VERBAL_BINARY_RE = re.compile(
    r"(?<![\w.,:/^_{\\$])" + _vnum("a") + r"(?P<awords>(?:\s+[a-zA-Z]+){0,2}?),?\s+"  # "12 apples minus ..."
    r"(?P<op>plus|minus|times|multiplied by|divided by)\s+" + _vnum("b") + r"(?P<bwords>(?:\s+[a-zA-Z]+){0,2}?)" + _VREL + _VRESULT,
    re.IGNORECASE)
_VERBAL_NAMED_RE = re.compile(
    r"\b(?P<op>sum|product|difference)\s+(?:of|between)\s+" + _vnum("a") + r"\s+and\s+" + _vnum("b") + _VREL + _VRESULT,
    re.IGNORECASE)
# "half of 30 is 15", "twice 7 is 14", "20 percent of 50 is 10", "3/4 of 40 is 30" (with `=` the chain parser reads
# "20% of 50" and "3/4 of 40", not "half of 48", whose "48 = 24" it skips as incomplete)
_PART_WORDS = {"half": Fraction(1, 2), "third": Fraction(1, 3), "quarter": Fraction(1, 4), "fourth": Fraction(1, 4),
               "fifth": Fraction(1, 5), "tenth": Fraction(1, 10), "twice": Fraction(2), "double": Fraction(2),
               "triple": Fraction(3), "thrice": Fraction(3)}
_VERBAL_PART_RE = re.compile(
    r"(?<![\w.,/])(?:(?P<part>half|third|quarter|fourth|fifth|tenth)\s+of|(?P<times>twice|double|triple|thrice)"
    r"|(?P<p>\d+(?:\.\d+)?)\s*(?:%|percent)\s+of|(?P<num>\d+)/(?P<den>\d+)\s+of)\s+(?:(?:the|his|her|their|its)\s+)?"
    + _vnum("b") + r"(?P<bwords>(?:\s+[a-zA-Z]+){0,2}?)" + _VREL + _VRESULT,
    re.IGNORECASE)
_VERBAL_OPS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/", "sum": "+", "product": "*",
               "difference": "-"}
# what makes a number part of a longer expression: "5 plus 3 times 4", "twice 6 plus 1", "Week 3 times 2"
_VERBAL_BEFORE_STOP = re.compile(r"(?:\b(?:plus|minus|times|by|than|twice|half|double|triple)|[-+*/×÷−–(^])\s*$", re.IGNORECASE)
# ... or a unit word that is no unit: "3 more than 4", "20 percent of", "12 when divided by 4" (the prose reader's
# stop words, but "per" may stand in a unit: "12 dollars per hour times 3")
_VERBAL_WORD_STOP = (_UNIT_STOP - {"per"}) | {"the", "a", "an", "to", "that", "which", "percent", "when", "if"}
_MODULAR_RE = re.compile(r"remainder|modul|\bmod\b", re.IGNORECASE)
# units one converts between: in "half of 3 hours is 90 minutes" the words carry a conversion the numbers do not
_UNIT_FAMILIES = {u: fam for fam, units in {
    "time": ("second", "sec", "minute", "min", "hour", "hr", "day", "week", "month", "year"),
    "money": ("cent", "dollar", "penny", "pennies", "nickel", "dime", "quarter"),
    "length": ("inch", "inches", "foot", "feet", "ft", "yard", "mile", "mm", "cm", "meter", "metre", "km"),
    "mass": ("ounce", "oz", "pound", "lb", "gram", "kg", "kilogram", "ton"),
    "volume": ("ml", "liter", "litre", "gallon", "quart", "pint", "cup", "teaspoon", "tablespoon"),
}.items() for u in units}
_UNIT_WORD_RE = re.compile(r"\b(" + "|".join(sorted(_UNIT_FAMILIES, key=len, reverse=True)) + r")(?:e?s)?\b", re.IGNORECASE)


def _converts_units(text: str, after_result: str) -> bool:
    """Is the result written in a unit whose family the step names more than one unit of (hours and minutes)?"""
    m = re.match(r"\s*([a-zA-Z]+)", after_result)
    unit = _UNIT_WORD_RE.fullmatch(m.group(1)) if m is not None else None
    if unit is None:
        return False
    family = _UNIT_FAMILIES[unit.group(1).lower()]
    named = {u.group(1).lower() for u in _UNIT_WORD_RE.finditer(text) if _UNIT_FAMILIES[u.group(1).lower()] == family}
    if family == "money" and "$" in text:
        named.add("dollar")  # "$2.50 minus $2.24 is 26 cents"
    return len(named) > 1


def _verbal_value(m: re.Match, name: str) -> Optional[Fraction]:
    tok = _num_token(m.group(name), 0, len(m.group(name)))
    if tok.kind != "NUM":
        return None  # longer than any quantity (MAX_NUM_CHARS)
    return tok.value / 100 if m.group(name + "pct") else tok.value


def _verbal_operations(text: str) -> list[re.Match]:
    """The `a op b (is|equals|...) c` of a step that nothing around makes part of a longer expression."""
    found, pos = [], 0
    while (m := _VERBAL_BINARY_RE.search(text, pos)) is not None:
        pos = m.start("r")  # "3 times 4 is 12, minus 5 is 7": the result starts the next one
        before = text[max(0, m.start() - 40) : m.start()]
        last = re.search(r"([a-zA-Z]+)\s*$", before)
        word = last.group(1).lower() if last is not None else ""
        if (_VERBAL_BEFORE_STOP.search(before) or word in LABEL_WORDS
                or (word == "of" and not _of_starts(before[: last.start()]))  # "half of 12 minus 5", not "a total of 12 plus 4"
                or any(w.lower() in _VERBAL_WORD_STOP for w in (m.group("awords") + m.group("bwords")).split())):
            continue
        found.append(m)
    for m in _VERBAL_PART_RE.finditer(text):
        before = text[max(0, m.start() - 40) : m.start()]
        if not (_VERBAL_BEFORE_STOP.search(before) or re.search(r"\band (?:a|one) $", before)  # "one and a half of"
                or any(w.lower() in _VERBAL_WORD_STOP for w in m.group("bwords").split())):
            found.append(m)
    return found + list(_VERBAL_NAMED_RE.finditer(text))


def _verbal_operation(m: re.Match) -> Optional[tuple[str, Fraction, Fraction, Fraction, str]]:
    """(op, a, b, a op b, the operation as shown) of a match of _verbal_operations, None when it cannot be read."""
    b = _verbal_value(m, "b")
    b_text = m.group("b") + m.group("bpct")
    if "part" in m.re.groupindex:  # a part of b: "half of 30", "20% of 50", "3/4 of 40", "twice 7"
        g = m.groupdict()
        if g["part"] or g["times"]:
            word = (g["part"] or g["times"]).lower()
            a, shown = _PART_WORDS[word], f"{word} of {b_text}" if g["part"] else f"{word} {b_text}"
        elif g["p"]:
            a, shown = Fraction(g["p"]) / 100, f"{g['p']}% of {b_text}"
        elif int(g["den"]):
            a, shown = Fraction(int(g["num"]), int(g["den"])), f"{g['num']}/{g['den']} of {b_text}"
        else:
            return None
        return None if b is None else ("*", a, b, a * b, shown)
    word = m.group("op").lower()
    op = _VERBAL_OPS[word]
    a = _verbal_value(m, "a")
    if a is None or b is None or (op == "/" and b == 0):
        return None
    a_text = m.group("a") + m.group("apct")
    shown = f"{word} of {a_text} and {b_text}" if word in ("sum", "product", "difference") else f"{a_text} {word} {b_text}"
    value = a + b if op == "+" else a * b if op == "*" else a / b if op == "/" else abs(a - b) if word == "difference" else a - b
    return op, a, b, value, shown


def _verbal_links(text: str, out: StepMath, rounding: bool) -> None:
    """Links and computations of arithmetic written in words, checked like written ones. A result followed
    by "?" is a question the step asks, not a claim."""
    checked = {l.rhs.single_num.start for l in out.links if l.rhs.single_num is not None}
    for m in _verbal_operations(text):
        after = text[m.end() : m.end() + 30]
        if m.start("r") in checked or after.lstrip().startswith("?") or _converts_units(text, after):
            continue
        operation = _verbal_operation(m)
        res = _num_token(m.group("r"), m.start("r"), m.end("r"))
        if operation is None or res.kind != "NUM":
            continue
        op, a, b, value, shown = operation
        if m.group("rpct"):
            res.pct, res.value = True, res.value / 100
        approx = m.group("approx") is not None  # "about 8.57"
        lhs = Side(shown, value=value, operands=[abs(a), abs(b)], ops=frozenset(op), has_pct="%" in shown)
        rhs = Side(m.group("r") + m.group("rpct"), value=res.value, single_num=res)
        good = close_enough(lhs, rhs, value, res.value, approx, rounding=rounding or approx)
        if not good and _MODULAR_RE.search(text):
            if not (op == "/" and a.denominator == b.denominator == 1 and res.value == a % b):
                continue  # "double 7 gives 2 modulo 12": arithmetic of residues, whose modulus the words may not name
            good = True  # "the remainder of 111 divided by 4 is 3"
        out.links.append(Link(lhs, rhs, approx, "ok" if good else "mismatch", None, "words", rounding=rounding))
        out.computations.append(Computation(lhs.operands, lhs.ops, res.value, f"{lhs.text} = {rhs.text}", result_text=m.group("r"), ok=good))
        checked.add(res.start)


# before the first number of a prose computation these words end the sentence part that names it
_UNIT_INNER_OK = LABEL_WORDS | {"of", "per", "each"}
_UNIT_START_OK = {"is", "are", "was", "were", "then", "so", "be", "makes", "make", "gives", "equals"}


def _of_starts(before: str) -> bool:
    """"a total of 4 houses * 3 gnomes": "of" after a noun starts the expression; after a number,
    a fraction word or a percentage ("half of 48", "2/3 of 90", "20% of 50") it is an operator."""
    m = re.search(r"(\S+)\s*$", before)
    if m is None:
        return False
    w = m.group(1).lower().strip(",;:")
    return w.isalpha() and w not in FRACTION_WORDS and w not in CONNECTIVES_LEFT and w not in _NUMBER_WORDS


_NUMBER_WORDS = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "dozen",
    "dozens", "hundred", "hundreds", "thousand", "thousands", "million", "some", "all", "none", "each", "any",
}

_LEADING_ZERO = re.compile(r"0\d+")
_UNIT_PIECES = re.compile(
    r"(?P<num>\$?(?:\d+/\d+(?![\d.])|\d[\d,]*(?:\.\d+)?|\.\d+)%?)|(?P<op>[-+*/×÷−–]|(?<=\s)x(?=\s))|"
    r"(?P<word>[a-zA-Z]+(?:[-'][a-zA-Z]+)*(?:/[a-zA-Z]+)?)|(?P<other>\S)"
)


_PER_HUNDRED_WORDS = ("cents", "cent", "percent")
_MATH_CLOSERS = ("$", "}")


def _per_hundred_after(span: Span) -> bool:
    """Is the side a number of cents or percent? ("26 cents"; "$\\boxed{20}$ percent": the
    word may follow the closing "$" of the formula.)"""
    after = span.after
    if after is not None and after.kind == "PUNCT" and after.text in _MATH_CLOSERS:
        after = span.after2
    return after is not None and after.kind == "WORD" and after.value in _PER_HUNDRED_WORDS


def _links_from_chain(text, spans: list[Span], seps: list[str], out: StepMath, seen, rounding: bool = False, eq_ctx: bool = False) -> None:
    sides: list[Optional[tuple[Side, list[Tok], Optional[str]]]] = []
    tied_first: Optional[Span] = None  # the first side follows a connective ("at 3*2 = 6"): see _tied_slip
    for k, sp in enumerate(spans):
        if not sp.toks:
            sides.append(None)
            continue
        toks = _trim_brackets(sp.toks, "tail" if k == 0 else ("head" if k == len(spans) - 1 else "both"))
        if k not in (0, len(spans) - 1) and toks is not sp.toks:
            toks = []  # an unmatched bracket in the middle of a chain: not a quantity
        if not toks:
            sides.append(None)
            continue
        trimmed_left = toks[0] is not sp.toks[0]
        sub = Span(
            toks,
            sp.before if not trimmed_left else None,
            sp.after if toks[-1] is sp.toks[-1] else None,
            (sp.op_before_words and not trimmed_left) or (trimmed_left and toks[0].kind == "OP"),
            sp.before2 if not trimmed_left else None,
            sp.after2 if toks[-1] is sp.toks[-1] else None,
        )
        left_ok = _complete_left(sub)
        if k == 0 and not left_ok and not trimmed_left and _tied_by_connective(sub):
            tied_first = sub
        if trimmed_left:
            at = sp.toks.index(toks[0])
            cut = sp.toks[at - 1]
            if cut.kind == "RB" and toks[0].kind in ("LB", "NUM") and cut.end == toks[0].start:
                left_ok = False  # `\dfrac{54\text{ ft}^2}{9}`, `\frac{[S \cap T]}4`: the second argument of a command
            elif cut.kind == "LP" and at >= 2 and sp.toks[at - 2].kind in ("RP", "NUM") and sp.toks[at - 2].end == cut.start:
                left_ok = False  # `(1/3)(54\pi = 18\pi`: an unclosed factor of a product, not the whole side
        glued = toks[-1] is not sp.toks[-1] and sp.toks[len(toks)].start == toks[-1].end
        right_ok = _complete_right(sub) and not (k == len(spans) - 1 and glued)
        # (the last side lost an unmatched "(" glued to it: "= .05(Number of minutes)" goes on; "= 1.71 (rounded)" does not)
        side = _side(text, toks)
        side.per_hundred = _per_hundred_after(sub)
        reason = _evaluate(side, toks)
        sides.append((side, toks, reason, left_ok, right_ok))
    # a computation: the first side holding an operator, the chain's last literal as result
    # (`\frac{60}{15} = 4` divides as `60/15 = 4` does: Qwen-style solutions write their divisions so)
    formula = next((s for s in sides if s and (s[0].ops or _fraction_of_numbers(s[1])) and s[2] is None and not s[0].free), None)
    last = sides[-1]
    if formula is not None and last is not None and last[0].single_num is not None and last[0] is not formula[0] and last[2] is None:
        res = last[0].value
        if res is not None:
            fside = formula[0]
            ok = None if fside.value is None else close_enough(fside, last[0], fside.value, res, False)
            out.computations.append(
                Computation(fside.operands, fside.ops or frozenset("/"), res, f"{fside.text} = {last[0].text}",
                            fside.has_pi, fside.has_square, last[0].text, ok)
            )
    if (len(sides) == 2 and None not in sides and sides[0][0].single_num is not None and sides[1][0].single_num is not None
            and not sides[0][0].free and not sides[1][0].free and sides[0][0].value != sides[1][0].value):
        return  # `we get |-7-3| = 2(-7)+4, or 10 = -10`: two different numbers set equal show a contradiction; no computation
    prev_link = None
    for k in range(len(sides) - 1):
        a, b = sides[k], sides[k + 1]
        if a is None or b is None:
            prev_link = None
            continue
        lhs, lhs_toks, ra, left_ok, _ = a
        rhs, _, rb, _, right_ok = b
        if k == 0 and tied_first is not None and right_ok and len(sides) == 2 and ra is None and rb is None:
            _tied_slip(text, tied_first, lhs, rhs, lhs_toks, out, seen, rounding)
        if not (left_ok and right_ok):
            prev_link = None
            continue
        key = (lhs.text.replace(" ", ""), rhs.text.replace(" ", ""))
        if key in seen:
            prev_link = None
            continue
        seen.add(key)
        # a later link of a chain `A = B = C` rewrites the same quantity: an identity is meant
        # there even when the step solves an equation (`rx + 2 = (r−2)(x+1) = rx − 2x + r − 2`)
        # so is `A = B` in `A = B = 25`: both sides name the quantity the chain evaluates
        then_closed = k + 2 < len(sides) and sides[k + 2] is not None and not sides[k + 2][0].free
        # (only after a link that was itself a rewrite — a verified identity, a definition `y = ...` or the
        # naming of a new quantity `YZ^2 = (3k)^2 + k^2` — or in a chain that starts from a nonzero number,
        # `1 = 3/8 + 1/4 + x + x = 5/8 + 2x`: in `k = 2t/(s−3) = (3t+1)/(2s+2)` or
        # `|n + 6| = n + 6 = 2 − n` the later links are equations too)
        from_number = (sides[0] is not None and not sides[0][0].free and sides[0][0].single_num is not None
                       and bool(sides[0][0].value))
        # `A = B \ge 0`: the last link rewrites an expression whose sign the chain then states
        bounded = (k == len(sides) - 2 and _inequality_after(spans[-1]) and (lhs.free or bool(lhs.abs_terms))
                   and (rhs.free or bool(rhs.abs_terms)))
        chained = k > 0 and prev_link is not None and (prev_link.status in ("ok", "assign") or from_number
                                                       or _names_quantity(prev_link))
        rewrite = chained or then_closed or bounded
        # `0 = 15t^2 − 800t + 10000 = 3t^2 − 160t + 2000`: rewrites of an equation = 0, which may scale it
        from_zero = (k > 0 and sides[0] is not None and not sides[0][0].free and sides[0][0].single_num is not None
                     and sides[0][0].value == 0)
        if from_zero and not rewrite:
            ctx = (False, eq_ctx[1] if isinstance(eq_ctx, tuple) else False, "zero")
        else:
            ctx = (False, eq_ctx[1], True) if rewrite and isinstance(eq_ctx, tuple) else eq_ctx
        if isinstance(ctx, tuple) and k > 0 and len(ctx) > 3:
            ctx = ctx[:3] + (False,)  # the cue announces the first link; later ones follow the chain rules
        if rewrite and lhs.abs_terms and rhs.abs_terms and seps[k] != "APPROX":
            link = _abs_link(out, lhs, rhs)  # `|x + yi − 5 − i| = |(x − 5) + (y − 1)i| = 5`
        else:
            link = _add_link(out, lhs, rhs, ra, rb, seps[k] == "APPROX", "text", rounding, ctx)
        if (link is not None and link.status == "mismatch" and link.kind == "arith" and prev_link is not None
                and prev_link.status == "ok" and prev_link.rhs is lhs and _carries_rounding(prev_link.lhs, lhs, rhs)):
            # `452 ÷ (1.05)^{14} = 452 ÷ 1.98 = 228.29`: the result is the chain's exact value, not its rounded middle's
            link.status = "ok"
        if link is not None and link.status == "mismatch" and link.kind == "arith" and _running_total(sides, k):
            link.status, link.note = "unchecked", "unchecked: a running total (A = a + b = c, a being A's value)"
        if link is not None:
            link.rewrite = rewrite
            link.closed_only = rewrite and not chained  # only a number or a bound follows (`A = B = c`, `A = B > 0`)
        prev_link = link
        if link is not None and k == 0 and spans[0].toks:
            start = spans[0].toks[0].start
            link.pre = text[max(0, start - 30) : start].lower()
        if link is not None and k == len(sides) - 2 and spans[-1].toks:
            end = spans[-1].toks[-1].end
            link.post = text[end : end + 30].lower()


def _running_total(sides: list, k: int) -> bool:
    """`$3/2 = $1.50 + $3.00 = $4.50`: the middle side starts from the value of the side before it and goes on
    adding, and the chain's next link holds, so the writer keeps a running total rather than equating A with it."""
    if k + 2 >= len(sides) or sides[k + 2] is None:
        return False
    (lhs, _, _, _, _), (mid, mid_toks, _, _, _), (nxt, _, _, _, _) = sides[k], sides[k + 1], sides[k + 2]
    if len(mid_toks) < 3 or mid_toks[0].kind != "NUM" or mid_toks[1].kind != "OP" or mid_toks[1].value not in "+-":
        return False
    if lhs.value is None or mid.value is None or nxt.value is None or mid_toks[0].value != lhs.value:
        return False
    return close_enough(mid, nxt, mid.value, nxt.value, False)


def _tied_by_connective(span: Span) -> bool:
    """Is a connective word right before it ("run at 3*2 = 6", "5 more than 3*2 = 11", "half of 10+2 = 6")
    the only thing that makes the side incomplete (_complete_left)?"""
    b, first = span.before, span.toks[0]
    if span.op_before_words or b is None or b.kind != "WORD" or b.end == first.start:
        return False
    if first.kind in ("OP", "FACT"):
        return False
    b2 = span.before2
    if b.value == "and" and b2 is not None and b2.kind == "NUM":
        return False  # "12 x 1 and 1/4 = 15": a mixed number, whose whole part sits before "and"
    return b.value in CONNECTIVES_LEFT or b.value == "of"


# connectives that take an operand written before them ("divided it by 2 + 1", "5 more than 3*2"): without a
# number before them in the sentence the other operand is unknown ("it") and nothing is checked. After the others
# ("runs at 3*2 = 6 mph", "subtract 2*1 = 2 inches") the expression may also stand alone.
_BINARY_CONNECTIVES = {"times", "plus", "minus", "by", "from", "than", "over", "and", "less", "more", "divided",
                       "multiplied", "through", "of"}
# "by" takes an operand before it after these ("divided it by"); elsewhere it gives an amount ("off his target by
# 120 - 65 = 55", "greater ... by 4000 - 3000 = 1000")
_SCALING_RE = re.compile(r"divid|multipl|split|shar|scal|factor|times", re.IGNORECASE)
# "two thirds", "a half", "one-fifth", "twice": a count (a word or "a") and a part word of _PART_WORDS or its plural
_PARTS_PLURAL = _PART_WORDS | {w + "s": v for w, v in _PART_WORDS.items() if w != "half"} | {"halves": _PART_WORDS["half"]}
_PART_RE = re.compile(r"\b(?:(" + "|".join(NUMBER_WORD_VALUES) + r"|an?)[\s-]+)?(" + "|".join(_PARTS_PLURAL) + r")\b",
                      re.IGNORECASE)
_TIED_NUMBERS = 4  # the numbers (in digits, and in words) nearest before the connective that may be the other operand
_SENTENCE_END_RE = re.compile(r"[.!?](?:\s|$)|\n")


def _words_before(before: str) -> list[Fraction]:
    """The numbers a clause writes in words before an expression: "two thirds", "half", "twice", "five"."""
    out = [_PARTS_PLURAL[m.group(2).lower()] * NUMBER_WORD_VALUES.get((m.group(1) or "").lower(), 1)
           for m in _PART_RE.finditer(before)]
    out += [Fraction(v) for w in re.findall(r"[a-z]+", before.lower()) if (v := NUMBER_WORD_VALUES.get(w))]
    return out[-_TIED_NUMBERS:]


def _tied_readings(toks: list[Tok], L: Fraction, v: Fraction) -> list[Fraction]:
    """v combined with the expression `toks` (value L): v ∘ (E), (E) ∘ v and, by the usual precedence, v ∘ E
    ("half of 48 + 2" is 24 + 2, "2 times 4 + 1" is 9), for ∘ in + − × ÷, and E as a percentage of v."""
    out = [v + L, v - L, L - v, v * L, v * L / 100]
    if L:
        out.append(v / L)
    if v:
        out.append(L / v)
    for op in "+-*/":
        try:
            out.append(eval_exact(parse_span([Tok("NUM", "v", 0, 0, v), Tok("OP", op, 0, 0, op)] + toks)))
        except (ArithmeticError, _ParseError, _FreeSymbol, _NeedsSymbolic, RecursionError):
            continue
    return out


def _tied_slip(text: str, span: Span, lhs: Side, rhs: Side, toks: list[Tok], out: StepMath, seen, rounding: bool) -> None:
    """`she runs at 3*2 = 7 mph`: an expression after a connective may be the second operand of a longer
    computation ("4 boxes at 3*2 = 24", "5 more than 3*2 = 11", "half of 48 + 2 = 26"), so it is not checked on
    its own (_complete_left). It is a slip when no reading gives the result: the expression alone (where the
    connective allows it), or combined (_tied_readings) with one of the numbers the sentence writes before it, in
    digits or in words, or with the product of two of them."""
    if lhs.free or rhs.free or lhs.value is None or rhs.value is None or rhs.single_num is None or not lhs.ops:
        return
    L, R = lhs.value, rhs.value
    if close_enough(lhs, rhs, L, R, False, rounding=rounding):
        return
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text, 0, span.before.start)]
    before = text[ends[-1] if ends else 0 : span.before.end]
    nums = [t.value for t in tokenize(before) if t.kind == "NUM"][-_TIED_NUMBERS:] + _words_before(before)
    binary = span.before.value in _BINARY_CONNECTIVES and not (span.before.value == "by" and not _SCALING_RE.search(before))
    if not nums and binary:
        return  # "she divided it by 2 + 1 = 7": the other operand is not written
    nums += [a * b for i, a in enumerate(nums) for b in nums[i + 1 :]]
    if any(close_enough(lhs, rhs, x, R, False, rounding=rounding) for v in nums for x in _tied_readings(toks, L, v)):
        return
    key = (lhs.text.replace(" ", ""), rhs.text.replace(" ", ""))
    if key in seen:
        return
    seen.add(key)
    link = _add_link(out, lhs, rhs, None, None, False, "text", rounding)  # its guards (degrees, [x]) hold here too
    if link is not None:
        start = span.toks[0].start
        link.pre = text[max(0, start - 30) : start].lower()


def _carries_rounding(first: Side, middle: Side, last: Side) -> bool:
    """In `A = B = c`, is B A with a decimal rounded (_rounded_literal) and c A's value at the digits written?"""
    A = first.value
    if A is None or last.value is None or middle.node is None or not _rounded_literal(middle.node, A):
        return False
    return close_enough(first, last, A, last.value, False)


def _inequality_after(span: Span) -> bool:
    a = span.after
    return a is not None and a.kind == "REL" and a.text in ("<", ">", "\\le", "\\ge", "\\leq", "\\geq", "≤", "≥", "\\lt", "\\gt")


def _names_quantity(link: Link) -> bool:
    """`YZ^2 = (3k)^2 + k^2`, `4n = …`: an equation whose left side is a single term in symbols the
    right side does not hold names a new quantity, like a definition (the chain then rewrites it)."""
    from . import algebra

    if link.status != "equation" or link.lhs.node is None or link.rhs.node is None:
        return False
    named, used = algebra.var_names(link.lhs.node), algebra.var_names(link.rhs.node)
    return algebra.is_monomial(link.lhs.node) and bool(named) and bool(used) and not (named & used)


def _add_link(
    out: StepMath, lhs: Side, rhs: Side, ra, rb, approx: bool, source: str, rounding: bool = False, eq_ctx: bool = False
) -> Optional[Link]:
    reasons = [r for r in (ra, rb) if r]
    if any(r == "skip" for r in reasons):
        return None
    if ("\\circ" in lhs.text) != ("\\circ" in rhs.text):
        # degrees on one side only: a conversion ("\\frac{\\pi}{3} = \\frac{180^\\circ}{\\pi} \\cdot \\frac{\\pi}{3}")
        # or a unit left off, not an equality of plain numbers
        reasons.append("unchecked: degrees on one side only")
    if reasons:
        link = Link(lhs, rhs, approx, "unchecked", reasons[0], source)
        out.links.append(link)
        out.notes.append(f"note: {link.text} not checked ({reasons[0].split(': ', 1)[-1]})")
        return link
    no_solution = isinstance(eq_ctx, tuple) and eq_ctx[1]
    if lhs.free or rhs.free:
        if lhs.node is None or rhs.node is None:
            return None  # `|-3| = x`: a side known only by its value (absolute values of numbers) has no AST to compare
        return _algebra_link(out, lhs, rhs, approx, source, eq_ctx)
    if lhs.sympy_src is not None or rhs.sympy_src is not None:
        link = Link(lhs, rhs, approx, "symbolic", None, source, rounding=rounding)
        out.links.append(link)
        return link
    ok = close_enough(lhs, rhs, lhs.value, rhs.value, approx, rounding=rounding)
    if not ok and no_solution and lhs.single_num is not None and rhs.single_num is not None:
        return None  # "we get 0 = 8, which has no solutions": a contradiction shown on purpose
    if not ok and (lhs.abs_terms or rhs.abs_terms) and isinstance(eq_ctx, tuple) and eq_ctx[0]:
        return None  # "plugging x = -7 back in, |-7-3| = 2(-7)+4": a root tested, and this one rejected
    if not ok and _integer_part(lhs, rhs):
        return None  # `\left[\frac{3 \times 2004 - 4}{10}\right] = 601`: [x] is the greatest (or nearest) integer
    link = Link(lhs, rhs, approx, "ok" if ok else "mismatch", None, source, rounding=rounding)
    out.links.append(link)
    return link


def _abs_link(out: StepMath, lhs: Side, rhs: Side) -> Optional[Link]:
    """A rewrite of a sum of absolute values (algebra.abs_rewrite): checked only when it decides."""
    from . import algebra

    verdict = algebra.abs_rewrite(lhs.abs_terms, rhs.abs_terms, lhs.text, rhs.text)
    if verdict is None:
        return None
    status, note = verdict
    link = Link(lhs, rhs, False, status, note, "text", kind="algebra", tentative=status == "mismatch")
    out.links.append(link)
    return link


_BRACKETED_RE = re.compile(r"^(?:\\left)?\[.*(?:\\right)?\]$", re.DOTALL)


def _integer_part(lhs: Side, rhs: Side) -> bool:
    """One side wholly in square brackets, the other a whole number within 1 of it."""
    for a, b in ((lhs, rhs), (rhs, lhs)):
        if (_BRACKETED_RE.match(a.text.strip()) and a.value is not None and b.value is not None
                and Fraction(b.value).denominator == 1 and abs(a.value - b.value) < 1):
            return True
    return False


def _algebra_link(out: StepMath, lhs: Side, rhs: Side, approx: bool, source: str, eq_ctx: bool = False) -> Optional[Link]:
    """A link with free symbols (see algebra.py): identity checked, equation/assignment recorded."""
    from . import algebra

    if approx:
        return None  # "x ≈ 1.41": an approximation of a solution, nothing to check
    status, kind, note, diff, tentative = algebra.classify(lhs.node, rhs.node, lhs.text, rhs.text, eq_ctx)
    if status == "symbolic":
        try:
            lhs.sympy_src, rhs.sympy_src = to_sympy_source(lhs.node), to_sympy_source(rhs.node)
            status = "symbolic-id"
        except TooLarge as exc:
            status, note = "unchecked", f"unchecked: {exc}"
        except (_ParseError, _FreeSymbol, _NeedsSymbolic, ZeroDivisionError):
            return None
    link = Link(lhs, rhs, approx, status, note, source, kind="algebra", tentative=tentative, diff=diff,
                solving=bool(eq_ctx[0] if isinstance(eq_ctx, tuple) else eq_ctx))
    out.links.append(link)
    if status == "unchecked" and note:
        out.notes.append(f"note: {link.text} not checked ({note.split(': ', 1)[-1]})")
    return link


def _annotation_links(body: str, after: str, out: StepMath, seen, rounding: bool = False) -> None:
    """GSM8K `<<a=b>>v`: check a = b, and that the visible v repeats b."""
    if body.count("=") != 1:
        return
    a, b = body.split("=")
    ta, tb = tokenize(a), tokenize(b)
    if not ta or not tb:
        return
    lhs, rhs = _side(a, ta), _side(b, tb)
    ra, rb = _evaluate(lhs, ta), _evaluate(rhs, tb)
    if rhs.value is not None and lhs.ops and ra is None and not lhs.free:
        ok = None if lhs.value is None else close_enough(lhs, rhs, lhs.value, rhs.value, False)
        out.computations.append(
            Computation(lhs.operands, lhs.ops, rhs.value, f"{lhs.text} = {rhs.text}", lhs.has_pi, lhs.has_square, rhs.text, ok)
        )
        out.mentions.append(abs(rhs.value))
    key = (lhs.text.replace(" ", ""), rhs.text.replace(" ", ""))
    if key not in seen:
        seen.add(key)
        _add_link(out, lhs, rhs, ra, rb, False, "annotation", rounding)
    m = re.match(r"\s*\$?\s*(-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)", after)
    if m and rhs.value is not None and rhs.single_num is not None:
        shown = tokenize(m.group(1))
        vis = _side(m.group(1), shown)
        if _evaluate(vis, shown) is None and vis.value is not None:
            key = (rhs.text.replace(" ", ""), vis.text.replace(" ", ""))
            if key not in seen:
                seen.add(key)
                _add_link(out, rhs, vis, None, None, False, "annotation", rounding)


def numbers_in(text: str) -> list[Tok]:
    """The numeric literals of a text (question numbers for the formula checks)."""
    return [t for t in tokenize(normalize(text[:MAX_STEP_CHARS])) if t.kind == "NUM"]
