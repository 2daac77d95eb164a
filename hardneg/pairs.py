"""Preference pairs: verifier-guided hard negatives and the random-uniform baseline.

- `build_hardneg_pairs` turns a `FunnelResult` into `preference_pairs` rows (strategy
  'hardneg'): the funnel already chose each pair's rejected (a hard negative) and chosen
  (the lowest-wrongness correct candidate, or the reference solution); here the prompt is
  rendered and the raw weight w = W + (1 − c) + PPL / Z of the rejected solution (SPEC §2.5,
  paper eq. 2) is attached. Batch normalization and clipping happen in the DPO trainer.
- `build_random_pairs` is the paper's baseline: the same number of pairs, preferences by
  final-answer correctness alone, weight 1. The draw is a keyed hash (md5 of the candidate
  id and the RNG seed) evaluated in DuckDB: uniform, deterministic for a seed, independent
  of row order and thread count, and it never pulls the pool into Python.
- `check_pairs` and `export_pairs` guard and write the DPO dataset (parquet with prompt,
  chosen, rejected, weight, pair_id; `datasets.load_dataset('parquet', ...)` reads it).

Pairs store the *rendered* training prompt (`prompt_for(question)`, e.g.
`lambda q: hardneg.prompts.training_prompt(tokenizer, q)`), so DPO scores exactly what the
candidates were sampled from; without `prompt_for` the raw question is the prompt.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Callable, Iterable

import duckdb
import numpy as np
import pandas as pd

from hardneg.funnel import FunnelConfig, FunnelResult, blank_sql, degenerate_sql, repetition_udf
from hardneg.warehouse import SCHEMA
from hardneg.weighting import WeightingConfig, raw_weight

DEFAULT_PERPLEXITY_Z = WeightingConfig.z
PAIR_COLUMNS = list(SCHEMA["preference_pairs"])
EXPORT_COLUMNS = ["pair_id", "prompt", "chosen", "rejected", "weight"]

PromptFn = Callable[[str], str]


def _render_prompts(problem_ids: Iterable[str], questions: Iterable, prompt_for: PromptFn | None) -> list[str]:
    cache: dict[str, str] = {}
    out = []
    for pid, q in zip(problem_ids, questions):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"problem {pid!r}: question is missing or empty; cannot form the prompt")
        if q not in cache:
            try:
                prompt = q if prompt_for is None else prompt_for(q)
            except Exception as exc:  # name the row: a template error is otherwise anonymous
                raise ValueError(f"problem {pid!r}: prompt_for failed: {exc}") from exc
            if not isinstance(prompt, str) or not prompt:
                raise ValueError(f"problem {pid!r}: prompt_for returned {type(prompt).__name__}, expected a non-empty str")
            cache[q] = prompt
        out.append(cache[q])
    return out


def _pair_id(strategy: str, family: str, seed: int, rejected_ids: pd.Series) -> pd.Series:
    # One rejected candidate is in at most one pair per strategy, so this is unique and stable.
    return f"{strategy}:{family}:{seed}:" + rejected_ids.astype(str)


def build_hardneg_pairs(
    result: FunnelResult, prompt_for: PromptFn | None = None, z: float = DEFAULT_PERPLEXITY_Z
) -> pd.DataFrame:
    """`preference_pairs` rows (strategy 'hardneg') for the funnel's selected hard negatives.

    Rows are ordered by problem, hardest negative first. raw_weight uses the rejected
    solution's wrongness, confidence and perplexity; a missing or non-finite one is an
    error naming the candidate (a silent NaN weight would poison a whole DPO batch).
    """
    sel = result.selected
    if len(sel) == 0:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in PAIR_COLUMNS})
    for col in ("wrongness", "confidence", "perplexity"):
        bad = sel[~np.isfinite(pd.to_numeric(sel[col], errors="coerce").astype(float))]
        if len(bad):
            value = pd.to_numeric(pd.Series([bad[col].iloc[0]]), errors="coerce").iloc[0]
            shown = "missing or NaN" if pd.isna(value) else str(float(value))
            raise ValueError(
                f"hard negative {bad['candidate_id'].iloc[0]!r}: {col} is {shown}; the raw weight needs a finite value"
            )
    weights = raw_weight(sel["wrongness"], sel["confidence"], sel["perplexity"], z)
    out = pd.DataFrame(
        {
            "pair_id": _pair_id("hardneg", result.family, result.seed, sel["candidate_id"]),
            "family": result.family,
            "seed": result.seed,
            "strategy": "hardneg",
            "problem_id": sel["problem_id"],
            "prompt": _render_prompts(sel["problem_id"], sel["question"], prompt_for),
            "chosen": sel["chosen_text"],
            "rejected": sel["text"],
            "raw_weight": weights,
            "chosen_candidate_id": sel["chosen_candidate_id"],
            "rejected_candidate_id": sel["candidate_id"],
        }
    )
    return out[PAIR_COLUMNS]


def _dtype(col: str) -> str:
    return {"seed": "int64", "raw_weight": "float64"}.get(col, "object")


def build_random_pairs(
    con: duckdb.DuckDBPyConnection,
    family: str,
    seed: int,
    n_pairs: int,
    seed_for_rng: int,
    prompt_for: PromptFn | None = None,
    config: FunnelConfig | None = None,
    exclude_degenerate: bool = True,
    degenerate_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The random-uniform baseline: `n_pairs` pairs, preferences by final answer alone, weight 1.

    Rejected: drawn uniformly without replacement from the partition's incorrect
    candidates (`candidates.correct` is false) of non-excluded-split problems that have
    something to prefer. Chosen: a uniformly drawn correct candidate of the same problem,
    or the reference solution when the problem has none (or the drawn one has the same
    text). No verifier signal is used. With `exclude_degenerate` (default) stage 1's rule
    is applied first, because empty or truncated texts make trivially easy pairs that say
    nothing about selection; `config` supplies that rule and `excluded_splits`.

    Deterministic given `seed_for_rng`. If fewer than `n_pairs` pairs can be formed, all
    of them are returned and a warning says so.
    """
    cfg = config or FunnelConfig()
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 0:
        raise ValueError(f"n_pairs must be an int >= 0, got {n_pairs!r}")
    params = {
        "family": family,
        "seed": int(seed),
        "rng": str(int(seed_for_rng)),
        "n": int(n_pairs),
        "excluded": list(cfg.excluded_splits),
    }
    with contextlib.ExitStack() as stack:
        con = con.cursor()  # the UDF and the registered ids stay off the caller's connection
        stack.callback(con.close)
        if not exclude_degenerate:
            degenerate = "NULL"
        elif degenerate_ids is None:
            udf = stack.enter_context(repetition_udf(con, cfg))
            degenerate = degenerate_sql(cfg, udf, "text", "finish_reason", "answer")
        else:
            view = f"_hardneg_degenerate_{uuid.uuid4().hex[:12]}"
            ids = pd.DataFrame({"candidate_id": pd.Series(list(degenerate_ids), dtype=object)})
            con.register(view, ids)
            stack.callback(con.unregister, view)
            degenerate = f"CASE WHEN candidate_id IN (SELECT candidate_id FROM {view}) THEN 'degenerate' END"
        df = con.execute(
            f"""
            WITH e AS (
                SELECT candidate_id, problem_id, correct, md5(text) AS text_key
                FROM candidates
                WHERE family = $family AND seed = $seed AND correct IS NOT NULL
                  AND ({degenerate}) IS NULL
            ),
            pr AS (
                SELECT problem_id, split,
                       CASE WHEN NOT {blank_sql('reference_solution')} THEN md5(reference_solution) END AS ref_key
                FROM problems WHERE problem_id IN (SELECT problem_id FROM e)
            ),
            corr AS (
                SELECT problem_id, candidate_id, text_key,
                       row_number() OVER (PARTITION BY problem_id ORDER BY candidate_id) - 1 AS idx,
                       count(*) OVER (PARTITION BY problem_id) AS m
                FROM e WHERE correct
            ),
            m AS (SELECT DISTINCT problem_id, m FROM corr),
            rej AS (
                SELECT e.candidate_id, e.problem_id, e.text_key, pr.ref_key, m.m,
                       -- UHUGEINT % BIGINT would go through DOUBLE and lose the low bits: stay in UBIGINT.
                       CASE WHEN m.m IS NOT NULL
                            THEN (md5_number_lower(e.candidate_id || '|chosen|' || $rng) % m.m::UBIGINT)::BIGINT
                       END AS pick
                FROM e JOIN pr USING (problem_id) LEFT JOIN m USING (problem_id)
                WHERE NOT e.correct AND NOT coalesce(list_contains($excluded, pr.split), false)
            ),
            paired AS (
                SELECT r.candidate_id, r.problem_id,
                       CASE WHEN corr.candidate_id IS NOT NULL AND corr.text_key <> r.text_key THEN corr.candidate_id END AS cid,
                       r.ref_key IS NOT NULL AND r.ref_key <> r.text_key AS ref_ok
                FROM rej r LEFT JOIN corr ON corr.problem_id = r.problem_id AND corr.idx = r.pick
            ),
            drawn AS (
                SELECT candidate_id, problem_id, cid,
                       CASE WHEN cid IS NOT NULL THEN 'candidate' WHEN ref_ok THEN 'reference' END AS chosen_source
                FROM paired WHERE cid IS NOT NULL OR ref_ok
                ORDER BY md5(candidate_id || '|rejected|' || $rng), candidate_id
                LIMIT $n
            )
            SELECT d.candidate_id AS rejected_candidate_id, d.problem_id, d.cid AS chosen_candidate_id,
                   p.question, rc.text AS rejected,
                   CASE WHEN d.chosen_source = 'candidate' THEN cc.text ELSE p.reference_solution END AS chosen
            FROM drawn d
            JOIN candidates rc ON rc.candidate_id = d.candidate_id AND rc.family = $family AND rc.seed = $seed
            LEFT JOIN candidates cc ON cc.candidate_id = d.cid AND cc.family = $family AND cc.seed = $seed
            JOIN problems p ON p.problem_id = d.problem_id
            ORDER BY d.problem_id, d.candidate_id
            """,
            params,
        ).df()
    if len(df) < n_pairs:
        warnings.warn(
            f"random pairs ({family}, {seed}): only {len(df)} of the {n_pairs} requested pairs can be formed",
            stacklevel=2,
        )
    out = pd.DataFrame(
        {
            "pair_id": _pair_id("random", family, int(seed), df["rejected_candidate_id"]),
            "family": family,
            "seed": int(seed),
            "strategy": "random",
            "problem_id": df["problem_id"],
            "prompt": _render_prompts(df["problem_id"], df["question"], prompt_for),
            "chosen": df["chosen"],
            "rejected": df["rejected"],
            "raw_weight": 1.0,
            "chosen_candidate_id": df["chosen_candidate_id"],
            "rejected_candidate_id": df["rejected_candidate_id"],
        }
    )
    return out[PAIR_COLUMNS].astype({"seed": "int64", "raw_weight": "float64"})


