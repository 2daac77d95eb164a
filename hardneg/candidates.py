"""The candidate pool (SPEC §2.3): K sampled chain-of-thought solutions per problem, each
with its finish reason, extracted final answer, confidence and perplexity under the policy.

Confidence and perplexity feed the DPO weight (w = W + (1 − c) + PPL/Z, §2.5) and the
hard-negative filter (c ≥ 0.5, §2.4), so they are computed the same way for sampled
candidates and for ingested external pools: by scoring the completion text under the
policy with one teacher-forced forward pass (`score_completions`). Re-scoring from text
(rather than reusing the sampled token ids) is what makes external completions, which
come without ids, comparable with our own.

- perplexity = exp(mean NLL of the completion tokens given the prompt);
- confidence c = sigmoid(10·(p̄ − 0.5)), p̄ = mean probability of the tokens covering the
  final-answer span; None when no answer was found (or its text could not be located).

External pools (the paper's ~600K numina trajectories, §3.3) are read as a stream of shards
(`iter_external_pool`): a JSONL file line by line, Parquet batch by batch, a hub dataset with
`streaming=True`, so memory stays O(shard size) and a killed run resumes at a shard. Their
confidence and perplexity come from one of two places, `ExternalPoolConfig.scores`, which every
`ExternalShard.scores` repeats: `policy` re-scores the text as above (comparable with sampled
candidates), `file` takes the record's own `confidence` / `perplexity` fields (no model needed;
only as comparable as whoever computed them).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd

from hardneg.data import iter_jsonl, jsonl_line_problem, safe_text
from hardneg.generation import SamplingParams
from hardneg.grading import GradingConfig, extract_answer, grade_batch, math_reference_answer
from hardneg.engines import EngineConfig
from hardneg.inject import InjectPoolConfig
from hardneg.prompts import training_prompt

PROBLEM_COLUMNS = ("problem_id", "question", "reference_answer", "source")
CANDIDATE_COLUMNS = [
    "candidate_id",
    "problem_id",
    "family",
    "seed",
    "text",
    "finish_reason",
    "answer",
    "confidence",
    "perplexity",
    "correct",
    "n_tokens",
]
FINISH_EXTERNAL = "external"
"""finish_reason of an ingested completion whose source did not say how it ended."""


POOL_SOURCES = ("policy", "inject", "external")


@dataclass
class PoolConfig:
    """Where the candidate pool comes from, and how it is sampled and scored (defaults: SPEC §2.3)."""

    source: str = "policy"
    """`policy`: K samples per problem from the family's policy (the fields below).
    `inject`: the offline error-injection pool built from the GSM8K and MATH train references
    (`inject`; labelled, no policy scores). `external`: a pool of completions from a file or the
    hub (`external`; the paper's numina pool), scored as `external.scores` says."""
    shard_size: int = 10_000
    """Rows per pool shard for the `inject` and `external` sources: the unit of progress and of a
    resumed build (finished shards are kept as Parquet parts until the pool is stored)."""
    inject: InjectPoolConfig = field(default_factory=InjectPoolConfig)
    """The `inject` source: variants per reference, how many references, seed."""
    external: "ExternalPoolConfig" = field(default_factory=lambda: ExternalPoolConfig())
    """The `external` source: path or hub id, split, where confidence and perplexity come from."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Where `external.scores: policy` re-scores the pool: `local` (this step's device) or Ray actors
    (e.g. `{engine: ray, workers: 8, gpus_per_worker: 1}` on an 8-GPU node), shard by shard."""
    k: int = 8
    """Sampled candidates per problem."""
    temperature: float = 0.7
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_new_tokens_gsm8k: int = 512
    """Generation cap for problems whose `source` is gsm8k."""
    max_new_tokens_math: int = 1024
    """Generation cap for every other source (MATH, MATH-500, external)."""
    batch_size: int = 8
    """Sequences decoded together while sampling."""
    score_batch_size: int = 4
    """Sequences per teacher-forced scoring pass (logits are batch × completion × vocab floats)."""
    num_problems: int | None = None
    """Use the first N problems (in the given order); None: all of them."""
    confidence_sharpness: float = 10.0
    """The 10 in c = sigmoid(10·(p̄ − 0.5))."""
    confidence_center: float = 0.5
    """The 0.5 in c = sigmoid(10·(p̄ − 0.5))."""

    def __post_init__(self) -> None:
        if self.source not in POOL_SOURCES:
            raise ValueError(f"PoolConfig.source must be one of {POOL_SOURCES}, got {self.source!r}")
        if self.source == "external" and self.external.path is None:
            raise ValueError("PoolConfig.source is 'external' but pool.external.path is not set")
        if self.shard_size < 1:
            raise ValueError(f"PoolConfig.shard_size must be >= 1, got {self.shard_size}")
        if self.k < 1:
            raise ValueError(f"PoolConfig.k must be >= 1, got {self.k}")
        if self.num_problems is not None and self.num_problems < 0:
            raise ValueError(f"PoolConfig.num_problems must be >= 0 or None, got {self.num_problems}")

    def max_new_tokens(self, source: str) -> int:
        return self.max_new_tokens_gsm8k if str(source).lower().startswith("gsm8k") else self.max_new_tokens_math


# ---------------------------------------------------------------- answer span


def _boxed_content_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 0, m.end() - 1
        for j in range(start, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    spans.append((start + 1, j))
                    break
    return spans


def answer_char_span(completion: str, answer: str | None) -> tuple[int, int] | None:
    """Character span of the extracted final answer inside the completion.

    The answer is looked for inside the regions the extractor reads, in its order of
    precedence ("final answer is $…$", the last \\boxed{}, the text after the last
    "he answer is"), then as the last verbatim occurrence anywhere; a number the
    extractor de-comma'd (1,000 → 1000) is matched with optional commas. None when the
    answer is None or cannot be located.
    """
    if not answer or not completion:
        return None
    answer = answer.strip()
    regions: list[tuple[int, int]] = []
    m = None
    for m in re.finditer(r"final answer is \$(.*?)\$\. I hope", completion, re.S):
        pass
    if m is not None:
        regions.append(m.span(1))
    boxed = _boxed_content_spans(completion)
    if boxed:
        regions.append(boxed[-1])
    tail = completion.rfind("he answer is")
    if tail >= 0:
        regions.append((tail, len(completion)))
    regions.append((0, len(completion)))
    patterns = [re.escape(answer)]
    if answer.endswith("\\%") and len(answer) > 2:  # `\boxed{50}\%`: the extractor appends the sign
        patterns.append(re.escape(answer[:-2]))
    if re.fullmatch(r"-?\d+(\.\d+)?", answer):
        integer, _, frac = answer.partition(".")
        digits = ",?".join(re.escape(c) for c in integer)
        patterns.append(digits + (r"\." + frac if frac else ""))
    for pattern in patterns:
        for lo, hi in regions:
            hits = list(re.finditer(pattern, completion[lo:hi]))
            if hits:
                s, e = hits[-1].span()
                return lo + s, lo + e
    return None


# ---------------------------------------------------------------- scoring


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def confidence_from_probs(probs: Sequence[float], sharpness: float = 10.0, center: float = 0.5) -> float | None:
    """c = sigmoid(sharpness·(mean(probs) − center)); None for an empty span."""
    if len(probs) == 0:
        return None
    return _sigmoid(sharpness * (sum(probs) / len(probs) - center))


def _score_details(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    answer_spans: Sequence[tuple[int, int] | None],
    batch_size: int,
    sharpness: float,
    center: float,
    max_length: int | None,
) -> list[tuple[float | None, float, int]]:
    """(confidence, perplexity, n_completion_tokens) per completion."""
    import torch

    if not (len(prompts) == len(completions) == len(answer_spans)):
        raise ValueError(
            f"prompts ({len(prompts)}), completions ({len(completions)}) and answer_spans "
            f"({len(answer_spans)}) must have the same length"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_length is None:
        max_length = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    items = []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        if not isinstance(p, str) or not isinstance(c, str):
            raise TypeError(f"row {i}: prompt and completion must be strings")
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        enc = tokenizer(c, add_special_tokens=False, return_offsets_mapping=True)
        c_ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        if not p_ids:
            raise ValueError(f"row {i}: the prompt tokenizes to nothing")
        if max_length is not None and len(p_ids) + len(c_ids) > max_length:
            # Score what fits in the context window; an answer past the cut gets no confidence.
            keep = max(max_length - len(p_ids), 0)
            c_ids, offsets = c_ids[:keep], offsets[:keep]
        items.append((p_ids, c_ids, offsets))

    device = next(model.parameters()).device
    out: list[tuple[float | None, float, int] | None] = [None] * len(items)
    for i, (_, c_ids, _) in enumerate(items):
        if not c_ids:
            out[i] = (None, float("nan"), 0)
    order = sorted((i for i in range(len(items)) if out[i] is None), key=lambda i: -sum(map(len, items[i][:2])))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                seqs = [items[i][0] + items[i][1] for i in idx]
                width = max(len(s) for s in seqs)
                keep = max(len(items[i][1]) for i in idx) + 1
                pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, s in enumerate(seqs):  # left padding: every completion ends at column width-1
                    ids[r, width - len(s) :] = torch.tensor(s)
                    mask[r, width - len(s) :] = 1
                # Positions must count real tokens only, or left padding would shift them.
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                inputs = dict(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device), use_cache=False)
                try:
                    # Only the completion's columns: batch × seq × vocab floats is the memory peak.
                    logits = model(**inputs, logits_to_keep=keep).logits
                except TypeError:  # a model class without `logits_to_keep`
                    logits = model(**inputs).logits[:, -keep:]
                for r, i in enumerate(idx):
                    c_ids, offsets = items[i][1], items[i][2]
                    n = len(c_ids)
                    # Kept column k is sequence position width-keep+k; token t of the completion
                    # (position width-n+t) is predicted by the column before it.
                    rows = logits[r, keep - n - 1 : keep - 1].float().log_softmax(-1)
                    target = torch.tensor(c_ids, device=rows.device).unsqueeze(-1)
                    logp = rows.gather(-1, target).squeeze(-1).double().cpu()
                    ppl = math.exp(float(-logp.mean()))
                    conf = None
                    span = answer_spans[i]
                    if span is not None:
                        lo, hi = span
                        probs = [math.exp(float(logp[t])) for t, (s, e) in enumerate(offsets) if s < hi and e > lo]
                        conf = confidence_from_probs(probs, sharpness, center)
                    out[i] = (conf, ppl, n)
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def score_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    answer_spans: Sequence[tuple[int, int] | None],
    batch_size: int = 4,
    sharpness: float = 10.0,
    center: float = 0.5,
    max_length: int | None = None,
) -> list[tuple[float | None, float]]:
    """(confidence, perplexity) of each completion given its prompt, under `model`.

    perplexity = exp(mean NLL of the completion's tokens); NaN for an empty completion.
    confidence = sigmoid(sharpness·(p̄ − center)), p̄ the mean probability of the tokens
    overlapping the answer's character span; None when the span is None or covers no token.
    Completions longer than the context (`max_length`, default the model's
    max_position_embeddings) are scored on the part that fits.
    """
    details = _score_details(model, tokenizer, prompts, completions, answer_spans, batch_size, sharpness, center, max_length)
    return [(c, p) for c, p, _ in details]


# ---------------------------------------------------------------- sampling


def _check_problems(problems: pd.DataFrame, required: Sequence[str] = PROBLEM_COLUMNS) -> None:
    missing = [c for c in required if c not in problems.columns]
    if missing:
        raise ValueError(f"problems is missing column(s) {missing}; has {list(problems.columns)}")
    for pos, (pid, q) in enumerate(zip(problems["problem_id"], problems["question"])):
        if pid is None or (isinstance(pid, float) and math.isnan(pid)) or str(pid) == "":
            raise ValueError(f"problems row {pos}: empty problem_id")
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"problems row {pos} (problem_id={pid}): question is empty or not a string")
    dup = problems["problem_id"].astype(str).duplicated()
    if dup.any():
        raise ValueError(f"problems: duplicate problem_id {problems['problem_id'][dup].iloc[0]!r}")


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _correct_batch(completions: Sequence[str], references: Sequence[Any]) -> list[bool | None]:
    """Protocol correctness of each completion's final answer; None where there is no reference.
    One `grade_batch` call so undecided pairs share bounded SymPy round trips; Math-Verify
    is skipped (the pool needs the protocol verdict only)."""
    idx = [i for i, r in enumerate(references) if not _is_missing(r)]
    grades = grade_batch([(completions[i], str(references[i])) for i in idx], GradingConfig(math_verify=False))
    out: list[bool | None] = [None] * len(completions)
    for i, g in zip(idx, grades):
        out[i] = bool(g.correct)
    return out


