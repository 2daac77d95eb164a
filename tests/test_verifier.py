"""MathVerifier end to end with the real all-MiniLM-L6-v2 (offline package) and a tiny NLI model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hardneg.verifier import (
    VERIFIER_VERSION,
    MathVerifier,
    ModelLoadError,
    NLIScorer,
    VerifierConfig,
    VerifierProfile,
    VerifyInput,
    default_embedding_model,
)
from hardneg.verifier.embedding import PackedEncoder, SentenceEmbedder

ROOT = Path(__file__).resolve().parents[1]
SPEC_FIELDS = {
    "id", "d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer", "wrongness", "absurdity",
    "first_error_step", "steps", "channels", "elapsed_ms", "formula_error",
}

NOTEBOOKS_Q = (
    "John buys 4 notebooks at $3 each and receives a 10% discount on the total. "
    "He pays with a $20 bill. How much change does he receive?"
)
NOTEBOOKS_REF = (
    "Step 1: Total before discount = 4 × $3 = $12.\nStep 2: Discount = 10% × $12 = $1.20.\n"
    "Step 3: Total after discount = $12 − $1.20 = $10.80.\nStep 4: Change = $20 − $10.80 = $9.20."
)
# Not one of the calibration paraphrases (calibration.py uses GSM8K train problems only).
NOTEBOOKS_PARAPHRASE = (
    "First, the notebooks cost 4 × $3 = $12 before any discount.\nThe 10% discount is worth 10% × $12 = $1.20.\n"
    "After the discount John owes $12 − $1.20 = $10.80.\nHis change from the $20 bill is $20 − $10.80 = $9.20."
)
TABLE2_HARD_NEG = (
    "Step 1: Total before discount = 4 × $3 = $12. Step 2: Discount per notebook = 10% × $3 = $0.30. "
    "Step 3: Total discount = 4 × $0.30 = $1.20. Step 4: Total after discount = $12 − $1.20 = $10.80. "
    "Step 5: Change = $20 − $12 = $8."
)
JULIE_Q = (
    "Julie is reading a 120-page book. Yesterday, she was able to read 12 pages and today, she read twice as many "
    "pages as yesterday. If she wants to read half of the remaining pages tomorrow, how many pages should she read?"
)
JULIE_REF = (
    "Maila read 12 x 2 = <<12*2=24>>24 pages today.\nSo she was able to read a total of 12 + 24 = <<12+24=36>>36 pages "
    "since yesterday.\nThere are 120 - 36 = <<120-36=84>>84 pages left to be read.\nSince she wants to read half of "
    "the remaining pages tomorrow, then she should read 84/2 = <<84/2=42>>42 pages.\n#### 42"
)
JULIE_STEPS = [
    "Today Julie read 12 x 2 = 24 pages.",
    "So far she has read 12 + 24 = 36 pages.",
    "The book has 120 - 36 = 84 pages left.",
    "Tomorrow she reads half of them: 84/2 = 42 pages.",
    "The answer is: 42",
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The test machine's cores are shared: one intra-op thread avoids oversubscription
    stalls (restored afterwards, so other test modules are unaffected)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def embedder(one_torch_thread):
    return SentenceEmbedder.from_pretrained(default_embedding_model(), device="cpu")


@pytest.fixture(scope="module")
def verifier(embedder):
    return MathVerifier(VerifierConfig(use_nli=False, device="cpu"), embedder=embedder)


def run(verifier, *items) -> list[VerifierProfile]:
    return verifier.verify_batch(list(items))


def test_default_embedding_model_is_the_offline_package():
    path = Path(default_embedding_model())
    assert path.name == "model" and (path / "config.json").is_file()


def test_profile_has_exactly_the_spec_fields(verifier):
    [p] = run(verifier, VerifyInput("a", NOTEBOOKS_Q, NOTEBOOKS_PARAPHRASE, NOTEBOOKS_REF, "9.20"))
    d = p.to_dict()
    assert set(d) == SPEC_FIELDS
    assert json.loads(json.dumps(d)) == d
    assert all(set(s) == {"text", "flags"} for s in d["steps"])
    assert p.verifier_version == VERIFIER_VERSION
    for k in ("d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer", "wrongness", "absurdity"):
        assert 0.0 <= d[k] <= 1.0


def test_paraphrase_scores_near_zero_and_unrelated_high(verifier):
    unrelated = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\nThe answer is: 72"
    para, same, other = run(
        verifier,
        VerifyInput("para", NOTEBOOKS_Q, NOTEBOOKS_PARAPHRASE, NOTEBOOKS_REF, "9.20"),
        VerifyInput("same", NOTEBOOKS_Q, NOTEBOOKS_REF, NOTEBOOKS_REF, "9.20"),
        VerifyInput("other", NOTEBOOKS_Q, unrelated, NOTEBOOKS_REF, "9.20"),
    )
    assert para.d_semantic <= 0.1
    assert same.d_semantic == pytest.approx(0.0, abs=1e-6)
    assert other.d_semantic >= 0.7
    assert para.d_structure == 0.0 and para.d_order == 0.0 and para.d_answer == 0.0
    assert para.first_error_step is None and para.wrongness <= 0.02


def test_missing_step_raises_d2_and_swapped_steps_raise_d3(verifier):
    full = "\n".join(JULIE_STEPS)
    missing = "\n".join(JULIE_STEPS[:1] + JULIE_STEPS[2:])
    swapped = "\n".join([JULIE_STEPS[0], JULIE_STEPS[2], JULIE_STEPS[1]] + JULIE_STEPS[3:])
    pf, pm, ps = run(
        verifier,
        VerifyInput("full", JULIE_Q, full, JULIE_REF, None),
        VerifyInput("missing", JULIE_Q, missing, JULIE_REF, None),
        VerifyInput("swapped", JULIE_Q, swapped, JULIE_REF, None),
    )
    assert pf.d_structure == 0.0 and pf.d_order == 0.0
    assert pm.d_structure == pytest.approx(0.6 / 5)
    assert ps.d_order >= 0.25 and ps.d_structure == 0.0
    # the reference's step 2 (120 - 36) uses step 1's result (36): computing it first is a key inversion
    assert any("order inversion" in f for f in ps.steps[1].flags)
    assert ps.first_error_step == 1
    assert pf.d_answer == 0.0  # the reference answer is read from "#### 42"


def test_a_question_number_the_reference_uses_again_is_not_stale(verifier):
    q = ("Lionel bought 14 boxes of Graham crackers and 15 packets of Oreos. An Oreo cheesecake needs 2 boxes of Graham "
         "crackers and 3 packets of Oreos. After making as many cheesecakes as he can, how many boxes of Graham crackers "
         "are left over?")
    ref = ("Lionel has enough Graham crackers to make 14/2 = <<14/2=7>>7 Oreo cheesecakes\n"
           "Lionel has enough Oreos to make 15/3 = <<15/3=5>>5 Oreo cheesecakes\n"
           "Therefore, the maximum number of cheesecakes Lionel can make is 5.\n"
           "Lionel needs 2 * 5 = <<2*5=10>>10 boxes of Graham crackers\nHe'll have 14 - 10 = <<14-10=4>>4 boxes left over\n#### 4")
    cand = ("With 14 boxes he could make 14/2 = 7 cheesecakes, with 15 packets 15/3 = 5, so he makes 5.\n"
            "They use 2 * 5 = 10 boxes, leaving 14 - 10 = 4 boxes.\nThe answer is: 4")
    with_ref, without_ref = run(verifier, VerifyInput("ref", q, cand, ref, None), VerifyInput("none", q, cand, None, "4"))
    assert not any("value-flow" in f for s in with_ref.steps for f in s.flags), [s.flags for s in with_ref.steps]
    assert any("value-flow" in f for s in without_ref.steps for f in s.flags)  # no reference to say 14 stays current


def test_a_step_aligned_with_a_look_alike_is_no_order_inversion(verifier):
    # GSM8K test 660 as lines of three steps: the last line holds reference steps 6 and 7, so the alignment
    # (one step to one step) paired reference step 7 ("20 - 5 = 15 sheep ... on the farm") with "The farm has
    # g + s = 20 animals", before step 6's 5; that line writes no 5, so it does not need step 6
    q = ("Lee rears only sheep and geese on his farm.  If the total number of animal legs is 70, and the total "
         "number of animal heads is 20, how many sheep live on Lee's farm?")
    ref = ("Let g be the number of geese and let s be the number of sheep. The farm has g + s = 20 animals.\n"
           "Therefore Lee has s = 20 - g sheep.\nThe animals have 2g + 4s = 70 legs.\n"
           "Using the value of s above, 2g + 4(20-g) = 70.\n2g + 80 - 4g = 70.\n2g = 10.\n"
           "There are therefore 10/2 = <<10/2=5>>5 geese.\nThere are 20 - 5 = <<20-5=15>>15 sheep remaining on the farm.\n#### 15")
    steps = [s.replace("<<10/2=5>>", "").replace("<<20-5=15>>", "") for s in ref.split("\n")[:-1]]
    lines = [" ".join(steps[i : i + 3]) for i in range(0, len(steps), 3)] + ["The answer is: 15"]
    [p] = run(verifier, VerifyInput("lines", q, "\n".join(lines), ref, None))
    assert p.first_error_step is None, [s.flags for s in p.steps]
    assert not any("order inversion" in f for s in p.steps for f in s.flags)


def test_table2_hard_negative(verifier):
    [p] = run(verifier, VerifyInput("t2", NOTEBOOKS_Q, TABLE2_HARD_NEG, NOTEBOOKS_REF, "9.20"))
    assert p.d_logic >= 0.9
    assert p.first_error_step == 4
    [flag] = p.steps[4].flags
    assert flag.startswith("value-flow contradiction") and "10.80" in flag and "12" in flag
    assert p.channels == ["fast", "fine", "value-flow-only"]
    assert p.d_numeric == 0.0 and p.d_answer == 1.0
    assert p.d_semantic <= 0.2 and p.d_structure <= 0.2 and p.d_order <= 0.1
    assert 0.3 <= p.wrongness <= 0.8  # SPEC §2.4: a hard negative


def test_arithmetic_slip_and_formula_error(verifier):
    rect_q = "A rectangular garden is 6 meters long and 4 meters wide. What is the perimeter of the garden?"
    slip, formula, correct = run(
        verifier,
        VerifyInput("slip", "A box holds 3 rows of 4 eggs. How many eggs?", "There are 3 * 4 = 13 eggs.\nThe answer is: 13", None, "12"),
        VerifyInput("formula", rect_q, "The garden's area is 6 * 4 = 24.\nThe answer is: 24", None, "20"),
        VerifyInput("ok", rect_q, "The perimeter is 2 * (6 + 4) = 20.\nThe answer is: 20", None, "20"),
    )
    assert slip.d_numeric == pytest.approx(0.4) and not slip.formula_error
    assert slip.steps[0].flags == ["arithmetic slip: 3 * 4 = 13 (should be 12)"]
    assert slip.first_error_step == 0
    assert formula.d_numeric == pytest.approx(1.0) and formula.formula_error
    assert formula.steps[0].flags[0].startswith("formula error")
    assert correct.d_numeric == 0.0 and correct.d_answer == 0.0 and not correct.formula_error


def test_every_wrong_equality_in_a_chain_and_the_first_is_first_error(verifier):
    cand = "Let us add up.\nA = (-9 - 5 - 0) = -14\nB = 2 + 3 = 6 = 12\nC = 7 - 1 = 5\nThe answer is: 12"
    [p] = run(verifier, VerifyInput("chain", "Compute A, B and C.", cand, None, None))
    assert p.steps[1].flags == []
    assert p.steps[2].flags == ["arithmetic slip: 2 + 3 = 6 (should be 5)", "arithmetic slip: 6 = 12 (6 ≠ 12)"]
    assert p.steps[3].flags == ["arithmetic slip: 7 - 1 = 5 (should be 6)"]
    assert p.first_error_step == 2


def test_final_answer_equivalence(verifier):
    half, wrong, none = run(
        verifier,
        VerifyInput("half", "What is 1/2 as a number?", "It is $\\boxed{\\frac{1}{2}}$.", None, "0.5"),
        VerifyInput("wrong", "What is 1/2 as a number?", "It is $\\boxed{\\frac{1}{3}}$.", None, "0.5"),
        VerifyInput("none", "What is 1/2 as a number?", "It is $\\boxed{\\frac{1}{2}}$.", None, None),
    )
    assert half.d_answer == 0.0 and wrong.d_answer == 1.0 and none.d_answer is None


def test_null_dimensions_without_reference(verifier):
    [p] = run(verifier, VerifyInput("noref", NOTEBOOKS_Q, TABLE2_HARD_NEG, None, None))
    assert (p.d_semantic, p.d_structure, p.d_order, p.d_answer) == (None, None, None, None)
    assert p.d_logic >= 0.9 and p.d_numeric == 0.0 and p.first_error_step == 4
    assert p.wrongness == pytest.approx((0.25 * p.d_logic) / 0.40)
    assert p.absurdity == pytest.approx((0.30 * p.d_logic) / 0.40)
    d = p.to_dict()
    assert d["d_semantic"] is None and d["d_answer"] is None


def test_reference_answer_without_solution(verifier):
    [p] = run(verifier, VerifyInput("ans", NOTEBOOKS_Q, NOTEBOOKS_REF, None, "9.2"))
    assert p.d_semantic is None and p.d_structure is None and p.d_answer == 0.0


def test_weights_are_configuration(embedder):
    cfg = VerifierConfig(use_nli=False, wrongness_weights={"d_answer": 1.0}, absurdity_weights={"d_logic": 1.0})
    v = MathVerifier(cfg, embedder=embedder)
    [p] = run(v, VerifyInput("t2", NOTEBOOKS_Q, TABLE2_HARD_NEG, NOTEBOOKS_REF, "9.20"))
    assert p.wrongness == pytest.approx(1.0) and p.absurdity == pytest.approx(p.d_logic)


def test_fine_gate_none_keeps_only_the_fast_channel(embedder):
    v = MathVerifier(VerifierConfig(use_nli=False, fine_gate="none"), embedder=embedder)
    [p] = run(v, VerifyInput("t2", NOTEBOOKS_Q, TABLE2_HARD_NEG, NOTEBOOKS_REF, "9.20"))
    assert p.channels == ["fast"]
    assert p.d_semantic is not None and p.d_answer == 1.0
    assert (p.d_structure, p.d_order, p.d_logic, p.d_numeric) == (None, None, None, None)


def test_embeddings_are_batched_and_cached_across_calls(embedder):
    v = MathVerifier(VerifierConfig(use_nli=False), embedder=embedder)
    items = [VerifyInput(str(i), JULIE_Q, "\n".join(JULIE_STEPS[: 2 + i % 3]), JULIE_REF, "42") for i in range(6)]
    before = embedder.encoded_texts
    first = v.verify_batch(items)
    mid = embedder.encoded_texts
    second = v.verify_batch(items)
    assert embedder.encoded_texts == mid  # everything came from the cache
    assert mid - before <= 1 + 5 + len(JULIE_STEPS)  # question + reference steps + unique candidate steps, once
    assert [p.to_dict() | {"elapsed_ms": 0} for p in first] == [p.to_dict() | {"elapsed_ms": 0} for p in second]


def test_packed_encoding_gives_each_text_its_own_vector(embedder):
    """Rows mixing many short texts, texts longer than a row, a text cut at the model's
    256-token limit and an empty one: every vector equals sentence-transformers' own."""
    assert embedder.packer is not None  # the shipped default for MiniLM
    texts = JULIE_STEPS + [JULIE_Q, "", "x", "word " * 40, "Step 1: 12 * 7 = 84. " * 60] + [f"{i} + {i} = {2 * i}" for i in range(40)]
    want = embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=8)
    # tiny rows and passes, so rows hold several texts, some texts overflow a row and a
    # pass holds several rows of different widths
    small = PackedEncoder.for_model(embedder.model, pack_tokens=24, batch_tokens=64)
    for packer in (embedder.packer, small):
        got = packer.encode(texts)
        assert got.shape == want.shape
        cosine = (got * want).sum(axis=1)
        assert cosine.min() > 1 - 1e-5, int(cosine.argmin())
    rows = small._rows([len(x) for x in small.tokenizer(texts, truncation=True, max_length=256)["input_ids"]])
    assert sorted(i for row in rows for i in row) == list(range(len(texts)))
    assert any(len(row) > 1 for row in rows) and len(rows) < len(texts)


