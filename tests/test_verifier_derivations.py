"""Verifier mv-1.27 (session 25): a derivation read across headings and lines.

- "the equation for the combined length" names an equation; it does not make it a condition, so the
  next equation ("Combining like terms gives 5b + 7 = 37") is compared with it;
- a line that ends on a word ends there: "Solve for b" then "5b = 30" on the next line is no b·5b;
- "sin A", "cos^2 A", "log_2 8" without a backslash are functions (not "A = 2"), but not before a number
  that plain text may give in degrees, nor a word ("a tan bucket");
- off the reference's path: a number of the question in place of the off-path value itself ("2 + 6 = 8"
  minutes a group, then "110 / 8", where 110 / 10 is the reference's) names the step that made it; an
  intermediate value answered is named where the solution takes it for the answer: the sentence that says so,
  or, where only the answer line does, the computation;
- the n-th term of a progression written with another term's index (`a + 4d` for the fourth), a
  2×2 or 3×3 determinant whose expansion is not its value (`bc - ad`), and a root solved in a case
  (`x > 3`) that breaks the case's condition and is kept (`x = 2`) are caught.
Each rule has a slip it must flag and a derivation it must leave alone."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput
from hardneg.verifier.arith import analyse_step
from hardneg.verifier.checks import off_path, question_info
from hardneg.verifier.steps import split_steps

from test_verifier_symbolic import HashEmbedder


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(VerifierConfig(use_nli=False), embedder=HashEmbedder())


ROPES_Q = ("The red rope is four times the length of the blue rope, and the yellow rope is 7 cm longer than the blue "
           "rope. The three ropes are 37 cm long together. How long is the red rope?")
ROPES = ("## Step 1: Define the variables\nLet b be the length of the blue rope. The red rope is 4b, and the yellow rope "
         "is b + 7.\n## Step 2: Write the equation for the combined length\n4b + b + (b + 7) = 37.\n"
         "## Step 3: Simplify the equation\nCombining like terms gives {combined} = 37.\n"
         "## Step 4: Solve for b\n{solved}\n## Step 5: Find the red rope\nThe red rope is 4 * {b} = {red} cm.\n"
         "The final answer is: $\\boxed{{{red}}}$")


def test_the_equation_for_a_quantity_is_no_condition(verifier):
    wrong = ROPES.format(combined="5b + 7", solved="5b = 30, so b = 6.", b=6, red=24)
    right = ROPES.format(combined="6b + 7", solved="6b = 30, so b = 5.", b=5, red=20)
    [p, q] = verifier.verify_batch([VerifyInput("w", ROPES_Q, wrong, None, "20"), VerifyInput("r", ROPES_Q, right, None, "20")])
    assert p.first_error_step == 2
    assert any("5b + 7 = 37 gives b = 6" in f for f in p.steps[2].flags)
    assert q.first_error_step is None


@pytest.mark.parametrize("text, links", [
    ("Solve for b\n5b = 30, so b = 6.", ["5b = 30", "b = 6"]),
    ("Find x\n2x = 30", ["2x = 30"]),
    # a line that opens with an operator or a relation goes on with the line before
    ("x + y\n= 5", ["x + y = 5"]),
    ("the total is x\n+ 3 = 5", ["x + 3 = 5"]),
])
def test_a_line_that_ends_on_a_word_ends_there(text, links):
    assert [link.text for link in analyse_step(text).links] == links


@pytest.mark.parametrize("text, links", [
    ("Substitute sin A = 2 cos A: (2 cos A)^2 + cos^2 A = 1.", ["sin A = 2 cos A", "(2 cos A)^2 + cos^2 A = 1"]),
    ("log_2 8 = 3", ["log_2 8 = 3"]),
    ("sin(x) = 1/2", ["sin(x) = 1/2"]),
    ("sin 30 = 0.5", []),                               # degrees, most likely: not read
    ("sin(30) = 1/2", []),
    ("He has a tan bucket of 5 + 3 = 8 gallons", ["5 + 3 = 8"]),
    ("a log 12 feet long is cut: 12 / 3 = 4", ["12 / 3 = 4"]),
])
def test_functions_written_without_a_backslash(text, links):
    assert [link.text for link in analyse_step(text).links] == links


def test_a_wrong_log_value_in_plain_text_is_a_mismatch():
    [link] = analyse_step("log_2 8 = 4").links
    assert link.status == "mismatch"


SHOW_Q = ("A show is 2 hours long, with a 10-minute intermission. Each group needs 2 minutes to get on stage, 6 minutes "
          "to perform and 2 minutes to leave the stage. How many groups can perform?")
SHOW_REF = ("The show is 2 * 60 = <<2*60=120>>120 minutes.\nWithout the intermission, 120 - 10 = <<120-10=110>>110 minutes are left.\n"
            "Each group needs 2 + 6 + 2 = <<2+6+2=10>>10 minutes.\nSo 110 / 10 = <<110/10=11>>11 groups can perform.\n#### 11")


def _off_path(steps: list[str], answer: str):
    body, ref_answer = SHOW_REF.split("####")
    ref_comps = [c for s in split_steps(body) for c in analyse_step(s).computations]
    return off_path([analyse_step(s) for s in steps], ref_comps, Fraction(ref_answer.strip()), question_info(SHOW_Q),
                    Fraction(answer))


def test_a_question_number_in_place_of_the_off_path_value_names_the_step_that_made_it():
    steps = ["The show is 2 * 60 = 120 minutes.", "After the intermission, 120 - 10 = 110 minutes are left.",
             "Each group needs 2 minutes to get on stage and 6 to perform, so 2 + 6 = 8 minutes per group.",
             "110 / 8 = 13.75, so 13 groups can perform.", "The answer is 13."]
    step, message = _off_path(steps, "13")
    assert step == 2 and "2 + 6 = 8" in message
    # the value right, the next operation wrong: that one is the error
    wrong_next = steps[:2] + ["Each group needs 2 + 6 + 2 = 10 minutes.", "110 - 10 = 100, so 100 groups.", "The answer is 100."]
    assert _off_path(wrong_next, "100")[0] == 3


KITTENS_Q = ("The Doubtfire sisters are driving home with 7 kittens adopted from the local animal shelter when their mother "
             "calls to inform them that their two house cats have just had kittens. She says that Patchy, the first cat, has "
             "had thrice the number of adopted kittens, while Trixie, the other cat, has had 12. How many kittens does the "
             "Doubtfire family now have?")
KITTENS_REF = ("Patchy has just had 3 * 7 = <<3*7=21>>21 kittens\nSince Trixie's kittens are 12, both cats have 21 +12 = <<21+12=33>>33 "
               "kittens.\nCombining the adopted kittens with those from the two cats, the Doubtfire family now has 7 + 33 = "
               "<<7+33=40>>40 kittens.\n#### 40")


@pytest.mark.parametrize("last, step", [
    (["The answer is 33."], 2),                            # only the answer line states it: the computation is the error
    (["Therefore, the final answer is \\(\\boxed{33}\\)."], 2),
    (["So the family has 33 kittens."], 3),                # a sentence states it: that sentence is
    (["In all 7 + 33 = 40 kittens.", "The answer is 33."], 4),  # computed on past it: the answer line picked it
])
def test_an_intermediate_answered_is_named_where_it_is_taken_for_the_answer(last, step):
    steps = ["Patchy had thrice the number of adopted kittens: 3 * 7 = 21 kittens.", "Trixie had 12 kittens.",
             "Together the cats had 21 + 12 = 33 kittens.", *last]
    body, ref_answer = KITTENS_REF.split("####")
    ref_comps = [c for s in split_steps(body) for c in analyse_step(s).computations]
    found = off_path([analyse_step(s) for s in steps], ref_comps, Fraction(ref_answer.strip()), question_info(KITTENS_Q),
                     Fraction(33), steps)
    assert found is not None and found[0] == step and "reaches on its way" in found[1]


@pytest.mark.parametrize("steps, step", [
    (["The fourth term is", "\\[ a + 4d = 8 \\]"], 1),                 # the display after "is"
    (["So $a_{10} = a_1 + 10d = 35$."], 0),
    (["The sixth term is $ar^6 = 64$."], 0),
])
def test_a_term_of_a_progression_with_another_terms_index_is_a_formula_error(steps, step):
    from hardneg.verifier.series import sequence_term_checks

    [(at, reason)] = sequence_term_checks(steps)
    assert at == step and reason.startswith("formula error: term")


@pytest.mark.parametrize("steps", [
    ["The fourth term is", "\\[ a + 3d = 8 \\]"],
    ["The third term minus the second term is", "\\[ (a + 2d) - (a + d) = d \\]"],   # a difference of terms
    ["The seventh term equals $ar^6$.", "$a_{15} = a_1r^{14}$"],
    ["The second term is $a + d = 5$."],
])
def test_the_right_index_and_differences_of_terms_are_left_alone(steps):
    from hardneg.verifier.series import sequence_term_checks

    assert sequence_term_checks(steps) == []


@pytest.mark.parametrize("formula, flagged", [
    (r"\begin{vmatrix} a & b \\ c & d \end{vmatrix} = bc - ad", True),
    (r"\begin{vmatrix} a & b \\ c & d \end{vmatrix} = ad - bc", False),
    (r"\begin{vmatrix} 2 & 1 \\ 7 & -3 \end{vmatrix} = (2)(-3) + (1)(7)", True),
    (r"\begin{vmatrix} 2 & 1 \\ 7 & -3 \end{vmatrix} = (2)(-3) - (1)(7) = -13", False),
    (r"\det \begin{pmatrix} 1 & 2 & 3 \\ 4 & 5 & 6 \\ 7 & 8 & 10 \end{pmatrix} = 3", True),
    (r"\det \begin{pmatrix} 1 & 2 & 3 \\ 4 & 5 & 6 \\ 7 & 8 & 10 \end{pmatrix} = -3", False),
    (r"\begin{vmatrix} a & b \\ c & d \end{vmatrix} = 4", False),       # a determinant given: an equation
    (r"\begin{vmatrix} x & 1 \\ 1 & x \end{vmatrix} = x + 2", False),   # an equation to solve
    (r"\begin{vmatrix} \mathbf{i} & \mathbf{j} & \mathbf{k} \\ 1 & 2 & 3 \\ 4 & 5 & 6 \end{vmatrix} = -3\mathbf{i}", False),
])
def test_a_determinant_expanded_wrongly_is_a_slip(formula, flagged):
    from hardneg.verifier.algebra import determinant_checks

    steps = [f"We compute \\[ {formula}. \\]"]
    assert bool(determinant_checks([analyse_step(steps[0])], steps)) is flagged


PIECES = ["We solve f(x) = 0 on each piece.", "1. **First piece (\\(x \\le 3\\)):**", "\\[ 2x + 1 = 0 \\implies x = -\\frac{1}{2} \\]",
          "2. **Second piece (\\(x > 3\\)):**", "\\[ 8 - 4x = 0 \\implies x = 2 \\]", "3. **Add the solutions:**",
          "\\[ -\\frac{1}{2} + 2 = \\frac{3}{2} \\]"]


@pytest.mark.parametrize("steps, flagged", [
    (PIECES, 4),
    (["If $x \\ge 0$, then $x + 3 = -2$, so $x = -5$."], 0),
    (PIECES[:5] + ["But 2 is not greater than 3, so this piece has no root."], None),   # set aside
    (["If $x \\ge 0$, then $x + 3 = -2$, so $x = -5$, which is not allowed."], None),
    (["If $2 < x \\le 3$, then $x - 1 = 5$, so $x = 6$."], None),                       # a bound on both sides
    (["If $3 < x$, then $(x-1) = (x-2) + (x-3)$, which gives $x = 4$."], None),          # the number on the left
    (["If $x = -1$, then $x^3 = -1$."], None),                                           # a trial value, no bound
])
def test_a_root_outside_its_case_is_kept_by_mistake(steps, flagged):
    from hardneg.verifier.algebra import case_root_checks

    found = case_root_checks([analyse_step(s) for s in steps], steps)
    assert [i for i, _ in found] == ([] if flagged is None else [flagged])
