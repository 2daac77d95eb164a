"""Benchmark: the funnel + pair construction at paper scale, DuckDB vs plain pandas.

`synthetic_pool(n, seed)` builds a candidate pool with verifier profiles whose mix of
degenerate / trivially-correct / trivially-wrong / hard-negative candidates is tuned so the
default funnel gives roughly the paper's 600K → 520K → 380K → 280K → ~60K pairs
(paper §3.3). Texts are synthetic GSM8K-style chains of thought (~110 tokens); dimensions
are drawn per candidate type and W / A come from the SPEC §2.2 weights, so profiles are
self-consistent. It is importable (the lead's paper-scale asset-check test reuses it).

Each side runs in its own subprocess and reports its peak resident memory (VmHWM, the
kernel's high-water mark; DuckDB allocates outside Python, where tracemalloc cannot see it):
- duckdb: `run_funnel` + `build_hardneg_pairs` + `build_random_pairs` on the warehouse file;
- pandas: the same rules written with pandas/Python (tables read from the same file),
  the usual way this is written without a SQL engine.
Both must produce the same stage counts and the same hard-negative pair set.

    .venv/bin/python bench/funnel.py                                # 600K DuckDB, 150K side by side
    .venv/bin/python bench/funnel.py --compare-n 600000             # side by side at 600K (~4 min)
    .venv/bin/python bench/funnel.py --n 60000 --compare-n 20000    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

K = 8  # candidates per problem (SPEC §2.3)
W_WEIGHTS = np.array([0.10, 0.10, 0.05, 0.25, 0.15, 0.35])
A_WEIGHTS = np.array([0.20, 0.25, 0.15, 0.30, 0.10, 0.0])
DIMS = ["d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer"]

# Candidate types and their shares of the pool (tuned to the paper's funnel counts).
TYPES = {
    "empty": 0.015,
    "truncated": 0.070,
    "repetitive": 0.035,
    "no_math": 0.0133,
    "trivially_correct": 0.2333,
    "trivially_wrong": 0.1667,
    "good_correct": 0.1200,  # correct, small flaws: chosen material, not a negative
    "hard": 0.1300,  # meets every hard-negative criterion
    "slip": 0.0700,  # wrong answer from an arithmetic slip only: no structural flaw
    "unsure": 0.0550,  # flawed but the model is not confident
    "far": 0.0550,  # flawed and far from the good solution
    "messy": 0.0317,  # W > 0.8 but A <= 0.8: survives stage 3, too wrong to be hard
}

_NAMES = ["Ann", "Ben", "Carla", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kim", "Lars", "Mia", "Nour"]
_ITEMS = ["apples", "marbles", "books", "coins", "pencils", "stickers", "cookies", "tickets", "cards", "eggs"]
_TEMPLATES = [
    "{n} has {a} {it} and buys {b} more, so {n} has {a} + {b} = {c} {it}.",
    "Each box holds {a} {it}, and there are {b} boxes, so the total is {a} * {b} = {d}.",
    "After giving away {b} {it}, {n} keeps {c} - {b} = {a} {it}.",
    "The price of one of the {it} is ${a}, so {b} of them cost {a} * {b} = ${d}.",
    "Splitting {d} {it} among {b} friends gives {d} / {b} = {a} each.",
    "We know {n} started with {a}; adding {b} gives {c} in total.",
]
_PROSE = [
    "I think we should read the question again and consider what it is asking for.",
    "Let us think about this carefully before we decide on the best approach.",
    "The problem seems tricky but maybe there is a simple way to look at it.",
    "Perhaps the key idea is to understand the situation described in the story.",
    "It is not obvious how to proceed here so we will try another angle.",
    "One could argue either way depending on how the words are interpreted.",
]


def _line_bank(rng: np.random.Generator, size: int) -> list[str]:
    a, b = rng.integers(2, 400, size=size), rng.integers(2, 60, size=size)
    tpl = rng.integers(len(_TEMPLATES), size=size)
    who = rng.integers(len(_NAMES), size=size)
    what = rng.integers(len(_ITEMS), size=size)
    return [
        _TEMPLATES[t].format(n=_NAMES[w], it=_ITEMS[i], a=x, b=y, c=x + y, d=x * y)
        for t, w, i, x, y in zip(tpl.tolist(), who.tolist(), what.tolist(), a.tolist(), b.tolist())
    ]


def synthetic_pool(n: int, seed: int = 0, family: str = "synthetic", pool_seed: int = 0, text_scale: int = 1):
    """(problems, candidates, verifier_profiles) DataFrames with `n` candidates (K=8 per problem).

    Columns follow `hardneg.warehouse.SCHEMA`; `candidates` also carries the generator's
    `kind` (its type) for inspection. Deterministic for `seed`. `text_scale` multiplies the
    number of lines per solution (1: 4-9 lines, ~500 characters, ~110 tokens).
    """
    rng = np.random.default_rng(seed)
    n_problems = -(-n // K)
    pids = np.char.add("p", np.char.zfill(np.arange(n_problems).astype(str), 7)).astype(object)
    ref_ans = rng.integers(2, 5000, size=n_problems)
    bank = _line_bank(rng, 40_000)
    # Reference solutions: 3-6 lines; ~2% of problems have none (fallback coverage).
    n_ref_lines = rng.integers(3, 7, size=n_problems)
    ref_start = rng.integers(0, len(bank) - 8, size=n_problems)
    ref_sol = [
        "\n".join(bank[s : s + k]) + f"\nThe answer is: {ans}"
        for s, k, ans in zip(ref_start.tolist(), n_ref_lines.tolist(), ref_ans.tolist())
    ]
    no_ref = rng.random(n_problems) < 0.02
    problems = pd.DataFrame(
        {
            "problem_id": pids,
            "source": "synthetic",
            "split": "train",
            "question": [f"Question {i}: how many items are there in the end?" for i in range(n_problems)],
            "reference_solution": [None if z else s for z, s in zip(no_ref, ref_sol)],
            "reference_answer": ref_ans.astype(str).astype(object),
        }
    )

    # Per-problem difficulty shifts the type mix, so some problems have many hard
    # negatives and others none, as real pools do.
    names = list(TYPES)
    base = np.array([TYPES[t] for t in names])
    base = base / base.sum()
    difficulty = rng.beta(2, 2, size=n_problems)
    prob_of = np.repeat(np.arange(n_problems), K)[:n]
    hard_like = np.isin(names, ["hard", "slip", "unsure", "far", "messy", "trivially_wrong"])
    # Tilt: hard problems (difficulty → 1) get more wrong-ish types, easy ones more correct ones.
    tilt = np.where(hard_like, 1.0, -1.0)
    logits = np.log(base)[None, :] + 1.2 * (difficulty[prob_of][:, None] - 0.5) * tilt[None, :]
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    kind_idx = (u > np.cumsum(p, axis=1)).sum(axis=1)
    kind = np.array(names, dtype=object)[np.minimum(kind_idx, len(names) - 1)]

    U = lambda lo, hi: rng.uniform(lo, hi, size=n)  # noqa: E731
    d = np.zeros((n, 6))
    conf = U(0.55, 0.99)
    ppl = np.exp(rng.normal(1.0, 0.35, size=n))  # perplexity ~ 1.5 .. 5
    correct = np.zeros(n, dtype=bool)
    formula = np.zeros(n, dtype=bool)
    ref = ref_ans[prob_of].astype(float)
    pred = ref.copy()

    def fill(mask, lows, highs):
        m = int(mask.sum())
        d[mask] = rng.uniform(lows, highs, size=(m, 6))

    k = kind
    m = k == "trivially_correct"
    fill(m, [0] * 6, [0.095, 0.095, 0.095, 0.095, 0.095, 0])
    correct[m] = True
    m = k == "good_correct"
    fill(m, [0.1, 0.05, 0, 0, 0, 0], [0.35, 0.35, 0.3, 0.3, 0.4, 0])
    correct[m] = True
    m = np.isin(k, ["trivially_wrong", "empty", "truncated", "repetitive", "no_math"])
    fill(m, [0.82] * 5 + [1], [1.0] * 5 + [1])
    pred[m] = ref[m] * U(2, 9)[m] + 7
    m = k == "hard"
    fill(m, [0.05, 0.1, 0.0, 0.1, 0.0, 1], [0.5, 0.5, 0.4, 0.5, 0.4, 1])
    # The decisive flaw: a structural, order or logic dimension > 0.5, or a formula error.
    which = rng.integers(0, 4, size=n)
    for j, dim in enumerate([1, 2, 3]):
        sel = m & (which == j)
        d[sel, dim] = U(0.55, 1.0)[sel]
    sel = m & (which == 3)
    d[sel, 4] = 1.0
    formula[sel] = True
    # A fifth of the hard negatives reach the right answer by a flawed path.
    right = m & (rng.random(n) < 0.2)
    d[right, 5] = 0.0
    correct[right] = True
    near = m & ~right
    pred[near] = ref[near] * (1 + rng.choice([-1, 1], size=n) * U(0.05, 0.45))[near]
    m = k == "slip"
    fill(m, [0.05, 0, 0, 0, 0.4, 1], [0.3, 0.3, 0.3, 0.3, 0.4, 1])
    pred[m] = ref[m] + rng.integers(1, 10, size=n)[m]
    m = k == "unsure"
    fill(m, [0.05, 0.55, 0, 0.1, 0, 1], [0.4, 0.9, 0.4, 0.5, 0.4, 1])
    conf[m] = U(0.05, 0.45)[m]
    pred[m] = ref[m] * 1.2
    m = k == "far"
    fill(m, [0.45, 0.55, 0, 0.1, 0, 1], [0.9, 0.9, 0.4, 0.5, 0.4, 1])
    pred[m] = ref[m] * U(3, 10)[m]
    m = k == "messy"
    fill(m, [0.3, 0.5, 0.2, 0.75, 0.9, 1], [0.7, 0.75, 0.6, 0.95, 1.0, 1])
    pred[correct] = ref[correct]

    W = d @ W_WEIGHTS
    A = d @ A_WEIGHTS / A_WEIGHTS.sum()

    # Texts: lines from a bank, the answer line last; degenerate kinds get their defect.
    n_lines = rng.integers(4 * text_scale, 10 * text_scale, size=n)
    starts = rng.integers(0, len(bank) - 10 * text_scale, size=n).tolist()
    n_lines_l = n_lines.tolist()
    answers = np.where(pred == np.round(pred), np.round(pred).astype(np.int64).astype(str), np.round(pred, 2).astype(str))
    answers = answers.astype(object)
    fancy = rng.random(n) < 0.1  # "$1,234"-style answers exercise the number parser
    answers[fancy] = ["$" + f"{float(a):,.2f}".rstrip("0").rstrip(".") for a in answers[fancy]]
    answers = answers.tolist()
    finish = ["eos"] * n
    texts: list[str] = [""] * n
    prose = " ".join(_PROSE[:3])
    for i, (kind_i, st, kl) in enumerate(zip(k.tolist(), starts, n_lines_l)):
        if kind_i == "empty":
            texts[i] = "" if i % 2 else "  \n "
            answers[i] = None
        elif kind_i == "truncated":
            texts[i] = "\n".join(bank[st : st + kl])
            answers[i] = None
            finish[i] = "length"
        elif kind_i == "repetitive":
            body = bank[st : st + 3]
            texts[i] = "\n".join(body[:2] + [body[2]] * 24) + "\nThe answer is: " + answers[i]
        elif kind_i == "no_math":
            texts[i] = prose
            answers[i] = None
        else:
            texts[i] = "\n".join(bank[st : st + kl]) + "\nThe answer is: " + answers[i]
    cids = np.char.add("c", np.char.zfill(np.arange(n).astype(str), 8)).astype(object)
    candidates = pd.DataFrame(
        {
            "candidate_id": cids,
            "problem_id": pids[prob_of],
            "family": family,
            "seed": pool_seed,
            "text": texts,
            "finish_reason": finish,
            "answer": answers,
            "confidence": conf,
            "perplexity": ppl,
            "correct": correct,
            "n_tokens": n_lines * 16,
            "kind": kind,
        }
    )
    profiles = pd.DataFrame({"candidate_id": cids, "family": family, "seed": pool_seed, "verifier_version": "synthetic"})
    for j, name in enumerate(DIMS):
        profiles[name] = d[:, j]
    profiles["wrongness"] = W
    profiles["absurdity"] = A
    profiles["first_error_step"] = np.where(W > 0.1, 1, -1)
    profiles.loc[profiles["first_error_step"] < 0, "first_error_step"] = None
    profiles["formula_error"] = formula
    return problems, candidates, profiles


def write_pool(db_path: str | Path, n: int, seed: int = 0, family: str = "synthetic", pool_seed: int = 0,
               text_scale: int = 1) -> dict:
    """Write a synthetic pool into a warehouse file; returns its sizes."""
    from hardneg.warehouse import Warehouse

    problems, candidates, profiles = synthetic_pool(n, seed, family, pool_seed, text_scale)
    wh = Warehouse(db_path)
    with wh.connect() as con:
        con.execute("DELETE FROM problems WHERE source = 'synthetic'")
    wh.append("problems", problems)
    wh.replace_partition("candidates", candidates, family=family, seed=pool_seed)
    wh.replace_partition("verifier_profiles", profiles, family=family, seed=pool_seed)
    return {"problems": len(problems), "candidates": len(candidates), "text_mb": candidates["text"].str.len().sum() / 1e6}


# --------------------------------------------------------------------------------------
# The two sides (each runs in its own process)
# --------------------------------------------------------------------------------------


def run_duckdb(db_path: str, family: str, pool_seed: int) -> dict:
    import duckdb

    from hardneg.funnel import run_funnel
    from hardneg.pairs import build_hardneg_pairs, build_random_pairs

    t0 = time.perf_counter()
    con = duckdb.connect(db_path, read_only=True)
    res = run_funnel(con, family, pool_seed)
    t1 = time.perf_counter()
    pairs = build_hardneg_pairs(res)
    t2 = time.perf_counter()
    rand = build_random_pairs(con, family, pool_seed, len(pairs), seed_for_rng=1, degenerate_ids=res.degenerate["candidate_id"])
    t3 = time.perf_counter()
    con.close()
    return {
        "counts": res.counts[["stage", "n_in", "n_out"]].values.tolist(),
        "pairs": sorted(zip(pairs["rejected_candidate_id"], pairs["chosen_candidate_id"].fillna("ref"))),
        "weight_sum": float(pairs["raw_weight"].sum()),
        "n_random": len(rand),
        "t_funnel": t1 - t0,
        "t_pairs": t2 - t1,
        "t_random": t3 - t2,
        "t_total": t3 - t0,
    }


def run_pandas(db_path: str, family: str, pool_seed: int) -> dict:
    """The funnel written the plain way: load the tables, filter with pandas and Python."""
    import duckdb

    from hardneg.funnel import FunnelConfig, is_degenerate, parse_number

    cfg = FunnelConfig()
    t0 = time.perf_counter()
    con = duckdb.connect(db_path, read_only=True)
    c = con.execute(
        "SELECT candidate_id, problem_id, text, finish_reason, answer, confidence, perplexity, correct "
        "FROM candidates WHERE family = ? AND seed = ?",
        [family, pool_seed],
    ).df()
    v = con.execute("SELECT * EXCLUDE (family, seed, steps, channels) FROM verifier_profiles WHERE family = ? AND seed = ?",
                    [family, pool_seed]).df()
    pr = con.execute("SELECT problem_id, split, question, reference_solution, reference_answer FROM problems").df()
    con.close()
    deg = [is_degenerate(t, f, a, cfg) for t, f, a in zip(c["text"], c["finish_reason"], c["answer"])]
    c["degenerate"] = deg
    c["text_key"] = c["text"]
    df = c.merge(v, on="candidate_id", how="left").merge(pr, on="problem_id", how="left")
    ok = df["degenerate"].isna()
    dims_max = df[DIMS].fillna(0).max(axis=1)
    tc = ok & df["correct"].fillna(False).astype(bool) & (dims_max < cfg.trivially_correct_max_dim)
    tw = ok & ~tc & (df["wrongness"] > cfg.trivially_wrong_min_wrongness) & (df["absurdity"] > cfg.trivially_wrong_min_absurdity)
    s3 = ok & ~tc & ~tw
    rel = []
    for a, r in zip(df["answer"], df["reference_answer"]):
        pa, pb = parse_number(a), parse_number(r)
        rel.append(abs(pa - pb) / max(abs(pb), cfg.relative_error_eps) if pa is not None and pb is not None else np.nan)
    df["rel"] = rel
    struct = (df[["d_structure", "d_order", "d_logic"]] > cfg.structural_min_dim).any(axis=1) | (
        df["formula_error"].fillna(df["d_numeric"] >= cfg.formula_numeric_min).astype(bool)
    )
    hard = (
        s3
        & df["wrongness"].between(cfg.hard_min_wrongness, cfg.hard_max_wrongness)
        & struct
        & (df["confidence"] >= cfg.min_confidence)
        & ((df["rel"] <= cfg.max_relative_answer_error) | (df["d_semantic"] <= cfg.max_semantic_distance))
    )
    h = df[hard].copy()
    ch = df[ok & df["correct"].fillna(False).astype(bool) & df["wrongness"].notna()]
    ch = ch.sort_values(["wrongness", "confidence", "candidate_id"], ascending=[True, False, True])
    ch_by_problem = {p: g[["candidate_id", "wrongness", "text_key", "text"]].values.tolist() for p, g in ch.groupby("problem_id")}
    chosen_id, chosen_text = [], []
    for pid, cid, w, key, ref in zip(h["problem_id"], h["candidate_id"], h["wrongness"], h["text_key"], h["reference_solution"]):
        pick = next((x for x in ch_by_problem.get(pid, []) if x[0] != cid and x[2] != key and x[1] < w), None)
        if pick is not None:
            chosen_id.append(pick[0]), chosen_text.append(pick[3])
        elif isinstance(ref, str) and ref.strip() and ref != key:
            chosen_id.append("ref"), chosen_text.append(ref)
        else:
            chosen_id.append(None), chosen_text.append(None)
    h["chosen_id"], h["chosen_text"] = chosen_id, chosen_text
    h = h[h["chosen_id"].notna() & ~h["split"].isin(cfg.excluded_splits)]
    h = h.sort_values(["problem_id", "wrongness", "confidence", "candidate_id"], ascending=[True, False, False, True])
    h = h.drop_duplicates(["problem_id", "text_key"])
    h = h.groupby("problem_id", sort=False).head(cfg.pairs_per_problem)
    w = h["wrongness"] + (1 - h["confidence"]) + h["perplexity"] / 10.0
    pairs = pd.DataFrame({"chosen": h["chosen_text"], "rejected": h["text"], "raw_weight": w})
    t1 = time.perf_counter()
    n0, n1, n2, n3 = len(df), int(ok.sum()), int((ok & ~tc).sum()), int(s3.sum())
    return {
        "counts": [[1, n0, n1], [2, n1, n2], [3, n2, n3], [4, n3, len(pairs)]],
        "pairs": sorted(zip(h["candidate_id"], h["chosen_id"])),
        "weight_sum": float(pairs["raw_weight"].sum()),
        "t_total": t1 - t0,
    }


def _peak_rss_mb(usage) -> float:
    # VmHWM is this process image's own high-water mark. ru_maxrss is not: Linux carries
    # the parent's peak over fork + exec, so a child of a parent that just generated 600K
    # rows would report the parent's memory.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return usage.ru_maxrss / 1024  # Linux: KiB


def _vm_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _child(side: str, db_path: str, family: str, pool_seed: int, out: str) -> None:
    import resource

    import duckdb  # noqa: F401  (imports first: their memory is reported apart)
    import pyarrow  # noqa: F401

    import hardneg.funnel  # noqa: F401
    import hardneg.pairs  # noqa: F401

    fn = {"duckdb": run_duckdb, "pandas": run_pandas}[side]
    base = _vm_rss_mb()
    result = fn(db_path, family, pool_seed)
    result["base_rss_mb"] = base
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["max_rss_mb"] = _peak_rss_mb(usage)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    Path(out).write_text(json.dumps(result))


def _run_side(side: str, db_path: str, family: str, pool_seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child", side, "--db", db_path, "--family", family, "--pool-seed", str(pool_seed), "--out", out],
            check=True,
        )
        result = json.loads(Path(out).read_text())
        result["wall_process"] = time.perf_counter() - t0
        return result


def compare_degeneracy(db_path: str, n_rows: int) -> list[tuple[str, float, float, int]]:
    """Stage 1 on the first `n_rows` candidates, three ways: (name, wall s, CPU s, n degenerate)."""
    import resource

    import duckdb

    from hardneg.funnel import FunnelConfig, degenerate_sql, is_degenerate, repetition_udf

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    cfg = FunnelConfig()
    con = duckdb.connect(db_path, read_only=True)
    con.execute(f"CREATE TEMP TABLE sample AS SELECT text, finish_reason, answer FROM candidates LIMIT {int(n_rows)}")
    out = []
    # All-SQL: the same 4-gram rule with DuckDB list functions (tokens split on space/newline).
    toks = "list_filter(string_split(replace(text, chr(10), ' '), ' '), lambda t: t <> '')"
    grams = "list_zip(toks[1:len(toks)-3], toks[2:len(toks)-2], toks[3:len(toks)-1], toks[4:len(toks)])"
    sql_only = f"""SELECT count(*) FILTER (WHERE
        text IS NULL OR trim(text) = '' OR (finish_reason = 'length' AND (answer IS NULL OR trim(answer) = ''))
        OR (len(toks) >= {cfg.repetition_min_tokens}
            AND list_unique({grams}) < {cfg.repetition_max_distinct_ratio} * (len(toks) - 3))
        OR NOT regexp_matches(text, '{cfg.math_pattern.replace("'", "''")}'))
        FROM (SELECT *, {toks} AS toks FROM sample)"""
    c0, t0 = cpu(), time.perf_counter()
    n = con.execute(sql_only).fetchall()[0][0]
    out.append(("DuckDB SQL only (string_split + list_zip/list_unique)", time.perf_counter() - t0, cpu() - c0, n))
    with repetition_udf(con, cfg) as udf:
        c0, t0 = cpu(), time.perf_counter()
        n = con.execute(
            f"SELECT count(*) FROM sample WHERE ({degenerate_sql(cfg, udf, 'text', 'finish_reason', 'answer')}) IS NOT NULL"
        ).fetchall()[0][0]
        out.append(("DuckDB regex + Python UDF for repetition (used)", time.perf_counter() - t0, cpu() - c0, n))
    c0, t0 = cpu(), time.perf_counter()
    rows = con.execute("SELECT text, finish_reason, answer FROM sample").fetchall()
    n = sum(is_degenerate(t, f, a, cfg) is not None for t, f, a in rows)
    out.append(("Python loop over fetched rows (is_degenerate)", time.perf_counter() - t0, cpu() - c0, n))
    con.close()
    return out


def _print_counts(counts) -> None:
    print("| stage | n_in | n_out |\n|---|---:|---:|")
    for st, a, b in counts:
        print(f"| {st} | {a:,} | {b:,} |")
    print()


def _print_duck(duck: dict) -> None:
    print(f"- duckdb: run_funnel {duck['t_funnel']:.1f} s + build_hardneg_pairs {duck['t_pairs']:.1f} s "
          f"= **{duck['t_funnel'] + duck['t_pairs']:.1f} s**; build_random_pairs {duck['t_random']:.1f} s "
          f"({duck['n_random']:,} pairs, the hardneg count); process: {duck['cpu_s']:.1f} s CPU, "
          f"**peak RSS {duck['max_rss_mb']:.0f} MB** ({duck['base_rss_mb']:.0f} MB of it interpreter + imports), "
          f"{duck['wall_process']:.1f} s wall with interpreter start-up")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600_000, help="candidates in the paper-scale DuckDB run")
    ap.add_argument("--compare-n", type=int, default=150_000,
                    help="candidates for the side-by-side DuckDB vs pandas run (0: skip; = --n: same pool)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text-scale", type=int, default=1, help="lines per solution × this (longer texts)")
    ap.add_argument("--degeneracy-rows", type=int, default=100_000, help="rows for the stage-1 method comparison (0: skip)")
    ap.add_argument("--child", choices=["duckdb", "pandas"])
    ap.add_argument("--db")
    ap.add_argument("--family", default="synthetic")
    ap.add_argument("--pool-seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.db, args.family, args.pool_seed, args.out)
        return

    fam, ps = args.family, args.pool_seed
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "warehouse.duckdb")
        t0 = time.perf_counter()
        sizes = write_pool(db, args.n, args.seed, fam, ps, args.text_scale)
        t_gen = time.perf_counter() - t0
        db_mb = os.path.getsize(db) / 1e6
        duck = _run_side("duckdb", db, fam, ps)
        deg = compare_degeneracy(db, min(args.degeneracy_rows, args.n)) if args.degeneracy_rows else []
        cmp_sizes, cmp_duck, cmp_pand = None, None, None
        if args.compare_n:
            cmp_db = db
            cmp_sizes = sizes
            if args.compare_n != args.n:
                cmp_db = os.path.join(tmp, "compare.duckdb")
                cmp_sizes = write_pool(cmp_db, args.compare_n, args.seed, fam, ps, args.text_scale)
                cmp_duck = _run_side("duckdb", cmp_db, fam, ps)
            else:
                cmp_duck = duck
            cmp_pand = _run_side("pandas", cmp_db, fam, ps)

    extra = f" --text-scale {args.text_scale}" if args.text_scale != 1 else ""
    print(f"### Funnel + pairs: `.venv/bin/python bench/funnel.py --n {args.n} --compare-n {args.compare_n}{extra}`\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared); python {platform.python_version()}; "
          "each side in its own subprocess (peak RSS = that process's VmHWM)")
    print(f"- pool: {sizes['candidates']:,} candidates over {sizes['problems']:,} problems, {sizes['text_mb']:.0f} MB of "
          f"text, warehouse file {db_mb:.0f} MB; generated + written in {t_gen:.1f} s\n")
    _print_counts(duck["counts"])
    _print_duck(duck)
    if cmp_pand:
        print(f"\nSide by side on {cmp_sizes['candidates']:,} candidates ({cmp_sizes['text_mb']:.0f} MB of text), "
              "funnel + hardneg pairs:\n")
        print("| side | wall (s) | process CPU (s) | peak RSS (MB) |\n|---|---:|---:|---:|")
        cd = cmp_duck["t_funnel"] + cmp_duck["t_pairs"]
        print(f"| duckdb (hardneg/funnel.py, pairs.py) | {cd:.1f} | {cmp_duck['cpu_s']:.1f} | {cmp_duck['max_rss_mb']:.0f} |")
        print(f"| pandas baseline | {cmp_pand['t_total']:.1f} | {cmp_pand['cpu_s']:.1f} | {cmp_pand['max_rss_mb']:.0f} |")
        same = cmp_pand["counts"] == cmp_duck["counts"] and [tuple(x) for x in cmp_pand["pairs"]] == [
            tuple(x) for x in cmp_duck["pairs"]]
        print(f"\n- interpreter + imports before any work: {cmp_duck['base_rss_mb']:.0f} MB (duckdb), "
              f"{cmp_pand['base_rss_mb']:.0f} MB (pandas)")
        print(f"- pandas / duckdb: wall {cmp_pand['t_total'] / cd:.1f}×, peak RSS "
              f"{cmp_pand['max_rss_mb'] / cmp_duck['max_rss_mb']:.1f}× (duckdb CPU/RSS include its random pairs)")
        print(f"- same stage counts and the same (rejected, chosen) pairs on both sides: {same}; weight sums "
              f"{cmp_duck['weight_sum']:.3f} vs {cmp_pand['weight_sum']:.3f}")
    if deg:
        print(f"\nStage 1 alone on {min(args.degeneracy_rows, args.n):,} candidates (in-process):\n")
        print("| method | wall (s) | CPU (s) | degenerate |\n|---|---:|---:|---:|")
        for name, wall, cpu_s, n in deg:
            print(f"| {name} | {wall:.1f} | {cpu_s:.1f} | {n:,} |")


if __name__ == "__main__":
    main()