def sample_candidates(
    problems: pd.DataFrame,
    backend: Any,
    tokenizer: Any,
    family: str,
    seed: int,
    config: PoolConfig | None = None,
    prompt_for: Callable[[Any, str], str] = training_prompt,
    progress: bool | Callable = True,
    scorer: Any = None,
) -> pd.DataFrame:
    """Sample `config.k` candidates per problem and score them: rows for the `candidates` table.

    problems: DataFrame with problem_id, question, reference_answer, source.
    backend: a GenerationBackend; its `.model` scores the completions unless `scorer` (an HF
    causal LM, e.g. when sampling with vLLM) is given.
    prompt_for(tokenizer, question) renders the prompt (default: the SFT chat prompt).
    candidate_id = f"{family}:{seed}:{problem_id}:{k}", k = 0..K-1: stable across re-runs.
    """
    config = config or PoolConfig()
    _check_problems(problems)
    if config.num_problems is not None:
        problems = problems.head(config.num_problems)
    problems = problems.reset_index(drop=True)
    model = scorer if scorer is not None else getattr(backend, "model", None)
    if model is None:
        raise ValueError("sample_candidates needs an HF model to score with: pass scorer= for this backend")
    prompts = [prompt_for(tokenizer, q) for q in problems["question"]]
    caps = [config.max_new_tokens(s) for s in problems["source"]]

    texts: list[list[Any]] = [[] for _ in range(len(problems))]
    for cap in sorted(set(caps)):
        rows = [i for i, c in enumerate(caps) if c == cap]
        params = SamplingParams(
            max_new_tokens=cap,
            temperature=config.temperature,
            top_p=config.top_p,
            n=config.k,
            seed=int(seed),
            batch_size=config.batch_size,
        )
        gens = backend.generate([prompts[i] for i in rows], params, progress=progress)
        for g in gens:
            texts[rows[g.prompt_index]].append(g)

    flat = [(i, g) for i in range(len(problems)) for g in sorted(texts[i], key=lambda g: g.sample_index)]
    answers = [extract_answer(g.text) for _, g in flat]
    spans = [answer_char_span(g.text, a) for (_, g), a in zip(flat, answers)]
    scores = score_completions(
        model,
        tokenizer,
        [prompts[i] for i, _ in flat],
        [g.text for _, g in flat],
        spans,
        batch_size=config.score_batch_size,
        sharpness=config.confidence_sharpness,
        center=config.confidence_center,
    )
    correct = _correct_batch([g.text for _, g in flat], [problems.at[i, "reference_answer"] for i, _ in flat])
    out = []
    for (i, g), answer, (conf, ppl), ok in zip(flat, answers, scores, correct):
        pid = str(problems.at[i, "problem_id"])
        out.append(
            {
                "candidate_id": f"{family}:{seed}:{pid}:{g.sample_index}",
                "problem_id": pid,
                "family": family,
                "seed": int(seed),
                "text": g.text,
                "finish_reason": g.finish_reason,
                "answer": answer,
                "confidence": conf,
                "perplexity": ppl,
                "correct": ok,
                "n_tokens": g.n_tokens,
            }
        )
    return _frame(out, CANDIDATE_COLUMNS)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame whose text columns keep None for "missing" (pandas 3 would
    otherwise infer its `str` dtype and turn None into NaN); float columns hold NaN."""
    df = pd.DataFrame(rows, columns=columns)
    for col in ("answer", "reference_answer", "reference_solution", "text", "finish_reason"):
        if col in df.columns:
            df[col] = pd.Series([v if isinstance(v, str) else None for v in df[col]], index=df.index, dtype=object)
    return df


# ---------------------------------------------------------------- external pools

QUESTION_FIELDS = ("question", "problem", "query")
"""Where a record's question is looked for, in order (the first non-empty string wins)."""
COMPLETION_FIELDS = ("completion", "generation", "generations", "response")
"""Where a record's completion(s) are looked for, in order: a string or a list of strings."""
EXTERNAL_COLUMNS = CANDIDATE_COLUMNS + ["question", "reference_answer", "reference_solution"]
"""Columns of an external shard's candidates: the `candidates` table's, plus what the caller
needs to register the pool's own problems."""
QUARANTINE_COLUMNS = ["source", "line_no", "raw", "reason"]
SCORE_MODES = ("policy", "file")
FINISH_REASONS = ("eos", "length", "stop")