def test_packing_falls_back_to_padded_batches_when_not_equivalent(embedder):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    max_pooled = SentenceTransformer(modules=[embedder.model[0], Pooling(384, pooling_mode="max")], device="cpu")
    assert PackedEncoder.for_model(max_pooled) is None  # only mean / CLS pooling can be packed
    assert PackedEncoder.for_model(embedder.model, tolerance=-1.0) is None  # the equivalence check decides
    padded = SentenceEmbedder(embedder.model, batch_size=4, cache_size=0)
    got = padded.encode(JULIE_STEPS)
    want = embedder.packer.encode(JULIE_STEPS)
    assert np.abs(got - want).max() < 1e-5


NASTY = [
    "10^10^10^10",
    "Step 1: 10^10^10^10 = 5. Step 2: 2 + 2 = 4.",
    "x" * 100_000,
    "Step 1: 1 + 1 = 3. " * 6_000,
    "\\frac{\\frac{\\frac{" * 3_000 + "}" * 10,
    "{{{{{{ 1 + 2 = 3 ]]]] ((((( ",
    "$$$$ \\[ \\( \\begin{align} <<1+1=3>> ",
    "".join(chr(c) for c in range(0x2000, 0x2400)) * 20,
    "\ud800 lone surrogate \udfff and \x00 nul",
    "",
    "   \n\n\t ",
    "(" * 3000 + "1" + ")" * 3000 + " = 1",
    " " * 30_000,  # no step, but a note to put somewhere (over max_chars)
    [" " * 30_000, ""],  # the same as a list of steps
]


