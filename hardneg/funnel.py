"""The four-stage funnel of SPEC §2.4 (paper §3.3), as DuckDB SQL over the warehouse.

A partition's candidate pool (`candidates` ⨝ `verifier_profiles` ⨝ `problems`) goes through

1. degenerate removal (empty; truncated: cut off before stating an answer; heavy repetition or a
   loop; no math content; the question restated),
2. trivially-correct removal (answer correct and every dimension below 0.1; these stay
   eligible as *chosen* solutions, they only leave the pool of negatives),
3. trivially-wrong removal (wrongness W > 0.8 and absurdity A > 0.8),
4. hard-negative selection and pairing (0.3 ≤ W ≤ 0.8, a structural/logical flaw or a
   formula-level numeric error, confidence ≥ 0.5, near the good solution), with a chosen
   partner per negative and at most `pairs_per_problem` pairs per problem, hardest first.

Why SQL: at paper scale the pool is ~600K chain-of-thought texts. DuckDB scans them
column-wise straight from the warehouse file, the stages work on ids, numbers and md5 text
keys, and only the selected rows (with their texts) come back to Python: 600K candidates
take ~16-19 s and ~1.1 GB on 2 shared cores, against ~160 s and 2 GB for the same rules
in pandas (bench/funnel.py, bench/results/funnel.md).

`is_degenerate` is the row-at-a-time Python version of stage 1; `degenerate_sql` renders
the same rule as a SQL expression: the regex checks run in DuckDB, the repetition check
calls `is_repetitive` through a vectorized UDF (DuckDB's list functions needed 2.5× the
CPU with list_zip/list_unique and 10× with lambdas). The tests hold both to identical
verdicts.

Choices the SPEC leaves open (all configurable in `FunnelConfig`):
- "hardest first" = highest wrongness, then highest confidence (the model believes it
  more), then candidate_id;
- chosen = the lowest-wrongness correct, non-degenerate candidate of the problem
  (trivially-correct ones included) that is not the rejected one, differs from it in text
  and has strictly lower wrongness; otherwise the reference solution; otherwise no pair;
- identical texts (exact bytes) among a problem's hard negatives make one pair, not two;
- null dimensions drop out of the stage-2 rule as they do in the aggregates.

The per-stage counts (`FunnelResult.counts`) have the columns of the `funnel_counts`
table; `check_funnel_counts` compares them with the ranges a profile expects.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Mapping

import duckdb
import pandas as pd

from hardneg.grading import STATED_ANSWER_PATTERN
from hardneg.verifier.config import DIMENSIONS

DEGENERATE_REASONS = ("empty", "truncated", "repetitive", "no-math", "echo")
STAGE_NAMES = {
    1: "degenerate-removal",
    2: "trivially-correct-removal",
    3: "trivially-wrong-removal",
    4: "hard-negative-pairs",
}
# Why stage 4 drops a candidate (first failing criterion, in this order) and why a
# qualifying hard negative does not become a pair.
HARD_NEGATIVE_FAILURES = ("wrongness-range", "no-structural-flaw", "low-confidence", "not-near")
PAIR_DROP_REASONS = ("excluded-split", "no-chosen", "duplicate-text", "over-cap")

# A digit, an operator, a math symbol or any LaTeX command. '-' is left out on purpose:
# prose uses dashes, and a solution without a single digit or operator is not math.
MATH_PATTERN = r"[0-9=+*/^×÷√π∑∫≤≥]|\\[A-Za-z]+"
# Python's whitespace (what str.split / str.isspace use) as a character class that RE2
# (DuckDB) reads the same way: the characters themselves, not escapes.
_PY_WS_CLASS = "[" + "".join(chr(i) for i in range(0x3001) if chr(i).isspace()) + "]"
# Answers like "$1,200", "50\%", "1{,}000" parse as numbers once this noise is gone.
_NUMBER_NOISE = r"[,$%\t\n\f\r \\{}]"
_NUMBER_FULL = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"


@dataclass
class FunnelConfig:
    """Thresholds of the funnel. Defaults are SPEC §2.4; every one is configuration."""

    # --- stage 1: degenerate removal -------------------------------------------------
    repetition_ngram: int = field(
        default=4, metadata={"help": "n of the word n-grams whose distinct share measures repetition."}
    )
    repetition_min_tokens: int = field(
        default=32,
        metadata={"help": "Texts with fewer whitespace tokens are never judged repetitive (too short to tell)."},
    )
    repetition_max_distinct_ratio: float = field(
        default=0.3,
        metadata={
            "help": "A text is 'repetitive' when distinct n-grams / all n-grams < this. Natural solutions score "
            "> 0.8; a loop that fills most of the text scores far below 0.3."
        },
    )
    repetition_min_loop_copies: int = field(
        default=5,
        metadata={
            "help": "A text is also 'repetitive' when a block of 1..repetition_max_loop_period segments (lines, "
            "or sentences ending in . ! ?; whitespace ignored) occurs this many times in a row: a generation "
            "stuck in a loop after a sound start, which the n-gram share misses when the start is long. No "
            "GSM8K or MATH reference solution repeats a block more than 3 times in a row."
        },
    )
    repetition_max_loop_period: int = field(
        default=3, metadata={"help": "Longest block, in segments, that the loop rule looks for."}
    )
    answer_marker_pattern: str = field(
        default=STATED_ANSWER_PATTERN,
        metadata={
            "help": "RE2/Python regex. A 'length'-finished text with no match has no stated final answer and is "
            "'truncated', even where the protocol's last-number fallback extracted one (that fallback finds an "
            "'answer' in any cut-off text with a digit)."
        },
    )
    math_pattern: str = field(
        default=MATH_PATTERN,
        metadata={"help": "RE2/Python regex; a text with no match has 'no math content' ('no-math')."},
    )
    # --- stage 2: trivially correct ---------------------------------------------------
    trivially_correct_max_dim: float = field(
        default=0.1,
        metadata={
            "help": "Correct answer (candidates.correct) and every non-null dimension < this: removed from the "
            "negatives (still eligible as chosen). A null dimension drops out, as in the aggregates."
        },
    )
    # --- stage 3: trivially wrong -----------------------------------------------------
    trivially_wrong_min_wrongness: float = field(
        default=0.8, metadata={"help": "Removed when wrongness > this AND absurdity > trivially_wrong_min_absurdity."}
    )
    trivially_wrong_min_absurdity: float = field(default=0.8, metadata={"help": "See trivially_wrong_min_wrongness."})
    # --- stage 4: hard negatives --------------------------------------------------------
    hard_min_wrongness: float = field(default=0.3, metadata={"help": "Hard negative: wrongness >= this (inclusive)."})
    hard_max_wrongness: float = field(default=0.8, metadata={"help": "Hard negative: wrongness <= this (inclusive)."})
    structural_min_dim: float = field(
        default=0.5, metadata={"help": "A structural/logical flaw: d_structure, d_order or d_logic > this (strict)."}
    )
    formula_level_counts: bool = field(
        default=True, metadata={"help": "A formula-level numeric error (d5) also counts as the required flaw."}
    )
    formula_numeric_min: float = field(
        default=1.0,
        metadata={
            "help": "When verifier_profiles.formula_error is null, d_numeric >= this means formula-level "
            "(SPEC §2.2: formula-level errors score 1.0, arithmetic slips 0.4)."
        },
    )
    min_confidence: float | None = field(
        default=0.5,
        metadata={
            "help": "Hard negative: confidence >= this. None: no confidence rule, for pools without policy "
            "scores (the offline `inject` source on CPU); say so where the pairs are used."
        },
    )
    max_relative_answer_error: float = field(
        default=0.5,
        metadata={
            "help": "Near the good solution: |pred - ref| / max(|ref|, eps) <= this when both answers parse as "
            "numbers (commas, $, %, braces, backslashes stripped), OR d_semantic <= max_semantic_distance."
        },
    )
    max_semantic_distance: float = field(default=0.4, metadata={"help": "See max_relative_answer_error."})
    relative_error_eps: float = field(default=1e-9, metadata={"help": "Floor of |ref| in the relative error."})
    pairs_per_problem: int = field(
        default=2,
        metadata={
            "help": "At most this many pairs per problem, hardest negative first (hardest = highest wrongness, "
            "then highest confidence, then candidate_id)."
        },
    )
    chosen_must_beat_rejected: bool = field(
        default=True,
        metadata={
            "help": "The chosen candidate must have strictly lower wrongness than the rejected one; otherwise "
            "the reference solution is used (a pair the verifier would not prefer teaches nothing)."
        },
    )
    excluded_splits: tuple[str, ...] = field(
        default=("test",), metadata={"help": "problems.split values never used for pairs (never train on test)."}
    )
    verifier_version: str | None = field(
        default=None,
        metadata={
            "help": "Use profiles of this verifier_version only. None: any, but a candidate must then have "
            "exactly one profile."
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.excluded_splits, str):  # ("test") is a str, not a 1-tuple
            self.excluded_splits = (self.excluded_splits,)
        self.excluded_splits = tuple(self.excluded_splits)
        ints = ("repetition_ngram", "repetition_min_tokens", "repetition_min_loop_copies",
                "repetition_max_loop_period", "pairs_per_problem")
        for name in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FunnelConfig.{name} must be a positive int, got {value!r}")
        if self.repetition_min_tokens < self.repetition_ngram:
            raise ValueError("FunnelConfig.repetition_min_tokens must be >= repetition_ngram")
        for name, value in asdict(self).items():
            if name in ints or isinstance(value, (bool, str, tuple)) or value is None:
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"FunnelConfig.{name} must be a finite number, got {value!r}")
        if self.hard_min_wrongness > self.hard_max_wrongness:
            raise ValueError("FunnelConfig.hard_min_wrongness must be <= hard_max_wrongness")
        if self.relative_error_eps <= 0:
            raise ValueError("FunnelConfig.relative_error_eps must be > 0")
        if self.repetition_min_loop_copies < 2:
            raise ValueError("FunnelConfig.repetition_min_loop_copies must be >= 2 (one copy is no loop)")
        re.compile(self.math_pattern)
        re.compile(self.answer_marker_pattern)


_DEFAULT_CONFIG = FunnelConfig()


@dataclass(frozen=True)
class StageRange:
    """Inclusive range of a stage's n_out that a profile expects."""

    min: int
    max: int

    def __post_init__(self) -> None:
        if self.min > self.max:
            raise ValueError(f"StageRange min {self.min} > max {self.max}")

    def __contains__(self, value: int) -> bool:
        return self.min <= value <= self.max


