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
- `export_pairs_trl` writes the same pairs as a Hub-style dataset folder in TRL's
  *conversational preference* format (prompt / chosen / rejected as message lists, plus
  `weight` and the rejected solution's verifier columns) with a dataset card, so that
  `datasets.load_dataset(folder)` and a plain `trl.DPOTrainer` use it as is.
- `heldout_mask` picks the pairs DPO never trains on (whole problems, by a keyed hash), on
  which the DPO stage measures reward margin and preference accuracy before and after.

`PairsConfig` (the profile's `pairs` section) holds what the pairs depend on: Z of the raw
weight and the held-out share. It is not in the `dpo` section on purpose: a DPO knob must
not make the pairs stale.

Pairs store the *rendered* training prompt (`prompt_for(question)`, e.g.
`lambda q: hardneg.prompts.training_prompt(tokenizer, q)`), so DPO scores exactly what the
candidates were sampled from; without `prompt_for` the raw question is the prompt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd

from hardneg.funnel import FunnelConfig, FunnelResult, blank_sql, degenerate_sql, QUESTION_JOIN, repetition_udf
from hardneg.warehouse import SCHEMA
from hardneg.weighting import raw_weight

DEFAULT_PERPLEXITY_Z = 10.0
PAIR_COLUMNS = list(SCHEMA["preference_pairs"])
EXPORT_COLUMNS = ["pair_id", "prompt", "chosen", "rejected", "weight"]
# The rejected (hard-negative) solution's signals, carried into the TRL-format export.
VERIFIER_EXPORT_COLUMNS = [
    "wrongness", "absurdity", "confidence", "perplexity", "d_semantic", "d_structure", "d_order", "d_logic",
    "d_numeric", "d_answer", "first_error_step",
]


@dataclass
class PairsConfig:
    """What a pair set depends on besides the funnel (the profile's `pairs` section).

    Parameters:
        perplexity_z (`float`, defaults to `10.0`):
            Z of the raw weight ``w = W + (1 − c) + PPL / Z`` (paper eq. 2, SPEC §2.5), chosen so that
            PPL / Z has the magnitude of the other two terms for a small math model's perplexities.
        heldout_fraction (`float`, defaults to `0.05`):
            Share of the pairs DPO does not train on (whole problems, chosen by `heldout_mask`); the DPO
            stage reports reward margin and preference accuracy on them before and after training. 0
            trains on every pair (no held-out metrics).
        missing_scores (`str`, defaults to `"error"`):
            What a hard negative without confidence or perplexity does to its raw weight. `error`: the pair
            set is refused, naming the candidate (the paper's weight needs all three terms). `omit_terms`:
            the missing term counts 0, so an unscored pool (the offline `inject` source, whose
            confidence and perplexity would need the policy's forward pass over every candidate)
            weights by W alone; the pairs' dataset card and the DPO metadata repeat the setting.
    """

    perplexity_z: float = field(default=DEFAULT_PERPLEXITY_Z, metadata={"help": "Z in w = W + (1 - c) + PPL / Z."})
    heldout_fraction: float = field(default=0.05, metadata={"help": "Share of pairs held out of DPO training."})
    missing_scores: str = field(default="error", metadata={"help": "error | omit_terms: a hard negative without c or PPL."})

    def __post_init__(self) -> None:
        if not (math.isfinite(self.perplexity_z) and self.perplexity_z > 0):
            raise ValueError(f"pairs.perplexity_z must be a finite number > 0, got {self.perplexity_z!r}")
        if not (0.0 <= self.heldout_fraction < 1.0):
            raise ValueError(f"pairs.heldout_fraction must lie in [0, 1), got {self.heldout_fraction!r}")
        if self.missing_scores not in ("error", "omit_terms"):
            raise ValueError(f"pairs.missing_scores must be 'error' or 'omit_terms', got {self.missing_scores!r}")


def heldout_mask(pairs: pd.DataFrame, fraction: float) -> np.ndarray:
    """Boolean mask of the pairs held out of DPO training (True = held out).

    Whole problems are held out (by `problem_id` when the column exists, else by `pair_id`), so no
    held-out prompt is ever trained on. Problems are ranked by md5 of their id, a keyed hash that
    does not depend on row order, and taken until ``round(fraction × n_pairs)`` pairs are held out.
    With ``fraction > 0`` and at least two groups at least one pair is held out, and never all.
    """
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"heldout fraction must lie in [0, 1), got {fraction!r}")
    n = len(pairs)
    mask = np.zeros(n, dtype=bool)
    if fraction == 0 or n < 2:
        return mask
    key = "problem_id" if "problem_id" in pairs.columns else "pair_id"
    groups = pairs[key].astype(str).to_numpy()
    order = sorted(set(groups), key=lambda g: (hashlib.md5(f"heldout|{g}".encode()).hexdigest(), g))
    if len(order) < 2:
        return mask
    target = max(1, int(round(fraction * n)))
    held: set[str] = set()
    count = 0
    sizes = pd.Series(groups).value_counts().to_dict()
    for g in order[:-1]:  # the last group always stays in training
        if count >= target:
            break
        held.add(g)
        count += sizes[g]
    return np.isin(groups, list(held))


def pairs_sha256(pairs: pd.DataFrame) -> str:
    """Content hash of a pair set: pair_id, prompt, chosen, rejected and the raw weight, in pair_id order.

    The same pairs give the same hash whatever the row order or the weight column's name
    (`raw_weight` in the warehouse, `weight` in exports); recorded with every DPO run and in the
    exported dataset's card.
    """
    weight_col = "raw_weight" if "raw_weight" in pairs.columns else ("weight" if "weight" in pairs.columns else None)
    rows = []
    for r in pairs.itertuples(index=False):
        d = r._asdict()
        w = d.get(weight_col) if weight_col else None
        rows.append([str(d["pair_id"]), _as_text(d["prompt"]), _as_text(d["chosen"]), _as_text(d["rejected"]),
                     None if w is None else round(float(w), 12)])
    rows.sort(key=lambda x: x[0])
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def _as_text(value):
    # Message lists (the TRL export) hash by their content, strings as they are.
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value

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
    result: FunnelResult, prompt_for: PromptFn | None = None, z: float = DEFAULT_PERPLEXITY_Z,
    missing_scores: str = "error",
) -> pd.DataFrame:
    """`preference_pairs` rows (strategy 'hardneg') for the funnel's selected hard negatives.

    Rows are ordered by problem, hardest negative first. raw_weight uses the rejected
    solution's wrongness, confidence and perplexity; a missing or non-finite one is an
    error naming the candidate (a silent NaN weight would poison a whole DPO batch), unless
    `missing_scores="omit_terms"` (see `PairsConfig`), where a missing c or PPL term counts 0.
    """
    sel = result.selected
    if len(sel) == 0:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in PAIR_COLUMNS})
    confidence = pd.to_numeric(sel["confidence"], errors="coerce").astype(float)
    perplexity = pd.to_numeric(sel["perplexity"], errors="coerce").astype(float)
    required = ("wrongness", "confidence", "perplexity")
    if missing_scores == "omit_terms":
        required = ("wrongness",)
        # 1 - c = 0 and PPL / Z = 0 for the missing terms
        confidence = confidence.where(np.isfinite(confidence), 1.0)
        perplexity = perplexity.where(np.isfinite(perplexity), 0.0)
    for col in required:
        bad = sel[~np.isfinite(pd.to_numeric(sel[col], errors="coerce").astype(float))]
        if len(bad):
            value = pd.to_numeric(pd.Series([bad[col].iloc[0]]), errors="coerce").iloc[0]
            shown = "missing or NaN" if pd.isna(value) else str(float(value))
            raise ValueError(
                f"hard negative {bad['candidate_id'].iloc[0]!r}: {col} is {shown}; the raw weight needs a finite value"
            )
    weights = raw_weight(sel["wrongness"], confidence, perplexity, z)
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
            degenerate = degenerate_sql(cfg, udf, "text", "finish_reason", "answer", "_question")
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
                FROM candidates {QUESTION_JOIN if degenerate != "NULL" else ""}
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