@dataclass
class ExternalPoolConfig:
    """An external candidate pool (SPEC §2.3; the paper's numina pool, §3.3) and how it is scored."""

    path: str | None = None
    """A JSONL file (`.jsonl`/`.json`, or any existing file), Parquet (a `.parquet` file, or a
    folder whose `*.parquet` parts, searched recursively, are read in path order) or a hub dataset
    id (e.g. `HuggingFaceH4/numina-deepseek-r1-qwen-7b`, streamed). None: no external pool."""
    split: str = "train"
    """The split of a hub dataset (ignored for files)."""
    scores: str = "policy"
    """`policy`: confidence and perplexity re-scored under the policy by teacher forcing, in
    batches, on the model's device (a GPU when there). `file`: taken from each record's own
    `confidence` (in [0, 1], or null for "no answer found") and `perplexity` (finite, > 0) fields,
    `n_tokens` too when present; no model is needed, and a record without valid scores is
    quarantined naming the field."""
    limit: int | None = None
    """Keep the first N completions (valid ones, in source order); None: all."""

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = str(self.path)
            if not self.path.strip():
                raise ValueError("ExternalPoolConfig.path must be a file, folder or hub dataset id, or None; got ''")
        if not isinstance(self.split, str) or not self.split.strip():
            raise ValueError(f"ExternalPoolConfig.split must be a non-empty string, got {self.split!r}")
        if self.scores not in SCORE_MODES:
            raise ValueError(f"ExternalPoolConfig.scores must be one of {SCORE_MODES}, got {self.scores!r}")
        limit = self.limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"ExternalPoolConfig.limit must be an integer >= 0 or None, got {self.limit!r}")


