"""MathVerifier (SPEC §2.2, paper §3.2): six-dimensional error profiles of math solutions.

    from hardneg.verifier import MathVerifier, VerifierConfig, VerifyInput
    verifier = MathVerifier.from_config(VerifierConfig(use_nli=False))
    [profile] = verifier.verify_batch([VerifyInput("1", question, candidate, ref_solution, ref_answer)])
    profile.to_dict()   # SPEC §5 output row (+ formula_error)

Modules: steps (segmentation), arith (equations, exact arithmetic), algebra (identities, equations
and derivations in symbols), symbolic (SymPy in the bounded worker), checks (value flow, formula errors,
word-problem consistency), facts (number facts and conics stated in words), inequalities (bounds and
ranges), series (sums written with an ellipsis), alignment (d2, d3), embedding / nli (the two models,
cached), core (the pipeline), calibration (d1 constants).
"""

from .config import DIMENSIONS, VERIFIER_VERSION, VerifierConfig, default_embedding_model
from .core import MathVerifier
from .embedding import ModelLoadError, SentenceEmbedder
from .nli import NLIScorer
from .profile import StepReport, VerifierProfile, VerifyInput, aggregate
from .steps import split_steps

__all__ = [
    "MathVerifier",
    "VerifierConfig",
    "VerifyInput",
    "VerifierProfile",
    "StepReport",
    "VERIFIER_VERSION",
    "DIMENSIONS",
    "split_steps",
    "SentenceEmbedder",
    "NLIScorer",
    "ModelLoadError",
    "aggregate",
    "default_embedding_model",
]