@pytest.mark.timeout(120)
def test_nasty_inputs_return_profiles_not_exceptions(verifier):
    items = [VerifyInput(f"n{i}", "What is it? It costs $5.", text, "It is 2 + 2 = 4.\n#### 4", "4") for i, text in enumerate(NASTY)]
    profiles = run(verifier, *items)
    assert [p.id for p in profiles] == [it.id for it in items]
    for p in profiles:
        assert "failed" not in p.channels, (p.id, p.steps[:1])
        json.dumps(p.to_dict())
    by_id = {p.id: p for p in profiles}
    assert any("too large" in f for s in by_id["n1"].steps for f in s.flags)
    assert by_id["n1"].steps[1].flags == []  # the rest of the candidate is still checked
    assert any("only the first" in f for s in by_id["n2"].steps for f in s.flags)
    assert len(by_id["n3"].steps) == VerifierConfig().max_steps
    assert any("merged" in f for f in by_id["n3"].steps[-1].flags)
    assert by_id["n3"].d_numeric == pytest.approx(0.4)
    assert any("unbalanced" in f for s in by_id["n5"].steps for f in s.flags)
    assert by_id["n9"].steps == [] and by_id["n9"].d_answer == 1.0
    for blank in ("n12", "n13"):
        assert any("only the first" in f for s in by_id[blank].steps for f in s.flags)
    # one candidate per call: each returns within a few seconds (no sub-timing asserted here: see bench/fuzz_verifier.py)


