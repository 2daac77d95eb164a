"""Model-free checks: value flow, formula errors, alignment (d2/d3), aggregates."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hardneg.verifier import VerifierConfig, aggregate
from hardneg.verifier.alignment import align_steps, needleman_wunsch, order_score, spearman, structure_score
from hardneg.verifier.arith import analyse_step
from hardneg.verifier.checks import answer_value, formula_errors, logic_checks, method_starts, question_info, ref_dependencies, reused_values, value_flow, wrong_operation
from hardneg.verifier.steps import split_steps

NOTEBOOKS_Q = (
    "John buys 4 notebooks at $3 each and receives a 10% discount on the total. "
    "He pays with a $20 bill. How much change does he receive?"
)
TABLE2_HARD_NEG = (
    "Step 1: Total before discount = 4 × $3 = $12. Step 2: Discount per notebook = 10% × $3 = $0.30. "
    "Step 3: Total discount = 4 × $0.30 = $1.20. Step 4: Total after discount = $12 − $1.20 = $10.80. "
    "Step 5: Change = $20 − $12 = $8."
)
TABLE2_CORRECT = (
    "Step 1: Total before discount = 4 × $3 = $12. Step 2: Discount = 10% × $12 = $1.20. "
    "Step 3: Total after discount = $12 − $1.20 = $10.80. Step 4: Change = $20 − $10.80 = $9.20."
)


def maths(text: str):
    steps = split_steps(text)
    return steps, [analyse_step(s) for s in steps]


def test_value_flow_flags_the_stale_value_of_table_2():
    steps, ms = maths(TABLE2_HARD_NEG)
    flags = value_flow(ms, Fraction(8))
    assert [j for j, _ in flags] == [4]
    assert "10.80" in flags[0][1] and "12" in flags[0][1] and "step 3" in flags[0][1]


def test_value_flow_accepts_the_correct_solution_and_gsm8k_references():
    _, ms = maths(TABLE2_CORRECT)
    assert value_flow(ms, Fraction("9.2")) == []
    ref = (
        "Maila read 12 x 2 = <<12*2=24>>24 pages today.\nSo she was able to read a total of 12 + 24 = <<12+24=36>>36 pages "
        "since yesterday.\nThere are 120 - 36 = <<120-36=84>>84 pages left to be read.\nSince she wants to read half of the "
        "remaining pages tomorrow, then she should read 84/2 = <<84/2=42>>42 pages.\n#### 42"
    )
    _, ms = maths(ref)
    assert value_flow(ms, Fraction(42)) == []


def test_value_flow_stale_question_number():
    text = "She has 50 apples and gives away 20: 50 - 20 = 30.\nThen she buys 10 more: 50 + 10 = 60.\nThe answer is: 60"
    _, ms = maths(text)
    flags = value_flow(ms, Fraction(60))
    assert [j for j, _ in flags] == [1]


def test_value_flow_keeps_a_quantity_the_reference_keeps_using():
    # GSM8K train 4027: 14/2 = 7 cheesecakes is a comparison nothing uses later, and 14 is used again on purpose
    ref = ("Lionel has enough Graham crackers to make 14/2 = 7 Oreo cheesecakes\n"
           "Lionel has enough Oreos to make 15/3 = 5 Oreo cheesecakes\n"
           "Therefore, the maximum number of cheesecakes Lionel can make is 5.\n"
           "Lionel needs 2 * 5 = 10 boxes of Graham crackers\nHe'll have 14 - 10 = 4 boxes left over\nThe answer is: 4")
    _, ms = maths(ref)
    assert [j for j, _ in value_flow(ms, Fraction(4))] == [4]  # without a reference: read as stale
    assert value_flow(ms, Fraction(4), live=reused_values(ms)) == []
    # the paper's Table 2: its reference computes with 12 in two steps, but never after 12 − 1.20 = 10.80
    _, stale = maths(TABLE2_HARD_NEG)
    assert [j for j, _ in value_flow(stale, Fraction(8), live=reused_values(maths(TABLE2_CORRECT)[1]))] == [4]


def test_value_flow_reads_the_computations_of_one_line_in_order():
    # GSM8K test 47 written as prose lines: 5 is used in the same line, so 200 is not stale later
    ties = ("He bought 200 / 40 = 5 blue ties. So he bought 5 * 2 = 10 red ties. Each red tie cost $40 * .5 = $20 more.\n"
            "So he spent $200 + $600 = $800 on ties.\nThe answer is: 800")
    assert value_flow(maths(ties)[1], Fraction(800)) == []
    # GSM8K test 37: "11 x 15 = 165" checks a 165 the same line computed first
    lego = ("He spent 8 x 20 = 160. He earned 160 + 5 = 165. He sold 11 lego sets because 11 x 15 = 165.\n"
            "He has 13 - 11 = 2 sets left.\nThe answer is: 2")
    assert value_flow(maths(lego)[1], Fraction(2)) == []
    # a total the line computes and nothing uses, then the value it updated: still stale
    pens = "He buys 4 * 3 = 12 dollars of pens. The tax is 12 * 0.1 = 1.2, so he pays 12 + 1.2 = 13.2.\nHis change is 20 - 12 = 8.\nThe answer is: 8"
    flags = value_flow(maths(pens)[1], Fraction(8))
    assert [j for j, _ in flags] == [1] and "13.2 was computed from 12" in flags[0][1]


RECT_Q = "A rectangular garden is 6 meters long and 4 meters wide. What is the perimeter of the garden?"


def test_area_for_perimeter_is_a_formula_error():
    steps, ms = maths("The area is 6 * 4 = 24.\nThe answer is: 24")
    flags = formula_errors(ms, steps, question_info(RECT_Q), Fraction(24))
    assert [i for i, _ in flags] == [0] and "perimeter" in flags[0][1]
    steps, ms = maths("The perimeter is 2 * (6 + 4) = 20.\nThe answer is: 20")
    assert formula_errors(ms, steps, question_info(RECT_Q), Fraction(20)) == []


def test_perimeter_for_area_and_circles():
    q = "A rectangle has sides 7 cm and 3 cm. What is its area?"
    steps, ms = maths("Add the sides: 2 * (7 + 3) = 20.\nThe answer is: 20")
    assert formula_errors(ms, steps, question_info(q), Fraction(20))
    steps, ms = maths("The area is 7 * 3 = 21.\nThe answer is: 21")
    assert formula_errors(ms, steps, question_info(q), Fraction(21)) == []
    cq = "A circle has a radius of 5. What is its circumference?"
    steps, ms = maths("$\\pi \\cdot 5^2 = 25\\pi$\nThe answer is: 25\\pi")
    info = question_info(cq)
    assert info.wants == "circumference"
    # 25π is not a closed rational, so the final answer has no exact value: the step names no "area" either
    assert formula_errors(ms, steps, info, None) == []
    steps, ms = maths("The area is $3.14 \\cdot 5^2 = 78.5$.\nThe answer is: 78.5")
    assert formula_errors(ms, steps, info, Fraction("78.5"))


def test_percentage_used_as_a_whole_number():
    steps, ms = maths("The total is 4 * 3 = 12.\nThe discount is 12 * 10 = 120.\nSo he pays 120.")
    flags = formula_errors(ms, steps, question_info(NOTEBOOKS_Q), Fraction(120))
    assert [i for i, _ in flags] == [1] and "10%" in flags[0][1]
    steps, ms = maths("The total is 4 * 3 = 12.\nThe discount is 12 * 10 / 100 = 1.2.")
    assert formula_errors(ms, steps, question_info(NOTEBOOKS_Q), Fraction("1.2")) == []


def test_reference_operation_mismatch():
    _, ref_ms = maths("Change = 20 - 12 = 8.")
    ref_comps = [c for m in ref_ms for c in m.computations]
    steps, ms = maths("Change = 20 + 12 = 32.")
    flags = formula_errors(ms, steps, question_info("He had 20 and spent 12. How much is left?"), Fraction(32), ref_comps)
    assert flags and "different operation" in flags[0][1]


def _wrong_op(step: str):
    [link] = [l for l in analyse_step(step).links if l.status == "mismatch"]
    return wrong_operation(link)


@pytest.mark.parametrize(
    "step, other",
    [
        ("So he buys 12 × 4 = 16 apples.", "16 is 12 + 4"),
        ("There are 20 − 8 = 160 left.", "160 is 20 × 8"),
        ("$12 \\times 4 = 16$.", "16 is 12 + 4"),
        ("Each gets 10 / 5 = 50 cookies.", "50 is 10 × 5"),
        ("He has 20 - 8 = 28 left", "28 is 20 + 8"),
        ("He paid $83/necklace x 2 necklaces = $85 on necklaces.", "85 is 83 + 2"),
    ],
)
def test_wrong_operation_is_named(step, other):
    msg = _wrong_op(step)
    assert msg is not None and other in msg and "the operation is wrong" in msg


@pytest.mark.parametrize(
    "step",
    [
        "3 × 2 = 5 boxes.",  # 5 is 3 + 2 but also a near miss of 6: a slip
        "12 * 4 = 49",  # a near miss, no other operation gives 49
        "12 * 4 = 84",  # digits swapped
        "24 / 4 = 60",  # 10 × the right 6 (no other operation gives 60): a slip
        "-3 + 5 = -8",  # signs: not plainly `a op b` of the written numbers
        "(12) * 4 = 16",
        "12 * 4 * 2 = 16",  # three operands
        "70% * 90 kids = 160 kids",  # a percentage
    ],
)
def test_wrong_operation_non_cases(step):
    assert _wrong_op(step) is None


def test_wrong_operation_is_a_formula_error_not_a_slip():
    steps, ms = maths("She bakes 12 × 4 = 16 cookies.\nThe answer is: 16")
    flags = formula_errors(ms, steps, question_info("She bakes 12 trays of 4 cookies. How many cookies?"), Fraction(16))
    assert flags == [(0, "formula error: wrong operation: 12 × 4 = 16: 16 is 12 + 4, the operation is wrong (12 × 4 = 48)")]
    steps, ms = maths("She bakes 12 × 4 = 49 cookies.\nThe answer is: 49")
    assert formula_errors(ms, steps, question_info("She bakes 12 trays of 4 cookies. How many cookies?"), Fraction(49)) == []


def test_question_info():
    info = question_info(NOTEBOOKS_Q)
    assert info.conditions == ["John buys 4 notebooks at $3 each and receives a 10% discount on the total.", "He pays with a $20 bill."]
    assert info.percents == {Fraction(10)} and {Fraction(4), Fraction(3), Fraction(20)} <= info.numbers
    assert question_info("Let $a * b = 2a + 3b$ for all a, b. Compute $4 * 3$.").opaque_star
    assert question_info("What is $44_7 \\times 55_7$ in base 7?").other_base


@pytest.mark.parametrize(("text", "value"), [("0.5", Fraction(1, 2)), ("\\frac{1}{2}", Fraction(1, 2)), ("$1,234", Fraction(1234)), ("x+1", None), (None, None)])
def test_answer_value(text, value):
    assert answer_value(text) == value


def test_needleman_wunsch_is_monotone_and_thresholded():
    S = np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.95], [0.2, 0.9, 0.1]])
    assert needleman_wunsch(S, 0.5) == [(0, 0), (1, 2)]  # (2,1) would cross (1,2)
    assert needleman_wunsch(np.full((2, 2), 0.3), 0.5) == []


def test_alignment_missing_extra_swapped_and_duplicates():
    ident = np.eye(4)
    al = align_steps(ident[:, [0, 2, 3]], np.eye(3), 0.5, 0.95)  # reference step 1 missing
    assert al.missing == [1] and al.extra == []
    assert structure_score(al, 4, 3, 0.6, 0.4) == pytest.approx(0.6 / 4)
    swapped = ident[:, [0, 2, 1, 3]]
    al = align_steps(swapped, np.eye(4), 0.5, 0.95)
    assert al.missing == [] and al.extra == [] and len(al.reordered) == 1
    d3, inv = order_score(al, {2: {1}}, 0.25, 0.5)
    assert d3 == pytest.approx((1 - spearman([0, 1, 2, 3], [0, 2, 1, 3])) / 2 + 0.25) and inv == [(1, 1)]
    # a predicted step that shows none of the results it would need is no inversion (and adds no penalty)
    d3_unused, inv_unused = order_score(al, {2: {1}}, 0.25, 0.5, uses=lambda i1, j: False)
    assert inv_unused == [] and d3_unused == pytest.approx(d3 - 0.25)
    assert order_score(al, {2: {1}}, 0.25, 0.5, uses=lambda i1, j: (i1, j) == (1, 1)) == (d3, inv)
    S_pp = np.eye(3)
    S_pp[0, 2] = S_pp[2, 0] = 0.99
    al = align_steps(np.eye(3), S_pp, 0.5, 0.95)
    assert al.duplicates == [(0, 2)]
    assert structure_score(al, 3, 3, 0.6, 0.4) == pytest.approx(0.4 / 3)


def test_order_is_zero_with_fewer_than_two_pairs():
    al = align_steps(np.array([[0.9, 0.0]]), np.eye(2), 0.5, 0.95)
    assert order_score(al, {}, 0.25, 0.5) == (0.0, [])


def test_reference_dependencies():
    _, ms = maths("a: 4 × 3 = 12\nb: 12 × 0.1 = 1.2\nc: 12 − 1.2 = 10.8\nd: 20 − 10.8 = 9.2")
    deps = ref_dependencies(ms, {Fraction(4), Fraction(3), Fraction(20)})
    assert deps == {1: {0}, 2: {0, 1}, 3: {2}}


def test_aggregate_renormalizes_over_present_dims():
    cfg = VerifierConfig()
    dims = {"d_semantic": None, "d_structure": None, "d_order": None, "d_logic": 1.0, "d_numeric": 0.0, "d_answer": None}
    assert aggregate(dims, cfg.wrongness_weights) == pytest.approx(0.25 / 0.40)
    assert aggregate(dims, cfg.absurdity_weights) == pytest.approx(0.30 / 0.40)
    assert aggregate(dict.fromkeys(dims), cfg.wrongness_weights) is None
    full = dict(d_semantic=1.0, d_structure=0.0, d_order=0.0, d_logic=0.0, d_numeric=0.0, d_answer=1.0)
    assert aggregate(full, cfg.wrongness_weights) == pytest.approx(0.45)
    assert aggregate(full, cfg.absurdity_weights) == pytest.approx(0.20)


def test_config_validation():
    with pytest.raises(ValueError, match="fine_gate"):
        VerifierConfig(fine_gate="sometimes")
    with pytest.raises(ValueError, match="unknown dimensions"):
        VerifierConfig(wrongness_weights={"d9": 1.0})


def test_wrong_operation_end_to_end_scores_d5_one_without_a_slip_flag():
    """Through MathVerifier: the step carries the wrong-operation reason (formula error, d5 = 1.0),
    not also an arithmetic slip; a near miss stays a slip (0.4)."""
    import torch

    from hardneg.verifier import MathVerifier, SentenceEmbedder, VerifyInput, default_embedding_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        v = MathVerifier(VerifierConfig(use_nli=False, device="cpu"),
                         embedder=SentenceEmbedder.from_pretrained(default_embedding_model(), device="cpu"))
        q = "She bakes 12 trays of 4 cookies. How many cookies?"
        op, slip = v.verify_batch([
            VerifyInput("op", q, "She bakes 12 × 4 = 16 cookies.\nThe answer is: 16", None, "48"),
            VerifyInput("slip", q, "She bakes 12 × 4 = 49 cookies.\nThe answer is: 49", None, "48"),
        ])
    finally:
        torch.set_num_threads(before)
    assert op.d_numeric == pytest.approx(1.0) and op.formula_error and op.first_error_step == 0
    assert op.steps[0].flags == ["formula error: wrong operation: 12 × 4 = 16: 16 is 12 + 4, the operation is wrong (12 × 4 = 48)"]
    assert slip.d_numeric == pytest.approx(0.4) and not slip.formula_error and slip.first_error_step == 0
    assert slip.steps[0].flags[0].startswith("arithmetic slip")


@pytest.mark.parametrize(
    "question, step",
    [
        # GSM8K train references (untouched false alarms): a unit conversion, a number written as a word
        ("Janet filmed a new movie that is 60% longer than her previous 2-hour long movie. How much?", "The first movie was 2*60=120 minutes"),
        ("It vibrates 60% faster. Matt uses it for 5 minutes. How many vibrations?", "Matt uses it for 5 minutes so that is 5*60=300 seconds"),
        ("The sales tax is 5%. Kevin wants to buy five jackets at $80. How much?", "And five jackets normally cost 5 x $80 = $400."),
        # GSM8K train 950: the 10 is a count of statues too, not only the "10 percent" tax
        ("Theodore can craft 10 stone statues and 20 wooden statues every month. A stone statue costs $20 and a wooden "
         "statue costs $5. He also pays 10 percent of his total earnings in taxes. How much is his total earning every month?",
         "Theodore's total earnings from the stone statues are 10 x $20 = $200."),
    ],
)
def test_percent_rule_leaves_conversions_and_number_words(question, step):
    steps, ms = maths(step)
    assert formula_errors(ms, steps, question_info(question), None) == []


def test_percent_rule_still_fires_without_an_explanation():
    steps, ms = maths("The discount is 12 * 10 = 120 dollars.")
    flags = formula_errors(ms, steps, question_info("A $12 shirt has a 10% discount. How much is the discount?"), None)
    assert flags and "10% used as the number 10" in flags[0][1]
    # "10 percent" written out is a percentage too, when no other 10 is given
    flags = formula_errors(ms, steps, question_info("A $12 shirt has a 10 percent discount. How much is the discount?"), None)
    assert flags and "10% used as the number 10" in flags[0][1]


def test_a_star_defined_by_an_equation_is_a_custom_operation():
    assert question_info("If $a*b=a^2+ab-b^2$, find $3*2$.").opaque_star
    assert question_info("Let $x \\star y = 2x + y$. What is $3 \\star 4$?").opaque_star
    assert not question_info("Compute $3*2 + 4$.").opaque_star
    assert not question_info("He buys 3*2 = 6 apples. How many?").opaque_star


def test_a_given_product_of_symbols_is_substituted_not_a_wrong_rewrite():
    from hardneg.verifier.checks import equation_checks

    text = ("We want to find $4x^2 + 9y^2$ and are given $xy = -5$.\n"
            "So, $4x^2 + 9y^2 + 12xy = 4x^2 + 9y^2 + 12({v}) = 4$.")

    def unexplained(v):
        steps, ms = maths(text.format(v=v))
        _, withdrawn = equation_checks(ms, steps)
        return [l.text for m in ms for l in m.links if l.status == "mismatch" and id(l) not in withdrawn]

    assert unexplained("-5") == []  # xy = -5 substituted (MATH test #144)
    assert unexplained("-4") == ["4x^2 + 9y^2 + 12xy = 4x^2 + 9y^2 + 12(-4)"]  # a wrong value stays a slip


def test_other_base_problems_check_equations_false_in_every_named_base():
    from hardneg.verifier.checks import other_base_links

    q = question_info("Convert $515_{10}$ to base 6.")
    assert q.other_base and q.bases == {6}

    def kept(step, question=q):
        return [(l.text, l.status) for l in other_base_links(analyse_step(step), question).links]

    assert kept("Now we're left with $83-72=10$.") == [("83-72 = 10", "mismatch")]  # an 8: not base 6
    assert kept("Now we're left with $83-72=11$.") == [("83-72 = 11", "ok")]
    assert kept("In the units column $5+4=13$.") == []  # 5 + 4 = 13 in base 6: no slip
    assert kept("So $x + 1 = 13$.") == []  # symbols: not checked in base problems
    # a base problem whose base the question does not name: nothing is checked, as before
    assert kept("$83-72=10$", question_info("In which base $b$ is $23_b = 15$?")) == []
    assert question_info("Express $84_{10}$ in base two.").bases == {2}


def test_value_flow_a_power_is_a_new_quantity_not_an_update():
    # MATH number theory: 12^2 = 144 is the largest square, then 12 squares are counted
    text = ("The largest perfect square below 150 is $12^2 = 144$.\nThe largest cube is $5^3 = 125$.\n"
            "The sixth powers are $1$ and $2^6 = 64$.\nSo there are $12+5-2=15$ numbers.")
    _, ms = maths(text)
    assert value_flow(ms, Fraction(15)) == []
    # an update by subtraction is still a stale value when the old quantity flows on
    _, ms = maths("She has 50 apples and gives away 20: 50 - 20 = 30.\nThen she buys 10 more: 50 + 10 = 60.\nThe answer is: 60")
    assert [j for j, _ in value_flow(ms, Fraction(60))] == [1]


def test_value_flow_accepts_a_recomputation_from_the_same_givens():
    # "10·9 = 90" is not superseded by "10·9/2 = 45": both start from the givens
    _, ms = maths("There are $10\\cdot9=90$ ordered pairs.\nEach pair is counted twice, so $\\dfrac{10\\cdot9}{2}=\\boxed{45}$.")
    assert value_flow(ms, Fraction(45)) == []


def test_value_flow_still_flags_a_stale_operand_next_to_other_operands():
    _, ms = maths(TABLE2_HARD_NEG)
    assert [j for j, _ in value_flow(ms, Fraction(8))] == [4]


def test_question_numbers_leave_out_the_asymptote_drawing():
    # a drawing's coordinate 90 is no given the solution could contradict ("20 posts" is fine)
    q = "Twenty-four 4-inch posts, 5 feet apart. [asy] unitsize(2mm); draw((0,0)--(90,0)); [/asy] What is the perimeter?"
    assert question_info(q).numbers == {4, 5}
    assert 90 in question_info("A fence is 90 feet long. [asy] draw((0,0)--(1,0)); [/asy] What is its area?").numbers


def test_value_flow_a_list_of_cases_is_no_stale_value():
    # each 100 − p is a case tried and rejected: its result is unused by design (MATH test #4448)
    text = ("The 1-digit primes are 2, 3, 5 and 7.\n100 - 2 = 98 is composite.\n100 - 3 = 97 is prime.\n"
            "100 - 5 = 95 is composite.\n100 - 7 = 93 is composite.\nSo the product is 3 * 97 = 291.")
    _, ms = maths(text)
    assert value_flow(ms, Fraction(291)) == []
    # the same number worked the same way only twice stays a stale value: gave 20 away, then 10 from the old 50
    _, ms = maths("She has 50 apples and gives away 20: 50 - 20 = 30.\nThen she gives away 10: 50 - 10 = 40.\n"
                  "She has 40 + 5 = 45 after buying 5.\nThe answer is: 45")
    assert [j for j, _ in value_flow(ms, Fraction(45))] == [1]


def test_a_border_whose_area_is_asked_wants_the_area():
    q = ("A 5-inch by 7-inch picture is placed on a rectangular piece of red paper such that a 0.5-inch wide red border "
         "is seen along each side of the picture. What is the area of the visible red border, in square inches?")
    assert question_info(q).wants == "area"
    steps, ms = maths("The paper is 6 by 8, so its area is 48.\nThe picture covers $5\\cdot 7 = 35$.\nThe border is 48 - 35 = 13.")
    assert formula_errors(ms, steps, question_info(q), Fraction(13)) == []
    assert question_info("A garden is 6 feet by 4 feet. How many feet of fencing go around it?").wants == "perimeter"
    assert question_info("A garden is 6 feet by 4 feet. How much fencing encloses its area?").wants == "perimeter"


HERON_Q = "A triangle has sides 13, 14 and 15. What is its area?"


def test_a_perimeter_on_the_way_to_the_area_is_no_formula_error():
    # Heron's formula halves the perimeter; the area of two triangles found earlier adds computed values
    steps, ms = maths("The perimeter is 13 + 14 + 15 = 42, so s = 21.\nThe area is $\\sqrt{21 \\cdot 8 \\cdot 7 \\cdot 6} = 84$.")
    assert formula_errors(ms, steps, question_info(HERON_Q), Fraction(84)) == []
    steps, ms = maths("Each half has area 7 * 4 / 2 = 14.\nTogether 14 + 14 = 28.")
    assert formula_errors(ms, steps, question_info(HERON_Q), Fraction(28)) == []
    # the perimeter given as the area is still the formula error
    steps, ms = maths("The perimeter is 13 + 14 + 15 = 42.\nThe answer is: 42")
    flags = formula_errors(ms, steps, question_info(HERON_Q), Fraction(42))
    assert [i for i, _ in flags] == [0] and "asks for the area" in flags[0][1]
    steps, ms = maths("The perimeter is 13 + 14 + 15 = 42.\nThe cost is 42 * 3 = 126.\nThe answer is: 126")
    assert [i for i, _ in formula_errors(ms, steps, question_info(HERON_Q), Fraction(126))] == [0]


def test_a_perimeter_shared_with_a_square_and_an_arc_are_no_formula_errors():
    # the square's side is the triangle's perimeter over 4; 2·(π·2/π) is an arc length, not a product of sides
    q = "A triangle has sides 6.1, 8.2 and 9.7 cm. A square has the same perimeter. What is the area of the square?"
    steps, ms = maths("The perimeter of the triangle is 6.1 + 8.2 + 9.7 = 24 cm.\nThe side of the square is 24 / 4 = 6.\n"
                      "Its area is 6 * 6 = 36.")
    assert formula_errors(ms, steps, question_info(q), Fraction(36)) == []
    arc_q = "Each of the two arcs has radius $\\frac{2}{\\pi}$ and length 2. What is the perimeter of the region?"
    steps, ms = maths("Hence the perimeter of the region is \\[ 2\\cdot \\left(\\pi\\cdot \\frac{2}{\\pi}\\right) = \\boxed{4}. \\]")
    assert formula_errors(ms, steps, question_info(arc_q), Fraction(4)) == []
    # a product of two given sides for a perimeter is still the formula error
    steps, ms = maths("The area is 6 * 4 = 24.\nThe answer is: 24")
    assert formula_errors(ms, steps, question_info(RECT_Q), Fraction(24))


def test_percentage_points_are_no_percent_used_as_a_number():
    q = "A student needs an average of 83% over 4 quarters. What must the last quarter be?"
    steps, ms = maths("To average $83\\%$ over four quarters, a student must earn a total of $4 \\times 83 = 332$ percentage points.")
    assert formula_errors(ms, steps, question_info(q), None) == []
    steps, ms = maths("A student must earn a total of $4 \\times 83 = 332$.")
    assert formula_errors(ms, steps, question_info(q), None)


def test_halves_of_two_givens_are_a_use_of_the_question():
    from hardneg.verifier.checks import logic_checks

    q = "The diagonals of a rhombus are 10 inches and 24 inches. What is the perimeter of the rhombus, in inches?"
    steps, ms = maths("The diagonals bisect each other, so a side is $\\sqrt{5^2+12^2} = 13$.\nThe perimeter is $4 \\cdot 13 = 52$.")
    assert not [k for _, k, _ in logic_checks(ms, steps, question_info(q), Fraction(52)) if k == "question ignored"]
    # one number that happens to be half a given is no use of the question: another problem's solution
    steps, ms = maths("She buys 5 * 7 = 35 apples.\nShe sells 35 - 9 = 26 of them.")
    assert [k for _, k, _ in logic_checks(ms, steps, question_info(q), Fraction(26)) if k == "question ignored"]


@pytest.mark.parametrize(
    "question, text, step",
    [
        # a value carried wrongly (the `scale` pool's carry errors, issue 11 labels): a zero added, off by 2
        ("John is stuck in traffic for 2 hours and spends 4 times as long getting off the freeway. How long does he waste?",
         "First find the time getting off the freeway: 2 hours * 4 = 8 hours\n"
         "Then add the time in traffic: 80 hours + 2 hours = 82 hours\nThe answer is: 82", 1),
        ("He works 6 hours at $5 an hour and spends $15. How much is left?",
         "He earns 6 * 5 = 30 dollars.\nHe has 28 - 15 = 13 dollars left.", 1),
        # the computed 60 is used again (for the girls), and a later step still works with a 70 from nowhere
        ("There are 100 students in class and the ratio of boys to girls is 3:2. How many more boys than girls are there?",
         "The class was divided into 3 + 2 = 5 parts.\nSo each part is equal to 100/5 = 20 students.\n"
         "Since there are 3 parts for boys, there are 20 x 3 = 60 boys in class.\nSo there are 100 - 60 = 40 girls in class.\n"
         "Hence, there are 70 - 40 = 30 boys more than girls.\nThe answer is: 30", 4),
    ],
)
def test_a_value_carried_wrongly_is_a_changed_quantity(question, text, step):
    steps, ms = maths(text)
    got = logic_checks(ms, steps, question_info(question), None)
    assert [(i, kind) for i, kind, _ in got] == [(step, "changed quantity")]


@pytest.mark.parametrize(
    "question, text",
    [
        # the bigger number is given by the question, or an earlier step: no carried value
        ("A box holds 8 pens. There are 80 pens in the store. How many boxes?", "One box: 2 * 4 = 8 pens\n80 / 8 = 10 boxes"),
        ("Tim buys 4 packs of 2 pens.", "4 * 2 = 8 pens\n8 * 10 = 80 cents\n80 + 8 = 88"),
        # the question gives the number in words ("Thirteen", "forty-two")
        ("Allie picked 44 wildflowers. Thirteen were yellow and white, seventeen red and yellow, and 14 red and white. "
         "How many more contained red than white?",
         "17+14=31 flowers contain red.\n13+14=27 flowers contain white.\n31-27=4 more contain red."),
        ("He buys forty-two 75-pound bales and four 12-pound bags. How many pounds?",
         "He buys 4 * 12 = 48 pounds of carrots.\nHe buys 42 * 75 = 3150 pounds of hay.\n48 + 3150 = 3198 pounds."),
        # a percent computed before ("80%", read as 4/5), used as 80; the computed 50 is used again
        ("Billy takes 20% of the days from March 1st to April 19th off. How many days does he work?",
         "There are 31 + 19 = 50 days.\nHe works 100% - 20% = 80% of the days.\nThat is 50 * 80 / 100 = 40 days."),
        # a figure gives numbers the text does not (the computed 11 is used again, 16 is read off the graph)
        ("The double-bar graph shows the home runs of McGwire each month. [asy]draw((0,0)--(28,0));[/asy] When did he pass 30?",
         "By April, McGwire had 1 + 10 = 11 home runs.\nBy May, he had 11 + 16 = 27 home runs.\nBy June, 27 + 10 = 37."),
        # a result of the same line (GSM8K test 1240 as prose lines; the prose equation is parsed after the symbolic one)
        ("Each of the middle 2 shelves can hold 10 books. The bottom shelf holds twice as many as a middle shelf. The top "
         "shelf holds 5 fewer than the bottom. If she has 110 books, how many bookcases does she need?",
         "The bottom shelf can hold 2 * 10 = 20 books. The 2 middle shelves can hold 2 * 10 = 20 books. The top shelf can "
         "hold 20 - 5 = 15 books.\nEach bookcase can hold 20 books + 20 books + 15 books = 55 books. She needs 110 / 55 = 2 "
         "bookcases.\nThe answer is: 2"),
        # round numbers apart in their leading digit, the computed one used again: a list of cases
        ("Cody logs 1,000 steps a day in the first week and 1,000 more each week. How many in weeks 1 and 3?",
         "First week: 7 * 1,000 = 7,000 steps.\nThird week: 7 * 3,000 = 21,000 steps.\n7,000 + 21,000 = 28,000 steps."),
    ],
)
def test_a_carried_value_needs_a_number_from_nowhere(question, text):
    steps, ms = maths(text)
    assert logic_checks(ms, steps, question_info(question), None) == []


def test_a_value_used_before_the_step_that_computes_it_is_flagged():
    q = "Laura expects 220 people at her wedding, but 5% typically don't show. How many will go?"
    steps, ms = maths("Laura expects 220 * 0.95 = 209 guests.\nLaura expects 100 - 5 = 95% to show up.\nThe answer is: 209")
    got = logic_checks(ms, steps, question_info(q), Fraction(209))
    assert [(i, kind) for i, kind, _ in got] == [(0, "used before computed")]
    # in order, nothing to flag
    steps, ms = maths("Laura expects 100 - 5 = 95% to show up.\nLaura expects 220 * 0.95 = 209 guests.\nThe answer is: 209")
    assert logic_checks(ms, steps, question_info(q), Fraction(209)) == []


def test_a_result_recomputed_from_the_step_that_used_it_is_no_inversion():
    # 20 fingers and toes is world knowledge; 60 / 3 = 20 computes it back from this step's own 60
    q = "A bully harasses for three times as many days as a person has fingers and toes. Each instance takes 3 days. How many instances?"
    steps, ms = maths("That is 3 * 20 = 60 days.\nSo 60 / 3 = 20 instances.\nThe answer is: 20")
    assert [k for _, k, _ in logic_checks(ms, steps, question_info(q), Fraction(20)) if k == "used before computed"] == []


@pytest.mark.parametrize(
    "question, text",
    [
        # a coin the question names gives its value: a nickel's 0.05 is no number from nowhere (GSM8K train 1841)
        ("Mac trades 3 dimes or 7 nickels for a quarter. How many dollars does he lose on 20 trades of each?",
         "Three dimes are 3 x .1 = .3 dollars.\nSeven nickels are 7 x .05 = .35 dollars.\n"
         "With dimes he loses .3 - .25 = .05 dollars each time.\nWith nickels he loses .35 - .25 = .1 dollars each time.\n"
         "20 x .05 + 20 x .1 = 3 dollars."),
        # a second method computes what the first one stated (MATH test, counting_and_probability: 82 of 100)
        ("A survey of 100 students: 59 did math, 49 English, 42 science, 20 English and science, 29 science and math, "
         "31 math and English, and 12 all three. How many did no homework?",
         "Adding the regions of the diagram there are 82 students who did some homework, so 100 - 82 = 18 did none.\n"
         "Alternatively, add the subjects, subtract the pairs and add back the triples.\n"
         "This gives 59 + 49 + 42 - 20 - 29 - 31 + 12 = 82 students, so 100 - 82 = 18."),
        # answer choices taken one by one: the 50 of choice A is not carried into choice B
        ("Which integers round to 40?\nA. 43\nB. 23\nC. 38",
         "Take the choices one at a time.\nA. 43 is between 40 and 40 + 10 = 50, so it rounds to 40.\n"
         "B. 23 is between 20 and 20 + 10 = 30, so it does not.\nC. 38 is between 30 and 30 + 10 = 40, so it rounds to 40."),
    ],
)
def test_coins_second_methods_and_cases_are_not_changed_quantities(question, text):
    steps, ms = maths(text)
    assert logic_checks(ms, steps, question_info(question), None) == []


def test_a_carried_value_is_still_flagged_inside_one_case_and_after_the_cases_start():
    q = "A shop sells pens at $12 a box and pencils at $7 a box. Case by case: how much do 9 boxes of each cost?"
    # the setup's 108 is carried into the second case as 180: the cases may use the setup, and so may its errors
    steps, ms = maths("Nine boxes of pens cost 9 * 12 = 108 dollars.\nCase 1: pens only, 108 + 0 = 108 dollars.\n"
                      "Case 2: with pencils, 9 * 7 = 63 dollars, and 180 + 63 = 243 dollars.")
    assert [(i, k) for i, k, _ in logic_checks(ms, steps, question_info(q), None)] == [(2, "changed quantity")]
    # without the case markers the same numbers are one method, and 180 is flagged the same way
    steps, ms = maths("Nine boxes of pens cost 9 * 12 = 108 dollars.\nPens only, 108 + 0 = 108 dollars.\n"
                      "With pencils, 9 * 7 = 63 dollars, and 180 + 63 = 243 dollars.")
    assert [(i, k) for i, k, _ in logic_checks(ms, steps, question_info(q), None)] == [(2, "changed quantity")]


def test_a_quarter_of_something_gives_a_quarter_not_25_cents():
    assert Fraction(1, 4) in question_info("He ate a quarter of the cake.").word_numbers
    assert Fraction(25) not in question_info("He ate a quarter of the cake.").word_numbers
    assert {Fraction(1, 4), Fraction(25)} <= question_info("She has 4 quarters and 3 dimes. How many cents?").word_numbers
    assert {Fraction(1, 10), Fraction(10)} <= question_info("She has 3 dimes.").word_numbers


def test_a_second_method_that_reuses_a_number_is_no_stale_value():
    # MATH test prealgebra (the clock at 2:48): the first method leaves 204 unused, the second ("Or we know ...")
    # works from 288 again; without the opening word the same steps read as going on with a stale 288
    second = ("The minute hand is at 48 * 6 = 288 degrees.\nThe hour hand is at 2.8 * 30 = 84 degrees.\n"
              "The larger angle is 288 - 84 = 204 degrees, so the smaller one is 156 degrees.\n"
              "Or we know that 84 + 360 = 444 degrees.\nNow 444 - 288 = 156 degrees.")
    steps, ms = maths(second)
    q = question_info("At 2:48 what is the degree measure of the smaller angle formed by the hands of a 12-hour clock?")
    assert value_flow(ms, Fraction(156), method_starts(steps, q)) == []
    one_way = second.replace("Or we know that", "We know that")
    steps, ms = maths(one_way)
    assert [j for j, _ in value_flow(ms, Fraction(156), method_starts(steps, q))] == [4]


def test_a_final_answer_the_step_says_it_rounds_to_is_no_conclusion_contradiction():
    # GSM8K train 4603: "66.666...%, which rounds up to 67%", then "#### 67"
    q = "Matt has six cats and half of them are female. What percentage of his cats are kittens (rounded to the nearest percent)?"
    body = "6 cats / 2 = 3 cats\n7 kittens/cat * 3 cats = 21 kittens\n21 - 9 = 12 kittens\n12 + 6 = 18 cats\n"

    def conclusion(last: str, final: int):
        steps = split_steps(body + last + f"\nThe answer is: {final}")
        found = logic_checks([analyse_step(s) for s in steps], steps, question_info(q), Fraction(final), None)
        return [msg for _, kind, msg in found if kind == "conclusion contradiction"]

    assert conclusion("12 kittens / 18 cats * 100% = 66.666...%, which rounds up to 67%", 67) == []
    assert conclusion("12 kittens / 18 cats * 100% = 66.666...%", 67)  # no rounding said
    assert conclusion("12 kittens / 18 cats * 100% = 66.666...%, which rounds up to 67%", 69)  # not the rounded value


# ------------------------------------------------------------------ off the reference's path (a wrong answer, no flag)
def _off_path(question: str, reference: str, steps: list[str], answer: str):
    from hardneg.verifier.checks import off_path

    body, ref_answer = reference.split("####")
    ref_comps = [c for s in split_steps(body) for c in analyse_step(s).computations]
    maths = [analyse_step(s) for s in steps]
    return off_path(maths, ref_comps, Fraction(ref_answer.strip()), question_info(question), Fraction(answer))


ORANGE_Q = ("I have 10 liters of orange drink that are two-thirds water and I wish to add it to 15 liters of pineapple "
            "drink that is three-fifths water. But as I pour it, I spill one liter of the orange drink. How much water "
            "is in the remaining 24 liters?")
ORANGE_REF = ("There are 15 x 3/5 = <<15*3/5=9>>9 liters of water from the 15 liters pineapple drink.\n"
              "After 1 liter of orange drink was spilled, there were 10 - 1 = <<10-1=9>>9 liters of orange drink left.\n"
              "Out of the 9 liters, 9 x 2/3 = <<9*2/3=6>>6 liters are water.\n"
              "Thus, there are a total of 9 + 6 = <<9+6=15>>15 liters of water out of the 24 liters.\n#### 15")
HENRY_Q = ("Henry made two stops during his 60-mile bike trip. He first stopped after 20 miles. His second stop was 15 "
           "miles before the end of the trip. How many miles did he travel between his first and second stops?")
HENRY_REF = ("He traveled 20 miles + 15 miles = <<20+15=35>>35 miles not counting the distance between stops.\n"
             "Henry traveled 60 miles - 35 miles = <<60-35=25>>25 miles between his first and second stop.\n#### 25")
ICE_Q = ("Cynthia eats one serving of ice cream every night. She buys cartons of ice cream with 15 servings of ice "
         "cream per carton at a cost of $4.00 per carton. After 60 days, how much will she spend on ice cream?")
ICE_REF = ("She will need 60/15 = 4 containers of ice cream\n"
           "If each carton costs $4.00 and she needs 4 containers then it will cost her 4*4 = $<<4*4=16.00>>16.00\n#### 16")
ORANGES_Q = "A basket contains 25 oranges among which 1 is bad, 20% are unripe, 2 are sour and the rest are good. How many oranges are good?"
ORANGES_REF = ("20% of 25 oranges is (20/100)*25 = <<(20/100)*25=5>>5 oranges\n"
               "The total number of bad, unripe and sour oranges is therefore 1+5+2 = <<1+5+2=8>>8 oranges\n"
               "The rest which is 25-8 = <<25-8=17>>17 oranges are good\n#### 17")
TIES_Q = ("John buys twice as many red ties as blue ties. The red ties cost 50% more than blue ties. He spent $200 on "
          "blue ties that cost $40 each. How much did he spend on ties?")
TIES_REF = ("He bought 200 / 40 = <<200/40=5>>5 blue ties\nSo he bought 5 * 2 = <<5*2=10>>10 red ties\n"
            "Each red tie cost $40 * .5 = $<<40*.5=20>>20 more than blue ties\nSo they each cost $40 + $20 = $<<40+20=60>>60\n"
            "So he spent $60 * 10 = $<<60*10=600>>600 on red ties\nSo he spent $200 + $600 = $<<200+600=800>>800 on ties\n#### 800")
UNITS_Q = ("Richard lives in an apartment building with 15 floors. Each floor contains 8 units, and 3/4 of the building "
           "is occupied. What's the total number of unoccupied units In the building?")
UNITS_REF = ("The total number of units in the building will be 8 units/floor * 15 floors = <<8*15=120>>120 units.\n"
             "If 3/4 of the building is occupied, then the total number of occupied units is 3/4 * 120 units = <<3/4*120=90>>90 units.\n"
             "The total number of unoccupied units is 120 units - 90 units = <<120-90=30>>30 units.\n#### 30")


def test_off_path_names_the_step_that_misreads_the_question():
    steps = ["Water in the orange drink: 10 × 2/3 = 20/3 ≈ 6.67 liters.", "Water in the pineapple drink: 15 × 3/5 = 9 liters.",
             "Total: 6.67 + 9 = 15.67 liters.", "The answer is 15.67."]
    step, message = _off_path(ORANGE_Q, ORANGE_REF, steps, "15.67")
    assert step == 0 and "off the reference's path" in message and "10 × 2/3" in message
    # the spill first, then the same arithmetic slip-free route: no step leaves the path before the wrong sum
    right_route = ["10 - 1 = 9 liters of orange drink are left.", "9 × 2/3 = 6 liters of it are water.",
                   "The pineapple drink has 15 × 3/5 = 9 liters of water.", "In all 6 + 9 = 16 liters.", "The answer is 16."]
    assert _off_path(ORANGE_Q, ORANGE_REF, right_route, "16")[0] == 3


def test_off_path_a_correct_detour_then_a_wrong_operation():
    """60 − 15 = 45 is not the reference's quantity but a right one (45 − 20 = 25): the wrong step is 45 + 20."""
    steps = ["His second stop was at mile 60 - 15 = 45.", "His first stop was at mile 20.",
             "So between the stops he traveled 45 + 20 = 65 miles.", "The answer is 65."]
    step, message = _off_path(HENRY_Q, HENRY_REF, steps, "65")
    assert step == 2 and "45 − 20" in message