@dataclass(frozen=True, eq=False)
class ExternalShard:
    """One shard of an external pool: the candidates of `records` consecutive source records."""

    index: int
    """0-based; shard i covers source records i·shard_size+1 … (i+1)·shard_size."""
    candidates: pd.DataFrame
    """EXTERNAL_COLUMNS rows, scored and graded."""
    quarantine: pd.DataFrame
    """(source, line_no, raw, reason) of this shard's rejected records."""
    records: int
    """Source records this shard read (shard_size, fewer for the last shard or at the limit)."""
    scores: str
    """Where confidence and perplexity came from: `policy` (re-scored) or `file`."""


def pool_source_kind(path: str) -> str:
    """`jsonl`, `parquet` or `hub`: how `ExternalPoolConfig.path` is read."""
    p = Path(path)
    if p.is_dir():
        if not any(p.rglob("*.parquet")):
            raise ValueError(f"external pool folder {path!r} holds no .parquet files")
        return "parquet"
    if p.suffix in (".parquet", ".jsonl", ".json"):
        if not p.exists():
            raise FileNotFoundError(f"external pool {path!r} does not exist")
        return "parquet" if p.suffix == ".parquet" else "jsonl"
    return "jsonl" if p.exists() else "hub"


def _quarantine_row(source: str, line_no: int, raw: Any, reason: str) -> dict:
    raw = raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)
    return {
        "source": safe_text(source), "line_no": line_no, "raw": safe_text(raw[:10_000]), "reason": safe_text(reason)
    }


