"""Step segmentation (hardneg.verifier.steps)."""

from __future__ import annotations

import pytest

from hardneg.verifier import split_steps
from hardneg.verifier.steps import embedding_text, segment, split_sentences


def test_gsm8k_lines_are_steps():
    text = (
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n"
        "#### 72"
    )
    assert split_steps(text) == text.split("\n")


def test_one_step_per_line_keeps_short_two_sentence_lines():
    text = "He has 5 apples. He eats 2.\nSo 5 - 2 = 3 remain.\n\nThe answer is: 3"
    assert split_steps(text) == ["He has 5 apples. He eats 2.", "So 5 - 2 = 3 remain.", "The answer is: 3"]


def test_inline_step_markers_as_in_table_2():
    text = (
        "Step 1: Total before discount = 4 × $3 = $12. Step 2: Discount per notebook = 10% × $3 = $0.30. "
        "Step 3: Total discount = 4 × $0.30 = $1.20.\nThe answer is: 8"
    )
    assert split_steps(text) == [
        "Total before discount = 4 × $3 = $12.",
        "Discount per notebook = 10% × $3 = $0.30.",
        "Total discount = 4 × $0.30 = $1.20.",
        "The answer is: 8",
    ]


def test_step_markers_variants_and_preamble():
    text = "Let's solve it.\n**Step 1:** add 2 and 3.\n## Step 2. Multiply by 4.\nStep 3) done"
    assert split_steps(text) == ["Let's solve it.", "add 2 and 3.", "Multiply by 4.", "done"]
    # "in step 2, we" is prose, not a marker
    assert split_steps("In step 2, we add.\nThen we stop.") == ["In step 2, we add.", "Then we stop."]


def test_math_prose_splits_sentences_but_not_math_or_decimals():
    text = (
        "We have that $r = \\sqrt{0^2 + 3^2} = 3.$  Also, the price of 3.5 dollars is written as $3.5$ here, "
        "and the value $x = 2. Y$ stays inside math. Therefore the answer is $\\boxed{3}$."
    )
    steps = split_steps(text)
    assert steps == [
        "We have that $r = \\sqrt{0^2 + 3^2} = 3.$",
        "Also, the price of 3.5 dollars is written as $3.5$ here, and the value $x = 2. Y$ stays inside math.",
        "Therefore the answer is $\\boxed{3}$.",
    ]


def test_display_math_across_lines_is_one_step():
    text = "First we expand:\n\\[\n(a+b)^2 \n= a^2 + 2ab + b^2\n\\]\nso we are done."
    assert split_steps(text) == ["First we expand:", "\\[\n(a+b)^2 \n= a^2 + 2ab + b^2\n\\]", "so we are done."]


def test_abbreviations_and_asy_blocks():
    long = "We use the identity, e.g. Vieta's formulas, to relate the roots of the polynomial to its coefficients and simplify it. " * 2
    steps = split_steps(long.strip())
    assert len(steps) == 2 and all(s.startswith("We use the identity, e.g. Vieta") for s in steps)
    assert split_steps("Draw it.\n[asy]\ndraw((0,0)--(1,1));\n[/asy]\nDone.") == ["Draw it.", "Done."]


def test_abbreviations_are_whole_words():
    # "cost." / "first." / "items." end sentences; only "St." / "Ms." themselves are abbreviations
    text = ("Each of the 4 pens was bought at the same unit cost. Then 4*3 = 12 dollars is what they cost at first. "
            "We count the items. Ms. Lee pays 12 dollars.")
    assert split_sentences(text) == [
        "Each of the 4 pens was bought at the same unit cost.",
        "Then 4*3 = 12 dollars is what they cost at first.",
        "We count the items.",
        "Ms. Lee pays 12 dollars.",
    ]


_PROSE = ("Tom buys 4 pens and each pen costs 3 dollars, so we need the total amount he spends first. "
          "The pens cost 4*3 = 12 dollars in all, which he pays from his 20 dollar bill.")  # >= 150 characters


def test_segment_reports_the_lines_of_a_solution_written_in_lines():
    seg = segment(_PROSE + "\nHis change is 20-12 = 8 dollars.\n\nThe answer is: 8")
    assert seg.steps == [
        "Tom buys 4 pens and each pen costs 3 dollars, so we need the total amount he spends first.",
        "The pens cost 4*3 = 12 dollars in all, which he pays from his 20 dollar bill.",
        "His change is 20-12 = 8 dollars.",
        "The answer is: 8",
    ]
    assert seg.units == [_PROSE, "His change is 20-12 = 8 dollars.", "The answer is: 8"]
    assert seg.unit_of == [0, 0, 1, 2] and not seg.identity


def test_segment_reports_sentences_of_one_paragraph_and_marked_steps():
    seg = segment(_PROSE)
    assert seg.units == seg.steps and len(seg.steps) == 2 and seg.identity
    seg = segment("Step 1: 4*3 = 12. Step 2: 20-12 = 8.\nThe answer is: 8")
    assert seg.units == seg.steps == ["4*3 = 12.", "20-12 = 8.", "The answer is: 8"] and seg.identity


def test_capped_merges_trailing_steps_and_units():
    seg, merged = segment("\n".join(f"{i} + 1 = {i + 1}" for i in range(10))).capped(4)
    assert merged == 7 and len(seg.steps) == len(seg.units) == 4 and seg.steps[-1].startswith("3 + 1") and seg.identity
    # a caller's list: empty items hold no step, but count as units; both stay within the cap
    seg, merged = segment([""] * 6 + ["a.", "b.", "c.", "d.", "e."]).capped(4)
    assert len(seg.steps) <= 4 and len(seg.units) == 4 and seg.unit_of == [3, 3, 3, 3] and merged == 8
    assert segment("one step").capped(4) == (segment("one step"), 0)


def test_segment_of_given_steps_keeps_the_callers_numbering():
    seg = segment(["", _PROSE, "The answer is: 8"])
    assert seg.units == ["", _PROSE, "The answer is: 8"]
    assert seg.unit_of == [1, 1, 2]
    assert segment([]).steps == [] and segment([]).units == []


@pytest.mark.parametrize("text", ["", "   \n\n  ", None])
def test_empty(text):
    assert split_steps(text) == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("junk", ["\\[" * 50_000, "$" * 100_001, "<<" * 50_000, "\\begin{x}" * 10_000, "a. B" * 25_000])
def test_hostile_delimiters_do_not_hang(junk):
    steps = split_steps(junk)
    assert isinstance(steps, list)
    assert sum(len(s) for s in steps) <= len(junk)


def test_embedding_text_strips_annotations_and_answer_marker():
    assert embedding_text("Natalia sold 48/2 = <<48/2=24>>24 clips.") == "Natalia sold 48/2 = 24 clips."
    assert embedding_text("#### 72") == "The answer is 72"
    assert len(embedding_text("x " * 10_000, max_chars=100)) == 100