def test_off_path_an_inverted_ratio_is_blamed_where_it_is_made():
    """60 ÷ 3.75 would give 16, but so would 4/15 in place of 15/4: the earlier step is the error."""
    steps = ["She needs 60 × 1 = 60 servings.", "Each serving costs 15/4 = 3.75 dollars.", "In all 60 × 3.75 = 225 dollars.",
             "The answer is 225."]
    assert _off_path(ICE_Q, ICE_REF, steps, "225")[0] == 1


def test_off_path_a_left_out_step_and_a_change_taken_for_the_quantity():
    oranges = ["20% of 25 is 0.2 * 25 = 5 unripe oranges.", "So 25 - 5 = 20 oranges are good.", "The answer is 20."]
    step, message = _off_path(ORANGES_Q, ORANGES_REF, oranges, "20")
    assert step == 1 and "1+5+2 = 8" in message  # the unripe count is right; the step that skips the rest is not
    ties = ["He bought 200 / 40 = 5 blue ties.", "He bought 2 × 5 = 10 red ties.", "A red tie costs 40 × 0.5 = 20 dollars.",
            "The red ties cost 10 × 20 = 200 dollars.", "In all 200 + 200 = 400 dollars.", "The answer is 400."]
    step, message = _off_path(TIES_Q, TIES_REF, ties, "400")
    assert step == 2 and "is a change, not the quantity" in message