def _text_or_none(text) -> str | None:
    return text if isinstance(text, str) else None


def check_pairs(
    pairs: pd.DataFrame, test_problem_ids: Iterable[str] | None = None, min_pairs: int = 1
) -> list[str]:
    """Human-readable problems with a pair set ([] when it is fit for DPO).

    Checks: the columns exist; at least `min_pairs` pairs; unique pair_id; prompt,
    chosen and rejected are non-empty text; chosen differs from rejected (exact text);
    no pair belongs to a test problem; weights (`raw_weight` or `weight`) are
    finite and > 0. Each message counts the offending pairs and names up to three.
    """
    weight_col = "raw_weight" if "raw_weight" in pairs.columns else "weight"
    required = ["pair_id", "prompt", "chosen", "rejected", weight_col]
    if test_problem_ids is not None:
        required.append("problem_id")
    missing = [c for c in required if c not in pairs.columns]
    if missing:
        return [f"pairs lack column(s) {missing}"]
    failures: list[str] = []
    if len(pairs) < min_pairs:
        failures.append(f"{len(pairs)} pairs, expected at least {min_pairs}")

    def report(mask, what: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            ids = pairs["pair_id"][mask].astype(str).tolist()
            failures.append(f"{int(mask.sum())} pair(s) {what}, e.g. {ids[:3]}")

    report(pairs["pair_id"].isna() | pairs["pair_id"].duplicated(keep=False), "with a missing or duplicate pair_id")
    text = {c: pairs[c].map(_text_or_none) for c in ("prompt", "chosen", "rejected")}
    for c, values in text.items():
        report(values.map(lambda t: t is None or not t.strip()), f"with an empty {c}")
    # Exact comparison: a whitespace-only difference is a different token sequence for the policy.
    report(text["chosen"].notna() & (text["chosen"] == text["rejected"]), "with identical chosen and rejected text")
    if test_problem_ids is not None:
        test_ids = set(test_problem_ids)
        report(pairs["problem_id"].isin(test_ids), "from a test-split problem")
    w = pd.to_numeric(pairs[weight_col], errors="coerce").astype(float).to_numpy()
    report(~np.isfinite(w) | ~(w > 0), f"with a {weight_col} that is not finite and > 0")
    return failures


def export_pairs(pairs: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write the DPO dataset as parquet: pair_id, prompt, chosen, rejected, weight (= raw_weight).

    Written to a temporary file and renamed, so a reader never sees half a file.
    Returns the path. Load with `datasets.load_dataset('parquet', data_files=path)`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    weight_col = "raw_weight" if "raw_weight" in pairs.columns else "weight"
    missing = [c for c in ("pair_id", "prompt", "chosen", "rejected", weight_col) if c not in pairs.columns]
    if missing:
        raise ValueError(f"export_pairs: pairs lack column(s) {missing}")
    table = pa.table(
        {
            "pair_id": pa.array(pairs["pair_id"].astype(str).tolist(), pa.string()),
            "prompt": pa.array(pairs["prompt"].tolist(), pa.string()),
            "chosen": pa.array(pairs["chosen"].tolist(), pa.string()),
            "rejected": pa.array(pairs["rejected"].tolist(), pa.string()),
            "weight": pa.array(pd.to_numeric(pairs[weight_col]).astype(float).to_numpy(), pa.float64()),
        }
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)
