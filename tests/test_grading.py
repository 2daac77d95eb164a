"""Tests for hardneg.grading: the Step-DPO eval_math.py protocol and the Math-Verify second opinion."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hardneg import grading
from hardneg.grading import (
    GradeResult,
    GradingConfig,
    answers_equal,
    extract_answer,
    grade,
    grade_batch,
    gsm8k_reference_answer,
    math_reference_answer,
    math_verify_equal,
    normalize_answer,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# ---------------------------------------------------------------------------------------- extraction


def test_nested_boxed_is_brace_counted():
    completion = r"So $x = \boxed{\frac{1}{2}}$, done."
    assert extract_answer(completion) == r"\frac{1}{2}"
    assert extract_answer(r"\boxed{\left\{ 1, \{2\} \right\}}") == r"\left\{ 1, \{2\} \right\}"


def test_last_of_several_boxes_wins():
    completion = r"First try \boxed{3}. Wait, that is wrong; it is \boxed{\dfrac{3}{4}}."
    assert extract_answer(completion) == r"\dfrac{3}{4}"
    assert grade(completion, r"\frac34", GradingConfig(math_verify=False)).correct
    assert not grade(completion, "3", GradingConfig(math_verify=False)).correct


def test_the_answer_is_metamath_style():
    completion = "Janet has 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18 dollars.\nThe answer is: 18"
    assert extract_answer(completion) == "18"
    assert answers_equal(extract_answer(completion), "18")


def test_the_answer_is_takes_the_whole_tail():
    # Protocol strictness kept on purpose: text after the number is part of the answer.
    completion = "The answer is: 18\nQuestion: what is 2+2?"
    assert extract_answer(completion).startswith("18")
    assert not answers_equal(extract_answer(completion), "18")


def test_no_box_falls_back_to_last_number_without_commas():
    assert extract_answer("She pays 12 dollars, then 1,234 more.") == "1234"
    assert extract_answer("It drops to -3.5 degrees") == "-3.5"
    assert extract_answer("no digits here") is None
    assert extract_answer("") is None


def test_extraction_order_final_answer_and_output_block():
    hope = r"Thus \boxed{2}. Final Answer: The final answer is $\frac{3}{5}$. I hope it is correct."
    assert extract_answer(hope) == r"\frac{3}{5}"
    program = "```python\nprint(6*7)\n```\n```output\n42\n```\nwhich is the result 7"
    assert extract_answer(program) == "42"


def test_truncated_or_empty_box_gives_none():
    assert extract_answer(r"The result is \boxed{\frac{1}{2") is None
    assert extract_answer(r"\boxed{}") is None
    with pytest.raises(TypeError, match="completion"):
        extract_answer(None)


def test_boxed_percent_outside_the_braces_is_kept():
    assert extract_answer(r"a rise of \boxed{50}\%.") == r"50\%"
    assert answers_equal(extract_answer(r"a rise of \boxed{50}\%."), "50")


# ------------------------------------------------------------------------------------- references


def test_gsm8k_reference_answer_strips_thousands_separators():
    assert gsm8k_reference_answer("He earns 1,000 + 234 = <<1000+234=1234>>1,234\n#### 1,234") == "1234"
    assert gsm8k_reference_answer("#### -7") == "-7"
    with pytest.raises(ValueError, match="####"):
        gsm8k_reference_answer("no marker 12")


def test_math_reference_answer_is_the_last_box():
    solution = r"So $a=\boxed{2}$ and therefore the sum is $\boxed{\frac{9}{7}}$."
    assert math_reference_answer(solution) == r"\frac{9}{7}"
    with pytest.raises(ValueError, match="boxed"):
        math_reference_answer("no box")


# ---------------------------------------------------------------------------------- normalization


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (r"\dfrac{3}{4}", r"\frac{3}{4}"),
        (r"\tfrac12", r"\frac{1}{2}"),
        (r"\frac1{72}", r"\frac{1}{72}"),
        ("3/4", r"\frac{3}{4}"),
        (r"\sqrt3", r"\sqrt{3}"),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
        (r"\text{Evelyn}", "Evelyn"),
        (r"12\text{ inches}", "12"),
        (r"45^\circ", "45"),
        (r"90^{\circ}", "90"),
        (r"\$18.00", "18"),
        ("2.50", "2.5"),
        (".5", "0.5"),
        (r"x \in [1,2]", "[1,2]"),
        (r"50\%", "50%"),
        ("inf", r"\infty"),
        (r"\mathbf{7}", "{7}"),
        (r"3 \cdot 2^{10}", "3*2^{10}"),
        (r"10,\!000.", "10,000"),
        ("5 \n", "5"),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


# ---------------------------------------------------------------------------------------- equality


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        ("0.5", r"\frac12"),
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        ("-0.75", r"-\frac{3}{4}"),
        ("1,234", "1234"),
        (r"5\text{ cm}", "5"),
        (r"30^\circ", "30"),
        (r"50\%", "50"),
        (r"50\%", "0.5"),
        (r"x \in [1,2]", "[1,2]"),
        (r"(1, \frac{1}{2})", "(1,0.5)"),
        (r"\text{(B)}", "(B)"),
        (r"\mbox{Saturday}", "Saturday"),
        ("y = 2x+1", "2x+1"),
        (r"(-\infty,1)\cup(2,\infty)", r"(2,\infty)\cup(-\infty,1)"),
        (r"\begin{pmatrix} 1 \\ \frac{1}{2} \end{pmatrix}", r"\begin{pmatrix} 1 \\ 0.5 \end{pmatrix}"),
    ],
)
def test_equal_on_the_fast_path(pred, ref):
    assert answers_equal(pred, ref)
    # these must be decided in-process, without a SymPy round trip
    assert grading._equal_normalized(normalize_answer(pred), normalize_answer(ref), symbolic=False) is True


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        (r"\mbox{Sunday}", r"\mbox{Saturday}"),
        ("7", "8"),
        (r"\frac{1}{3}", "0.33"),
        ("1235", "1,234"),
        (r"-\frac{3}{4}", "0.75"),
        ("(1,2)", "(1,3)"),
    ],
)
def test_not_equal(pred, ref):
    assert not answers_equal(pred, ref)


def test_documented_leniencies_are_kept():
    assert answers_equal("5000", "50")  # ref * 100
    assert answers_equal("0.5", "50")  # ref / 100
    assert answers_equal("1,2", "12")  # commas are dropped before the numeric comparison
    assert answers_equal("(1,2]", "[1,2)")  # bracket types are ignored
    assert answers_equal("0.0001", "0.0009")  # absolute tolerance 1e-3
    assert answers_equal(r"5\text{ cm}", r"5\text{ m}")  # any trailing \text{} is a unit
    assert not answers_equal("0.5", "0.51")


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        (r"2\sqrt{2}", r"\sqrt{8}"),
        ("x^2+2x+1", "(x+1)^2"),
        (r"\pi", "3.1416"),
        (r"\begin{pmatrix} 1 \\ \sqrt{4} \end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        ("2x+1=y", "y=2x+1"),
        (r"\frac{x}{2}", "0.5x"),
    ],
)
def test_symbolic_equal_through_the_worker(pred, ref):
    assert grading._equal_normalized(normalize_answer(pred), normalize_answer(ref), symbolic=False) is None
    assert answers_equal(pred, ref)


def test_symbolic_not_equal():
    assert not answers_equal("x^2+1", "(x+1)^2")
    assert not answers_equal(r"\sqrt{3}", r"\sqrt{2}")
    assert not answers_equal(None, "1")
    assert not answers_equal("1", None)


def test_pathological_expression_times_out_and_next_call_works():
    start = time.monotonic()
    assert answers_equal(r"9^{9^{9^{9}}}+x", "x+1", timeout=1.0) is False
    assert time.monotonic() - start < 15  # bounded: 1 s limit + a possible worker restart
    assert answers_equal(r"\sqrt{4}+x", "x+2")


def _sleepy_batch(pairs, per_item_timeout):
    """Stands in for C-level work that no signal can interrupt: only the hard limit stops it."""
    out = []
    for pred, ref in pairs:
        if pred == "hang":
            time.sleep(120)
        out.append(pred == ref)
    return out


def test_hard_timeout_in_a_chunk_costs_only_the_culprit():
    start = time.monotonic()
    verdicts = grading._run_chunked(_sleepy_batch, [("a", "a"), ("hang", "x"), ("b", "c"), ("d", "d")], 0.5, False, 4)
    assert verdicts == [True, False, False, True]
    assert time.monotonic() - start < 60
    assert answers_equal(r"\sqrt{9}", "3")


def test_unsafe_python_is_never_evaluated():
    with pytest.raises(ValueError):
        grading._parse_safe_expr("eval(chr(49))")
    with pytest.raises(ValueError):
        grading._parse_safe_expr("__import__('os')")
    assert str(grading._parse_safe_expr("2*sqrt(2)")) == "2*sqrt(2)"
    assert not answers_equal("eval(chr(49))", "1")


# ------------------------------------------------------------------------------------ math-verify


def test_math_verify_second_opinion():
    assert math_verify_equal(r"so the result is \boxed{\frac{1}{2}}", "0.5") is True
    assert math_verify_equal("The answer is: 1,234", "1234") is True
    assert math_verify_equal(r"\boxed{3}", "4") is False
    # Math-Verify is not lenient about percent: the protocol and it disagree here
    result = grade(r"\boxed{5000}", "50")
    assert result.correct is True and result.correct_math_verify is False


# -------------------------------------------------------------------------------------- grade API


def test_grade_batch_keeps_order_and_mixes_paths():
    items = [
        (r"\boxed{\frac{1}{2}}", "0.5"),  # fast path
        (r"\boxed{x^2+2x+1}", "(x+1)^2"),  # SymPy
        ("The answer is: 17", "18"),  # fast path, wrong
        ("nothing numeric", "3"),  # no extraction
        (r"\boxed{2\sqrt{2}}", r"\sqrt{8}"),  # SymPy
    ]
    results = grade_batch(items, GradingConfig(chunk_size=2))
    assert [r.correct for r in results] == [True, True, False, False, True]
    assert [r.extracted for r in results] == [r"\frac{1}{2}", "x^2+2x+1", "17", None, r"2\sqrt{2}"]
    assert [r.correct_math_verify for r in results] == [True, True, False, False, True]
    assert all(isinstance(r, GradeResult) for r in results)
    assert grade_batch([]) == []


def test_grade_batch_names_the_bad_row():
    with pytest.raises(TypeError, match=r"items\[1\]\.completion"):
        grade_batch([("ok 1", "1"), (None, "1")])
    with pytest.raises(TypeError, match=r"items\[0\]"):
        grade_batch([("only one field",)])
    result = grade_batch([(r"\boxed{3}", None)])[0]
    assert result == GradeResult(extracted="3", correct=False, correct_math_verify=None)


# ------------------------------------------------------------------------------------ whole data sets


def test_every_math_test_solution_grades_against_its_own_box():
    rows = _jsonl(DATA / "math" / "test.jsonl")
    assert len(rows) == 5000
    items = [(row["solution"], math_reference_answer(row["solution"])) for row in rows]
    results = grade_batch(items, GradingConfig(math_verify=False))
    rate = sum(r.correct for r in results) / len(results)
    failures = [(row["idx"], r.extracted) for row, r in zip(rows, results) if not r.correct]
    assert rate >= 0.998, failures[:20]


def test_math500_solutions_match_the_answer_field():
    rows = _jsonl(DATA / "math" / "math500_test.jsonl")
    assert len(rows) == 500
    results = grade_batch([(row["solution"], row["answer"]) for row in rows], GradingConfig(math_verify=False))
    rate = sum(r.correct for r in results) / len(results)
    failures = [(row["unique_id"], r.extracted, row["answer"]) for row, r in zip(rows, results) if not r.correct]
    assert rate >= 0.998, failures[:20]


def test_gsm8k_reference_solutions_grade_correct():
    rows = _jsonl(DATA / "gsm8k" / "test.jsonl")[:200]
    items = [(row["answer"].split("####")[0] + "The answer is: " + row["answer"].split("####")[1].strip(),
              gsm8k_reference_answer(row["answer"])) for row in rows]
    results = grade_batch(items, GradingConfig(math_verify=False))
    assert all(r.correct for r in results)
    wrong = grade_batch([(c, str(int(ref) + 1)) for c, ref in items[:50]], GradingConfig(math_verify=False))
    assert not any(r.correct for r in wrong)


def test_adversarial_long_inputs_stay_linear():
    # Each of these was quadratic (minutes) in a naive implementation; here they finish at once.
    assert extract_answer("\\boxed{" * 20000) is None
    assert normalize_answer("\\mbox{" * 20000) == "\\mbox{" * 20000
    assert normalize_answer("." * 50000 + "1") == "0" + "." * 50000 + "1"
    assert normalize_answer("1" * 50000) == "1" * 50000
    assert grading._equal_normalized("[" * 5000 + "1" + "]" * 5000, "[" * 5000 + "2" + "]" * 5000, False) is None


def test_config_validation_and_empty_reference():
    with pytest.raises(ValueError, match="chunk_size"):
        GradingConfig(chunk_size=0)
    with pytest.raises(ValueError, match="symbolic_timeout"):
        GradingConfig(symbolic_timeout=0)
    assert not answers_equal("", "")
    assert not grade_batch([(r"\boxed{\text{}}", "  ")], GradingConfig(math_verify=False))[0].correct


# ------------------------------------------------------------------------ issue 15, rows 8-10


@pytest.mark.parametrize(
    ("completion", "reference"),
    [
        (r"\boxed{1e309}", "1e307"),  # overflow: inf == inf
        (r"\boxed{1e400}", "1e500"),
        (r"\boxed{nan}", "nan"),  # NaN is no answer, even spelled alike
        (r"\boxed{0}", "0.1"),  # the percent rule at the /100 scale: 0 ≈ 0.001
        (r"\boxed{0}", "0.09"),
        (r"\boxed{0}", "-0.05"),
        (r"\boxed{10=5}", "5"),  # a number is no variable
        (r"first \boxed{3}, then \boxed{4", "3"),  # cut off inside the final box: no answer
    ],
)
def test_row8_no_equality_through_overflow_nan_scale_or_a_cut_off_box(completion, reference):
    result = grade_batch([(completion, reference)], GradingConfig(math_verify=False))[0]
    assert result.correct is False


def test_row8_cut_off_last_box_extracts_nothing_and_documented_leniencies_stay():
    assert extract_answer(r"first \boxed{3}, then \boxed{4") is None
    # Protocol leniencies kept on purpose (module docstring): percent scaling both ways, x= prefixes.
    assert answers_equal(r"5\%", "5") and answers_equal("0.5", "50") and answers_equal("5000", "50")
    assert answers_equal("x=3", "3") and answers_equal("0.0004", "0.001")
    assert not answers_equal("0", "1")


@pytest.mark.parametrize(
    ("completion", "reference", "column"),
    [
        (r"\boxed{\text{5 apples}}", "5", "protocol"),
        (r"\boxed{\{1,2\}}", r"\{2,1\}", "both"),
        (r"\boxed{x=2 \text{ or } x=3}", "2, 3", "both"),
        (r"\boxed{1<x<2}", "(1,2)", "protocol"),
        (r"\boxed{1\,000}", "1000", "protocol"),
        (r"\boxed{6\text{ cm}^2}", "6", "both"),
        (r"\boxed{\log_2 8}", "3", "both"),
        (r"\boxed{0.\overline3}", r"\frac{1}{3}", "protocol"),
        (r"\boxed{a=1, b=2}", "(1,2)", "both"),
        (r"\boxed{\textbf{Saturday}}", "Saturday", "both"),
        (r"\boxed{72} \boxed{}", "72", "protocol"),
    ],
)
def test_row9_equivalent_forms_are_equal(completion, reference, column):
    result = grade(completion, reference)
    assert result.correct is True
    if column == "both":  # Math-Verify agrees; where it does not, the protocol's reading decides
        assert result.correct_math_verify is True


def test_row9_equivalence_does_not_swallow_differences():
    for pred, ref in [(r"\{1,2\}", r"\{1,3\}"), (r"\{1,2\}", r"\{1,2,3\}"), ("a=1, b=2", "(2,1)"), ("1<x<2", "(1,3)"),
                      (r"0.\overline3", r"\frac{1}{4}"), (r"\log_2 8", "4"), (r"\text{5 apples}", "6"), ("(1,2)", "(2,1)")]:
        assert not answers_equal(pred, ref), (pred, ref)
    assert answers_equal(r"x=2 \text{ or } x=3", "3, 2")  # solutions: order free
    assert normalize_answer(r"0.1\overline{6}") == r"\frac{1}{6}"
    assert normalize_answer(r"1\le x<2") == "[1,2)"


def test_row10_a_check_near_its_limit_gets_the_same_verdict_alone_and_in_bulk():
    """(x+y+1)^8 vs its expansion needs ~1 s of SymPy: over a 0.2 s limit. Rerun alone under 100×
    the limit, it is decided on its merits — the same in bulk and alone, whatever the load."""
    import sympy

    x, y = sympy.symbols("x y")
    expansion = sympy.latex(sympy.expand((x + y + 1) ** 8))
    slow = (r"\boxed{(x+y+1)^{8}}", expansion)
    config = GradingConfig(symbolic_timeout=0.2, timeout_retry_factor=100, math_verify=False)
    bulk = grade_batch([(r"\boxed{2}", "2"), slow, (r"\boxed{\sqrt{8}}", r"2\sqrt{2}"), slow], config)
    alone = grade_batch([slow], config)
    assert [r.correct for r in bulk] == [True, True, True, True]
    assert alone[0].correct is True


def test_row10_power_towers_are_decided_from_the_text():
    result = grade(r"so \boxed{10^{10^{10^{10}}}}", "5")
    assert result.correct is False and result.correct_math_verify is None
    assert math_verify_equal("10^10^10^10", "1") is None


def test_a_repeated_symbolic_pair_is_decided_once(monkeypatch):
    """Pools repeat (answer, gold) pairs; the worker round trip is paid once per distinct pair."""
    import hardneg.grading as grading

    calls = []
    real = grading._run_chunked

    def counting(func, pairs, *args, **kwargs):
        calls.append(list(pairs))
        return real(func, pairs, *args, **kwargs)

    monkeypatch.setattr(grading, "_run_chunked", counting)
    grading._symbolic_verdict.cache_clear()
    assert answers_equal(r"2\sqrt{2}", r"\sqrt{8}")
    assert answers_equal(r"2\sqrt{2}", r"\sqrt{8}")
    assert not answers_equal(r"3\sqrt{2}", r"\sqrt{8}")
    assert [p[0][0] for p in calls] == [r"2\sqrt{2}", r"3\sqrt{2}"]  # one per distinct pair, none for the repeat


def test_stated_answer_pattern_covers_every_rule_but_the_last_number():
    """The funnel calls a `length`-finished completion truncated unless it states its answer: each of
    extract_answer's rules but the last-number fallback must match STATED_ANSWER_PATTERN, in Python and RE2."""
    import re

    import duckdb

    from hardneg.grading import STATED_ANSWER_PATTERN

    stated = ["so the final answer is $12$. I hope it is correct.", "so x = \\boxed{12}", "hence \\fbox {12}",
              "The answer is 12", "```output\n12\n```", "#### 12"]
    fallback = "We add 5 and 7 to get 12, then"
    con = duckdb.connect()
    for text in stated + [fallback]:
        want = text != fallback
        assert (re.search(STATED_ANSWER_PATTERN, text) is not None) == want, text
        assert con.execute("SELECT regexp_matches(?, ?)", [text, STATED_ANSWER_PATTERN]).fetchone()[0] == want, text
    assert [extract_answer(t) for t in stated[:5]] == ["12"] * 5 and extract_answer(fallback) == "12"
