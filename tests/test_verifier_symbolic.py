"""Symbolic equalities, strict rounding and the offline d4 (issue 12 "Must show").

Equation-level cases go through `analyse_step` (+ checks.equation_checks); the profile-level
cases through a MathVerifier with a deterministic hash embedder (the checks under test do not
depend on embeddings; the model-backed behaviour is covered in test_verifier.py)."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput
from hardneg.verifier.algebra import classify, random_points_equal
from hardneg.verifier.arith import analyse_step, parse_span, tokenize
from hardneg.verifier.checks import equation_checks


class HashEmbedder:
    """Identical texts get identical unit vectors; different texts are nearly orthogonal."""

    def encode(self, texts):
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out) if out else np.zeros((0, 384), np.float32)


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier(VerifierConfig(use_nli=False), embedder=HashEmbedder())


def node(latex: str):
    return parse_span([t for t in tokenize(latex) if t.kind != "PUNCT"])


def links(step: str):
    return [(l.text, l.status, l.kind) for l in analyse_step(step).links]


def flags(profile):
    return [(i, f) for i, s in enumerate(profile.steps) for f in s.flags if not f.startswith("note")]


# ------------------------------------------------------------------ algebra slips
@pytest.mark.parametrize(
    "step, kind",
    [
        ("$(x+1)^2 = x^2+1$", "expansion"),
        ("$2(x+3) = 2x+3$", "differ by"),
        ("$a^2 - b^2 = (a-b)^2$", "factoring"),
        ("$x^2-2x+1 = (x+1)^2$", "sign"),
    ],
)
def test_the_issue_algebra_slips_are_found_with_a_readable_reason(step, kind):
    [link] = analyse_step(step).links
    assert link.status == "mismatch" and link.kind == "algebra"
    assert link.note.startswith("algebra slip") and kind in link.note


def test_expansion_reason_shows_the_right_expansion():
    [link] = analyse_step("$(x+1)^2 = x^2+1$").links
    assert "x^2 + 2x + 1" in link.note


def test_true_identities_are_ok():
    for step in ("$(x+1)^2 = x^2+2x+1$", "$a^2 - b^2 = (a-b)(a+b)$", "$\\frac{x^2-1}{x-1} = x+1$", "$2(x+3) = 2x+6$"):
        statuses = [s for _, s, _ in links(step)]
        assert statuses == ["ok"], (step, statuses)


def test_symbolic_chain_with_a_symbolic_middle_link():
    got = links("$x^2+2x+1 = (x+1)^2 = x^2+2x+2$")
    assert got[0][1] == "ok"  # the symbolic middle member agrees with the left side
    assert got[1][1] == "mismatch" and got[1][2] == "algebra"
    # a chain whose middle link is wrong and whose ends agree is caught at the middle link
    got = links("$(x+1)(x-1) = x^2+x-1 = x^2-1$")
    assert [s for _, s, _ in got] == ["mismatch", "mismatch"]


def test_assignments_and_equations_are_not_identities():
    assert links("$x = 2$") == [("x = 2", "assign", "algebra")]
    assert links("$3x+1 = 7$") == [("3x+1 = 7", "equation", "algebra")]
    assert links("$3x + 5 = x + 11$")[0][1] == "equation"
    assert links("$AB^2 + BC^2 = AC^2$")[0][1] == "equation"


def test_equation_followed_by_a_wrong_solution_is_flagged_by_substitution():
    maths = [analyse_step("We have $3x + 5 = x + 11$."), analyse_step("So $2x = 7$.")]
    flagged, _ = equation_checks(maths, ["We have $3x + 5 = x + 11$.", "So $2x = 7$."])
    assert [i for i, _ in flagged] == [1]
    assert "x = 3" in flagged[0][1]
    ok, _ = equation_checks([analyse_step("We have $3x + 5 = x + 11$."), analyse_step("So $2x = 6$, thus $x = 3$.")])
    assert ok == []


@pytest.mark.parametrize(
    "text, flagged",
    [
        # naming the unknown is no condition on the equation that follows (word problems solved by algebra)
        ("Let x be his apples. Then x + 5 = 12, so x = 8.", True),
        ("Let $n$ denote it. Then $3n + 5 = n + 11$, so $2n = 7$.", True),
        ("Let x be his apples. Then x + 5 = 12, so x = 7.", False),
        # a condition still is: "let x = 3" tries a value, "if" supposes
        ("Let x + 5 = 12 hold for a moment, so x = 8 would follow.", False),
        ("If x + 5 = 12, so x = 8.", False),
    ],
)
def test_naming_an_unknown_is_no_condition(text, flagged):
    found, _ = equation_checks([analyse_step(text)], [text])
    assert bool(found) is flagged


def test_an_equation_being_solved_is_not_called_a_slip():
    steps = ["Expanding, $(x+1)(x+2) = x^2 + 5$.", "So $3x + 2 = 5$, hence $x = 1$."]
    maths = [analyse_step(s) for s in steps]
    [link] = maths[0].links
    assert link.status == "mismatch" and link.tentative  # leading terms agree: looks like an expansion
    _, withdrawn = equation_checks(maths, steps)
    assert id(link) in withdrawn  # ... but x = 1 satisfies it: an equation that was being solved


def test_function_definitions_are_not_products():
    assert [s for _, s, _ in links("$f(x) = x^2+2x+1 = (x+1)^2$")] == ["ok"]
    assert links("$f^{-1}(9) = 2$") == []
    assert [s for _, s, _ in links("$p(130-5p) = 130p - 5p^2$")] == ["ok"]  # p inside: a product


def test_random_point_check_for_rational_functions():
    lhs = node("$\\frac{1}{x} + \\frac{1}{y}$")
    good = node("$\\frac{x+y}{xy}$")
    bad = node("$\\frac{x+y+1}{xy}$")
    assert random_points_equal(lhs, good, "t")[0] == "ok"
    assert random_points_equal(lhs, bad, "t")[0] == "differs"


# ------------------------------------------------------------------ cut-offs
def test_unbounded_power_is_cut_off_with_a_flag_fast():
    t0 = time.perf_counter()
    sm = analyse_step("$(x+1)^{10^6} = x^{1000000} + 1$")
    assert time.perf_counter() - t0 < 5  # generous: the guard refuses before any expansion
    [link] = sm.links
    assert link.status == "unchecked" and "too large" in link.note
    assert any("not checked" in n for n in sm.notes)


def test_deep_nesting_is_cut_off_with_a_flag():
    deep = "(" * 500 + "x" + ")" * 500
    sm = analyse_step(f"${deep} = x$")
    assert [l.status for l in sm.links] == ["unchecked"]
    assert "cut off" in sm.links[0].note


def test_classify_refuses_huge_exponent_in_a_sum():
    big = node("$(x+1)^{100}$")
    status, _, note, _, _ = classify(big, node("$x^{100} + 1$"), "a", "b")
    assert status == "unchecked" and "too large" in note  # (x+1)^100 is not expanded: cut off, flagged


# ------------------------------------------------------------------ no lenient arithmetic
@pytest.mark.parametrize("step", ["12 − 1.20 = 11", "3 × 1.5 = 5", "2.4 + 3.3 = 6", "$12 - 1.20 = 11$"])
def test_plus_minus_one_is_a_slip_without_a_reason(step):
    assert [s for _, s, _ in links(step)] == ["mismatch"]


@pytest.mark.parametrize(
    "step",
    ["10/3 = 3 full boxes", "That is about 100/7 = 14 per day", "12/7 = 1.71", "100/3 ≈ 33", "So 7/2 = 3 rounded down"],
)
def test_rounding_is_accepted_when_the_step_says_so_or_digits_show_it(step):
    assert [s for _, s, _ in links(step)] == ["ok"], step


def test_boxed_result_on_the_same_line_is_clean(verifier):
    assert links("2+2=4 \\boxed{4}") == [("2+2 = 4", "ok", "arith")]
    [p] = verifier.verify_batch([VerifyInput("b", "What is 2+2?", "2+2=4 \\boxed{4}", "2+2=4", "4")])
    assert p.first_error_step is None and p.d_numeric == 0.0


def test_boxed_side_of_a_chain_still_counts():
    assert links("$h = \\frac{27}{4} = \\boxed{6 \\frac{3}{4}}$")[1][1] == "ok"
    assert [s for _, s, _ in links("$3+4 = \\boxed{8}$")] == ["mismatch"]


# ------------------------------------------------------------------ profiles: step and reason
def test_algebra_slip_profile_names_the_step_and_the_reason(verifier):
    q = "Expand $(x+1)^2 - x^2$."
    cand = "We expand the square: $(x+1)^2 = x^2 + 1$.\nSo $(x+1)^2 - x^2 = 1$.\nThe answer is $\\boxed{1}$."
    ref = "We have $(x+1)^2 = x^2 + 2x + 1$, so the expression is $\\boxed{2x+1}$."
    [p] = verifier.verify_batch([VerifyInput("a", q, cand, ref, "2x+1")])
    assert p.first_error_step == 0
    assert any("algebra slip (expansion)" in f for f in p.steps[0].flags)
    assert p.d_numeric == pytest.approx(verifier.config.algebra_slip_score)


def test_arithmetic_slip_is_told_apart_from_algebra(verifier):
    q = "Tom has 12 dollars and spends 1.20. How much is left?"
    cand = "Tom has 12 - 1.20 = 11 dollars left.\nThe answer is: 11"
    [p] = verifier.verify_batch([VerifyInput("s", q, cand, "12 - 1.20 = 10.80\n#### 10.80", "10.80")])
    assert p.first_error_step == 0
    assert any(f.startswith("arithmetic slip") for f in p.steps[0].flags)
    assert not any(f.startswith("algebra slip") for f in p.steps[0].flags)


# ------------------------------------------------------------------ offline d4
NOTEBOOKS_Q = "John buys 4 notebooks at $3 each and receives a 10% discount on the total. He pays with a $20 bill. How much change does he receive?"
REF = "4 * 3 = 12\n12 * 0.1 = 1.20\n12 - 1.20 = 10.80\n20 - 10.80 = 9.20\n#### 9.20"


def test_offline_d4_is_graded(verifier):
    clean = "4 * 3 = 12\n12 * 0.1 = 1.20\n12 - 1.20 = 10.80\n20 - 10.80 = 9.20\nThe answer is: 9.20"
    stale = "4 * 3 = 12\n12 * 0.1 = 1.20\n12 - 1.20 = 10.80\n20 - 12 = 8\nThe answer is: 8"  # value flow (paper Table 2)
    changed = "4 * 3 = 12\n13 * 0.1 = 1.30\n13 - 1.30 = 11.70\n20 - 11.70 = 8.30\nThe answer is: 8.30"
    question = "4 * 3 = 12\n12 * 0.1 = 1.20\n12 - 1.20 = 10.80\n25 - 10.80 = 14.20\nThe answer is: 14.20"
    conclusion = "4 * 3 = 12\n12 * 0.1 = 1.20\n12 - 1.20 = 10.80\n20 - 10.80 = 9.20\nThe answer is: 7"
    items = [VerifyInput(k, NOTEBOOKS_Q, c, REF, "9.20") for k, c in
             (("clean", clean), ("stale", stale), ("changed", changed), ("question", question), ("conclusion", conclusion))]
    ps = {p.id: p for p in verifier.verify_batch(items)}
    assert ps["clean"].d_logic == 0.0 and ps["clean"].first_error_step is None
    assert ps["stale"].d_logic == pytest.approx(0.9)
    assert any("value-flow contradiction" in f for _, f in flags(ps["stale"]))
    assert ps["conclusion"].first_error_step == 4
    assert any("conclusion contradiction" in f for _, f in flags(ps["conclusion"]))
    assert ps["conclusion"].d_logic == pytest.approx(0.8)
    assert ps["question"].first_error_step == 3 and ps["question"].d_logic == pytest.approx(0.5)
    assert ps["changed"].first_error_step == 1 and ps["changed"].d_logic == pytest.approx(0.6)
    assert any("changed quantity" in f for _, f in flags(ps["changed"]))
    values = {round(p.d_logic, 3) for p in ps.values()}
    assert len(values) >= 4  # graded: several distinct levels, not 0 / 0.9


def test_d4_channel_says_programmatic_only_without_nli(verifier):
    [p] = verifier.verify_batch([VerifyInput("c", NOTEBOOKS_Q, "4 * 3 = 12\nThe answer is: 12", REF, "9.20")])
    assert "value-flow-only" in p.channels and "logic_programmatic" in p.signals


def test_solution_substituted_into_the_questions_equation(verifier):
    q = "Solve for $x$: $3x + 5 = 20$."
    wrong = "Subtract 5 from both sides: $3x = 15$.\nSo $x = 6$.\nThe answer is $\\boxed{6}$."
    right = "Subtract 5 from both sides: $3x = 15$.\nSo $x = 5$.\nThe answer is $\\boxed{5}$."
    ps = verifier.verify_batch([VerifyInput("w", q, wrong, right, "5"), VerifyInput("r", q, right, right, "5")])
    assert ps[0].first_error_step == 1
    assert any("does not satisfy the question's 3x + 5 = 20" in f or "gives x = 5" in f for f in ps[0].steps[1].flags)
    assert ps[1].first_error_step is None


# ------------------------------------------------------------------ issue 12, session 4: evidence that a link is a claimed identity
def _only(step):
    [link] = analyse_step(step).links
    return link


def test_rewrite_cue_makes_a_factoring_a_claimed_identity():
    link = _only("Factoring, we have $x^2 - 16x + 60 = (x-6)(x-11)$.")
    assert link.status == "mismatch" and link.kind == "algebra"
    assert "(x-6)(x-11) expands to x^2 - 17x + 66" in link.note


def test_rewrite_cue_is_overridden_by_an_equation_in_the_sentence():
    # "Simplifying, we have 18(x+y) = xy, so ..." and "Expanding f(f(x)) = f(x) gives ...": equations
    assert [l.status for l in analyse_step("Simplifying, we have $18(x+y)=xy$, so $xy - 18x - 18y = 0$").links] == [
        "equation", "equation"]
    step = "Expanding $f(f(x)) = f(x)$ gives us $$(x^2-3x)^2-3(x^2-3x)=x^2-3x.$$ Then subtract from both sides."
    assert all(l.status != "mismatch" for l in analyse_step(step).links)


def test_proportional_sides_are_a_coefficient_slip_but_minus_one_is_an_equation():
    link = _only("$4x+4y = 5(x+y)$")
    assert link.status == "mismatch" and "4/5 times the right side" in link.note
    assert _only("$1 - iz = -1 + iz$").status == "equation"  # X = −X: an equation being solved


def test_equal_square_roots_compare_radicands():
    link = _only("$\\sqrt{3^2 + w^2 + 12^2} = \\sqrt{153 - w^2}$")
    assert link.status == "mismatch" and "wrong sign" in link.note
    assert _only("$\\sqrt{3^2 + w^2 + 12^2} = \\sqrt{153 + w^2}$").status == "ok"


@pytest.mark.parametrize(
    "step, fix",
    [
        ("$x^2 + 6x + 9 = (x+3)^3$", "the exponent 2 in place of 3 on the right side"),
        ("$x^2 - 16x + 60 = (x-6)(x-11)$", "10 in place of 11 on the right side"),
        ("$54x^3 \\cdot 3x = 162x^5$", "the exponent 4 in place of 5"),
        ("$5x^2-20x+1357 = 7(x^2-4x)+1357$", "5 in place of 7"),
    ],
)
def test_one_token_away_from_an_identity_is_a_slip_naming_the_token(step, fix):
    link = _only(step)
    assert link.status == "mismatch" and link.tentative
    assert fix in link.note


@pytest.mark.parametrize(
    "step",
    [
        "$x^2 = x^3$",  # two monomials set equal: an equation to solve
        "$2x + 3 = 5x - 9$",
        "$x^2+5x+6 = 2x+10$",
        "Setting the factored form equal, we get $x^2 - 16x + 60 = (x-6)(x-11)$",  # said to be an equation
        "$x^2 - 16x + 60 = x - 6$",
    ],
)
def test_genuine_equations_are_not_one_token_slips(step):
    assert all(l.status != "mismatch" for l in analyse_step(step).links)


def test_a_lone_bracketed_factor_of_lower_degree_is_a_missing_factor():
    link = _only("$x^2 - 16x + 60 = (x - 6)$")
    assert link.status == "mismatch" and "factor seems to be missing" in link.note
    assert _only("$(x+1) = 77$").status == "equation"


def test_one_token_slip_found_at_its_step_and_withdrawn_when_the_solution_satisfies_it(verifier):
    q = "Expand the square."
    bad = "We have $x^2 + 6x + 9 = (x+3)^3$.\nSo the answer is $\\boxed{1}$."
    p = verifier.verify_batch([VerifyInput("a", q, bad, None, "1")])[0]
    assert p.first_error_step == 0 and any("exponent 2 in place of 3" in f for f in p.steps[0].flags)
    # solved as an equation: x = -3 and x = -2 satisfy (x+3)^2 = (x+3)^3, so it is withdrawn
    solved = "We have $x^2 + 6x + 9 = (x+3)^3$.\nSo $x = -2$.\nThe answer is $\\boxed{-2}$."
    p2 = verifier.verify_batch([VerifyInput("b", q, solved, None, "-2")])[0]
    assert p2.first_error_step is None


def test_question_echo_is_redundant_for_d2_and_flagged(verifier):
    q = "Tom has 3 apples and buys 5 more apples at the store. How many apples does he have now?"
    ref = "Tom has 3 + 5 = 8 apples.\nThe answer is 8"
    echo = "Tom has 3 apples and buys 5 more apples at the store.\nHow many apples does he have now?"
    good = "He has 3 + 5 = 8 apples.\nThe answer is 8"
    pe, pg = verifier.verify_batch([VerifyInput("e", q, echo, ref, "8"), VerifyInput("g", q, good, ref, "8")])
    assert any("question echo" in f for s in pe.steps for f in s.flags)
    assert pe.d_structure == pytest.approx(1.0)  # both reference steps missing, both steps redundant
    assert not any("question echo" in f for s in pg.steps for f in s.flags)
    assert pe.first_error_step is None  # redundancy is structure (d2), not an error step


def test_one_token_rule_covers_rational_functions_but_not_a_negated_side():
    link = _only("$\\frac{2}{x + 1} - x = \\frac{2 - x^3 - x}{x + 1}$")
    assert link.status == "mismatch" and "the exponent 2 in place of 3 on the right side" in link.note
    # X = −X: an equation shown to have no solution (MATH test), not a slip in the minus sign
    step = "$\\frac{3(x + 1)(x - 7)}{(x - 1)(x + 1)(x - 7)} = -\\frac{3}{x - 1}$"
    assert all(l.status != "mismatch" for l in analyse_step(step).links)


# ------------------------------------------------------------------ subscripts and degrees
def test_subscripted_names_are_single_unknowns():
    got = links("Expanding, $(a_1 + a_{n+1})^2 = a_1^2 + a_{n+1}^2$")
    assert [(s, k) for _, s, k in got] == [("mismatch", "algebra")]
    assert [s for _, s, _ in links("Expanding, $(a_1 + a_{n+1})^2 = a_1^2 + 2a_1a_{n+1} + a_{n+1}^2$")] == ["ok"]
    assert [s for _, s, _ in links("$x_1x_2 + x_1 = x_1(x_2 + 1)$")] == ["ok"]
    assert links("$a_12$") == []  # LaTeX a_1·2 or a typo for a_{12}: left alone


def test_degree_marks_are_a_unit_not_a_power():
    assert [s for _, s, _ in links("$180^\\circ - 50^{\\circ} = 130^\\circ$")] == ["ok"]
    assert [s for _, s, _ in links("$180^\\circ - 50^{\\circ} = 120^\\circ$")] == ["mismatch"]


def test_an_angle_is_one_unknown():
    got = links("Distributing, $2(\\angle A + \\angle B) = 2\\angle A + \\angle B$")
    assert [(s, k) for _, s, k in got] == [("mismatch", "algebra")]
    assert [s for _, s, _ in links("Distributing, $2(\\angle A + \\angle B) = 2\\angle A + 2\\angle B$")] == ["ok"]


def test_degrees_inside_a_trig_function_are_not_radians():
    step = "\\[[EAF] = \\frac12\\cdot11\\cdot13\\cdot\\sin{120^\\circ} = \\frac {143\\sqrt3}4.\\]"
    assert all("sin" not in text for text, _, _ in links(step))  # 120° read as 120 rad would be a false slip
    assert [s for _, s, _ in links("$\\sin{30} + 1 = 2$")] != []  # the guard is only about the degree mark


def test_degrees_anywhere_after_a_trig_function_stay_opaque():
    """`\\sin (600^\\circ - 360^\\circ)` is a sine of degrees: never evaluated as radians (MATH test #1697)."""
    for step in (r"$\sin 600^\circ = \sin (600^\circ - 360^\circ) = \sin 240^\circ = -\frac{\sqrt{3}}{2}$.",
                 r"$\cos 315^\circ = \frac{\sqrt{2}}{2}$."):
        assert not [l for l in analyse_step(step).links if l.status == "mismatch"], step
    assert [l for l in analyse_step(r"$180^\circ - 50^\circ = 120^\circ$.").links if l.status == "mismatch"]


def test_a_conversion_to_degrees_is_not_an_equality_of_numbers():
    """MATH test #4545: radians converted to degrees; both sides in degrees are still checked."""
    conv = analyse_step(r"$\frac{\pi}{3} = \frac{180^\circ}{\pi} \cdot \frac{\pi}{3} = 60^\circ$.")
    assert not [l for l in conv.links if l.status == "mismatch"]
    slip = analyse_step(r"$\angle B = 2 \cdot 35^\circ = 75^\circ$.")
    assert [l for l in slip.links if l.status == "mismatch"]


def test_an_answer_read_from_a_table_is_no_conclusion_contradiction(verifier):
    # the sum is worked in a table the parser skips, and the answer is read from it (MATH test #4071)
    q = "Add 313.9 to 12.6. Express the result as a decimal."
    cand = ("We have \\[\\begin{array}{@{}c@{}c@{}c@{}c@{}c} & 3 & 1 & 3. & 9 \\\\ + & & 1 & 2. & 6 \\\\ \\hline "
            "& 3 & 2 & 6. & 5 \\end{array}\\]\nSince $9+6=15$ in the right-most column, we record the 5 and carry the 1.\n"
            "The answer is $\\boxed{326.5}$.")
    no_table = cand[cand.index("\nSince") + 1 :]
    ps = verifier.verify_batch([VerifyInput(k, q, c, None, "326.5") for k, c in (("table", cand), ("no table", no_table))])
    assert not any("conclusion contradiction" in f for _, f in flags(ps[0]))
    assert any("conclusion contradiction" in f for _, f in flags(ps[1]))
