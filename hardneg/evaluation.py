"""The evaluation runner (SPEC §2.6): the Step-DPO `eval_math.py` protocol on GSM8K / MATH.

Greedy decoding of the byte-exact `qwen2-boxed` prompt, stop at EOS / `<|im_end|>`, answer
extraction and equivalence from `hardneg.grading`, Math-Verify's verdict as a second
column. The runner returns per-sample rows (table `eval_samples`) and accuracy rows (table
`eval_summary`), MATH also broken down per subject and per level. The partition columns
(run_id, family, seed, strategy) are the caller's to add: this module knows nothing about
training runs.

`summarize` is a pure function of the sample rows, so accuracies are always recomputable
from what was stored, and testable without a model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from hardneg.generation import SamplingParams
from hardneg.grading import grade_batch
from hardneg.prompts import eval_prompt

BENCHMARKS = ("gsm8k", "math", "math500")
ITEM_COLUMNS = ("item_id", "question", "reference")
SAMPLE_COLUMNS = [
    "benchmark",
    "item_id",
    "prompt",
    "completion",
    "extracted",
    "reference",
    "correct",
    "correct_math_verify",
    "subject",
    "level",
    "finish_reason",
    "n_tokens",
]
SUMMARY_COLUMNS = ["benchmark", "n", "accuracy", "accuracy_math_verify"]


@dataclass
class BenchmarkSpec:
    """One benchmark to evaluate."""

    name: str
    """'gsm8k', 'math' or 'math500'."""
    n: int | None = None
    """Evaluate the first n items (in file order); None: the whole test set."""
    max_new_tokens: int = 2048
    """Generation cap for this benchmark."""

    def __post_init__(self) -> None:
        if self.name not in BENCHMARKS:
            raise ValueError(f"BenchmarkSpec.name must be one of {BENCHMARKS}, got {self.name!r}")
        if self.n is not None and self.n < 0:
            raise ValueError(f"BenchmarkSpec.n must be >= 0 or None, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(f"BenchmarkSpec.max_new_tokens must be >= 1, got {self.max_new_tokens}")


def _default_benchmarks() -> list[BenchmarkSpec]:
    return [BenchmarkSpec("gsm8k"), BenchmarkSpec("math")]


@dataclass
class EvalConfig:
    """How models are evaluated (defaults: SPEC §2.6, the Step-DPO protocol)."""

    benchmarks: list[BenchmarkSpec] = field(default_factory=_default_benchmarks)
    """Benchmarks to run, each with its item count and generation cap."""
    max_new_tokens: int = 2048
    """Generation cap for a benchmark that is not listed in `benchmarks`."""
    batch_size: int = 8
    """Sequences decoded together."""
    stop: list[str] = field(default_factory=list)
    """Extra stop strings; EOS and `<|im_end|>` always stop."""
    breakdown: bool = True
    """Add per-subject and per-level accuracy rows (for items that have them: MATH)."""

    def spec(self, benchmark: str) -> BenchmarkSpec:
        for b in self.benchmarks:
            if b.name == benchmark:
                return b
        return BenchmarkSpec(benchmark, None, self.max_new_tokens)


def _level_label(level: Any) -> str | None:
    """'Level 3' (MATH) and 3 (MATH-500) both become '3'."""
    if level is None or (isinstance(level, float) and math.isnan(level)):
        return None
    text = str(level).strip()
    m = re.fullmatch(r"(?i)level\s*(\S+)", text)
    return m.group(1) if m else text


def _optional(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def evaluate(
    backend: Any,
    items: pd.DataFrame,
    benchmark: str,
    config: EvalConfig | None = None,
    progress: bool | Callable = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Greedy-decode every item with the qwen2-boxed prompt and grade it.

    items: DataFrame with item_id, question, reference (the gold final answer) and
    optionally subject, level. Returns (samples, summary): samples has the `eval_samples`
    columns (plus finish_reason, n_tokens) in item order; summary has one overall row and,
    for items with subject/level, rows named f"{benchmark}/subject=…" and f"{benchmark}/level=…".
    """
    config = config or EvalConfig()
    missing = [c for c in ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise ValueError(f"items is missing column(s) {missing}; has {list(items.columns)}")
    spec = config.spec(benchmark)
    if spec.n is not None:
        items = items.head(spec.n)
    items = items.reset_index(drop=True)
    for pos, (iid, q, ref) in enumerate(zip(items["item_id"], items["question"], items["reference"])):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"{benchmark} item {pos} (item_id={iid}): question is empty or not a string")
        if _optional(ref) is None:
            raise ValueError(f"{benchmark} item {pos} (item_id={iid}): reference answer is missing")
    prompts = [eval_prompt(q) for q in items["question"]]
    params = SamplingParams(max_new_tokens=spec.max_new_tokens, temperature=0.0, n=1, batch_size=config.batch_size, stop=list(config.stop))
    gens = backend.generate(prompts, params, progress=progress)
    grades = grade_batch([(g.text, str(ref)) for g, ref in zip(gens, items["reference"])])
    subjects = items["subject"] if "subject" in items.columns else [None] * len(items)
    levels = items["level"] if "level" in items.columns else [None] * len(items)
    rows = []
    for iid, prompt, g, ref, gr, subj, lvl in zip(items["item_id"], prompts, gens, items["reference"], grades, subjects, levels):
        rows.append(
            {
                "benchmark": benchmark,
                "item_id": str(iid),
                "prompt": prompt,
                "completion": g.text,
                "extracted": gr.extracted,
                "reference": str(ref),
                "correct": bool(gr.correct),
                "correct_math_verify": None if gr.correct_math_verify is None else bool(gr.correct_math_verify),
                "subject": _optional(subj),
                "level": _level_label(lvl),
                "finish_reason": g.finish_reason,
                "n_tokens": g.n_tokens,
            }
        )
    samples = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    for col in ("extracted", "subject", "level", "correct_math_verify"):
        # Keep None for "missing" (pandas 3 would infer `str`/float and store NaN).
        samples[col] = pd.Series([r[col] for r in rows], index=samples.index, dtype=object)
    return samples, summarize(samples, benchmark, breakdown=config.breakdown)


def _accuracy_row(name: str, group: pd.DataFrame) -> dict:
    mv = [v for v in group["correct_math_verify"] if _optional(v) is not None and not pd.isna(v)]
    return {
        "benchmark": name,
        "n": int(len(group)),
        "accuracy": float(group["correct"].astype(bool).mean()) if len(group) else float("nan"),
        "accuracy_math_verify": float(sum(bool(v) for v in mv) / len(mv)) if mv else None,
    }


def summarize(samples: pd.DataFrame, benchmark: str, breakdown: bool = True) -> pd.DataFrame:
    """Accuracy rows from sample rows: overall, then per subject and per level (sorted).

    accuracy_math_verify is over the samples where Math-Verify gave a verdict; None when
    it gave none."""
    rows = [_accuracy_row(benchmark, samples)]
    if breakdown:
        for column in ("subject", "level"):
            if column not in samples.columns:
                continue
            # Compared as strings: pandas may hold a column as str (missing = NaN) or object.
            values = [None if _optional(v) is None or pd.isna(v) else str(v) for v in samples[column]]
            for value in sorted({v for v in values if v is not None}, key=_sort_key):
                mask = [v == value for v in values]
                rows.append(_accuracy_row(f"{benchmark}/{column}={value}", samples[mask]))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _sort_key(value: Any) -> tuple:
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