def test_a_broken_row_does_not_take_the_batch_down(verifier):
    good = VerifyInput("good", NOTEBOOKS_Q, NOTEBOOKS_REF, NOTEBOOKS_REF, "9.20")
    bad = {"id": "bad", "question": NOTEBOOKS_Q, "candidate": None}
    p_bad, p_good = verifier.verify_batch([bad, good])
    assert p_bad.channels == ["failed"]
    assert p_bad.d_semantic is None and p_bad.wrongness is None
    assert "candidate" in p_bad.steps[0].flags[0]
    assert p_good.wrongness == 0.0


def test_verify_input_validation():
    with pytest.raises(TypeError, match="'candidate'"):
        VerifyInput("x", "q", None)
    with pytest.raises(TypeError, match="int at index 1"):
        VerifyInput("x", "q", ["a step", 3])
    assert VerifyInput(7, "q", "c", None, 42).id == "7"
    assert VerifyInput("x", "q", ("a", "b")).candidate == ["a", "b"]


PENS_Q = "A shop sells pens at $3 each. Tom buys 4 pens and pays with a $20 bill. How much change does he get?"
PENS_REF = "4 pens cost 4*3 = 12 dollars.\nHis change is 20-12 = 8 dollars.\nThe answer is: 8"
# a first line of two sentences (>= 150 characters, so the verifier analyses them apart)
PENS_LINE = ("Tom buys 4 pens and each pen costs 3 dollars, so we need the total amount he spends first. "
             "The pens cost 4*3 = 12 dollars in all, which he pays from his 20 dollar bill.")