def test_off_path_a_final_answer_the_reference_passes_on_its_way():
    steps = ["The building has 15 * 8 = 120 units.", "3/4 of them are occupied, so 120 * 3/4 = 90 units are occupied.",
             "So 90 units are unoccupied.", "The answer is 90."]
    step, message = _off_path(UNITS_Q, UNITS_REF, steps, "90")
    assert step == 2 and "reaches on its way" in message


def test_off_path_follows_a_result_rounded_to_the_answer():
    q = ("Uriah needs to remove 15 pounds from his book bag. His comic books weigh 1/4 pound each and his toys weigh "
         "1/2 pound each. If he removes 30 comic books, how many toys does he need to remove?")
    ref = ("30 comic books weigh 7.5 pounds because 30 x .25 = <<30*.25=7.5>>7.5\n"
           "He needs to remove 7.5 more pounds because 15 - 7.5 = <<15-7.5=7.5>>7.5\n"
           "He needs to remove 15 toys because 7.5 / .5 = 15\n#### 15")
    steps = ["30 comic books weigh 30 * 0.25 = 7.5 pounds.", "He still needs to remove 15 - 7.5 = 7.5 pounds.",
             "He needs 7.5 * 0.5 = 3.75 toys, which rounds to 4 toys.", "The answer is 4."]
    assert _off_path(q, ref, steps, "4")[0] == 2


