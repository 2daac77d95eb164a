"""The funnel (SPEC §2.4): each stage's rule, its boundaries, pairing, checks and re-runs."""

from __future__ import annotations

import random

import duckdb
import pandas as pd
import pytest
from funnel_data import FAMILY, SEED, cand, correct_cand, problem, write_pool

from hardneg.funnel import (
    FunnelConfig,
    StageRange,
    _number_sql,
    check_funnel_counts,
    degenerate_sql,
    is_degenerate,
    is_repetitive,
    loop_copies,
    parse_number,
    relative_answer_error,
    repetition_udf,
    run_funnel,
)


def funnel(wh, config=None, trace=True):
    with wh.connect() as con:
        return run_funnel(con, FAMILY, SEED, config or FunnelConfig(), trace=trace)


def reasons(result) -> dict[str, str]:
    return dict(zip(result.trace["candidate_id"], result.trace["reason"]))


def loop_text(period: int, n_tokens: int) -> str:
    """n_tokens tokens cycling through `period` distinct ones: exactly `period` distinct 4-grams."""
    words = [f"w{i}=" for i in range(period)]
    return " ".join(words[i % period] for i in range(n_tokens))


# --------------------------------------------------------------------------- stage 1 rules


def test_is_degenerate_reasons_and_precedence():
    assert is_degenerate("", "eos", "7") == "empty"
    assert is_degenerate(" \n\t\u00a0\u3000", "eos", "7") == "empty"
    assert is_degenerate(None, "eos", None) == "empty"
    assert is_degenerate(float("nan"), "eos", None) == "empty"  # a missing value out of pandas
    assert is_degenerate("3 + 4 = 7", "length", None) == "truncated"
    assert is_degenerate("3 + 4 = 7", "length", "  ") == "truncated"
    assert is_degenerate("3 + 4 = 7. The answer is 7", "length", "7") is None  # hit the cap but stated its answer
    assert is_degenerate("So 3 + 4 = \\boxed{7}. Checking: 7 - 4", "length", "7") is None
    # Cut off mid-way: the protocol's last-number fallback still extracts "9", but no answer was stated.
    assert is_degenerate("First 3 + 4 = 7, then 7 + 2 = 9, and we multiply by", "length", "9") == "truncated"
    assert is_degenerate("First 3 + 4 = 7, then 7 + 2 = 9, and we multiply by", "eos", "9") is None
    assert is_degenerate("3 + 4 = 7", "eos", None) is None  # no answer but not truncated: stage 1 keeps it
    assert is_degenerate(loop_text(3, 60), "eos", "7") == "repetitive"
    assert is_degenerate(loop_text(3, 60), "length", None) == "truncated"  # truncated wins
    assert is_degenerate("We should think about it carefully and decide.", "eos", None) == "no-math"
    assert is_degenerate("Let \\alpha be the angle.", "eos", None) is None  # LaTeX counts as math
    assert is_degenerate("Twelve apples: 12 in total.", "eos", "12") is None
    q = "Tom has 12 apples and buys 5 more.\nHow many apples does he have?"
    assert is_degenerate(q, "eos", None, question=q) == "echo"
    assert is_degenerate("How many apples does he have?\n  Tom has 12 apples and buys 5 more. ", "eos", None, question=q) == "echo"
    assert is_degenerate(q, "eos", None) is None  # no question known: no echo check
    assert is_degenerate(q + "\n12 + 5 = 17", "eos", "17", question=q) is None  # a solution after the restatement
    assert is_degenerate("5 more.", "eos", None, question=q) is None  # too short to call an echo
    short = "Factor $36-9x^2$."  # 15 characters: restating all of a short question is an echo
    assert is_degenerate(short + "\n", "eos", "2", question=short) == "echo"
    assert is_degenerate("$36-9x^2$", "eos", "2", question=short) is None  # under 80 % of it
    with pytest.raises(TypeError, match="text must be str"):
        is_degenerate(12, "eos", None)


