"""Verifier mv-1.8 (issue 12, session 11): what a display of several lines says, and what the
solution said before a link.

An `align` line `&= B` of plain numbers continues the evaluation above it, so a wrong last line
(`&= -25 + 21 \\\\ &= \\boxed{-3}`) is a slip; a symbolic `&=` line still stands alone. A step that
ends by announcing equations ("Matching coefficients, we get") makes the next display a system of
equations, not identities. `b(0)` is a function value when the step calls `b` a function, and the
unbraced argument of `\\frac{...}4` is not a quantity of its own.

Context: a cue before a link counts only from the last sentence of the step before; a definition
stated earlier (`c = −a − b`, or a sum `r + s + t = 0`) may be substituted by any link; a value
(`x = 1/4`) is no definition; `A = B \\ge 0` rewrites A for every value; operations a problem defines
(`3 \\text{ Y } 2`), contradictions shown (`10 = −10`) and several roots listed together are no slips.
Each rule has a slip it must flag and mathematics it must leave alone."""

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


# ------------------------------------------------------------------ what the solution said before
def test_a_lead_in_cue_must_be_in_the_last_sentence(verifier):
    text = ("By Vieta's formulas, the sum of the roots is 0, so the third root is $t = -r - s.$  Also,\n"
            "the sum of the roots of $q(x)$ is also 0, so the third root is $-(r + 4) - (s - 3) = {} = t - 1.$")
    assert first_error(verifier, text.format("-r - s - 1"))[0] is None
    step, flags = first_error(verifier, text.format("-r - 1"))
    assert step == 1 and "single term -s" in flags[0], flags


def test_an_expression_bounded_after_it_is_rewritten_for_every_value(verifier):
    # `A = B \ge 0`: B must be A for every x, not only at the x = 1/4 where both vanish
    text = ("Therefore,\n\\[2x^2 (1 - 3x) - \\frac{{1}}{{32}} = \\frac{{(1 - 4x)({}x^2 - 4x - 1)}}{{32}} \\ge 0\\]"
            "for $\\frac{{1}}{{5}} \\le x \\le \\frac{{1}}{{4}},$ and equality occurs when $x = \\frac{{1}}{{4}}.$")
    assert first_error(verifier, text.format(48))[0] is None
    step, flags = first_error(verifier, text.format(49))
    assert step == 1 and "48 in place of 49" in flags[0], flags


def test_a_definition_stated_before_holds_for_a_link_that_substitutes_it(verifier):
    text = ("From the equation $a + b + c = 0,$ $c = -a - b.$  Hence,\n"
            "\\[\\frac{{a^3 + b^3 + c^3}}{{abc}} = -\\frac{{a^3 + b^3 {} (a + b)^3}}{{ab(a + b)}}.\\]")
    assert first_error(verifier, text.format("-"))[0] is None
    assert first_error(verifier, text.format("+"))[0] == 1


def test_a_sum_of_symbols_stated_before_defines_the_last_one(verifier):
    text = ("By Vieta's formulas, the sum of the three roots is $r+s+t=0$.\n"
            "Thus, we can write \\[(r+s)^3 + (s+t)^3 + (t+r)^3 = (-t)^3 + (-r)^3 + {}.\\]")
    assert first_error(verifier, text.format("(-s)^3"))[0] is None
    assert first_error(verifier, text.format("(s)^3"))[0] == 1  # a sign lost: wrong whatever r + s + t is


def test_a_root_of_a_linear_expression_is_checked_by_one_edit(verifier):
    text = "The distance is the difference of the $x$-coordinates, which is $\\sqrt{{r+1}}-(-\\sqrt{{r+1}})=2\\sqrt{{{}}}$."
    assert first_error(verifier, text.format("r+1"))[0] is None
    step, flags = first_error(verifier, text.format("r-1"))
    assert step == 0 and "+ in place of −" in flags[0], flags


# ------------------------------------------------------------------ what is not a computation
@pytest.mark.parametrize(
    "text",
    [
        "We have $3 \\text{ Y } 2 = 3^2-2(2)(3)+2^2 = 9+4-12 = \\boxed{1}$.",  # an operation the problem defines
        "$(-2)\\ \\$\\ 3=-2(3+1)-6=-8-6=\\boxed{-14}$.",
        "If we plug this value of $x$ back in, we get that $|-7-3|=2(-7)+4$ or $10=-10$.",  # a contradiction shown
        "The cone has 1/3 the volume of the cylinder, which is $(1/3)(54\\pi = \\boxed{18\\pi}$ cubic cm.",  # a factor
    ],
)
def test_what_is_not_an_equality_of_computed_numbers(verifier, text):
    assert first_error(verifier, text)[0] is None


def test_a_sum_set_equal_to_another_number_is_still_a_slip(verifier):
    assert first_error(verifier, "So $2+2=5$ and the answer is $5$.")[0] == 0
    assert first_error(verifier, "We have $3 \\cdot 2 = 3^2-2(2)(3)+2^2 = 2$.")[0] == 0


def test_several_roots_listed_in_one_step_pair_with_their_equations_in_any_order(verifier):
    text = ("Factoring gives $(3x+7)(x-2)=0$.\n"
            "$x=-\\frac{7}{3}$ gives us $(3x+7)=0$ and $x=2$ gives us $(x-2)=0$.")
    assert first_error(verifier, text)[0] is None
    assert first_error(verifier, "Solving $2n-7=3$ and $2n-7=-3$ we find the solutions $n=5$ and $n=2$.")[0] is None


def test_a_linear_equation_whose_root_zeroes_both_sides_is_solved_not_factored(verifier):
    text = ("\\begin{align*}\na(4)+(a+1)(-8)&=a+2\\\\\n4a-8a-8&=a+2\\\\\n-4a-8&=a+2\\\\\n-10&=5a\\\\\n-2&=a.\n"
            "\\end{align*}Thus $a=\\boxed{-2}$.")
    assert first_error(verifier, text)[0] is None


# ------------------------------------------------------------------ symbols in exponents
@pytest.mark.parametrize(
    "right, wrong",
    [
        ("$a^{m}a^{n}=a^{m+n}$", "$a^{m}a^{n}=a^{m-n}$"),
        ("$\\frac{a^m}{a^n}=a^{m-n}$", "$\\frac{a^m}{a^n}=a^{m+n}$"),
    ],
)
def test_a_power_rule_one_token_from_an_identity_is_a_slip(verifier, right, wrong):
    text = "We use the rule for powers, {} for integers $m$ and $n$.\nSo the answer is $-4$."
    assert first_error(verifier, text.format(right))[0] is None
    step, flags = first_error(verifier, text.format(wrong))
    assert step == 0 and "it would be with" in flags[0], flags


def test_an_exponential_equation_being_solved_is_no_slip(verifier):
    assert first_error(verifier, "Solving $2^{x+1} = 4^{x}$ gives $x = 1$.\nThe answer is $1$.")[0] is None