def test_fraction_command_of_two_numbers_is_a_division():
    [c] = analyse_step(r"so she needs \(\frac{60}{15} = 4\) cartons").computations
    assert c.operands == [60, 15] and c.ops == frozenset("/") and c.result == 4 and c.ok
    [c] = analyse_step(r"\[ x = \frac{19.50}{0.75} = 25 \]").computations
    assert c.ok is False
    assert analyse_step(r"\(\frac{1}{2}\)").computations == []


def test_equation_lines_with_no_words_are_a_derivation():
    from hardneg.verifier.checks import equation_checks

    def flags(lines):
        return equation_checks([analyse_step(s) for s in lines], lines)[0]

    [(step, message)] = flags([r"\[ s + (s + 30) = 110 \]", r"\[ 2s = 140 \]", r"\[ s = 70 \]"])
    assert step == 1 and "algebra slip" in message
    assert flags([r"\[ s + (s + 30) = 110 \]", r"\[ 2s = 80 \]", r"\[ s = 40 \]"]) == []
    # two conditions stated one after the other are not one derived from the other
    assert flags(["Let x be the apples: x + 3 = 10", "and y the pears: 2y = 14"]) == []


def test_a_result_written_rounded_is_carried_exact():
    """`100 / 12 = 8.33`, then `8.33 × 4 = 33.33`: the solution goes on with 8.333…; 33.33 is no slip. A
    wrong result stays one, and without the earlier rounding 8.33 × 4 is 33.32."""
    from hardneg.verifier.checks import computes_with_exact

    carried = {Fraction("8.33"): Fraction(100, 12)}
    [link] = analyse_step("8.33 * 4 = 33.33 miles").links
    assert link.status == "mismatch" and computes_with_exact(link, carried)
    assert not computes_with_exact(link, {})
    [slip] = analyse_step("8.33 * 4 = 34.33 miles").links
    assert not computes_with_exact(slip, carried)