EXPORT_SQL = """
SELECT pp.pair_id, pp.problem_id, pp.strategy, pp.prompt AS rendered_prompt, pp.chosen, pp.rejected, pp.raw_weight,
       pp.chosen_candidate_id, pp.rejected_candidate_id, p.question,
       c.confidence, c.perplexity,
       v.wrongness, v.absurdity, v.d_semantic, v.d_structure, v.d_order, v.d_logic, v.d_numeric, v.d_answer,
       v.first_error_step
FROM preference_pairs pp
JOIN problems p ON p.problem_id = pp.problem_id
LEFT JOIN candidates c ON c.candidate_id = pp.rejected_candidate_id AND c.family = pp.family AND c.seed = pp.seed
LEFT JOIN (
    SELECT * FROM verifier_profiles WHERE family = $family
    QUALIFY row_number() OVER (PARTITION BY candidate_id ORDER BY verifier_version DESC) = 1
) v ON v.candidate_id = pp.rejected_candidate_id
WHERE pp.family = $family AND pp.seed = $seed AND pp.strategy = $strategy
ORDER BY pp.pair_id
"""


def _warehouse_sha(pairs: pd.DataFrame) -> str:
    # The export frame calls the stored, rendered prompt `rendered_prompt` (its `prompt` is messages).
    frame = pairs.rename(columns={"rendered_prompt": "prompt"}) if "rendered_prompt" in pairs.columns else pairs
    return pairs_sha256(frame) if "prompt" in frame.columns else "n/a"


