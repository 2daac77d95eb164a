"""Equation finding and exact/bounded checking (hardneg.verifier.arith, .symbolic)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hardneg.bounded import call_bounded
from hardneg.verifier import symbolic
from hardneg.verifier.arith import analyse_step, close_enough


def statuses(step: str, **kw):
    """The checked links (assignments and equations with free symbols are recorded, not checked)."""
    return [(link.text, link.status) for link in analyse_step(step, **kw).links if link.status not in ("assign", "equation")]


def test_wrong_product_is_a_mismatch_with_the_right_value():
    [link] = analyse_step("3 * 4 = 13").links
    assert link.status == "mismatch"
    assert link.lhs.value == 12 and link.rhs.value == 13


def test_every_wrong_equality_of_a_chain_is_found():
    assert statuses("A = (-9 - 5 - 0) = -14") == [("(-9 - 5 - 0) = -14", "ok")]
    assert statuses("B = 2 + 3 = 6 = 12") == [("2 + 3 = 6", "mismatch"), ("6 = 12", "mismatch")]


@pytest.mark.parametrize(
    "step",
    [
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
        "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.",
        "Working 50 minutes, she earned 0.2 x 50 = $10.",
        "Total before discount = 4 × $3 = $12.",
        "Discount = 10% of $12 = $1.20.",
        "4 notebooks * $3 = $12",
        "So 1.2/12*100 = 10%",
        "9 teaspoons / 21 teaspoons * 100% = 42.857%",
        "Bea earned $2.50 - $2.24 = 26 cents more.",
        "12/7 = 1.71 (rounded)",
        "10/3 = 3 full boxes",
        "Ben's salary is $2000 / 2/3 = $3000",
        "$\\frac{1}{2} + \\frac13 = \\frac{5}{6}$",
        "$h = \\frac{27}{4} = \\boxed{6 \\frac{3}{4}}$",
        "There are $9\\times 10\\times 10 = 900$ numbers and $3 \\cdot 5! = 360$.",
        "$5!=120$",
    ],
)
def test_correct_arithmetic_is_ok(step):
    links = [link for link in analyse_step(step).links if link.status not in ("assign", "equation")]
    assert links, step
    assert all(link.status == "ok" for link in links), [(l.text, l.status) for l in links]


@pytest.mark.parametrize(
    "step",
    [
        "half of 48 = 24",  # the operand "half of" is outside the expression
        "60 minutes = 1 hour",  # units end a chain
        "The ratio 1:2 = 3:6",
        "a_1 = 5",
        "Week 1 + Week 2 = 35 + 35",
        "Quinton had 40 cupcakes - 18 = 22 cupcakes.",
        "x + 3 = 7",  # a condition, not an identity
        "so $6\\pm1=7$",
        "$240=\\frac{1}{2}bh$",
        "$(28,365)=1$",
        "Eric has 4 + Chad has 6 + Jeff has 6 = 16 stars",
    ],
)
def test_no_false_alarms(step):
    assert all(link.status != "mismatch" for link in analyse_step(step).links)


def test_custom_star_operation_is_opaque_when_the_question_defines_it():
    assert statuses("$4 * 3 = 2(4)+3(3) = 17$")[0][1] == "mismatch"
    assert all(s != "mismatch" for _, s in statuses("$4 * 3 = 2(4)+3(3) = 17$", opaque_star=True))


def test_annotation_and_visible_value_are_both_checked():
    assert ("48/2 = 25", "mismatch") in statuses("She sold 48/2 = <<48/2=25>>25 clips.")
    links = statuses("She sold 48/2 = <<48/2=24>>25 clips.")
    assert ("48/2 = 24", "ok") in links and ("24 = 25", "mismatch") in links
    assert ("48/2 = 25", "mismatch") in links  # the visible text is wrong too


def test_computations_record_operands_and_results():
    sm = analyse_step("Total after discount = $12 − $1.20 = $10.80.")
    [comp] = sm.computations
    assert comp.operands == [Fraction(12), Fraction("1.20")]
    assert comp.result == Fraction("10.80") and comp.result_text == "10.80" and comp.ok is True
    assert Fraction("10.80") in sm.mentions


@pytest.mark.timeout(10)
@pytest.mark.parametrize("step", ["10^10^10^10 = 5", "2^(3^(4^5)) = 1", "(10**10**10) = 1", "1000! = 1"])
def test_huge_powers_are_refused_not_computed(step):
    [link] = analyse_step(step).links
    assert link.status == "unchecked"
    assert "too large" in link.note


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "step",
    ["(" * 5000 + "1" + ")" * 5000 + " = 1", "{{{{ 1 + = } 2", "\\frac{\\frac{" * 2000, "1" * 10_000 + " = 1", "= = = 3 = = 4"],
)
def test_malformed_input_never_raises(step):
    sm = analyse_step(step)
    assert all(link.status != "mismatch" for link in sm.links)


def test_rounding_rules():
    [link] = analyse_step("12/7 = 1.72").links  # 1.714... is 1.71 rounded or truncated, not 1.72
    assert link.status == "mismatch"
    [link] = analyse_step("2/3 = 0.66").links  # truncation is accepted
    assert link.status == "ok"
    [link] = analyse_step("2/3 = 0.67").links  # and so is rounding
    assert link.status == "ok"
    [link] = analyse_step("2/3 = 0.68").links
    assert link.status == "mismatch"
    [approx] = analyse_step("22/7 ≈ 3.2").links
    assert approx.approx and approx.status == "ok"


def test_symbolic_links_are_decided_in_the_bounded_worker():
    sm = analyse_step("$\\sqrt{2} \\cdot \\sqrt{8} = 4$ and $2\\pi \\cdot 3 = 6\\pi$ but $\\sqrt{2} = 1.5$")
    pending = [l for l in sm.links if l.status == "symbolic"]
    assert len(pending) == 3
    assert call_bounded(symbolic.warm, timeout=120) is True
    res = call_bounded(symbolic.evaluate_pairs, [(l.lhs.sympy_src, l.rhs.sympy_src) for l in pending], timeout=30)
    verdicts = []
    for link, (lv, rv, err) in zip(pending, res):
        assert err is None
        L = Fraction(lv) if lv is not None else link.lhs.value
        R = Fraction(rv) if rv is not None else link.rhs.value
        verdicts.append(close_enough(link.lhs, link.rhs, L, R, link.approx))
    assert verdicts == [True, True, False]