def test_off_path_a_correct_detour_then_a_wrong_number_of_the_question():
    q = "In an 8 fluid ounce bottle there are 125 calories. How many calories would a 12 fluid ounce bottle contain?"
    ref = "125/8 = 15.625 calories per ounce.\nA 12 ounce bottle has 15.625 * 12 = 187.5 calories.\n#### 187.5"
    steps = ["There are 125 / 8 = 15.625 calories per ounce.", "So the bottle has 15.625 * 8 = 125 calories.", "The answer is 125."]
    step, message = _off_path(q, ref, steps, "125")
    assert step == 1 and "15.625 × 12" in message


def test_off_path_a_number_that_only_takes_back_the_step_before_is_no_way_back():
    # round 7 (GSM8K test 41): 1600 − 400 reaches the reference's 1200 only by taking back the "+ 400" just added
    q = ("Polly can throw the javelin 400 feet. Holding a gemstone, she can throw it three times farther. The dragon's "
         "flames reach 1000 feet. How far outside of the reach of the flames could she stand and still hit the dragon?")
    ref = "She can throw it 3*400 = <<3*400=1200>>1200 feet.\nSo she can stand 1200-1000 = <<1200-1000=200>>200 feet outside.\n#### 200"
    steps = ["Three times farther means 400 + 3 * 400 = 1600 feet.", "She can stand 1600 - 1000 = 600 feet outside.",
             "The answer is 600."]
    step, message = _off_path(q, ref, steps, "600")
    assert step == 0 and "400 + 3 * 400" in message, message