@dataclass
class FunnelResult:
    """What `run_funnel` found for one partition.

    counts: one row per stage with the `funnel_counts` columns (family, seed, stage, name,
        n_in, n_out, reason); stage 4's n_in is the pool left after stage 3, its n_out the
        number of pairs.
    hard_negatives: every candidate that met the stage-4 criteria, one row each, with
        its profile, `question`, `split`, `text`, its chosen partner (`chosen_candidate_id`,
        `chosen_text`, `chosen_source` 'candidate' | 'reference' | None), `hardness_rank`
        (1 = hardest pairable negative of its problem) and `selected` (it becomes a pair)
        or `drop_reason` (one of PAIR_DROP_REASONS).
    degenerate: candidate_id and reason of every candidate stage 1 removed (pass it to
        `build_random_pairs` to skip recomputing stage 1).
    trace: with `run_funnel(..., trace=True)`, one row per candidate: candidate_id,
        problem_id, `stage_removed` (1, 2, 3, or 4 = reached stage 4) and `reason` (the
        degenerate reason, 'trivially-correct', 'trivially-wrong', the failed hard-negative
        criterion, or 'hard-negative'). None otherwise (it is pool-sized).
    """

    family: str
    seed: int
    config: FunnelConfig
    counts: pd.DataFrame
    hard_negatives: pd.DataFrame
    degenerate: pd.DataFrame
    trace: pd.DataFrame | None = None

    @property
    def selected(self) -> pd.DataFrame:
        """The hard negatives that become pairs, by problem and hardness."""
        return self.hard_negatives[self.hard_negatives["selected"]].reset_index(drop=True)

    @property
    def n_pairs(self) -> int:
        return int(self.hard_negatives["selected"].sum()) if len(self.hard_negatives) else 0