def pairs_for_export(con: duckdb.DuckDBPyConnection, family: str, seed: int, strategy: str) -> pd.DataFrame:
    """One partition's pairs with their question and the rejected solution's verifier signals.

    The verifier columns come from the newest `verifier_version` profile of the rejected
    candidate; they are NULL for a rejected text that is not a pool candidate.
    """
    return con.execute(EXPORT_SQL, {"family": family, "seed": int(seed), "strategy": strategy}).df()


DATASET_CARD = """---
configs:
- config_name: default
  data_files:
{splits}
tags:
- dpo
- preference
- math
- hardneg
---
# hardneg preference pairs: {title}

Preference pairs for DPO in TRL's *conversational preference* format: `prompt` is a list of
messages (system + user), `chosen` and `rejected` are one-message assistant turns. Built by
the hardneg pipeline (verifier-guided hard negatives, paper "Hard Negative Sample-Augmented
DPO Post-Training for Small Language Models").

| | |
|---|---|
| strategy | `{strategy}` ({strategy_text}) |
| family / seed | `{family}` / `{seed}` |
| profile | `{profile}` |
| pairs | {n_train} train, {n_heldout} held out (split `heldout`: whole problems DPO never trains on) |
| pairs sha256 | `{sha}` (of the warehouse rows: pair_id, rendered prompt, chosen, rejected, raw_weight) |
| raw weight | `weight` = W + (1 − c) + PPL / Z of the rejected solution, Z = {z} (paper eq. 2) |

Columns: `pair_id`, `problem_id`, `prompt`, `chosen`, `rejected`, `weight` (raw; the
weighted trainer normalizes it per optimizer batch, λ-tempers and clips it), and the rejected
solution's verifier signals: {verifier_columns} (all in [0, 1], higher = worse, except
`confidence` and `perplexity`; null where the verifier had no reference).

```python
from datasets import load_dataset
from trl import DPOConfig, DPOTrainer

ds = load_dataset("path/to/this/folder")
trainer = DPOTrainer(model="...", args=DPOConfig(output_dir="out"), train_dataset=ds["train"])
```

Plain `DPOTrainer` ignores `weight` (unweighted DPO); `hardneg.dpo_trainer.WeightedDPOTrainer`
uses it.
"""