def test_off_path_an_operand_times_one_is_no_way_back():
    # round 6 (GSM8K test 106): "3 × 1" gives the reference's 3 only by leaving 3 as it is; the volume 60 is off the path
    q = ("John has 3 boxes.  Each box is 5 inches by 6 inches by 4 inches.  The walls are 1 inch thick.  What is the "
         "total inner volume of all 3 boxes?")
    ref = ("The walls subtract 2*1=<<2*1=2>>2 inches from each dimension\nSo each box has 5-2=<<5-2=3>>3 inch width\n"
           "It also has a 6-2=<<6-2=4>>4 inch height\nFinally, it has a 4-2=<<4-2=2>>2 inch depth\n"
           "So the inner volume of one box is 4*3*2=<<4*3*2=24>>24 cubic inches\n"
           "So in total the inner volume of the 3 boxes is 3*24=<<3*24=72>>72 cubic inches\n#### 72")
    steps = ["Inner dimensions: 5 - 1 = 4, 6 - 1 = 5, 4 - 1 = 3.", "One box holds 4 * 5 * 3 = 60 cubic inches.",
             "Three boxes hold 3 * 60 = 180 cubic inches.", "The answer is 180."]
    step, message = _off_path(q, ref, steps, "180")
    assert step == 1 and "4 * 5 * 3 = 60" in message, message