def _first(obj: dict, fields: Sequence[str]) -> tuple[str | None, Any]:
    """(field, value) of the first of `fields` present with a non-null value."""
    for f in fields:
        if obj.get(f) is not None:
            return f, obj[f]
    return None, None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite_positive(v: Any) -> bool:
    try:
        return _is_number(v) and math.isfinite(float(v)) and v > 0
    except OverflowError:  # a 400-digit JSON integer
        return False


def _per_completion(obj: dict, field: str, n: int) -> tuple[bool, list[Any] | None]:
    """(present, one value per completion) of a record's `field`: a scalar for a record with one
    completion, a list of `n` for a record with `n`; values None when the shape is wrong."""
    if field not in obj:
        return False, None
    v = obj[field]
    if isinstance(v, list):
        return True, (v if len(v) == n else None)
    return True, ([v] if n == 1 else None)


def _file_scores(obj: dict, n: int) -> tuple[list[str], list[tuple[float | None, float, int | None]]]:
    """Problems with a record's own scores (scores: file), and the (confidence, perplexity,
    n_tokens) of each of its `n` completions when there are none."""
    problems = []
    shape = "a number" if n == 1 else f"a list of {n} numbers"
    has_conf, confs = _per_completion(obj, "confidence", n)
    has_ppl, ppls = _per_completion(obj, "perplexity", n)
    has_toks, toks = _per_completion(obj, "n_tokens", n)
    if not has_conf:
        problems.append("confidence (missing; a number in [0, 1] or null)")
    elif confs is None or not all(c is None or (_is_number(c) and 0.0 <= c <= 1.0) for c in confs):
        problems.append(f"confidence ({shape} in [0, 1] or null)")
    if not has_ppl:
        problems.append("perplexity (missing; a finite number > 0)")
    elif ppls is None or not all(_finite_positive(p) for p in ppls):
        problems.append(f"perplexity ({shape}, finite and > 0)")
    if not has_toks:
        toks = [None] * n
    elif toks is None or not all(t is None or (_is_number(t) and isinstance(t, int) and 0 <= t < 2**31) for t in toks):
        problems.append("n_tokens (an integer >= 0 or null)")  # < 2**31: the table's INTEGER
    if problems:
        return problems, []
    return [], [(None if c is None else float(c), float(p), t) for c, p, t in zip(confs, ppls, toks)]


