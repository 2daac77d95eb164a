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


def test_an_align_line_that_starts_with_division_continues_the_expression():
    text = ("\\begin{align*} 53\\cdot\\left(\\frac{16}{5} - \\frac{9}{2}\\right) \\div \\left(\\frac{11}{4} + \\frac{5}{3}\\right) "
            "&=53\\cdot\\left(\\frac{16 \\cdot 2}{5 \\cdot 2} - \\frac{9 \\cdot 5}{2 \\cdot 5}\\right) \\\\ &\\qquad\\div "
            "\\left( \\frac{11 \\cdot 3}{4 \\cdot 3} + \\frac{5\\cdot 4}{3 \\cdot 4}\\right) \\end{align*}")
    assert [l.status for l in analyse_step(text).links] == ["ok"]


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


# ------------------------------------------------------------------ the question's numbers
def _logic_flags(verifier, question: str, text: str):
    [p] = verifier.verify_batch([VerifyInput("t", question, text, None, None)])
    return [f for s in p.steps for f in s.flags if f.startswith(("question", "changed", "value-flow"))]


@pytest.mark.parametrize(
    "question, text",
    [
        ("What is the sum of the integers that are both greater than 3 and less than 12?",  # the ends of a range
         "We want to evaluate the arithmetic series $4+5+\\dots+11$.\n"
         "The number of terms is $11 - 4 + 1 = 8$, so the sum is $(4 + 11)/2 \\cdot 8 = \\boxed{60}$."),
        ("Sam's phone number is 271-3147 and the digits of his house number add up to the same sum. What is it?",
         "First, we add up the digits in his phone number: $2+7+1+3+1+4+7=25$.\n"  # digits read one by one
         "So the largest is $\\boxed{9871}$, since $9+8+7+1 = 25$."),
        ("What is 95 squared, computed in your head?",  # a given number taken apart
         "We have $(90 + 5)^2 = 90^2 + 2(90)(5) + 5^2 = 8100 + 900 + 25 = \\boxed{9025}$."),
        ("Her scores relative to 93 were 2, 5, -3, -1 and 10. The six scores must add to 18. What is the sixth?",
         "The sum of her first five scores is $2+5-3-1+10=13$, so the sixth score should be $18-13=5$.\n"  # a result used in its own step
         "The answer is $5$."),
    ],
)
def test_the_questions_numbers_used_in_other_forms_are_used(verifier, question, text):
    assert _logic_flags(verifier, question, text) == []


def test_a_solution_with_numbers_of_another_problem_still_ignores_the_question(verifier):
    other = "She buys 7 apples at 5 dollars each: $7 \\cdot 5 = 35$.\nShe pays $35 + 40 = 75$ dollars."
    assert any(f.startswith("question ignored") for f in _logic_flags(verifier, "Ann has 16 ducks and 93 geese. How many birds?", other))


# ------------------------------------------------------------------ absolute values and notation
@pytest.mark.parametrize(
    "right, wrong",
    [
        ("Then $|x + yi - 5 - i| = |(x - 5) + (y - 1)i| = 5,$ so the point is on a circle.",
         "Then $|x + yi - 5 - i| = |(x + 5) + (y - 1)i| = 5,$ so the point is on a circle."),
        ("\\[|z - 12| + |z - 5i| = |z - 12| + |5i - z| \\ge |-12 + 5i| = 13.\\]",
         "\\[|z - 12| + |z - 5i| = |z - 12| + |6i - z| \\ge |-12 + 5i| = 13.\\]"),
        ("\\[|x + y| + |x - y| = |-a + b| + |-a - b| = |a - b| + |a + b| \\le 4.\\]",
         "\\[|x + y| + |x - y| = |-a + b| + |-a - b| = |a + b| + |a + b| \\le 4.\\]"),
    ],
)
def test_a_rewrite_of_absolute_values_pairs_its_terms(verifier, right, wrong):
    # (no final number: since mv-1.26 `|-12 + 5i| = 13` is computed, and an unrelated answer would contradict it)
    assert first_error(verifier, right + "\nSo the bound holds.")[0] is None
    step, flags = first_error(verifier, wrong + "\nSo the bound holds.")
    assert step == 0 and "it would be with" in flags[0], flags


def test_absolute_values_of_different_expressions_are_left_to_the_solution(verifier):
    # |x − 3| = 3 − x holds for x < 3; |3 + 4i| = |5|: nothing pairs, nothing is claimed wrong
    assert first_error(verifier, "Since $x < 3,$ $|x - 3| + |x + 2| = (3 - x) + (x + 2) = 5$.\nThe answer is $5$.")[0] is None
    assert first_error(verifier, "Then $|3 + 4i| = |5| = 5$.\nThe answer is $5$.")[0] is None


