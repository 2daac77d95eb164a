"""Verifier mv-1.7 (issue 12, session 9): trigonometric identities and equation cues per clause.

`\\sin 4x` is sin(4x); a closed-form identity one token or one dropped term away from a true one is
an algebra slip (with the edit in the reason); an equation cue ("we need", "solve") speaks for its
own clause only; a single-term slip is withdrawn only by a value stated right there; a term that
vanishes between the sides is a slip; an equation that rearranges the one before it, or that a
closed-form value stated right there satisfies, is an equation. Each rule has a slip it must flag
and mathematics it must leave alone."""

from __future__ import annotations

import pytest

from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput
from hardneg.verifier.arith import analyse_step, parse_span, tokenize, to_sympy_source

from test_verifier_symbolic import HashEmbedder


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(VerifierConfig(use_nli=False), embedder=HashEmbedder())


def first_error(verifier, text: str):
    [p] = verifier.verify_batch([VerifyInput("t", "Simplify it.", text, None, "1")])
    return p.first_error_step, [f for s in p.steps for f in s.flags if "slip" in f]


@pytest.mark.parametrize(
    "latex, source",
    [
        (r"\sin 4x", "sin(((Rational(4,1))*(Symbol('x'))))"),
        (r"\cos 2\theta", "cos(((Rational(2,1))*(Symbol('theta'))))"),
        (r"\sin x \cos y", "((sin(Symbol('x')))*(cos(Symbol('y'))))"),
        (r"\sin (x + y)", "sin(((Symbol('x'))+(Symbol('y'))))"),
    ],
)
def test_a_function_takes_the_number_and_letters_written_after_it(latex, source):
    assert to_sympy_source(parse_span(tokenize(latex))) == source


@pytest.mark.parametrize(
    "slip, edit",
    [
        (r"\[\sin 4x + \sin 6x = \boxed{2 \sin 7x \cos x}.\]", "5 in place of 7"),
        (r"\[\sin 2a = \sin a \cos a - \cos a \sin a = 2 \sin a \cos a.\]", "+ in place of −"),
        (r"\[\tan^2 x = \frac{1 - \cos^3 x}{\cos^2 x}\]", "the exponent 2 in place of 3"),
        (r"\[\sin 3x = 3\sin x + 4\sin^3 x\]", "− in place of +"),
    ],
)
def test_an_identity_one_slip_away_is_an_algebra_slip_with_the_edit_named(verifier, slip, edit):
    step, flags = first_error(verifier, slip)
    assert step == 0
    assert any(edit in f for f in flags), flags


@pytest.mark.parametrize(
    "text",
    [
        r"\[\sin 4x + \sin 6x = 2 \sin 5x \cos x.\]",
        r"\[\sin (x + y) = \sin x \cos y + \cos x \sin y.\]",
        r"\[\cos 2x = 2\cos^2 x - 1 = 1 - 2\sin^2 x.\]",
        # equations to solve: one edit would make them hold, but the clause says they are solved
        r"We solve $\sin 2x = \sin x$ on $[0, \pi]$.",
        r"We need $\sin 2x = 3 \sin x \cos x$, so $\sin x = 0$ or $\cos x = 0$.",
    ],
)
def test_true_identities_and_trigonometric_equations_are_left_alone(verifier, text):
    assert first_error(verifier, text) == (None, [])


def test_an_equation_cue_speaks_for_its_own_clause_only():
    far = analyse_step(r"we need $n$ to be a multiple of $3,$ so the cube is of the form $(3n)^3=27n^4$.")
    near = analyse_step(r"we need $(3n)^3=27n^4$.")
    assert [(l.status, l.solving) for l in far.links if l.kind == "algebra"] == [("mismatch", False)]
    assert [l.solving for l in near.links if l.kind == "algebra"] == [True]