def test_steps_and_first_error_count_the_candidates_lines(verifier):
    """SPEC §5: a solution written one step per line is reported in its lines, even where a
    long line is analysed sentence by sentence; a message naming another step uses the same
    numbers. Given as a list, the same steps come back."""
    lines = [PENS_LINE, "He pays with a 20 dollar bill, so his change is 20-15 = 5 dollars.", "The answer is: 5",
             "He pays with a 20 dollar bill, so his change is 20-15 = 5 dollars."]
    as_text, as_list = run(verifier, VerifyInput("t", PENS_Q, "\n".join(lines), PENS_REF, "8"),
                           VerifyInput("l", PENS_Q, lines, PENS_REF, "8"))
    for p in (as_text, as_list):
        assert [s.text for s in p.steps] == lines
        assert p.first_error_step == 1
        assert any("but step 0 computed 12" in f for f in p.steps[1].flags), p.steps[1].flags
        assert "duplicate step: near-identical to step 1" in p.steps[3].flags
    assert as_text.dims() == as_list.dims()
    # the same solution as one paragraph: nothing marks its steps but its sentences
    [para] = run(verifier, VerifyInput("p", PENS_Q, " ".join(lines[:3]), PENS_REF, "8"))
    assert len(para.steps) == 4 and para.first_error_step == 2