# ----------------------------------------------------------------------------------------
# Stage 1 in Python (one row) and in SQL (a column expression)
# ----------------------------------------------------------------------------------------


# A loop's unit: a line, or a sentence ending in . ! or ? (a model often loops within one line).
_SEGMENT_BREAK = re.compile(r"\n|(?<=[.!?])\s+")


def loop_copies(text: str, max_period: int) -> int:
    """How many times in a row the most repeated block of 1..max_period segments occurs (1: no loop).

    Segments are compared with whitespace removed; blank ones are skipped."""
    segments = [s for s in ("".join(part.split()) for part in _SEGMENT_BREAK.split(text)) if s]
    best = 1
    if len(set(segments)) == len(segments):  # nothing repeats: most texts stop here
        return best
    for period in range(1, max_period + 1):
        run = 0  # consecutive segments equal to the one `period` places earlier
        for i in range(period, len(segments)):
            run = run + 1 if segments[i] == segments[i - period] else 0
            best = max(best, 1 + run // period)
    return best


def _repetition_checker(cfg: FunnelConfig) -> Callable[[str | None], bool]:
    n, min_tokens, ratio = cfg.repetition_ngram, cfg.repetition_min_tokens, cfg.repetition_max_distinct_ratio
    min_copies, max_period = cfg.repetition_min_loop_copies, cfg.repetition_max_loop_period

    def low_ngram_share(toks: list[str]) -> bool:
        if len(toks) < min_tokens:
            return False
        limit = ratio * (len(toks) - n + 1)
        # Every distinct token except those first seen in the last n-1 positions starts a
        # distinct n-gram: a cheap lower bound that clears natural text without the n-gram set.
        if len(set(toks)) - (n - 1) >= limit:
            return False
        return len(set(zip(*(toks[i:] for i in range(n))))) < limit

    def check(text: str | None) -> bool:
        if not text:
            return False
        return low_ngram_share(text.split()) or loop_copies(text, max_period) >= min_copies

    return check


def is_repetitive(text: str | None, config: FunnelConfig | None = None) -> bool:
    """At least `repetition_min_tokens` tokens and distinct n-grams < ratio × all n-grams, or a block
    of segments looping `repetition_min_loop_copies` times in a row (`loop_copies`)."""
    return _repetition_checker(config or _DEFAULT_CONFIG)(text)


# An echo has at least this many non-whitespace characters, or 80 % of a shorter question's (a
# stray "1." line is no echo; "Factor $36-9x^2$." restated in full is).
_ECHO_MIN_CHARS = 20
_ECHO_MIN_SHARE = 0.8


def is_echo(text: str, question: str | None) -> bool:
    """Every non-blank line of `text`, stripped, appears verbatim in `question` (and there is
    something to echo): the candidate restates the question and adds nothing."""
    if not question:
        return False
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    n_chars = len(re.sub(_PY_WS_CLASS, "", text))
    min_chars = min(_ECHO_MIN_CHARS, _ECHO_MIN_SHARE * len(re.sub(_PY_WS_CLASS, "", question)))
    return bool(lines) and n_chars >= min_chars and all(line in question for line in lines)


def is_degenerate(
    text: str | None, finish_reason: str | None, answer: str | None, config: FunnelConfig | None = None,
    question: str | None = None,
) -> str | None:
    """Stage 1's verdict for one candidate: 'empty', 'truncated', 'repetitive', 'no-math', 'echo' or None.

    'empty': no non-whitespace character. 'truncated': finish_reason 'length' and no
    (non-blank) final answer, or none stated (`answer_marker_pattern`). 'repetitive':
    `is_repetitive`. 'no-math': nothing matches `math_pattern`. 'echo': `is_echo` against the problem's question (SPEC's "nonsensical":
    a restated question is no solution, and as a rejected sample it would teach DPO nothing
    about reasoning). The first that applies wins, in that order.
    """
    cfg = config or _DEFAULT_CONFIG
    if text is not None and not isinstance(text, str):
        if isinstance(text, float) and math.isnan(text):  # a missing value out of pandas
            text = None
        else:
            raise TypeError(f"is_degenerate: text must be str or None, got {type(text).__name__}")
    if not isinstance(answer, str):
        answer = None
    if not text or text.isspace():
        return "empty"
    if finish_reason == "length" and (
        answer is None or answer.strip() == "" or not re.search(cfg.answer_marker_pattern, text)
    ):
        return "truncated"
    if is_repetitive(text, cfg):
        return "repetitive"
    if not re.search(cfg.math_pattern, text):
        return "no-math"
    if is_echo(text, question if isinstance(question, str) else None):
        return "echo"
    return None


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def blank_sql(expr: str) -> str:
    """SQL: `expr` is empty or whitespace only (Python's whitespace); NULL stays NULL."""
    return f"regexp_full_match({expr}, {_sql_str(_PY_WS_CLASS + '*')})"


@contextlib.contextmanager
def repetition_udf(con: duckdb.DuckDBPyConnection, config: FunnelConfig) -> Iterator[str]:
    """Register `is_repetitive` (with `config`) as a vectorized DuckDB UDF; yields its name.

    Measured on 600K synthetic texts (300 MB): the n-gram rule in DuckDB list functions
    cost ~30 s of CPU (string_split + list_zip + list_unique) or ~110 s (lambdas); Python's
    `str.split` + `set`, with the distinct-token bound clearing most texts, ~11 s. DuckDB
    calls the UDF only for rows that reach its CASE branch; it runs under the GIL, so this
    is the one single-threaded part of the funnel.
    """
    import pyarrow as pa

    name = f"_hardneg_repetitive_{uuid.uuid4().hex[:12]}"
    check = _repetition_checker(config)

    def udf(texts):
        return pa.array([check(t) for t in texts.to_pylist()], pa.bool_())

    con.create_function(name, udf, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("BOOLEAN"), type="arrow",
                        side_effects=False)
    try:
        yield name
    finally:
        con.remove_function(name)


def degenerate_sql(
    config: FunnelConfig, udf: str, text: str, finish_reason: str, answer: str, question: str = "NULL"
) -> str:
    """SQL expression equal to `is_degenerate` (NULL when the candidate is fine).

    `udf` is the name yielded by `repetition_udf`; `question` an SQL expression for the problem's
    question (`_question` after `QUESTION_JOIN`), NULL for no echo check. Whitespace is Python's (`str.isspace`),
    spelled out as a regex class so both sides agree on 'empty', blank answers and echoes.
    """
    ws = _PY_WS_CLASS
    lines = f"list_filter(string_split({text}, chr(10)), lambda l: NOT regexp_full_match(l, {_sql_str(ws + '*')}))"
    stripped = f"regexp_replace(l, {_sql_str('^' + ws + '+|' + ws + '+$')}, '', 'g')"

    def n_chars(expr: str) -> str:
        return f"length(regexp_replace({expr}, {_sql_str(ws)}, '', 'g'))"

    echo = (f"{question} IS NOT NULL AND len({lines}) > 0 "
            f"AND {n_chars(text)} >= least({_ECHO_MIN_CHARS}, {_ECHO_MIN_SHARE} * {n_chars(question)}) "
            f"AND list_bool_and(list_transform({lines}, lambda l: contains({question}, {stripped})))")
    return f"""CASE
        WHEN {text} IS NULL OR {blank_sql(text)} THEN 'empty'
        WHEN {finish_reason} = 'length' AND ({answer} IS NULL OR {blank_sql(answer)}
             OR NOT regexp_matches({text}, {_sql_str(config.answer_marker_pattern)})) THEN 'truncated'
        WHEN {udf}({text}) THEN 'repetitive'
        WHEN NOT regexp_matches({text}, {_sql_str(config.math_pattern)}) THEN 'no-math'
        WHEN {echo} THEN 'echo'
    END"""


# Joined onto `candidates` so `degenerate_sql(..., question="_question")` can check echoes (a
# join, not a correlated subquery: DuckDB allows no subquery inside the echo check's lambdas).
QUESTION_JOIN = "LEFT JOIN (SELECT problem_id, any_value(question) AS _question FROM problems GROUP BY problem_id) USING (problem_id)"


# ----------------------------------------------------------------------------------------
# Answers
# ----------------------------------------------------------------------------------------


def parse_number(value: str | None) -> float | None:
    """A final answer as a number, or None ('$1,200' → 1200.0, '\\frac{1}{2}' → None)."""
    if not isinstance(value, str):
        return None
    s = re.sub(_NUMBER_NOISE, "", value)
    if not re.fullmatch(_NUMBER_FULL, s):
        return None
    x = float(s)
    return x if math.isfinite(x) else None


def relative_answer_error(pred: str | None, ref: str | None, eps: float = 1e-9) -> float | None:
    """|pred − ref| / max(|ref|, eps) when both parse as numbers, else None (unknown)."""
    p, r = parse_number(pred), parse_number(ref)
    if p is None or r is None:
        return None
    return abs(p - r) / max(abs(r), eps)


def _number_sql(col: str) -> str:
    cleaned = f"regexp_replace({col}, {_sql_str(_NUMBER_NOISE)}, '', 'g')"
    return (
        f"(CASE WHEN regexp_full_match({cleaned}, {_sql_str(_NUMBER_FULL)}) "
        f"AND isfinite(TRY_CAST({cleaned} AS DOUBLE)) THEN TRY_CAST({cleaned} AS DOUBLE) END)"
    )


def relative_error_sql(pred: str, ref: str, eps: float) -> str:
    p, r = _number_sql(pred), _number_sql(ref)
    return f"(abs({p} - {r}) / greatest(abs({r}), {float(eps)!r}::DOUBLE))"


# ----------------------------------------------------------------------------------------
# The funnel
# ----------------------------------------------------------------------------------------


def run_funnel(
    con: duckdb.DuckDBPyConnection, family: str, seed: int, config: FunnelConfig | None = None, trace: bool = False
) -> FunnelResult:
    """Run the four stages on partition (family, seed) of the warehouse behind `con`.

    Reads `candidates`, `verifier_profiles` (same partition) and `problems`. Raises
    ValueError, naming the rows, when the input is inconsistent: duplicate candidate ids,
    a candidate of an unknown problem, a candidate that survives stage 1 without a
    profile, or more than one profile per candidate. Writes nothing to the warehouse
    (temporary tables on a cursor of `con`, gone when it returns); store `counts` / the
    pairs with `Warehouse.replace_partition`. It reads committed data.
    """
    cfg = config or FunnelConfig()
    tag = uuid.uuid4().hex[:12]
    pool, scored, hn = f"_funnel_pool_{tag}", f"_funnel_scored_{tag}", f"_funnel_hn_{tag}"
    params = {"family": family, "seed": int(seed)}
    # A cursor is its own connection to the same database: the temporary tables and the
    # UDF stay off the caller's connection, and a pending result there does not block us.
    con = con.cursor()
    try:
        _build_pool(con, cfg, pool, params)
        _validate(con, cfg, pool, family, seed)
        _build_scored(con, cfg, pool, scored, params)
        degenerate = con.execute(
            f"SELECT candidate_id, degenerate AS reason FROM {pool} WHERE degenerate IS NOT NULL ORDER BY candidate_id"
        ).df()
        con.execute(f"DROP TABLE {pool}")  # `scored` has all of it now: free the memory
        _build_hard_negatives(con, cfg, scored, hn)
        counts = _stage_counts(con, cfg, scored, hn, family, int(seed))
        hard = _fetch_hard_negatives(con, hn, params)
        trace_df = None
        if trace:
            trace_df = con.execute(
                f"""SELECT candidate_id, problem_id, stage_removed,
                           CASE stage_removed WHEN 1 THEN degenerate WHEN 2 THEN 'trivially-correct'
                                WHEN 3 THEN 'trivially-wrong' ELSE coalesce(hard_failure, 'hard-negative') END AS reason
                    FROM {scored} ORDER BY candidate_id"""
            ).df()
    finally:
        con.close()
    return FunnelResult(
        family=family, seed=int(seed), config=cfg, counts=counts, hard_negatives=hard, degenerate=degenerate,
        trace=trace_df,
    )


def _build_pool(con, cfg: FunnelConfig, pool: str, params: dict) -> None:
    # Texts are read once here; everything downstream works on ids, numbers and text keys.
    with repetition_udf(con, cfg) as udf:
        con.execute(
            f"""
            CREATE TEMP TABLE {pool} AS
            SELECT candidate_id, problem_id, answer, confidence, perplexity, correct,
                   {degenerate_sql(cfg, udf, 'text', 'finish_reason', 'answer', '_question')} AS degenerate,
                   md5(text) AS text_key
            FROM candidates {QUESTION_JOIN} WHERE family = $family AND seed = $seed
            """,
            params,
        )


def _validate(con, cfg: FunnelConfig, pool: str, family: str, seed: int) -> None:
    dup = con.execute(
        f"SELECT candidate_id FROM {pool} GROUP BY candidate_id HAVING count(*) > 1 ORDER BY 1 LIMIT 5"
    ).fetchall()
    if dup:
        raise ValueError(f"candidates ({family}, {seed}): duplicate candidate_id {[r[0] for r in dup]}")
    missing = con.execute(
        f"""SELECT DISTINCT p.problem_id FROM {pool} p
            WHERE p.problem_id IS NULL OR p.problem_id NOT IN (SELECT problem_id FROM problems WHERE problem_id IS NOT NULL)
            ORDER BY 1 LIMIT 5"""
    ).fetchall()
    if missing:
        raise ValueError(
            f"candidates ({family}, {seed}): problem_id not in problems: {[r[0] for r in missing]}"
        )
    dup_p = con.execute(
        f"""SELECT problem_id FROM problems WHERE problem_id IN (SELECT problem_id FROM {pool})
            GROUP BY problem_id HAVING count(*) > 1 ORDER BY 1 LIMIT 5"""
    ).fetchall()
    if dup_p:
        raise ValueError(f"problems: duplicate problem_id {[r[0] for r in dup_p]}")
    vfilter, vparams = _profile_filter(cfg)
    multi = con.execute(
        f"""SELECT candidate_id FROM verifier_profiles
            WHERE family = $family AND seed = $seed {vfilter}
              AND candidate_id IN (SELECT candidate_id FROM {pool})
            GROUP BY candidate_id HAVING count(*) > 1 ORDER BY 1 LIMIT 5""",
        {"family": family, "seed": seed, **vparams},
    ).fetchall()
    if multi:
        raise ValueError(
            f"verifier_profiles ({family}, {seed}): more than one profile for candidate_id {[r[0] for r in multi]}; "
            "set FunnelConfig.verifier_version"
        )
    lacking = con.execute(
        f"""SELECT p.candidate_id FROM {pool} p
            WHERE p.degenerate IS NULL AND p.candidate_id NOT IN (
                SELECT candidate_id FROM verifier_profiles WHERE family = $family AND seed = $seed {vfilter})
            ORDER BY 1 LIMIT 5""",
        {"family": family, "seed": seed, **vparams},
    ).fetchall()
    if lacking:
        raise ValueError(
            f"verifier_profiles ({family}, {seed}): no profile for non-degenerate candidate_id {[r[0] for r in lacking]}"
        )


def _profile_filter(cfg: FunnelConfig) -> tuple[str, dict]:
    if cfg.verifier_version is None:
        return "", {}
    return "AND verifier_version = $vversion", {"vversion": cfg.verifier_version}


def _build_scored(con, cfg: FunnelConfig, pool: str, scored: str, params: dict) -> None:
    vfilter, vparams = _profile_filter(cfg)
    dims_max = "greatest(" + ", ".join(f"coalesce(v.{d}, 0)" for d in DIMENSIONS) + ")"
    structural = " OR ".join(
        f"coalesce(v.{d} > $struct_min, false)" for d in ("d_structure", "d_order", "d_logic")
    )
    formula = "coalesce(v.formula_error, v.d_numeric >= $formula_min, false)"
    if cfg.formula_level_counts:
        structural += f" OR {formula}"
    rel_err = relative_error_sql("p.answer", "pr.reference_answer", cfg.relative_error_eps)
    con.execute(
        f"""
        CREATE TEMP TABLE {scored} AS
        WITH j AS (
            SELECT p.*, pr.split,
                   CASE WHEN NOT {blank_sql('pr.reference_solution')} THEN md5(pr.reference_solution) END
                       AS ref_key,
                   v.d_semantic, v.d_structure, v.d_order, v.d_logic, v.d_numeric, v.d_answer,
                   v.wrongness, v.absurdity, v.formula_error, v.first_error_step,
                   {rel_err} AS rel_answer_error,
                   (p.degenerate IS NULL AND coalesce(p.correct, false) AND {dims_max} < $tc_max) AS trivially_correct,
                   coalesce(v.wrongness > $tw_w AND v.absurdity > $tw_a, false) AS trivially_wrong,
                   coalesce(v.wrongness BETWEEN $hn_lo AND $hn_hi, false) AS ok_range,
                   ({structural}) AS ok_struct,
                   (CAST($cmin AS DOUBLE) IS NULL OR coalesce(p.confidence >= CAST($cmin AS DOUBLE), false)) AS ok_conf
            FROM {pool} p
            LEFT JOIN (SELECT * FROM verifier_profiles WHERE family = $family AND seed = $seed {vfilter}) v
                USING (candidate_id)
            LEFT JOIN problems pr USING (problem_id)
        )
        SELECT *,
               CASE
                   WHEN degenerate IS NOT NULL THEN 1
                   WHEN trivially_correct THEN 2
                   WHEN trivially_wrong THEN 3
                   ELSE 4
               END AS stage_removed,
               CASE
                   WHEN NOT ok_range THEN 'wrongness-range'
                   WHEN NOT ok_struct THEN 'no-structural-flaw'
                   WHEN NOT ok_conf THEN 'low-confidence'
                   WHEN NOT (coalesce(rel_answer_error <= $rel_max, false) OR coalesce(d_semantic <= $d1_max, false))
                       THEN 'not-near'
               END AS hard_failure
        FROM j
        """,
        {
            **params,
            **vparams,
            "tc_max": float(cfg.trivially_correct_max_dim),
            "tw_w": float(cfg.trivially_wrong_min_wrongness),
            "tw_a": float(cfg.trivially_wrong_min_absurdity),
            "hn_lo": float(cfg.hard_min_wrongness),
            "hn_hi": float(cfg.hard_max_wrongness),
            "struct_min": float(cfg.structural_min_dim),
            "cmin": None if cfg.min_confidence is None else float(cfg.min_confidence),
            "rel_max": float(cfg.max_relative_answer_error),
            "d1_max": float(cfg.max_semantic_distance),
            **({"formula_min": float(cfg.formula_numeric_min)} if cfg.formula_level_counts else {}),
        },
    )


# Hardest first: most wrong while still in range, then the one the model believes most.
_HARDNESS = "wrongness DESC, confidence DESC NULLS LAST, candidate_id"


def _build_hard_negatives(con, cfg: FunnelConfig, scored: str, hn: str) -> None:
    beat = "AND ch.wrongness < h.wrongness" if cfg.chosen_must_beat_rejected else ""
    con.execute(
        f"""
        CREATE TEMP TABLE {hn} AS
        WITH h AS (
            SELECT * FROM {scored} WHERE stage_removed = 4 AND hard_failure IS NULL
        ),
        ch AS (  -- chosen-eligible: every non-degenerate correct candidate, trivially correct ones included
            SELECT problem_id, candidate_id, wrongness, confidence, text_key FROM {scored}
            WHERE degenerate IS NULL AND coalesce(correct, false) AND wrongness IS NOT NULL
        ),
        pick AS (
            SELECT h.candidate_id AS rid, ch.candidate_id AS cid
            FROM h JOIN ch ON ch.problem_id = h.problem_id AND ch.candidate_id <> h.candidate_id
                          AND ch.text_key <> h.text_key {beat}
            QUALIFY row_number() OVER (
                PARTITION BY h.candidate_id ORDER BY ch.wrongness, ch.confidence DESC NULLS LAST, ch.candidate_id) = 1
        ),
        r0 AS (
            SELECT h.*, pick.cid AS chosen_candidate_id,
                   CASE WHEN pick.cid IS NOT NULL THEN 'candidate'
                        WHEN h.ref_key IS NOT NULL AND h.ref_key <> h.text_key THEN 'reference' END AS chosen_source
            FROM h LEFT JOIN pick ON pick.rid = h.candidate_id
        ),
        r1 AS (
            SELECT *, CASE WHEN coalesce(list_contains($excluded, split), false) THEN 'excluded-split'
                           WHEN chosen_source IS NULL THEN 'no-chosen' END AS drop0
            FROM r0
        ),
        r2 AS (
            SELECT *, CASE WHEN drop0 IS NULL AND row_number() OVER (
                              PARTITION BY problem_id, text_key, drop0 IS NULL ORDER BY {_HARDNESS}) > 1
                           THEN 'duplicate-text' ELSE drop0 END AS drop1
            FROM r1
        ),
        r3 AS (
            SELECT *, CASE WHEN drop1 IS NULL THEN row_number() OVER (
                              PARTITION BY problem_id, drop1 IS NULL ORDER BY {_HARDNESS}) END AS hardness_rank
            FROM r2
        )
        SELECT * EXCLUDE (drop0, drop1),
               CASE WHEN drop1 IS NULL AND hardness_rank > $cap THEN 'over-cap' ELSE drop1 END AS drop_reason
        FROM r3
        """,
        {"excluded": list(cfg.excluded_splits), "cap": int(cfg.pairs_per_problem)},
    )


def _stage_counts(con, cfg: FunnelConfig, scored: str, hn: str, family: str, seed: int) -> pd.DataFrame:
    fails = ", ".join(f"count(*) FILTER (WHERE stage_removed = 4 AND hard_failure = '{f}')" for f in HARD_NEGATIVE_FAILURES)
    degs = ", ".join(f"count(*) FILTER (WHERE degenerate = '{d}')" for d in DEGENERATE_REASONS)
    row = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE stage_removed >= 2), count(*) FILTER (WHERE stage_removed >= 3),
                   count(*) FILTER (WHERE stage_removed >= 4), {degs}, {fails}
            FROM {scored}"""
    ).fetchall()[0]
    n0, n1, n2, n3 = (int(x) for x in row[:4])
    nd = len(DEGENERATE_REASONS)
    deg = dict(zip(DEGENERATE_REASONS, (int(x) for x in row[4 : 4 + nd])))
    fail = dict(zip(HARD_NEGATIVE_FAILURES, (int(x) for x in row[4 + nd : 4 + nd + len(HARD_NEGATIVE_FAILURES)])))
    hrow = con.execute(
        f"""SELECT count(*), {", ".join(f"count(*) FILTER (WHERE drop_reason = '{d}')" for d in PAIR_DROP_REASONS)},
                   count(*) FILTER (WHERE drop_reason IS NULL AND chosen_source = 'candidate'),
                   count(*) FILTER (WHERE drop_reason IS NULL AND chosen_source = 'reference'),
                   count(DISTINCT problem_id) FILTER (WHERE drop_reason IS NULL)
            FROM {hn}"""
    ).fetchall()[0]
    n_hard = int(hrow[0])
    drops = dict(zip(PAIR_DROP_REASONS, (int(x) for x in hrow[1:5])))
    by_cand, by_ref, n_problems = (int(x) for x in hrow[5:8])
    n_pairs = by_cand + by_ref

    def fmt(d: Mapping[str, int]) -> str:
        return ", ".join(f"{k}={v}" for k, v in d.items())

    reasons = {
        1: fmt(deg),
        2: f"trivially-correct={n1 - n2} (correct answer, every dimension < {cfg.trivially_correct_max_dim}; kept as chosen)",
        3: f"trivially-wrong={n2 - n3} (W > {cfg.trivially_wrong_min_wrongness} and A > {cfg.trivially_wrong_min_absurdity})",
        4: (
            f"hard-negatives={n_hard}; not hard (first failed criterion): {fmt(fail)}; "
            f"not paired: {fmt(drops)}; pairs={n_pairs} over {n_problems} problems "
            f"(chosen: candidate={by_cand}, reference={by_ref})"
        ),
    }
    rows = [
        (1, n0, n1),
        (2, n1, n2),
        (3, n2, n3),
        (4, n3, n_pairs),
    ]
    return pd.DataFrame(
        [
            {"family": family, "seed": seed, "stage": s, "name": STAGE_NAMES[s], "n_in": a, "n_out": b, "reason": reasons[s]}
            for s, a, b in rows
        ]
    )


def _fetch_hard_negatives(con, hn: str, params: dict) -> pd.DataFrame:
    # Texts of the rows we return only: a semi-join keeps the join's hash table small
    # (joining the whole partition's texts doubled peak memory at 600K candidates).
    ids, texts = f"{hn}_ids", f"{hn}_texts"
    con.execute(
        f"""CREATE TEMP TABLE {ids} AS SELECT candidate_id FROM {hn}
            UNION SELECT chosen_candidate_id FROM {hn} WHERE chosen_candidate_id IS NOT NULL"""
    )
    con.execute(
        f"""CREATE TEMP TABLE {texts} AS SELECT c.candidate_id, c.text FROM candidates c SEMI JOIN {ids} USING (candidate_id)
            WHERE c.family = $family AND c.seed = $seed""",
        params,
    )
    df = con.execute(
        f"""
        SELECT h.candidate_id, h.problem_id, pr.question, h.split, c.text, h.answer, pr.reference_answer,
               h.confidence, h.perplexity, h.correct,
               h.d_semantic, h.d_structure, h.d_order, h.d_logic, h.d_numeric, h.d_answer,
               h.wrongness, h.absurdity, h.formula_error, h.first_error_step, h.rel_answer_error,
               h.chosen_source,
               CASE WHEN h.chosen_source = 'candidate' THEN h.chosen_candidate_id END AS chosen_candidate_id,
               CASE WHEN h.chosen_source = 'candidate' THEN cc.text
                    WHEN h.chosen_source = 'reference' THEN pr.reference_solution END AS chosen_text,
               h.hardness_rank, h.drop_reason IS NULL AS selected, h.drop_reason
        FROM {hn} h
        JOIN {texts} c ON c.candidate_id = h.candidate_id
        LEFT JOIN {texts} cc ON cc.candidate_id = h.chosen_candidate_id
        LEFT JOIN problems pr ON pr.problem_id = h.problem_id
        ORDER BY h.problem_id, h.drop_reason IS NOT NULL, h.hardness_rank, h.candidate_id
        """
    ).df()
    df["selected"] = df["selected"].astype(bool)
    return df


# ----------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------


def check_funnel_counts(counts: pd.DataFrame, expected: Mapping[int, StageRange]) -> list[str]:
    """Human-readable failures of one or more partitions' funnel counts ([] when all is well).

    `expected[s]` bounds stage s's n_out (s = 1..4; stage 4's n_out is the pair count);
    `expected[0]`, if given, bounds the pool size (stage 1's n_in). Independently of the
    ranges, the stages must be complete (1..4, once each) and chain: n_out <= n_in, and
    each stage's n_in equals the previous stage's n_out.
    """
    failures: list[str] = []
    needed = {"stage", "n_in", "n_out"}
    if not needed <= set(counts.columns):
        return [f"funnel counts lack column(s) {sorted(needed - set(counts.columns))}"]
    keys = [k for k in ("family", "seed") if k in counts.columns]
    groups = counts.groupby(keys, dropna=False) if keys else [((), counts)]
    if len(counts) == 0:
        return ["no funnel counts"]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = "(" + ", ".join(f"{k}={v}" for k, v in zip(keys, key)) + ") " if keys else ""
        stages = part["stage"].tolist()
        if sorted(stages) != [1, 2, 3, 4]:
            failures.append(f"{label}stages are {sorted(stages)}, expected [1, 2, 3, 4] once each")
        by_stage = {int(r.stage): r for r in part.itertuples() if not pd.isna(r.stage)}
        for s, r in sorted(by_stage.items()):
            if pd.isna(r.n_in) or pd.isna(r.n_out):
                failures.append(f"{label}stage {s}: missing n_in/n_out")
                continue
            if r.n_out > r.n_in:
                failures.append(f"{label}stage {s}: n_out {r.n_out} > n_in {r.n_in}")
            prev = by_stage.get(s - 1)
            if prev is not None and not pd.isna(prev.n_out) and r.n_in != prev.n_out:
                failures.append(f"{label}stage {s}: n_in {r.n_in} != stage {s - 1} n_out {prev.n_out}")
        for s, rng in sorted(expected.items()):
            if s == 0:
                r, value, what = by_stage.get(1), None, "pool size (stage 1 n_in)"
                value = None if r is None else r.n_in
            else:
                r, what = by_stage.get(s), f"stage {s} ({STAGE_NAMES.get(s, '?')}) n_out"
                value = None if r is None else r.n_out
            if value is None or pd.isna(value):
                failures.append(f"{label}{what}: missing")
            elif int(value) not in rng:
                failures.append(f"{label}{what} = {int(value)}, expected {rng.min}..{rng.max}")
    return failures
