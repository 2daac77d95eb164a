"""The error-injection generator (hardneg.inject): labels, determinism, size, API."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from fractions import Fraction

import pytest

from hardneg.inject import ERROR_TYPES, InjectConfig, inject_reference, iter_frames, iter_references, iter_rows
from hardneg.verifier import split_steps

SINGLE_STEP_EDITS = ("arithmetic_slip", "wrong_operator", "algebra_slip", "carry_error", "wrong_answer")


@pytest.fixture(scope="module")
def sample():
    """Rows of the first 25 references of each train set, every error type forced in turn."""
    refs = list(iter_references(InjectConfig(max_references=25)))
    rows = []
    for etype in ERROR_TYPES:
        cfg = InjectConfig(max_references=25, variants_per_reference=4, error_mix={etype: 1.0})
        for ref in refs:
            rows += [(ref, r) for r in inject_reference(ref, cfg) if r["variant"] > 0]
    return refs, rows


def test_every_error_type_is_generated_from_both_sources(sample):
    _, rows = sample
    seen = Counter((r["error_type"], r["source"]) for _, r in rows)
    for etype in ERROR_TYPES:
        assert any(seen[(etype, s)] for s in ("gsm8k", "math")), etype
    for etype in ("arithmetic_slip", "wrong_operator", "dropped_step", "wrong_answer", "truncated", "correct"):
        assert seen[(etype, "gsm8k")] and seen[(etype, "math")], etype
    assert seen[("algebra_slip", "math")] > 0


def test_labels_point_at_the_changed_step_of_the_verifiers_split(sample):
    checked = Counter()
    for ref, r in sample[1]:
        etype, k = r["error_type"], r["error_step"]
        steps = split_steps(r["text"])
        if etype in SINGLE_STEP_EDITS:
            # exactly one step differs from the reference, and it is the labelled one
            assert len(steps) == len(ref.steps), r["candidate_id"]
            differing = [i for i, (a, b) in enumerate(zip(steps, ref.steps)) if a != b]
            assert differing == [k], (r["candidate_id"], differing, k)
        elif etype == "dropped_step":
            assert steps == ref.steps[:k] + ref.steps[k + 1 :]
        elif etype == "duplicated_step":
            assert steps[k] == steps[k - 1] and steps[:k] + steps[k + 1 :] == ref.steps
        elif etype == "swapped_steps":
            assert steps[k] == ref.steps[k + 1] and steps[k + 1] == ref.steps[k]
        elif etype == "truncated":
            assert k == len(steps) - 1 and steps[:k] == ref.steps[:k] and ref.steps[k].startswith(steps[k])
            assert r["finish_reason"] == "length"
        elif etype == "missing_answer":
            assert k == len(steps) - 1
            assert r["answer"] is None or "\\boxed" not in r["text"] and "The answer is" not in r["text"]
        elif etype == "correct":
            assert k is None
        elif etype == "empty":
            assert r["text"] == "" and k is None
        checked[etype] += 1
    assert sum(checked.values()) > 500


def test_arithmetic_slips_really_are_wrong(sample):
    """The changed number differs from the value of the computation it ends (GSM8K: the <<a=b>> annotation)."""
    n = 0
    for ref, r in sample[1]:
        if r["error_type"] != "arithmetic_slip" or r["source"] != "gsm8k":
            continue
        k = r["error_step"]
        line = ref.sites["annotated"][k]
        values = {Fraction(b.split("=")[1]) for b in re.findall(r"<<([^<>]*=[^<>]*)>>", line)}
        num = r"\d[\d,]*(?:\.\d+)?"
        before, after = re.findall(num, ref.steps[k]), re.findall(num, split_steps(r["text"])[k])
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert len(before) == len(after) and len(changed) == 1, r["candidate_id"]  # one number changed ...
        assert Fraction(changed[0][0].replace(",", "")) in values  # ... a computed result ...
        assert Fraction(changed[0][1].replace(",", "")) not in values  # ... now written wrong
        n += 1
    assert n >= 20


def test_algebra_slips_are_not_identities(sample):
    """Independent check with SymPy: the slipped equality is false while the reference's holds."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    n_checked = 0
    for ref, r in sample[1]:
        if r["error_type"] != "algebra_slip":
            continue
        k = r["error_step"]
        new_step = split_steps(r["text"])[k]
        made = [(site, o) for site, o in ref.sites["algebra"] if site["step"] == k
                and ref.steps[k][: site["rhs_start"]] + o + ref.steps[k][site["rhs_end"] :] == new_step]
        assert made, r["candidate_id"]
        site, o = made[0]
        e = latex2sympy(site["lhs"]) - latex2sympy(site["rhs"])
        assert sympy.simplify(e) == 0 or sympy.simplify(e.subs(sympy.Symbol("i"), sympy.I)) == 0  # the reference's holds
        d = sympy.simplify(latex2sympy(site["lhs"]) - latex2sympy(o))
        assert d != 0 and sympy.simplify(d.subs(sympy.Symbol("i"), sympy.I)) != 0, (site["lhs"], o)
        n_checked += 1
    assert n_checked >= 5


