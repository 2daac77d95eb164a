"""Small hand-built pools for the funnel / pairs tests (shared by test_funnel and test_pairs).

`cand(...)` describes one candidate together with its verifier profile; `write_pool`
stores problems, candidates and profiles in a Warehouse the way the pipeline does
(`replace_partition`). Wrongness and absurdity are given explicitly so that a test can
put a candidate exactly on a threshold.
"""

from __future__ import annotations

from pathlib import Path

from hardneg.warehouse import Warehouse

FAMILY = "fam"
SEED = 0
GOOD_TEXT = "Step 1: 3 + 4 = 7.\nThe answer is: 7"


def problem(pid: str, split: str = "train", ref_solution: str | None = "Reference: 3 + 4 = 7.\nThe answer is: 7",
            ref_answer: str | None = "7") -> dict:
    return {
        "problem_id": pid,
        "source": "test",
        "split": split,
        "question": f"Question of {pid}?",
        "reference_solution": ref_solution,
        "reference_answer": ref_answer,
    }


def cand(
    cid: str,
    pid: str,
    *,
    text: str | None = None,
    W: float = 0.5,
    A: float = 0.3,
    d1: float | None = 0.2,
    d2: float | None = 0.6,
    d3: float | None = 0.0,
    d4: float | None = 0.0,
    d5: float | None = 0.0,
    d6: float | None = 1.0,
    correct: bool | None = False,
    confidence: float = 0.9,
    perplexity: float = 2.0,
    answer: str | None = "8",
    finish: str = "eos",
    formula: bool | None = False,
    profile: bool = True,
) -> dict:
    """Defaults: a qualifying hard negative (W 0.5, d2 0.6, c 0.9, answer 8 vs 7: rel err 1/7)."""
    return {
        "candidate_id": cid,
        "problem_id": pid,
        "text": text if text is not None else f"{cid}: 3 + 4 = {answer}.\nThe answer is: {answer}",
        "finish_reason": finish,
        "answer": answer,
        "confidence": confidence,
        "perplexity": perplexity,
        "correct": correct,
        "d": (d1, d2, d3, d4, d5, d6),
        "W": W,
        "A": A,
        "formula": formula,
        "profile": profile,
    }


def correct_cand(cid: str, pid: str, W: float = 0.05, **kw) -> dict:
    """A correct candidate (chosen material) with all dimensions low."""
    args = dict(text=f"{cid}: 3 + 4 = 7, checked.\nThe answer is: 7", A=0.02, d1=0.02, d2=0.02, d3=0.0, d4=0.0,
                d5=0.0, d6=0.0, correct=True, answer="7")
    return cand(cid, pid, W=W, **{**args, **kw})


def write_pool(wh_path: Path | str, problems: list[dict], cands: list[dict], family: str = FAMILY,
               seed: int = SEED) -> Warehouse:
    wh = Warehouse(wh_path)
    with wh.connect() as con:
        ids = [p["problem_id"] for p in problems]
        if ids:
            con.execute("DELETE FROM problems WHERE list_contains(?, problem_id)", [ids])
    wh.append("problems", problems)
    wh.replace_partition(
        "candidates",
        [
            {k: c[k] for k in ("candidate_id", "problem_id", "text", "finish_reason", "answer", "confidence",
                               "perplexity", "correct")} | {"family": family, "seed": seed}
            for c in cands
        ],
        family=family,
        seed=seed,
    )
    names = ("d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer")
    wh.replace_partition(
        "verifier_profiles",
        [
            {"candidate_id": c["candidate_id"], "family": family, "seed": seed, "verifier_version": "v1",
             "wrongness": c["W"], "absurdity": c["A"], "formula_error": c["formula"], **dict(zip(names, c["d"]))}
            for c in cands
            if c["profile"]
        ],
        family=family,
        seed=seed,
    )
    return wh