def export_pairs_trl(
    pairs: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    system_prompt: str,
    heldout_fraction: float = 0.0,
    card: dict | None = None,
) -> str:
    """Write pairs as a dataset folder (`data/train.parquet`, `data/heldout.parquet`, `README.md`).

    `pairs` needs pair_id, problem_id, question, chosen, rejected and `raw_weight` (or `weight`);
    verifier columns (`VERIFIER_EXPORT_COLUMNS`) present in it are carried along. `card` fills the
    dataset card (strategy, family, seed, profile, z, sha). Files are written to a temporary
    folder and swapped in, so a reader never sees half a dataset. Returns the folder.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    weight_col = "raw_weight" if "raw_weight" in pairs.columns else "weight"
    needed = ("pair_id", "problem_id", "question", "chosen", "rejected", weight_col)
    missing = [c for c in needed if c not in pairs.columns]
    if missing:
        raise ValueError(f"export_pairs_trl: pairs lack column(s) {missing}")
    for pid, q in zip(pairs["pair_id"], pairs["question"]):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"export_pairs_trl: pair {pid!r} has no question text")
    card = dict(card or {})
    mask = heldout_mask(pairs, heldout_fraction)
    message = pa.struct([("role", pa.string()), ("content", pa.string())])

    def table(frame: pd.DataFrame):
        cols = {
            "pair_id": pa.array(frame["pair_id"].astype(str).tolist(), pa.string()),
            "problem_id": pa.array(frame["problem_id"].astype(str).tolist(), pa.string()),
            "prompt": pa.array(
                [[{"role": "system", "content": system_prompt}, {"role": "user", "content": q}]
                 for q in frame["question"]],
                pa.list_(message),
            ),
            "chosen": pa.array([[{"role": "assistant", "content": t}] for t in frame["chosen"]], pa.list_(message)),
            "rejected": pa.array([[{"role": "assistant", "content": t}] for t in frame["rejected"]], pa.list_(message)),
            "weight": pa.array(pd.to_numeric(frame[weight_col]).astype(float).to_numpy(), pa.float64()),
        }
        for c in VERIFIER_EXPORT_COLUMNS:
            if c in frame.columns:
                kind = pa.int64() if c == "first_error_step" else pa.float64()
                values = [None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v
                          for v in frame[c].tolist()]
                cols[c] = pa.array([None if v is None else (int(v) if c == "first_error_step" else float(v))
                                    for v in values], kind)
        return pa.table(cols)

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "data").mkdir()
        splits = [("train", pairs[~mask])]
        if mask.any():
            splits.append(("heldout", pairs[mask]))
        for name, frame in splits:
            pq.write_table(table(frame.reset_index(drop=True)), tmp / "data" / f"{name}.parquet")
        stored = pairs["strategy"].iloc[0] if "strategy" in pairs.columns and len(pairs) else "?"
        strategy = str(card.get("strategy", stored))
        text = DATASET_CARD.format(
            splits="\n".join(f"  - split: {n}\n    path: data/{n}.parquet" for n, _ in splits),
            title=f"{strategy}, {card.get('family', '?')} seed {card.get('seed', '?')}",
            strategy=strategy,
            strategy_text="verifier-selected hard negatives" if strategy == "hardneg" else
            "random-uniform baseline, preferences by final answer alone, weight 1",
            family=card.get("family", "?"),
            seed=card.get("seed", "?"),
            profile=card.get("profile", "?"),
            n_train=int((~mask).sum()),
            n_heldout=int(mask.sum()),
            sha=card.get("sha256") or _warehouse_sha(pairs),
            z=card.get("z", DEFAULT_PERPLEXITY_Z),
            verifier_columns=", ".join(f"`{c}`" for c in VERIFIER_EXPORT_COLUMNS if c in pairs.columns) or "none",
        )
        (tmp / "README.md").write_text(text)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a dataset folder is meant to be shared
        if out.exists():
            import shutil

            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(out)


# ---------------------------------------------------------------- the gate before DPO
GATED_BY = {"hardneg": ("funnel", "preference_pairs_hardneg"), "random": ("funnel", "preference_pairs_random")}
"""The assets whose blocking checks must have passed before DPO may train on a strategy's pairs."""


def record_checks(wh, family: str, seed: int, asset: str, failures: Mapping[str, Sequence[str]]) -> None:
    """Store the outcome of an asset's blocking checks (check name -> failure lines, [] = passed)."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    rows = [
        {"family": family, "seed": seed, "asset": asset, "check_name": name, "passed": not lines,
         "detail": "; ".join(lines)[:4000], "checked_at": now}
        for name, lines in failures.items()
    ]
    wh.replace_where("blocking_checks", rows, "family = ? AND seed = ? AND asset = ?", [family, seed, asset])


def dpo_gate(wh, family: str, seed: int, strategy: str) -> list[str]:
    """Why DPO must not train on this partition's `strategy` pairs ([] = it may).

    The gate reads the warehouse, not a Dagster run, so a DPO launched by hand later (another
    run, the CLI, a notebook) is refused too while the funnel or the pairs stand failed."""
    assets = GATED_BY[strategy]
    rows = wh.query(
        f"SELECT asset, check_name, passed, detail FROM blocking_checks WHERE family = ? AND seed = ? "
        f"AND asset IN ({', '.join('?' * len(assets))}) ORDER BY asset, check_name",
        [family, seed, *assets],
    )
    reasons = [f"{a}: no check result stored (materialize it first)" for a in assets if a not in set(rows["asset"])]
    reasons += [f"{r.asset} check {r.check_name} failed: {r.detail}" for r in rows.itertuples() if not r.passed]
    return reasons