def test_a_value_solved_for_after_and_is_derived():
    from hardneg.verifier.checks import equation_checks

    def flags(line):
        return equation_checks([analyse_step(line)], [line])[0]

    [(_, message)] = flags("Since $4^x = 2^{2x}$, we have $2x = 8$ and $x = 16$.")
    assert "x = 4" in message
    assert flags("Since $4^x = 2^{2x}$, we have $2x = 8$ and $x = 4$.") == []
    assert flags("The roots are $x - 2 = 0$ and $x + 3 = 0$.") == []


def test_consecutive_factors_next_to_the_computed_number_are_not_a_changed_quantity():
    # MATH test 1275 (round 6, a correct solution): 12 computed, then C(12, 2) = 12 × 11 / 2
    q = "Two cards are chosen at random from a standard 52-card deck. What is the probability that both are face cards?"
    steps, ms = maths("There are 3 * 4 = 12 face cards.\nThe pairs of face cards: 12 * 11 / 2 = 66.")
    assert logic_checks(ms, steps, question_info(q), None) == []
    # 11 without the computed 12 beside it is still a value carried wrongly
    steps, ms = maths("There are 3 * 4 = 12 face cards.\nThe pairs of face cards: 11 * 10 / 2 = 55.")
    assert [(i, k) for i, k, _ in logic_checks(ms, steps, question_info(q), None)] == [(1, "changed quantity")]