def test_repetition_threshold_is_exact():
    cfg = FunnelConfig()  # 4-grams, >= 32 tokens, distinct share < 0.3
    # 43 tokens → 40 four-grams → limit 12 distinct.
    assert not is_repetitive(loop_text(12, 43), cfg)  # 12 distinct: not < 12
    assert is_repetitive(loop_text(11, 43), cfg)
    assert not is_repetitive(loop_text(2, 31), cfg)  # too short to judge
    assert is_repetitive(loop_text(2, 32), cfg)
    natural = " ".join(f"step {i}: {i} + {i + 1} = {2 * i + 1}." for i in range(40))
    assert not is_repetitive(natural, cfg)


def test_a_loop_after_a_sound_start_is_repetitive():
    cfg = FunnelConfig()  # a block of <= 3 segments 5 times in a row
    start = "\n".join(f"Step {i}: we add {i} and {i + 1} to get {2 * i + 1} apples for the basket." for i in range(12))
    loop = "\n".join([start] + ["There are three intersections."] * 5)
    assert loop_copies(loop, 3) == 5
    assert is_repetitive(loop, cfg)
    assert not is_repetitive("\n".join([start] + ["There are three intersections."] * 4), cfg)
    # A two-line block, and sentences looping within one line, whitespace ignored.
    assert is_repetitive(start + "\nSo x = 5.\nThus y = 2.\n" * 5, cfg)
    assert is_repetitive(start + " The answer is 5." + " The  answer is 5." * 4, cfg)
    assert not is_repetitive(start + "\nSo x = 5.\nThus y = 2.\n" * 4, cfg)
    # What real solutions repeat stays: one duplicated line, a table's repeated rule lines.
    table = "\n".join(f"{i} & {i * i} \\\\\n\\hline" for i in range(8))
    assert loop_copies(table, 3) == 1
    assert not is_repetitive(start + "\n" + table, cfg)
    assert not is_repetitive(loop, FunnelConfig(repetition_min_loop_copies=6))
    with pytest.raises(ValueError, match="repetition_min_loop_copies"):
        FunnelConfig(repetition_min_loop_copies=1)