def test_given_steps_keep_empty_items_and_a_slip_inside_a_long_step(verifier):
    slip = PENS_LINE.replace("4*3 = 12", "4*3 = 13")
    [p] = run(verifier, VerifyInput("g", PENS_Q, ["", slip, "His change is 20-13 = 7 dollars.", "The answer is: 7"], PENS_REF, "8"))
    assert [s.text for s in p.steps][:2] == ["", slip]
    assert p.first_error_step == 1
    assert any("4*3 = 13" in f for f in p.steps[1].flags)
    # past max_chars the later items are cut, not dropped: the numbering still holds
    [cut] = run(verifier, VerifyInput("c", PENS_Q, ["4*3 = 13", "x " * 12_000, "The answer is: 13"], PENS_REF, "8"))
    assert len(cut.steps) == 3 and cut.first_error_step == 0
    assert any("only the first" in f for s in cut.steps for f in s.flags)
    # many steps, even empty ones, are reported in at most max_steps
    many = [""] * 5_000 + ["4*3 = 13"]
    [long] = run(verifier, VerifyInput("m", PENS_Q, many, PENS_REF, "8"))
    assert len(long.steps) == VerifierConfig().max_steps and long.first_error_step == VerifierConfig().max_steps - 1
    assert any("merged" in f for f in long.steps[-1].flags)


