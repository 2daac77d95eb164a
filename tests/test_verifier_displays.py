"""Verifier mv-1.8 (issue 12, session 11): what a display of several lines says.

An `align` line `&= B` of plain numbers continues the evaluation above it, so a wrong last line
(`&= -25 + 21 \\\\ &= \\boxed{-3}`) is a slip; a symbolic `&=` line still stands alone. A step that
ends by announcing equations ("Matching coefficients, we get") makes the next display a system of
equations, not identities. `b(0)` is a function value when the step calls `b` a function, and the
unbraced argument of `\\frac{...}4` is not a quantity of its own. Each rule has a slip it must flag
and mathematics it must leave alone."""

from __future__ import annotations

import pytest

from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput
from hardneg.verifier.arith import analyse_step, ends_on_cue

from test_verifier_symbolic import HashEmbedder


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(VerifierConfig(use_nli=False), embedder=HashEmbedder())


def first_error(verifier, text: str):
    [p] = verifier.verify_batch([VerifyInput("t", "Find the minimum.", text, None, "-4")])
    return p.first_error_step, [f for s in p.steps for f in s.flags if "slip" in f]


ALIGN = ("The minimum is at $x = -5$.\n"
         "Substituting this for $x$ gives the minimum value of $y$ to be \\begin{{align*}}\n"
         "y&=x^2+10x+21 \\\\\n&=(-5)^2+10(-5)+21 \\\\\n&=25-50+21 \\\\\n&=-25+21 \\\\\n&=\\boxed{{{}}}\n\\end{{align*}}")


def test_an_align_line_of_numbers_continues_the_evaluation(verifier):
    assert first_error(verifier, ALIGN.format("-4"))[0] is None
    step, flags = first_error(verifier, ALIGN.format("-3"))
    assert step == 1 and any("-25+21" in f for f in flags), flags


def test_an_align_line_with_symbols_stands_alone():
    # `0 &= A \\ &= A/4`: a symbolic line may transform an equation; it is not chained to the one above
    links = analyse_step("Then \\begin{align*}\n0 &= 4x^2 - 8x + 4 \\\\\n&= x^2 - 2x + 1\n\\end{align*}").links
    assert [l.text for l in links] == ["0 = 4x^2 - 8x + 4"]


def test_a_step_announcing_equations_makes_the_next_display_equations():
    assert ends_on_cue("Matching coefficients, we get")
    assert ends_on_cue("Substituting $x = 2$ into the equation, we have:")
    assert not ends_on_cue("When this is divided by $(x + 1)^3,$ the remainder is then")
    assert not ends_on_cue("Thus, the monic quartic with roots $2+\\sqrt{2}$ and $1-\\sqrt{3}$ is")
    display = "\\begin{align*}\nad^2 &= ad, \\\\\n2ade &= ae + bd.\n\\end{align*}"
    assert [l.status for l in analyse_step(display, cued=True).links] == ["equation", "equation"]


def test_a_letter_the_step_calls_a_function_is_applied_not_multiplied(verifier):
    text = "B. Note that $b(0) = b(1) = 0,$ so the function $b(x)$ does not have an inverse.\nThe answer is $-4$."
    assert first_error(verifier, text)[0] is None
    # without the word, `a(2)` is a product as before: `a(2)+3=2-5` is an equation in a
    assert [l.status for l in analyse_step("This implies $a(2)+3=2-5$.").links] == ["equation"]


def test_the_unbraced_argument_of_a_fraction_is_not_a_side():
    links = analyse_step("The probability is $\\frac{ [S\\cap T]}4 = \\frac{ 4 - \\frac 89 }4 = 1 - \\frac 29$.").links
    assert [(l.text, l.status) for l in links] == [("\\frac{ 4 - \\frac 89 }4 = 1 - \\frac 29", "ok")]
    slip = analyse_step("The probability is $\\frac{ [S\\cap T]}4 = \\frac{ 4 - \\frac 89 }4 = 1 - \\frac 19$.").links
    assert [l.status for l in slip] == ["mismatch"]