def test_a_single_term_slip_is_not_explained_by_a_value_found_much_later(verifier):
    text = "\n".join([
        r"The cube is $(3n)^3=27n^4$.",
        r"We look at small cases.",
        r"For the first case, $n = 1$.",
    ])
    assert first_error(verifier, text)[0] == 0
    solved = r"Then $1 + 2c + 1 = 1 + 1 + c$, so $c = 0$."
    assert first_error(verifier, solved) == (None, [])


def test_a_single_term_slip_is_a_slip_even_in_a_step_saying_cannot(verifier):
    step, flags = first_error(verifier, r"Therefore, $a+b+c+d = (a+c)+(b-d)$ is even and cannot be $9$.")
    assert step == 0 and "wrong sign" in flags[0]


def test_a_vanished_term_is_a_slip_unless_its_value_is_stated(verifier):
    step, flags = first_error(verifier, "The discriminant is $5^2 - 4 \\cdot 2 \\cdot b = 25$.\nSo there are two roots.")
    assert step == 0 and "it seems dropped" in flags[0]
    step, flags = first_error(verifier, "We have $3x + 5 = 5$, so $x = 0$.\nThe answer is $0$.")
    assert step is None, flags


@pytest.mark.parametrize(
    "text, old, new",
    [
        # an equation rearranging the one before it; with a wrong coefficient it is no rearrangement
        ("We have $x+y+z=0,$ and squaring this equation gives \\[(x^2+y^2+z^2) + 2(xy+yz+zx) = 0.\\]"
         "Thus, $x^2+y^2+z^2=-2(xy+yz+zx).$\nSo the ratio is $-\\frac12$.", "=-2(xy+yz+zx)", "=-3(xy+yz+zx)"),
        # an equation a closed-form value stated right there solves; a value that does not solve it
        ("Since the triangle is right, we have \\[r^2 = 1^2 + \\left(2\\sqrt{2} - r\\right)^2 = 1 + 8 - 4\\sqrt{2}r + r^2,"
         "\\quad\\text{and}\\quad r = \\frac{9}{4\\sqrt{2}}.\\]\nThe area is $\\frac{81}{32}\\pi$.",
         "r = \\frac{9}{4\\sqrt{2}}", "r = \\frac{7}{4\\sqrt{2}}"),
    ],
)
def test_an_equation_the_solution_explains_is_no_slip_and_its_broken_twin_is(verifier, text, old, new):
    assert first_error(verifier, text)[0] is None
    broken = text.replace(old, new)
    assert broken != text
    assert first_error(verifier, broken)[0] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Therefore $a = b = \\frac{1}{\\sqrt{2}},$ or \\[\\cos x = \\sin x = \\frac{1}{\\sqrt{2}}.\\]\nThe only solution is $x = \\frac{\\pi}{4}$.",
        "If $\\tan x$ is the hypotenuse, then \\[\\tan^2 x = \\sin^2 x + \\cos^2 x = 1.\\]\nSo $x = \\frac{\\pi}{4}$.",
        # mv-1.8: of one function too, and set equal to a bound; two moduli equal to one value are two conditions
        "\\[\\tan^2 x + \\tan^2 y = \\frac{124}{13} \\tan x \\tan y = \\frac{62}{39}.\\]Therefore, $x = 1$.",
        "\\[\\sin x + 2 \\cos x = -3 \\tan x > 0.\\]Hence, $x$ is in the second quadrant.",
        "It is largest when $\\sin \\frac{x}{3} = \\sin \\frac{x}{11} = 1,$ which means $x = 1$.",
        "\\[|a + bi - 1| = |a + bi| = 8.\\]Then $(a - 1)^2 + b^2 = 64$ and $a^2 + b^2 = 64.$",
    ],
)
def test_a_chain_ending_in_a_number_states_values_not_a_rewrite(verifier, text):
    assert first_error(verifier, text)[0] is None


def test_a_chain_of_rewrites_that_differ_is_still_a_slip(verifier):
    step, flags = first_error(verifier, "We have \\[\\frac{\\tan x}{\\tan y} + \\frac{\\tan y}{\\tan x} = "
                                        "\\frac{\\tan^2 x - \\tan^2 y}{\\tan x \\tan y} = 5.\\]\nSo the answer is $5$.")
    assert step == 0 and flags, flags