def test_untouched_reference_is_variant_zero():
    ref = next(iter_references(InjectConfig(sources=("math",), max_references=1)))
    rows = inject_reference(ref, InjectConfig(variants_per_reference=3))
    assert rows[0]["text"] == ref.text and rows[0]["error_type"] == "correct" and rows[0]["error_step"] is None
    assert [r["variant"] for r in rows] == [0, 1, 2]


def test_deterministic_and_seeded():
    cfg = InjectConfig(max_references=5, variants_per_reference=6, seed=3)
    a = list(iter_rows(cfg))
    b = list(iter_rows(cfg))
    assert a == b
    c = list(iter_rows(InjectConfig(max_references=5, variants_per_reference=6, seed=4)))
    assert [r["text"] for r in a] != [r["text"] for r in c]
    # a row does not depend on the others: one reference alone gives the same rows
    ref = next(iter_references(cfg))
    assert inject_reference(ref, cfg) == [r for r in a if r["problem_id"] == ref.problem_id]


def test_only_train_sets_are_read(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(json.dumps({"question": "q", "answer": "1+1=2\n#### 2"}) + "\n")
    with pytest.raises(FileNotFoundError, match="train.jsonl"):
        list(iter_references(InjectConfig(sources=("gsm8k",), data_dir=tmp_path)))


def test_bad_rows_and_config_give_clear_errors(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text('{"question": "q", "answer": "1+1=2\\n#### 2"}\n{"question": "q"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:2"):
        list(iter_references(InjectConfig(sources=("gsm8k",), data_dir=tmp_path)))
    with pytest.raises(ValueError, match="error_mix"):
        InjectConfig(error_mix={"typo": 1.0})
    with pytest.raises(ValueError, match="sources"):
        InjectConfig(sources=("gsm8k", "test"))


def test_frames_come_in_chunks_with_the_pool_columns():
    frames = list(iter_frames(InjectConfig(max_references=4, variants_per_reference=5, chunk_size=7)))
    assert [len(f) for f in frames[:-1]] == [7] * (len(frames) - 1) and 0 < len(frames[-1]) <= 7
    cols = {"candidate_id", "problem_id", "source", "text", "error_type", "error_step", "finish_reason", "answer"}
    assert cols <= set(frames[0].columns)
    ids = [i for f in frames for i in f["candidate_id"]]
    assert len(ids) == len(set(ids)) == 40


def test_capacity_reaches_600k():
    """Every reference yields variants_per_reference rows (the 'correct' re-phrasings never run out),
    so the default config gives ≥ 600,000 rows from the two train sets."""
    cfg = InjectConfig()
    n_refs = sum(1 for _ in iter_references(cfg))
    assert n_refs >= 14_900
    assert n_refs * cfg.variants_per_reference >= 600_000
    for ref in itertools.islice(iter_references(InjectConfig(max_references=10)), 0, 20, 3):
        assert len(inject_reference(ref, cfg)) == cfg.variants_per_reference


def test_propagated_slips_carry_the_wrong_value_to_the_answer_and_keep_the_first_error_step():
    from fractions import Fraction

    from hardneg.inject import InjectConfig, iter_rows

    def slips(propagate):
        cfg = InjectConfig(seed=0, variants_per_reference=30, sources=("gsm8k",), max_references=25, propagate=propagate)
        rows = list(iter_rows(cfg))
        refs = {r["problem_id"]: r["text"].split("\n") for r in rows if r["variant"] == 0}
        return [(r, refs[r["problem_id"]]) for r in rows if r["error_type"] in ("arithmetic_slip", "wrong_operator", "carry_error")]

    kept = slips(0.0)
    assert kept and all(r["answer"] == r["reference_answer"] for r, _ in kept)  # only the erring step changes
    flowed = slips(1.0)
    moved = [(r, ref) for r, ref in flowed if r["answer"] != r["reference_answer"]]
    assert len(moved) >= len(flowed) // 2
    for r, ref in moved:
        lines = r["text"].split("\n")
        assert lines[: r["error_step"]] == ref[: r["error_step"]]  # nothing before the first error changes
        assert lines[r["error_step"]] != ref[r["error_step"]]
        assert Fraction(r["answer"].replace(",", "")) >= 0
    # the arithmetic after the slip is redone with the wrong value: every later "a op b = c" still holds
    import re

    for r, _ in moved:
        for line in r["text"].split("\n")[r["error_step"] + 1 :]:
            for a, op, b, c in re.findall(r"(?<![\d.*/+\-])(?<![*/+\-]\s)(\d+(?:\.\d+)?)\s*([-+*/])\s*(\d+(?:\.\d+)?)\s*=\s*(\d+(?:\.\d+)?)(?![\d.])", line):
                want = {"+": Fraction(a) + Fraction(b), "-": Fraction(a) - Fraction(b), "*": Fraction(a) * Fraction(b),
                        "/": Fraction(a) / Fraction(b) if Fraction(b) else None}[op]
                if want is not None and want.denominator == 1:
                    assert Fraction(c) == want, line


def test_wrong_problem_is_another_problems_solution_with_wrong_operations(sample):
    from hardneg.inject import _eval

    refs, rows = sample
    own = {ref.problem_id: ref for ref in refs}
    wrong = [(ref, r) for ref, r in rows if r["error_type"] == "wrong_problem"]
    assert len(wrong) >= 20 and all(r["source"] == "gsm8k" and r["error_step"] == 0 for _, r in wrong)
    num = r"(\d*\.?\d+)"
    pattern = num + r"\s*\$?\s*([-+*/x×÷])\s*\$?\s*" + num + r"\s*=\s*\$?\s*" + num
    for ref, r in wrong:
        assert own[r["problem_id"]].question not in r["text"] and r["text"] != ref.text
        # at least two computations show what another operation on the same operands gives
        garbled = 0
        for m in re.finditer(pattern, r["text"]):
            if re.search(r"[\d.*/+\-x×÷]$", r["text"][: m.start()].rstrip(" $")):
                continue  # part of a longer expression (`10 + 5 + 20 = 35`)
            a, op, b, c = m.groups()
            op = {"x": "*", "×": "*", "÷": "/"}.get(op, op)
            if _eval(f"{a}{op}{b}") != Fraction(c) and any(_eval(f"{a}{o}{b}") == Fraction(c) for o in "+-*/" if o != op):
                garbled += 1
        assert garbled >= 2, r["text"]


def test_math_slips_flow_into_the_boxed_answer_and_wrong_operators_stay_written_in_latex():
    """MATH rows get the same flow as GSM8K: a wrong operator or carried value changes a plain boxed answer,
    nothing before the labelled step changes, and an operator written `\\cdot` is replaced in LaTeX."""
    cfg = InjectConfig(seed=0, variants_per_reference=40, sources=("math",), max_references=400, propagate=1.0,
                       error_mix={"wrong_operator": 1.0, "carry_error": 1.0, "arithmetic_slip": 1.0})
    rows = [r for r in iter_rows(cfg) if r["variant"] > 0]
    refs = {ref.problem_id: ref for ref in iter_references(cfg)}
    by_type = Counter(r["error_type"] for r in rows)
    assert by_type["wrong_operator"] >= 20 and by_type["carry_error"] >= 1, by_type  # few MATH steps compute with plain numbers
    from hardneg.grading import extract_answer

    moved = 0
    for r in rows:
        ref = refs[r["problem_id"]]
        steps, k = split_steps(r["text"]), r["error_step"]
        assert steps[:k] == ref.steps[:k] and steps[k] != ref.steps[k], r["candidate_id"]
        if r["answer"] != extract_answer(ref.text):
            moved += 1
            assert re.search(r"\\boxed\{-?\d+(?:\.\d+)?\}", r["text"]), r["candidate_id"]  # only a plain boxed number is carried
        if r["error_type"] == "wrong_operator":
            assert ("*" in steps[k]) <= ("*" in ref.steps[k]), steps[k]  # `\\cdot` is replaced by `\\cdot`, `\\div`, + or -
    assert moved >= 30, (moved, len(rows))  # few MATH answers are a plain number computed in a step


def test_correct_rephrasings_reorder_only_independent_steps():
    """A `correct` variant may swap two steps only when neither uses the other's result, compared as values:
    "$18.10" in the text is the 18.1 the step computed (a string comparison let it swap them)."""
    import random

    from hardneg.inject import _correct, _dependent_pairs, _gsm8k_reference

    row = {"question": "Rose wants a paintbrush for $2.40, paints for $9.20 and an easel for $6.50. She has $7.10. "
                       "How much more does she need?",
           "answer": "The total cost is $2.40 + $9.20 + $6.50 = $<<2.40+9.20+6.50=18.10>>18.10.\n"
                     "Rose needs $18.10 - $7.10 = $<<18.10-7.10=11>>11 more.\n"
                     "She saves $11 / 1 = $<<11/1=11>>11 a week for 1 week.\n#### 11"}
    ref = _gsm8k_reference(0, row)
    assert _dependent_pairs(ref) == [0, 1]
    for seed in range(60):
        text, error_type, _, _ = _correct(ref, random.Random(seed))
        assert error_type == "correct" and text.index("18.10 - ") > text.index("= $18.10")