def test_no_reference_solution_is_degenerate():
    """Stage 1 on every GSM8K and MATH reference solution shipped in data/ (as if it ended with EOS):
    the loop and echo rules must not touch real solutions."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "data"
    flagged = []
    for path, field_name in [("gsm8k/train.jsonl", "answer"), ("gsm8k/test.jsonl", "answer"),
                             ("math/train.jsonl", "solution"), ("math/test.jsonl", "solution")]:
        for line in (root / path).read_text().splitlines():
            row = json.loads(line)
            reason = is_degenerate(row[field_name], "eos", "1", question=row.get("question") or row.get("problem"))
            if reason is not None:
                flagged.append((path, reason, row[field_name][:80]))
    assert flagged == []


def test_degenerate_sql_agrees_with_python():
    rng = random.Random(3)
    rows = [
        ("", "eos", None), (None, "eos", "1"), ("\u2003\u00a0\n", "eos", "1"), ("a\u00a0b 1", "eos", "1"),
        ("1 + 1 = 2", "length", None), ("1 + 1 = 2", "length", "\u3000"), ("1 + 1 = 2", "length", "2"),
        ("no digits here at all", "eos", None), ("x\\frac", "eos", None), ("π r", "eos", None),
        ("Tom has 12 apples.\u00a0\nHow many?", "eos", None), ("How many?\n\nTom has 12 apples.", "eos", "3"),
        ("Tom has 12 apples.\nHow many? 12", "eos", None), (" Tom has 12 apples. ", "length", "12"),
        ("1 + 1 = 2 so the answer is 2", "length", "2"), ("1 + 1 = 2, then 2 +", "length", "2"),
        ("x = \\boxed{2}", "length", "2"), ("x = \\fbox {2} and", "length", "2"), ("#### 2", "length", "2"),
        ("How many?", "eos", "1"), ("many?", "eos", "1"),
        ("Let x = 1.\n" + "So x = 1.\nThen y = 2.\n" * 5, "eos", "2"),
    ]
    for _ in range(150):  # loops of every density around the threshold, some with a natural prefix
        prefix = " ".join(f"t{rng.randrange(10**6)} = {rng.randrange(99)}" for _ in range(rng.randrange(0, 12)))
        text = (prefix + " " + loop_text(rng.randrange(1, 25), rng.randrange(20, 90))).strip()
        rows.append((text, rng.choice(["eos", "length"]), rng.choice([None, "5", ""])))
    question = "Tom has 12 apples.\nHow many? Each costs 2 = 2 dollars."
    rows = [(t, f, a, question if i % 3 else None) for i, (t, f, a) in enumerate(rows)]
    df = pd.DataFrame(rows, columns=["text", "finish_reason", "answer", "question"])
    con = duckdb.connect()
    con.register("t", df)
    cfg = FunnelConfig()
    with repetition_udf(con, cfg) as udf:
        sql = con.execute(
            f"SELECT {degenerate_sql(cfg, udf, 'text', 'finish_reason', 'answer', 'question')} FROM t"
        ).fetchall()
    py = [is_degenerate(t, f, a, cfg, question=q) for t, f, a, q in rows]
    assert [r[0] for r in sql] == py
    assert {"empty", "truncated", "repetitive", "no-math", "echo", None} <= set(py)


def test_number_parsing_and_relative_error():
    cases = {"$1,200": 1200.0, "50\\%": 50.0, "1{,}000": 1000.0, "-3.5": -3.5, ".5": 0.5, "+7": 7.0,
             "\\frac{1}{2}": None, "x = 3": None, "": None, "inf": None, "1e400": None, "1_000": None}
    for text, want in cases.items():
        assert parse_number(text) == want, text
    con = duckdb.connect()
    sql = [con.execute(f"SELECT {_number_sql('$1')}", [t]).fetchone()[0] for t in cases]
    assert sql == list(cases.values())
    assert relative_answer_error("15", "10") == 0.5
    assert relative_answer_error("$1,100", "1000") == pytest.approx(0.1)
    assert relative_answer_error("\\frac{1}{2}", "0.5") is None
    assert relative_answer_error("1", "0") == pytest.approx(1e9)  # eps floor, not a division by zero


# --------------------------------------------------------------------------- stages on a warehouse


def test_stage_one_removes_exactly_the_degenerate(tmp_path):
    cands = [
        cand("empty", "p1", text="   "),
        cand("trunc", "p1", finish="length", answer=None),
        cand("loop", "p1", text=loop_text(4, 80)),
        cand("prose", "p1", text="We should think about it carefully and decide."),
        cand("echo", "p1", text="Tom has 12 apples and eats 3.\nHow many are left?", answer=None),
        cand("capped-ok", "p1", finish="length", answer="8"),
        cand("fine", "p1"),
    ]
    p1 = dict(problem("p1"), question="Tom has 12 apples and eats 3. How many are left?")
    r = funnel(write_pool(tmp_path / "w.duckdb", [p1], cands))
    assert dict(zip(r.degenerate["candidate_id"], r.degenerate["reason"])) == {
        "empty": "empty", "trunc": "truncated", "loop": "repetitive", "prose": "no-math", "echo": "echo"}
    c1 = r.counts.set_index("stage").loc[1]
    assert (c1.n_in, c1.n_out) == (7, 2)
    assert c1.reason == "empty=1, truncated=1, repetitive=1, no-math=1, echo=1"


def test_stage_two_trivially_correct_boundary(tmp_path):
    low = dict(d1=0.0, d2=0.0, d3=0.0, d4=0.0, d5=0.0, d6=0.0, W=0.0, A=0.0, answer="7")
    cands = [
        cand("tc", "p1", correct=True, **{**low, "d2": 0.0999}),
        cand("at-0.1", "p1", correct=True, **{**low, "d4": 0.1}),  # "< 0.1" is strict: stays
        cand("wrong-but-clean", "p1", correct=False, **low),  # answer wrong: not trivially correct
        cand("unknown", "p1", correct=None, **low),  # correctness unknown: not trivially correct
        cand("null-dims", "p1", correct=True, **{**low, "d1": None, "d2": None, "d3": None}),  # nulls drop out
    ]
    r = funnel(write_pool(tmp_path / "w.duckdb", [problem("p1")], cands))
    removed = {c for c, why in reasons(r).items() if why == "trivially-correct"}
    assert removed == {"tc", "null-dims"}
    c2 = r.counts.set_index("stage").loc[2]
    assert (c2.n_in, c2.n_out) == (5, 3)


def test_stage_three_trivially_wrong_boundary(tmp_path):
    cands = [
        cand("both-high", "p1", W=0.81, A=0.81),
        cand("W-at-0.8", "p1", W=0.8, A=0.95),  # W > 0.8 is strict: stays
        cand("A-at-0.8", "p1", W=0.95, A=0.8),
        cand("A-null", "p1", W=0.95, A=None),
    ]
    r = funnel(write_pool(tmp_path / "w.duckdb", [problem("p1")], cands))
    why = reasons(r)
    assert {c for c, w in why.items() if w == "trivially-wrong"} == {"both-high"}
    assert why["W-at-0.8"] == "hard-negative"  # W = 0.8 is still inside the hard range
    assert why["A-at-0.8"] == "wrongness-range"
    c3 = r.counts.set_index("stage").loc[3]
    assert (c3.n_in, c3.n_out) == (4, 3)


def test_stage_four_criteria_and_boundaries(tmp_path):
    cases = {
        # wrongness range, inclusive at both ends
        "W-0.3": (dict(W=0.3), "hard-negative"),
        "W-below": (dict(W=0.2999), "wrongness-range"),
        "W-0.8": (dict(W=0.8), "hard-negative"),
        "W-above": (dict(W=0.8001, A=0.5), "wrongness-range"),
        # a structural/logical flaw > 0.5 (strict), or a formula-level numeric error
        "d2-0.5": (dict(d2=0.5), "no-structural-flaw"),
        "d3-high": (dict(d2=0.1, d3=0.51), "hard-negative"),
        "d4-high": (dict(d2=0.1, d4=0.9), "hard-negative"),
        "formula-flag": (dict(d2=0.1, d5=0.4, formula=True), "hard-negative"),
        "formula-from-d5": (dict(d2=0.1, d5=1.0, formula=None), "hard-negative"),
        "slip-only": (dict(d2=0.1, d5=0.4, formula=None), "no-structural-flaw"),
        "flag-says-no": (dict(d2=0.1, d5=1.0, formula=False), "no-structural-flaw"),
        # confidence >= 0.5
        "c-0.5": (dict(confidence=0.5), "hard-negative"),
        "c-low": (dict(confidence=0.4999), "low-confidence"),
        # near: relative answer error <= 0.5 (ref 10) or d1 <= 0.4
        "rel-0.5": (dict(answer="15", d1=0.9), "hard-negative"),
        "rel-0.6-far": (dict(answer="16", d1=0.41), "not-near"),
        "rel-0.6-d1-0.4": (dict(answer="16", d1=0.4), "hard-negative"),
        "unparsed-close": (dict(answer="\\frac{1}{2}", d1=0.3), "hard-negative"),
        "unparsed-far": (dict(answer="\\frac{1}{2}", d1=0.5), "not-near"),
        "dollars": (dict(answer="$1,2", d1=0.9), "hard-negative"),  # "$1,2" → 12: 0.2 off
    }
    problems = [problem("p", ref_answer="10")]
    cands = [correct_cand("good", "p", W=0.01)]
    for cid, (kw, _) in cases.items():
        cands.append(cand(cid, "p", **{"d1": 0.2, "A": 0.3, **kw}))
    r = funnel(write_pool(tmp_path / "w.duckdb", problems, cands))
    why = reasons(r)
    assert {cid: why[cid] for cid in cases} == {cid: want for cid, (_, want) in cases.items()}
    hard = set(r.hard_negatives["candidate_id"])
    assert hard == {cid for cid, (_, want) in cases.items() if want == "hard-negative"}
    assert r.hard_negatives.set_index("candidate_id").loc["rel-0.5", "rel_answer_error"] == 0.5
    c4 = r.counts.set_index("stage").loc[4]
    assert c4.n_in == len(cases)  # "good" is trivially correct (stage 2)
    assert c4.n_out == 2  # one problem: the two hardest, W 0.8 first
    assert "wrongness-range=2, no-structural-flaw=3, low-confidence=1, not-near=2" in c4.reason


def test_chosen_selection_and_fallbacks(tmp_path):
    problems = [problem("has-correct"), problem("only-worse-correct"), problem("no-correct"),
                problem("nothing", ref_solution="  "), problem("own-answer-right")]
    cands = [
        correct_cand("best", "has-correct", W=0.02),
        correct_cand("second", "has-correct", W=0.04),
        cand("neg-a", "has-correct", W=0.6),
        correct_cand("worse", "only-worse-correct", W=0.7, d2=0.6),  # a correct but worse solution
        cand("neg-b", "only-worse-correct", W=0.5),
        cand("neg-c", "no-correct", W=0.5),
        cand("neg-d", "nothing", W=0.5),
        # right answer, flawed path: a hard negative that must not be paired with itself
        cand("self", "own-answer-right", W=0.45, d6=0.0, correct=True, answer="7"),
    ]
    r = funnel(write_pool(tmp_path / "w.duckdb", problems, cands))
    h = r.hard_negatives.set_index("candidate_id")
    assert h.loc["neg-a", "chosen_candidate_id"] == "best" and h.loc["neg-a", "chosen_source"] == "candidate"
    assert h.loc["neg-a", "chosen_text"].startswith("best:")
    # "worse" is a correct candidate with a higher W than neg-b: the reference is preferred.
    assert h.loc["neg-b", "chosen_source"] == "reference" and pd.isna(h.loc["neg-b", "chosen_candidate_id"])
    assert h.loc["neg-b", "chosen_text"].startswith("Reference:")
    assert h.loc["neg-c", "chosen_source"] == "reference"
    assert h.loc["neg-d", "drop_reason"] == "no-chosen" and not h.loc["neg-d", "selected"]
    assert h.loc["self", "chosen_source"] == "reference"
    assert "worse" in h.index  # W 0.7 with d2 0.6: it is itself a hard negative, paired with the reference
    assert r.n_pairs == 5
    # Without the "beat the rejected" rule the lowest-W correct candidate is taken whatever its W.
    loose = funnel(write_pool(tmp_path / "w.duckdb", problems, cands), FunnelConfig(chosen_must_beat_rejected=False))
    assert loose.hard_negatives.set_index("candidate_id").loc["neg-b", "chosen_candidate_id"] == "worse"


def test_cap_order_duplicates_and_excluded_split(tmp_path):
    problems = [problem("p"), problem("t", split="test")]
    cands = [
        correct_cand("good", "p"),
        cand("w5", "p", W=0.5),
        cand("w7-lowc", "p", W=0.7, confidence=0.6),
        cand("w7-highc", "p", W=0.7, confidence=0.95),
        cand("w6", "p", W=0.6),
        cand("w6-copy", "p", W=0.6, text="w6: 3 + 4 = 8.\nThe answer is: 8"),  # same text as w6
        cand("test-neg", "t", W=0.5),
    ]
    r = funnel(write_pool(tmp_path / "w.duckdb", problems, cands))
    h = r.hard_negatives.set_index("candidate_id")
    sel = r.selected
    assert sel["candidate_id"].tolist() == ["w7-highc", "w7-lowc"]  # hardest first: W, then confidence
    assert sel["hardness_rank"].tolist() == [1, 2]
    assert h.loc["w6", "drop_reason"] == "over-cap" and h.loc["w5", "drop_reason"] == "over-cap"
    assert h.loc["w6-copy", "drop_reason"] == "duplicate-text"
    assert h.loc["test-neg", "drop_reason"] == "excluded-split"
    assert "excluded-split=1, no-chosen=0, duplicate-text=1, over-cap=2" in r.counts.set_index("stage").loc[4, "reason"]
    r3 = funnel(write_pool(tmp_path / "w.duckdb", problems, cands), FunnelConfig(pairs_per_problem=3))
    assert r3.selected["candidate_id"].tolist() == ["w7-highc", "w7-lowc", "w6"]


def test_inconsistent_input_is_named(tmp_path):
    path = tmp_path / "w.duckdb"
    wh = write_pool(path, [problem("p")], [cand("a", "p"), cand("b", "p", profile=False)])
    with pytest.raises(ValueError, match=r"no profile for non-degenerate candidate_id \['b'\]"):
        funnel(wh)
    # A degenerate candidate needs no profile.
    wh = write_pool(path, [problem("p")], [cand("a", "p"), cand("b", "p", text="", profile=False)])
    assert funnel(wh).counts["n_in"].iloc[0] == 2
    wh = write_pool(path, [problem("p")], [cand("a", "ghost")])
    with pytest.raises(ValueError, match=r"problem_id not in problems: \['ghost'\]"):
        funnel(wh)
    wh = write_pool(path, [problem("p")], [cand("a", "p")])
    wh.append("verifier_profiles", [{"candidate_id": "a", "family": FAMILY, "seed": SEED, "verifier_version": "v2",
                                     "wrongness": 0.5}])
    with pytest.raises(ValueError, match=r"more than one profile for candidate_id \['a'\]"):
        funnel(wh)
    assert funnel(wh, FunnelConfig(verifier_version="v1")).n_pairs == 1


def test_config_validation():
    with pytest.raises(ValueError, match="pairs_per_problem"):
        FunnelConfig(pairs_per_problem=0)
    with pytest.raises(ValueError, match="hard_min_wrongness"):
        FunnelConfig(hard_min_wrongness=0.9)
    with pytest.raises(ValueError, match="min_confidence"):
        FunnelConfig(min_confidence=float("nan"))


# --------------------------------------------------------------------------- counts: check and store


def small_pool(tmp_path):
    problems = [problem(f"p{i}") for i in range(3)]
    cands = []
    for i in range(3):
        cands += [correct_cand(f"c{i}", f"p{i}"), cand(f"h{i}a", f"p{i}", W=0.5), cand(f"h{i}b", f"p{i}", W=0.6),
                  cand(f"h{i}c", f"p{i}", W=0.7), cand(f"x{i}", f"p{i}", text=""), cand(f"tw{i}", f"p{i}", W=0.9, A=0.9)]
    return write_pool(tmp_path / "w.duckdb", problems, cands)


def test_counts_chain_and_check(tmp_path):
    r = funnel(small_pool(tmp_path))
    got = [tuple(x) for x in r.counts[["stage", "n_in", "n_out"]].itertuples(index=False)]
    assert got == [(1, 18, 15), (2, 15, 12), (3, 12, 9), (4, 9, 6)]
    assert r.counts["name"].tolist() == ["degenerate-removal", "trivially-correct-removal",
                                         "trivially-wrong-removal", "hard-negative-pairs"]
    right = {0: StageRange(18, 18), 1: StageRange(10, 16), 2: StageRange(12, 12), 3: StageRange(5, 9),
             4: StageRange(6, 60)}
    assert check_funnel_counts(r.counts, right) == []
    wrong = {**right, 4: StageRange(7, 60)}
    failures = check_funnel_counts(r.counts, wrong)
    assert len(failures) == 1 and "stage 4 (hard-negative-pairs) n_out = 6, expected 7..60" in failures[0]
    assert "fam" in failures[0]  # the partition is named
    broken = r.counts.copy()
    broken.loc[broken["stage"] == 3, "n_in"] = 13
    assert any("stage 3: n_in 13 != stage 2 n_out 12" in f for f in check_funnel_counts(broken, right))
    assert any("stages are [1, 2, 4]" in f for f in check_funnel_counts(r.counts[r.counts.stage != 3], {}))
    with pytest.raises(ValueError):
        StageRange(5, 4)


def test_rerun_and_replace_partition_do_not_duplicate(tmp_path):
    wh = small_pool(tmp_path)
    for _ in range(2):
        r = funnel(wh)
        wh.replace_partition("funnel_counts", r.counts, family=FAMILY, seed=SEED)
    stored = wh.query("SELECT stage, n_in, n_out FROM funnel_counts ORDER BY stage")
    assert stored.values.tolist() == r.counts[["stage", "n_in", "n_out"]].values.tolist()
    # The funnel leaves no temporary tables or functions on the caller's connection, and a
    # result the caller has not finished reading does not get in its way.
    with wh.connect() as con:
        pending = con.execute("SELECT * FROM candidates")
        pending.fetchone()
        assert run_funnel(con, FAMILY, SEED).counts.equals(r.counts)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_funnel%'").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE '_hardneg%'").fetchall() == [(0,)]