def _pool_line_problems(obj: dict, scores: str = "policy") -> list[str]:
    """What is wrong with one external record (empty: nothing). The per-record check of every
    source (JSONL line, Parquet row, hub record); `_record_rows` reads the same fields."""
    problems = []
    for key in ("problem_id", "id"):
        if key in obj and obj[key] is not None:
            pid = obj[key]
            if isinstance(pid, bool) or not isinstance(pid, (str, int)) or str(pid).strip() == "":
                problems.append(f"{key} (string or integer)")
            break
    _, q = _first(obj, QUESTION_FIELDS)
    if not isinstance(q, str) or not q.strip():
        problems.append("question/problem/query (non-empty string)")
    _, comp = _first(obj, COMPLETION_FIELDS)
    comps = comp if isinstance(comp, list) else [comp]
    if comp is None or not comps or not all(isinstance(c, str) for c in comps):
        problems.append("completion/generation/generations/response (string or non-empty list of strings)")
    for key in ("reference_answer", "answer"):
        ref = obj.get(key)
        if isinstance(ref, bool) or (ref is not None and not isinstance(ref, (str, int, float))):
            problems.append(f"{key} (string, number or null)")
    for key in ("reference_solution", "solution"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            problems.append(f"{key} (string or null)")
    if scores == "file" and comp is not None and comps and all(isinstance(c, str) for c in comps):
        problems += _file_scores(obj, len(comps))[0]
    return problems


def _record_rows(obj: dict, scores: str, content: bool) -> list[dict]:
    """The completions of one valid record (checked by `_pool_line_problems`), one row each.

    problem_id: the record's `problem_id`, else its `id`, else "h" + 12 hex digits of the
    question's SHA-1 (hub datasets such as numina have no ids). The reference answer: the
    record's `reference_answer`, else `answer`, else the last \\boxed{} of `reference_solution` /
    `solution` (a solution without one leaves the candidate ungraded, not rejected).
    `content=False` (a skipped shard) fills only problem_id: the rest is not needed to count ids.
    """
    _, q = _first(obj, QUESTION_FIELDS)
    _, pid = _first(obj, ("problem_id", "id"))
    pid = str(pid) if pid is not None else "h" + hashlib.sha1(q.encode("utf-8")).hexdigest()[:12]
    _, comp = _first(obj, COMPLETION_FIELDS)
    comps = comp if isinstance(comp, list) else [comp]
    if not content:
        return [{"problem_id": pid} for _ in comps]
    _, solution = _first(obj, ("reference_solution", "solution"))
    _, ref = _first(obj, ("reference_answer", "answer"))
    if _is_missing(ref):  # a Parquet float column holds NaN for "none"
        ref = None
    if ref is None and solution is not None:
        try:
            ref = math_reference_answer(solution)
        except ValueError:
            ref = None
    finish = obj.get("finish_reason") if obj.get("finish_reason") in FINISH_REASONS else None
    file_scores = _file_scores(obj, len(comps))[1] if scores == "file" else [None] * len(comps)
    return [
        {
            "problem_id": pid,
            "question": q,
            "completion": c,
            "reference_answer": None if ref is None else str(ref),
            "reference_solution": solution,
            "finish_reason": finish,
            "file_scores": fs,
        }
        for c, fs in zip(comps, file_scores)
    ]


class _Record:
    """One source record: its 1-based number, the parsed object (None when it could not be
    parsed) and the quarantine reason so far. `raw` is built only when the record is rejected."""

    __slots__ = ("no", "obj", "reason", "_raw")

    def __init__(self, no: int, obj: Any, reason: str | None, raw: str | None = None) -> None:
        self.no, self.obj, self.reason, self._raw = no, obj, reason, raw

    @property
    def raw(self) -> str:
        return self._raw if self._raw is not None else json.dumps(self.obj, default=str, ensure_ascii=False)


def _iter_records(config: ExternalPoolConfig, kind: str) -> Iterator[_Record]:
    """Every source record in order, one at a time (never the whole source in memory)."""
    if kind == "jsonl":
        validate = lambda obj: _pool_line_problems(obj, config.scores)  # noqa: E731
        for line in iter_jsonl(config.path):
            yield _Record(line.line_no, line.value, jsonl_line_problem(line, (), validate), line.raw)
        return
    if kind == "parquet":
        import pyarrow.parquet as pq

        root = Path(config.path)
        parts = sorted(root.rglob("*.parquet")) if root.is_dir() else [root]
        no = 0
        for part in parts:
            try:
                reader = pq.ParquetFile(part)
            except Exception as exc:  # a corrupt or truncated part: nothing in it can be read row by row
                raise ValueError(f"external pool part {str(part)!r} is not readable Parquet: {exc}") from exc
            # Batches well under a shard keep the Arrow buffers small; rows become dicts one batch at a time.
            for batch in reader.iter_batches(batch_size=1024):
                for obj in batch.to_pylist():
                    no += 1
                    yield _Record(no, obj, _record_problem(obj, config.scores))
        return
    yield from _iter_hub_records(config)


def _record_problem(obj: Any, scores: str) -> str | None:
    """The quarantine reason of a Parquet or hub record (JSONL lines: `jsonl_line_problem`)."""
    if not isinstance(obj, dict):
        return "record is not an object"
    try:
        problems = _pool_line_problems(obj, scores)
    except Exception as exc:  # noqa: BLE001 - odd data rejects the record, not the pool
        problems = [f"{type(exc).__name__}: {exc}"]
    return "missing or invalid field(s): " + ", ".join(problems) if problems else None


def _iter_hub_records(config: ExternalPoolConfig) -> Iterator[_Record]:
    """A hub dataset, streamed (`datasets.load_dataset(..., streaming=True)`): records arrive as
    they are downloaded, none is kept. Record numbers count from 1 in the split's order."""

    def unreachable(exc: Exception) -> RuntimeError:
        return RuntimeError(
            f"could not load the hub dataset {config.path!r} (split {config.split!r}): {type(exc).__name__}: {exc}. "
            "External hub pools need network access; use a JSONL or Parquet pool offline."
        )

    try:
        import datasets

        stream = iter(datasets.load_dataset(config.path, split=config.split, streaming=True))
    except Exception as exc:  # offline, unknown id, auth: all mean "cannot ingest here"
        raise unreachable(exc) from exc
    no = 0
    while True:
        try:
            obj = next(stream)
        except StopIteration:
            return
        except Exception as exc:  # a streamed dataset fails while reading, not while opening
            raise unreachable(exc) from exc
        no += 1
        yield _Record(no, obj, _record_problem(obj, config.scores))


def _external_frame(rows: list[dict]) -> pd.DataFrame:
    """EXTERNAL_COLUMNS with one dtype per column whatever the shard holds (so shards
    concatenate to what one pass gives): float scores, nullable integer n_tokens."""
    df = _frame(rows, EXTERNAL_COLUMNS)
    for col in ("confidence", "perplexity"):
        df[col] = pd.Series([float("nan") if v is None else float(v) for v in df[col]], index=df.index, dtype="float64")
    df["n_tokens"] = pd.array([None if _is_missing(v) else int(v) for v in df["n_tokens"]], dtype="Int64")
    df["seed"] = df["seed"].astype("int64")
    df["correct"] = pd.Series(list(df["correct"]), index=df.index, dtype=object)
    return df


def _score_shard(
    rows: list[dict],
    family: str,
    seed: int,
    scores: str,
    model: Any,
    tokenizer: Any,
    prompt_for: Callable[[Any, str], str],
    batch_size: int,
    sharpness: float,
    center: float,
) -> pd.DataFrame:
    """Candidate rows of one shard: answers extracted, scored (policy or file), graded."""
    completions = [r["completion"] for r in rows]
    answers = [extract_answer(c) for c in completions]
    if scores == "policy":
        prompts = [prompt_for(tokenizer, r["question"]) for r in rows]
        spans = [answer_char_span(c, a) for c, a in zip(completions, answers)]
        details = _score_details(model, tokenizer, prompts, completions, spans, batch_size, sharpness, center, None)
    else:
        details = [r["file_scores"] for r in rows]
    correct = _correct_batch(completions, [r["reference_answer"] for r in rows])
    out = []
    for r, answer, (conf, ppl, n), ok in zip(rows, answers, details, correct):
        out.append(
            {
                "candidate_id": r["candidate_id"],
                "problem_id": r["problem_id"],
                "family": family,
                "seed": int(seed),
                "text": r["completion"],
                "finish_reason": r["finish_reason"] or FINISH_EXTERNAL,
                "answer": answer,
                "confidence": conf,
                "perplexity": ppl,
                "correct": ok,
                "n_tokens": n,
                "question": r["question"],
                "reference_answer": r["reference_answer"],
                "reference_solution": r["reference_solution"],
            }
        )
    return _external_frame(out)


def iter_external_pool(
    config: ExternalPoolConfig,
    family: str,
    seed: int,
    *,
    shard_size: int,
    model: Any = None,
    tokenizer: Any = None,
    problems: pd.DataFrame | None = None,
    prompt_for: Callable[[Any, str], str] = training_prompt,
    batch_size: int = 4,
    sharpness: float = 10.0,
    center: float = 0.5,
    start_shard: int = 0,
) -> Iterator[ExternalShard]:
    """Yields one ExternalShard(index, candidates, quarantine, records, scores) per `shard_size`
    source records, reading the source as a stream: memory is O(shard_size) (plus one counter per
    problem_id), never the whole pool.

    Shard boundaries count source records — JSONL non-blank lines, Parquet rows, hub records —
    valid or not, so they depend only on the source and `shard_size`; one record may hold several
    completions (a hub `generation` list), so a shard has at most shard_size candidates only when
    each record holds one. A record that cannot be used becomes a quarantine row (source = config.path,
    line_no = its record number, raw, reason naming the field); the rest still load.

    candidate_id = f"{family}:{seed}:{problem_id}:ext{j}", j counting that problem's valid
    completions in source order. `start_shard=k` resumes after k finished shards: their records are
    read and checked only to count j and the limit (no prompt, scoring or grading), so a resumed run
    yields exactly the shards k, k+1, … of a full run, with the same ids. A shard with no valid
    record is still yielded (empty candidates), so indices are contiguous; the stream ends at the
    source's end or at `config.limit` completions.

    scores="policy" needs `model` and `tokenizer` (teacher forcing, `batch_size` sequences per
    pass, on the model's device); scores="file" needs neither. A missing reference answer is
    looked up in `problems` (problem_id, reference_answer) when given.
    """
    if config.path is None:
        raise ValueError("ExternalPoolConfig.path is not set: there is no external pool to read")
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if isinstance(start_shard, bool) or not isinstance(start_shard, int) or start_shard < 0:
        raise ValueError(f"start_shard must be an integer >= 0, got {start_shard!r}")
    if config.scores == "policy" and (model is None or tokenizer is None):
        raise ValueError("scores='policy' re-scores under the policy: pass model= and tokenizer= "
                         "(or use scores='file')")
    kind = pool_source_kind(config.path)
    refs: dict[str, Any] = {}
    if problems is not None and len(problems):
        pairs = zip(problems["problem_id"].astype(str), problems["reference_answer"])
        refs = {p: r for p, r in pairs if not _is_missing(r)}

    def score(rows: list[dict]) -> pd.DataFrame:
        return _score_shard(rows, family, seed, config.scores, model, tokenizer, prompt_for, batch_size, sharpness, center)

    return (ExternalShard(t.index, score(t.rows), t.quarantine, t.records, config.scores)
            for t in _shards(config, kind, family, seed, shard_size, start_shard, refs))


@dataclass(frozen=True, eq=False)
class ScoreTask:
    """One external shard read and checked but not yet scored: what an engine worker receives."""

    index: int
    rows: list
    quarantine: pd.DataFrame
    records: int


def iter_external_tasks(
    config: ExternalPoolConfig, family: str, seed: int, *, shard_size: int,
    problems: pd.DataFrame | None = None, start_shard: int = 0,
) -> Iterator[ScoreTask]:
    """`iter_external_pool`'s shards before scoring, for `PolicyScorer` on an engine
    (`hardneg.engines`: in-process, or Ray actors with a GPU each). Same boundaries and ids."""
    if config.path is None:
        raise ValueError("ExternalPoolConfig.path is not set: there is no external pool to read")
    refs: dict[str, Any] = {}
    if problems is not None and len(problems):
        refs = {p: r for p, r in zip(problems["problem_id"].astype(str), problems["reference_answer"]) if not _is_missing(r)}
    return _shards(config, pool_source_kind(config.path), family, seed, shard_size, start_shard, refs)


class PolicyScorer:
    """Engine worker for `scores: policy`: loads the policy once, then scores shard after shard.

    The same worker runs in-process (`local`) or in Ray actors (`ray`, `gpus_per_worker: 1` for one
    GPU each), so re-scoring a 600K pool spreads over a cluster's GPUs like verification does."""

    def __init__(self, base_path: str, adapters: Sequence[str], device: str, family: str, seed: int,
                 batch_size: int = 4, sharpness: float = 10.0, center: float = 0.5):
        from hardneg.policy import load_merged_policy

        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model, self.tokenizer = load_merged_policy(base_path, list(adapters), device)
        self.family, self.seed = family, seed
        self.batch_size, self.sharpness, self.center = batch_size, sharpness, center

    def __call__(self, task: ScoreTask) -> ExternalShard:
        scored = _score_shard(task.rows, self.family, self.seed, "policy", self.model, self.tokenizer, training_prompt,
                              self.batch_size, self.sharpness, self.center)
        return ExternalShard(task.index, scored, task.quarantine, task.records, "policy")


def _shards(
    config: ExternalPoolConfig,
    kind: str,
    family: str,
    seed: int,
    shard_size: int,
    start_shard: int,
    refs: dict[str, Any],
) -> Iterator[ScoreTask]:
    # A generator of its own, so iter_external_pool's argument checks raise at the call, not at the first next().
    counts: dict[str, int] = {}  # completions seen per problem_id: the j of the next id
    taken = 0
    records = _iter_records(config, kind)
    index = 0
    while config.limit is None or taken < config.limit:
        full = index >= start_shard
        rows, bad, n_records = [], [], 0
        for rec in itertools.islice(records, shard_size):
            n_records += 1
            if rec.reason is not None:
                if full:
                    bad.append(_quarantine_row(config.path, rec.no, rec.raw, rec.reason))
                continue
            for row in _record_rows(rec.obj, config.scores, content=full):
                pid = row["problem_id"]
                j = counts.get(pid, 0)
                counts[pid] = j + 1
                taken += 1
                if full:
                    row["candidate_id"] = f"{family}:{seed}:{pid}:ext{j}"
                    if row["reference_answer"] is None and pid in refs:
                        row["reference_answer"] = str(refs[pid])
                    rows.append(row)
                if config.limit is not None and taken >= config.limit:
                    break
            if config.limit is not None and taken >= config.limit:
                break
        if n_records == 0:
            return
        if full:
            quarantine = pd.DataFrame(bad, columns=QUARANTINE_COLUMNS)
            yield ScoreTask(index, rows, quarantine, n_records)
        index += 1


def ingest_external_pool(
    source: str,
    model: Any,
    tokenizer: Any,
    family: str,
    seed: int,
    problems: pd.DataFrame | None = None,
    prompt_for: Callable[[Any, str], str] = training_prompt,
    batch_size: int = 4,
    split: str = "train",
    limit: int | None = None,
    sharpness: float = 10.0,
    center: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole external pool at once, re-scored under the policy `model`: (candidates, quarantine).

    The shards of `iter_external_pool` (scores="policy") concatenated; see there for the record
    fields, ids and quarantine rows. Holds the whole pool in memory: at scale, iterate the shards.
    """
    config = ExternalPoolConfig(path=source, split=split, scores="policy", limit=limit)
    shards = list(
        iter_external_pool(
            config, family, seed, shard_size=4096, model=model, tokenizer=tokenizer, problems=problems,
            prompt_for=prompt_for, batch_size=batch_size, sharpness=sharpness, center=center,
        )
    )
    return concat_shards(shards)


def concat_shards(shards: Sequence[ExternalShard]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidates, quarantine) of several shards, in shard order, with the shards' dtypes."""
    cands = [s.candidates for s in shards if len(s.candidates)]
    bad = [s.quarantine for s in shards if len(s.quarantine)]
    candidates = pd.concat(cands, ignore_index=True) if cands else _external_frame([])
    quarantine = pd.concat(bad, ignore_index=True) if bad else pd.DataFrame([], columns=QUARANTINE_COLUMNS)
    return candidates, quarantine
