"""Verifier mv-1.9 (issue 12, session 12): what a MATH solution means by a line that is false on its face.

A value tested and rejected (`1 = \\sqrt{11-2} + 4`, "which is not true") and a contradiction shown
("which simplifies to 6 = 14, contradiction") are no slips; an equality next to `\\pmod{1199}` is one of
residues (`50^{-1} = 24`); a decimal in the middle of a chain may be an intermediate rounded to the
digits written (`452 ÷ (1.05)^{14} = 452 ÷ 1.98 = 228.29`); a letter the question calls a function is
applied, not multiplied (`e(-1) = e(1)` for an even e); `st` in `(rs + st + tr)^2` is s·t; an equation whose
stated solution makes it hold for every other symbol is being solved. Each rule has a slip it must still
flag, and each test fails on the commit before mv-1.9."""

from __future__ import annotations

import pytest

from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput
from hardneg.verifier.arith import analyse_step, declared_functions, tokenize

from test_verifier_symbolic import HashEmbedder


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(VerifierConfig(use_nli=False), embedder=HashEmbedder())


def slips(verifier, text: str, question: str = "Find the value.") -> list[tuple[int, str]]:
    [p] = verifier.verify_batch([VerifyInput("t", question, text, None, None)])
    return [(i, f) for i, s in enumerate(p.steps) for f in s.flags if "slip" in f]


def statuses(text: str) -> list[str]:
    return [l.status for l in analyse_step(text).links]


def test_a_value_tested_and_rejected_is_no_slip(verifier):
    assert slips(verifier, "If $x=1$, we have $1 = \\sqrt{11-2} + 4$, which is not true, so $x=1$ is extraneous.") == []
    assert slips(verifier, "\\[1^2 + 2 + 1^2 + 2 = (2 + 2)^2 - 2 \\cdot 1 \\cdot 1,\\]which simplifies to $6 = 14,$ contradiction.") == []
    # the same equality claimed as true is a slip; a cue in another sentence excuses nothing
    assert slips(verifier, "If $x=1$, we have $1 = \\sqrt{11-2} + 4$, so $x=1$ works.")
    assert statuses("So $3 \\times 4 = 13$. It is impossible to split them.") == ["mismatch"]
    # a contradiction with something else than the equality itself excuses nothing (injected slips, seed 9)
    assert statuses("If $p = 16$, then $p = xy \\ge 1 \\cdot 54 = 45$, which is a contradiction.")[-1] == "mismatch"
    assert statuses("So $N$ is divisible by $3 \\cdot 8 = 14$, contradiction.") == ["mismatch"]


def test_an_equality_next_to_a_modulus_is_one_of_residues():
    assert statuses("We multiply both sides by $50^{-1}=24$ to solve $24x \\equiv 15 \\pmod{1199}$.") == ["ok"]
    assert statuses("We multiply both sides by $50^{-1}=25$ to solve $24x \\equiv 15 \\pmod{1199}$.") == ["mismatch"]
    assert statuses("Working modulo 7, $3 \\cdot 5 = 1$.") == ["ok"]
    # modulo 2 half of all slips would pass: no excuse there
    assert statuses("Working modulo 2, $3 \\cdot 5 = 17$.") == ["mismatch"]


def test_a_rounded_intermediate_of_a_chain():
    assert statuses("$$452\\div(1+0.05)^{14}= 452\\div1.98=228.29$$") == ["ok", "ok"]
    assert statuses("$$452\\div(1+0.05)^{14}= 452\\div1.98=228.39$$") == ["ok", "mismatch"]
    assert statuses("So 1/3 * 100 = 0.33 * 100 = 33.") == ["ok", "ok"]
    # an exact value the digits can hold leaves no room: 2.5 is a given, not a rounding
    assert statuses("So 2.5 * 100 = 245.") == ["mismatch"]
    assert statuses("So 4.5 * 2 = 4.6 * 2 = 9.2.") == ["mismatch", "ok"]


def test_letters_the_question_calls_functions_are_applied(verifier):
    q = "Let $e(x)$ be an even function, and let $o(x)$ be an odd function. Find $o(1)$."
    assert declared_functions(q) == {"e", "o"}
    assert declared_functions("Suppose the function $\\psi$ satisfies $\\psi(1) = 2$.") == {"psi"}
    assert declared_functions("the function $y = x^2$ has no name") == frozenset()
    step = "Since $e$ is even and $o$ is odd, $e(-1) = e(1)$ and $o(-1) = -o(1)$."
    assert slips(verifier, step, q) == []
    # read as products (no declaration), e(−1) = e(1) is false
    assert slips(verifier, step, "Find $o(1)$.")


def test_st_between_symbols_is_a_product(verifier):
    # MATH test #2575: read as one symbol "st", (st)^2 did not match the expansion of (rs + st + tr)^2
    good = "Expanding, \\[(ab+bc+st)^2 = (ab)^2 + (bc)^2 + (st)^2 + 2ab^2c + 2abst + 2bcst.\\]"
    assert slips(verifier, good) == []
    assert [i for i, _ in slips(verifier, good.replace("2abst", "3abst"))] == [0]
    assert [(t.kind, t.text) for t in tokenize("$(st)^2$")][2:4] == [("VAR", "s"), ("VAR", "t")]
    assert statuses("The $1$st and $2$nd terms add to $3 + 4 = 7$.") == ["ok"]


def test_a_value_that_makes_an_equation_hold_for_every_other_symbol_solves_it(verifier):
    # MATH test #2374: an equation in x with constants a, b; x = 0 makes it hold for every a and b
    q = "Let $a$ and $b$ be nonzero real constants. Find the number of distinct values of $x$ satisfying the equation."
    text = ("Combining the fractions on each side, we get\n"
            "\\[\\frac{ax - a^2 + bx - b^2}{ab} = \\frac{ax - a^2 + bx - b^2}{(x - a)(x - b)}.\\]Note that the numerators are equal.\n"
            "Hence, $x = {}$ is a solution.")
    assert slips(verifier, text.replace("{}", "0"), q) == []
    # a value that leaves it false for some a, b solves nothing
    assert [i for i, _ in slips(verifier, text.replace("{}", "1"), q)] == [1]