@pytest.mark.parametrize(
    "text",
    [
        "Rewriting, $1+i = \\sqrt{2}\\,\\text{cis}\\,\\frac{\\pi}{4}$ and $1-i = \\sqrt{2}\\,\\text{cis}\\,-\\frac{\\pi}{4}$.",
        "We need $e^2 - e = 2e,$ so $e = 0 or e = 3$.",
        "$$\\begin{array}{r r c r@{}l} &300/11 &=& ab&.ababab\\ldots \\\\ - &3/11 &=& 0&.ababab\\ldots \\end{array}$$",
        "Since $11 \\cdot 11^{-1} \\equiv 1 \\pmod{1000}$, it follows that $(10+1) \\cdot 11^{-1} = 10^3k + 1$ for some integer $k$.",
        "So our answer is $\\left[\\frac{3 \\times 2004 - 4}{10}\\right] = \\boxed{601}$.",
    ],
)
def test_notation_that_is_not_an_equality_of_its_tokens(verifier, text):
    assert first_error(verifier, text + "\nThe answer is $601$.")[0] is None


def test_i_is_the_imaginary_unit_unless_the_solution_names_it(verifier):
    named = ("Let $p$=the cost of the pen and $i$=the cost of the ink.\n"
             "Substituting for $p$ in the first equation, we find: $1+i+i=1.10$, so $2i=.10$ and $i=.05$.\n"
             "Therefore, $p=1+i=\\boxed{1.05}$ dollars.")
    assert first_error(verifier, named)[0] is None
    unit = "\\begin{{align*}}\nz_2 &= 0^2 + i = i, \\\\\nz_3 &= i^2 + i = -1 + i, \\\\\nz_4 &= (-1 + i)^2 + i = {}.\n\\end{{align*}}"
    assert first_error(verifier, unit.format("-i"))[0] is None
    assert first_error(verifier, unit.format("i"))[0] == 0


def test_a_value_found_before_may_be_substituted_unless_it_zeroes_both_sides(verifier):
    # a = 0 from the step before makes (a + 4d)/(a + 2d) = 4d/2d hold with both sides 2, not 0
    text = ("Multiplying both sides by $a + d$, we get $a + 3d = 3a + 3d$, so $a = 0$.\n"
            "Then \\[\\frac{a_5}{a_3} = \\frac{a + 4d}{a + 2d} = \\frac{4d}{2d} = \\boxed{2}.\\]")
    assert first_error(verifier, text)[0] is None


def test_dropping_terms_until_one_side_is_written_again_is_no_slip(verifier):
    text = ("Thus, the equation $\\sin 5 \\theta = \\sin^5 \\theta$ becomes\n"
            "\\[5 \\cos^4 \\theta \\sin \\theta - 10 \\cos^2 \\theta \\sin^3 \\theta + \\sin^5 \\theta = \\sin^5 \\theta.\\]"
            "Then $5 \\cos^4 \\theta \\sin \\theta - 10 \\cos^2 \\theta \\sin^3 \\theta = 0.$")
    assert first_error(verifier, text)[0] is None


def test_a_value_denied_before_does_not_hide_a_definition(verifier):
    # "x = 0 is not a root" states no value to substitute; y = x + 1/x still rewrites the link
    text = ("Clearly, $x = 0$ is not a root.  We can divide the equation by $x^3,$ to get\n"
            "\\[x^3 + x - 115 + \\frac{1}{x} + \\frac{1}{x^3} = 0.\\]Let $y = x + \\frac{1}{x}.$  Then\n"
            "\\[x^3 + \\frac{1}{x^3} = y^3 - 3 \\left( x + \\frac{1}{x} \\right) = y^3 - 3y.\\]Thus, our equation becomes")
    assert first_error(verifier, text)[0] is None


def test_a_chain_of_thought_in_words_gets_its_slip_and_its_carried_value_flagged(verifier):
    q = "Tom has 13 boxes with 14 apples each. He gives away 25 apples and buys 17 more. How many apples does he have?"
    ref = "13 * 14 = 182 apples.\n182 - 25 = 157 apples.\n157 + 17 = 174 apples.\nThe answer is 174."
    slip = ("Okay, so 13 times 14 is 182 apples.\nThen he gives away 25, so 182 minus 25 is 147.\n"
            "Then 147 plus 17 is 164.\nThe answer is 164.")
    carried = ("Okay, so 13 times 14 is 182 apples.\nThen he gives away 25, so 182 minus 25 is 157.\n"
               "Then 175 plus 17 is 192.\nThe answer is 192.")
    right = ("Okay, so 13 times 14 is 182 apples.\nThen he gives away 25, so 182 minus 25 is 157.\n"
             "Then 157 plus 17 is 174.\nThe answer is 174.")
    p_slip, p_carried, p_right = verifier.verify_batch([VerifyInput(k, q, t, ref, "174") for k, t in
                                                        (("slip", slip), ("carried", carried), ("right", right))])
    assert p_slip.first_error_step == 1 and any("182 minus 25 = 147" in f for f in p_slip.steps[1].flags)
    assert p_carried.first_error_step == 2 and p_carried.d_logic > 0.5
    assert p_right.first_error_step is None and p_right.d_numeric == 0 and p_right.d_logic == 0