# ------------------------------------------------------------------------------- NLI


def tiny_nli(tokenizer_dir: Path, labels=("contradiction", "entailment", "neutral")):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        pad_token_id=tok.pad_token_id,
    )
    return BertForSequenceClassification(config), tok


def test_nli_pipeline_runs_with_a_tiny_model(embedder, tiny_model_dir):
    model, tok = tiny_nli(tiny_model_dir, labels=("entailment", "neutral", "CONTRADICTION"))
    scorer = NLIScorer(model, tok, device="cpu", batch_size=4)
    assert scorer.index == 2
    v = MathVerifier(VerifierConfig(use_nli=True, nli_flag_threshold=0.99), embedder=embedder, nli=scorer)
    profiles = run(
        v,
        VerifyInput("t2", NOTEBOOKS_Q, TABLE2_HARD_NEG, NOTEBOOKS_REF, "9.20"),
        VerifyInput("ok", NOTEBOOKS_Q, NOTEBOOKS_REF, NOTEBOOKS_REF, "9.20"),
    )
    for p in profiles:
        assert "nli" in p.channels and "value-flow-only" not in p.channels
        assert 0.0 <= p.d_logic <= 1.0
    assert profiles[0].d_logic >= 0.9  # value flow still counts
    assert profiles[1].d_logic > 0.0  # a random classifier gives every pair some contradiction mass
    scored = scorer.scored_pairs
    run(v, VerifyInput("ok", NOTEBOOKS_Q, NOTEBOOKS_REF, NOTEBOOKS_REF, "9.20"))
    assert scorer.scored_pairs == scored  # cached
    probs = scorer.contradiction([("a", "b"), ("a", "b"), ("c", "d")])
    assert probs.shape == (3,) and probs[0] == probs[1] and np.all((probs >= 0) & (probs <= 1))


def test_nli_loads_from_a_local_folder_and_rejects_a_model_without_contradiction(tiny_model_dir, tmp_path):
    model, tok = tiny_nli(tiny_model_dir)
    model.save_pretrained(tmp_path / "nli")
    tok.save_pretrained(tmp_path / "nli")
    scorer = NLIScorer.from_pretrained(str(tmp_path / "nli"), device="cpu")
    assert scorer.index == 0
    model, tok = tiny_nli(tiny_model_dir, labels=("positive", "negative"))
    with pytest.raises(ModelLoadError, match="use_nli=False"):
        NLIScorer(model, tok, device="cpu")


@pytest.mark.timeout(60)
def test_unloadable_nli_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="use_nli=False"):
        MathVerifier.from_config(VerifierConfig(nli_model="cross-encoder/nli-deberta-v3-base", use_nli=True))


# ------------------------------------------------------------------------------- calibration