def test_a_chain_ending_in_a_number_one_slip_from_an_identity_is_a_slip(verifier):
    step, flags = first_error(verifier, "If $\\sin x = -1,$ then $\\cos^2 x = 1 - \\sin^3 x = 0,$ so $\\cos x = 0.$\nThe answer is $0$.")
    assert step == 0 and "it would be with" in flags[0], flags


def test_an_equation_derived_under_a_value_of_another_symbol(verifier):
    # MATH test 1107 (round 9): "Set x = -1" fixes x; -2B = 1, so B = 1/2 is a slip in B, not a case of B
    text = ("Multiply both sides by $x^2 - 1 = (x-1)(x+1)$ to get $A(x+1) + B(x-1) = x + 2$.\n"
            "Set $x = 1$: $2A = 3$, so $A = \\frac{3}{2}$.\nSet $x = -1$: $-2B = 1$, so $B = \\frac{1}{2}$.\n"
            "Then $A - B = \\frac{3}{2} - \\frac{1}{2} = 1$.\nThe answer is $\\boxed{1}$.")
    assert first_error(verifier, text)[0] == 2
    assert first_error(verifier, text.replace("B = \\frac{1}{2}", "B = -\\frac{1}{2}").replace(
        "\\frac{3}{2} - \\frac{1}{2} = 1", "\\frac{3}{2} + \\frac{1}{2} = 2").replace("{1}$.", "{2}$."))[0] is None
    # a condition on the same symbol still makes a case: "either x - 3 = 0 or x - 7 = 0"
    assert first_error(verifier, "Either $x - 3 = 0$ or $x - 7 = 0$, so $x = 3$ or $x = 7$.")[0] is None


@pytest.mark.parametrize("text, question, step", [
    # MATH test 30 (round 7): the first equation times 3, the right side slipped
    ("Then $8f + 2g = 932$ and $14f + 3g = 1402$.\nMultiply the first equation by 3: $24f + 6g = 2786$.\n"
     "Multiply the second equation by 2: $28f + 6g = 2804$.\nSubtract: $4f = 18$, so $f = 4.5$.", "Find f.", 1),
    # both sides of an equation of the same step
    ("We have $2x + y = 5$ and $x - y = 1$. From $2x + y = 5$, multiply both sides by 3: $6x + 3y = 16$.", "Find x.", 0),
    # MATH test 916 (round 9): a heading announces it; the equation is the question's, on the second line of an align
    ("1. **Multiply the second equation by 4:**\n\\[ -8x - 12y + 36z = -12 \\]\n\\[ 9x - 8x = 30 - 12 \\]",
     "If \\begin{align*} 3x+4y-12z&=10,\\\\ -2x-3y+9z&=-4, \\end{align*} compute $x$.", 1),
])
def test_an_equation_multiplied_by_k_with_one_term_slipped(verifier, text, question, step):
    [p] = verifier.verify_batch([VerifyInput("t", question, text, None, None)])
    assert p.first_error_step == step and any("one term differs" in f for f in p.steps[step].flags)
    right = text.replace("2786", "2796").replace("3y = 16", "3y = 15").replace("4f = 18$, so $f = 4.5", "4f = 8$, so $f = 2").replace(
        "36z = -12", "36z = -16").replace("30 - 12", "30 - 16")
    [p] = verifier.verify_batch([VerifyInput("t", question, right, None, None)])
    assert not any("one term differs" in f for s in p.steps for f in s.flags)
    # another equation meant (two or more terms differ), or no multiple announced: left alone
    other = text.replace("24f + 6g = 2786", "24f + 9g = 2790").replace("-8x - 12y + 36z = -12", "-8x - 16y + 36z = -12"
                                                                       ).replace("6x + 3y = 16", "6x + 2y = 16")
    [p] = verifier.verify_batch([VerifyInput("t", question, other, None, None)])
    assert not any("one term differs" in f for s in p.steps for f in s.flags)
