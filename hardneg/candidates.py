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
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from hardneg.data import read_jsonl
from hardneg.generation import SamplingParams
from hardneg.grading import GradingConfig, extract_answer, grade_batch, math_reference_answer
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


@dataclass
class PoolConfig:
    """How the candidate pool is sampled and scored (defaults: SPEC §2.3)."""

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
COMPLETION_FIELDS = ("completion", "generation", "response")


def _quarantine_row(source: str, line_no: int, raw: Any, reason: str) -> dict:
    raw = raw if isinstance(raw, str) else json.dumps(raw, default=str)
    return {"source": source, "line_no": line_no, "raw": raw[:10_000], "reason": reason}


def _pool_line_problems(obj: dict) -> list[str]:
    problems = []
    pid = obj.get("problem_id")
    if isinstance(pid, bool) or not isinstance(pid, (str, int)) or str(pid).strip() == "":
        problems.append("problem_id (string or integer)")
    for key in ("question", "completion"):
        if not isinstance(obj.get(key), str) or (key == "question" and not obj[key].strip()):
            problems.append(f"{key} (string)")
    ref = obj.get("reference_answer")
    if ref is not None and not isinstance(ref, (str, int, float)):
        problems.append("reference_answer (string, number or null)")
    return problems


def _read_pool_jsonl(path: Path) -> tuple[list[dict], list[dict]]:
    """JSONL rows {problem_id, question, completion, reference_answer?, finish_reason?}."""
    objs, bad = read_jsonl(path, (), str(path), validate=_pool_line_problems)
    rows = [
        {
            "problem_id": str(obj["problem_id"]),
            "question": obj["question"],
            "completion": obj["completion"],
            "reference_answer": None if obj.get("reference_answer") is None else str(obj["reference_answer"]),
            "reference_solution": obj.get("reference_solution"),
            "finish_reason": obj.get("finish_reason") if obj.get("finish_reason") in ("eos", "length", "stop") else None,
            "line_no": obj["_line_no"],
        }
        for obj in objs
    ]
    return rows, bad


def _read_pool_hf(dataset_id: str, split: str) -> tuple[list[dict], list[dict]]:
    """A hub dataset such as HuggingFaceH4/numina-deepseek-r1-qwen-7b (fields: problem,
    solution, messages, generation, distilabel_metadata, model_name). `generation` may
    hold one string or a list; the reference answer is the last \\boxed{} of `solution`."""
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset_id, split=split)
    except Exception as exc:  # offline, unknown id, auth: all mean "cannot ingest here"
        raise RuntimeError(
            f"could not load the hub dataset {dataset_id!r} (split {split!r}): {type(exc).__name__}: {exc}. "
            "External hub pools need network access; use a JSONL pool offline."
        ) from exc
    rows, bad = [], []
    for idx, rec in enumerate(ds):
        line_no = idx + 1
        q = next((rec[f] for f in QUESTION_FIELDS if isinstance(rec.get(f), str) and rec[f].strip()), None)
        comp = next((rec[f] for f in COMPLETION_FIELDS if rec.get(f) is not None), None)
        comps = comp if isinstance(comp, list) else [comp]
        if q is None or comp is None or not all(isinstance(c, str) for c in comps):
            bad.append(_quarantine_row(f"{dataset_id}:{split}", line_no, rec, "no question/problem or no string completion/generation"))
            continue
        solution = rec.get("solution") if isinstance(rec.get("solution"), str) else None
        ref = rec.get("answer") if isinstance(rec.get("answer"), str) else None
        if ref is None and solution:
            try:
                ref = math_reference_answer(solution)
            except ValueError:
                ref = None  # kept: the candidate is still a candidate, just ungraded
        pid = rec.get("problem_id") or rec.get("id") or "h" + hashlib.sha1(q.encode("utf-8")).hexdigest()[:12]
        for c in comps:
            rows.append(
                {
                    "problem_id": str(pid),
                    "question": q,
                    "completion": c,
                    "reference_answer": ref,
                    "reference_solution": solution,
                    "finish_reason": None,
                    "line_no": line_no,
                }
            )
    return rows, bad


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
    """Candidate rows from an external pool, re-scored under the policy `model`.

    source: a JSONL path (fields problem_id, question, completion, optional
    reference_answer / reference_solution / finish_reason) or a hub dataset id.
    A malformed line becomes a quarantine row (source, line_no, raw, reason); the rest
    still loads. A missing reference_answer is looked up in `problems` by problem_id.
    Returns (candidates, quarantine). Candidate ids are f"{family}:{seed}:{problem_id}:ext{j}",
    j counting that problem's completions in file order; rows also carry question,
    reference_answer and reference_solution so the caller can register the problems.
    finish_reason is the line's own (eos/length/stop) or 'external' when it gave none.
    """
    path = Path(source)
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"external pool {source!r} does not exist")
        rows, bad = _read_pool_jsonl(path)
    else:
        rows, bad = _read_pool_hf(source, split)
    if limit is not None:
        rows = rows[:limit]
    refs = {}
    if problems is not None and len(problems):
        refs = dict(zip(problems["problem_id"].astype(str), problems["reference_answer"]))
    counts: dict[str, int] = {}
    prompts, answers, spans = [], [], []
    for r in rows:
        if r["reference_answer"] is None and r["problem_id"] in refs and not _is_missing(refs[r["problem_id"]]):
            r["reference_answer"] = str(refs[r["problem_id"]])
        j = counts.get(r["problem_id"], 0)
        counts[r["problem_id"]] = j + 1
        r["candidate_id"] = f"{family}:{seed}:{r['problem_id']}:ext{j}"
        prompts.append(prompt_for(tokenizer, r["question"]))
        answers.append(extract_answer(r["completion"]))
        spans.append(answer_char_span(r["completion"], answers[-1]))
    scores = _score_details(model, tokenizer, prompts, [r["completion"] for r in rows], spans, batch_size, sharpness, center, None)
    correct = _correct_batch([r["completion"] for r in rows], [r["reference_answer"] for r in rows])
    out = []
    for r, answer, (conf, ppl, n), ok in zip(rows, answers, scores, correct):
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
    columns = CANDIDATE_COLUMNS + ["question", "reference_answer", "reference_solution"]
    quarantine = pd.DataFrame(bad, columns=["source", "line_no", "raw", "reason"])
    return _frame(out, columns), quarantine