def test_shipped_semantic_constants_match_the_calibration(embedder):
    from hardneg.verifier.calibration import calibrate

    c = calibrate(embedder, n_unrelated=60)
    cfg = VerifierConfig()
    for name in ("semantic_paraphrase_level", "semantic_unrelated_level", "match_threshold", "drift_threshold"):
        assert abs(c[name] - getattr(cfg, name)) <= 0.03, name
    assert np.median(c["paraphrase_raw"]) < cfg.semantic_paraphrase_level < min(c["unrelated_raw"])


def test_a_wrong_answer_with_no_wrong_step_found_is_located_off_the_reference_path(verifier):
    """A misread question (the spill ignored) is arithmetic done right: no slip, but the answer is wrong. The
    first step off the reference's path is named; the dimensions are those of before (the answer counts in d6)."""
    from test_verifier_checks import ORANGE_Q, ORANGE_REF

    ref_body = ORANGE_REF.split("####")[0]
    wrong = ("1. **Water in the orange drink:**\n   \\[\n   10 \\times \\frac{2}{3} = \\frac{20}{3} \\approx 6.67 \\text{ liters}\n   \\]\n"
             "2. **Water in the pineapple drink:**\n   \\[\n   15 \\times \\frac{3}{5} = 9 \\text{ liters}\n   \\]\n"
             "3. **Total water:**\n   \\[\n   6.67 + 9 = 15.67 \\text{ liters}\n   \\]\n"
             "Therefore, the final answer is \\(\\boxed{15.67}\\).")
    detour = ("The orange drink left is 10 - 1 = 9 liters, of which 9 × 2/3 = 6 liters are water.\n"
              "The pineapple drink holds 15 × 3/5 = 9 liters of water.\nSo there are 6 + 9 = 15 liters of water.\n"
              "The answer is 15.")
    bad, good = run(verifier, VerifyInput("bad", ORANGE_Q, wrong, ref_body, "15"),
                    VerifyInput("good", ORANGE_Q, detour, ref_body, "15"))
    assert bad.d_answer == 1.0 and bad.d_numeric == 0.0 and bad.d_logic == 0.0
    assert "10 \\times \\frac{2}{3}" in bad.steps[bad.first_error_step].text
    assert bad.steps[bad.first_error_step].flags[0].startswith("off the reference's path")
    assert good.d_answer == 0.0 and good.first_error_step is None, [s.flags for s in good.steps]


def test_a_rounded_result_carried_on_exactly_is_no_slip(verifier):
    q = "Sophia drove 100 miles on the 12 gallons of a full tank. How far can she drive on 4 gallons?"
    exact, slip = run(verifier,
                      VerifyInput("exact", q, "100 / 12 = 8.33 miles per gallon.\n8.33 * 4 = 33.33 miles.\nThe answer is 33.33."),
                      VerifyInput("slip", q, "100 / 12 = 8.33 miles per gallon.\n8.33 * 4 = 32.33 miles.\nThe answer is 32.33."))
    assert exact.d_numeric == 0.0 and exact.first_error_step is None, [s.flags for s in exact.steps]
    assert slip.d_numeric == pytest.approx(0.4) and slip.first_error_step == 1


def test_a_wrong_residue_is_the_first_error(verifier):
    q = "What is the remainder when $2^{100}$ is divided by 7?"
    steps = ("Since $2^3 = 8 \\equiv 1 \\pmod 7$, powers of 2 repeat every 3.\n"
             "We have $100 = 3 \\cdot 33 + 1$, so $2^{100} \\equiv 2^1 \\pmod 7$.\n"
             "So $2^{100} \\equiv R \\pmod 7$.\nThe answer is $\\boxed{R}$.")
    right, wrong = run(verifier, VerifyInput("right", q, steps.replace("R", "2"), None, "2"),
                       VerifyInput("wrong", q, steps.replace("R", "4"), None, "2"))
    assert right.first_error_step is None, [s.flags for s in right.steps]
    assert wrong.first_error_step == 2
    assert "modulo 7 the left side leaves 2, the right side 4" in wrong.steps[2].flags[0]
