"""Offline d4: a solution that ignores every number of its question (checks.logic_checks)."""

from __future__ import annotations

import pytest

from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput

from test_verifier_symbolic import HashEmbedder

QUESTION = "Weng earns $15 an hour for babysitting. Yesterday, she did 50 minutes of babysitting. How much did she earn?"
REFERENCE = "Weng earns 15/60 = 0.25 per minute.\nWorking 50 minutes, she earned 0.25 x 50 = 12.5.\nThe answer is: 12.5"


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(VerifierConfig(use_nli=False), embedder=HashEmbedder())


def profile(verifier, text, question=QUESTION):
    [p] = verifier.verify_batch([VerifyInput("c", question, text, REFERENCE, "12.5")])
    return p


def flags(p):
    return [f for s in p.steps for f in s.flags]


def test_a_solution_of_another_question_is_flagged_on_its_first_step(verifier):
    other = "Del picked 23 * 2 = 46 oranges.\nJuan picked 107 - 46 = 61 oranges.\nThe answer is: 61"
    p = profile(verifier, other)
    assert any(f.startswith("question ignored") and "15" in f and "50" in f for f in flags(p)), flags(p)
    assert p.d_logic == pytest.approx(1.0)
    assert p.first_error_step == 0


@pytest.mark.parametrize("text", [
    REFERENCE,
    # the givens used once, in another form of the same quantity, still count as used
    "She earned 50/60 of an hour.\nSo 15 * 50 / 60 = 12.5 dollars.\nThe answer is: 12.5",
    # a wrong solution that uses the question's numbers is wrong, not off the question
    "Weng earns 15 * 50 = 750.\nShe earned 750 dollars.\nThe answer is: 750",
])
def test_solutions_that_use_the_question_are_not_flagged(verifier, text):
    assert not any(f.startswith("question ignored") for f in flags(profile(verifier, text)))


def test_not_applied_with_fewer_than_two_distinctive_givens_or_to_latex_questions(verifier):
    other = "Del picked 23 * 2 = 46 oranges.\nJuan picked 107 - 46 = 61 oranges.\nThe answer is: 61"
    one_given = "Weng earns $15 an hour. How much does she earn in a day of 2 shifts?"
    assert not any(f.startswith("question ignored") for f in flags(profile(verifier, other, one_given)))
    latex = "Compute $15 \\cdot 50$ and add $3$."
    assert not any(f.startswith("question ignored") for f in flags(profile(verifier, other, latex)))
