"""Input and output records of the verifier (SPEC §5 `hardneg verify`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .config import DIMENSIONS, VERIFIER_VERSION

__all__ = ["VerifyInput", "VerifierProfile", "StepReport", "aggregate", "ERROR_KINDS"]

# Flags that mark a step as being in error (first_error_step); other flags are notes.
ERROR_KINDS = (
    "arithmetic slip",
    "algebra slip",
    "formula error",
    "value-flow contradiction",
    "changed quantity",
    "used before computed",
    "question contradiction",
    "conclusion contradiction",
    "question ignored",
    "NLI contradiction",
    "order inversion",
    "off path",
)


@dataclass
class VerifyInput:
    """One candidate to verify. `candidate` is the solution text, or its steps as a list of
    strings (then the profile's `steps` and `first_error_step` count exactly those).
    `reference_solution`/`reference_answer` may be None."""

    id: str
    question: str
    candidate: str | list[str]
    reference_solution: Optional[str] = None
    reference_answer: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.id, int) and not isinstance(self.id, bool):
            self.id = str(self.id)
        if not isinstance(self.id, str):
            raise TypeError(f"VerifyInput.id must be a string, got {type(self.id).__name__}")
        if not isinstance(self.question, str):
            raise TypeError(f"VerifyInput {self.id!r}: field 'question' must be a string, got {type(self.question).__name__}")
        if isinstance(self.candidate, tuple):
            self.candidate = list(self.candidate)
        got = None
        if isinstance(self.candidate, list):
            bad = next((i for i, s in enumerate(self.candidate) if not isinstance(s, str)), None)
            if bad is not None:
                got = f"{type(self.candidate[bad]).__name__} at index {bad}"
        elif not isinstance(self.candidate, str):
            got = type(self.candidate).__name__
        if got is not None:
            raise TypeError(f"VerifyInput {self.id!r}: field 'candidate' must be a string or a list of strings, got {got}")
        for name in ("reference_solution", "reference_answer"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                if isinstance(v, (int, float)) and not isinstance(v, bool) and name == "reference_answer":
                    setattr(self, name, str(v))  # "reference_answer": 72 in a JSON line
                else:
                    raise TypeError(f"VerifyInput {self.id!r}: field {name!r} must be a string or null, got {type(v).__name__}")


@dataclass
class StepReport:
    text: str
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "flags": list(self.flags)}


def _round(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(float(x), 6)


@dataclass
class VerifierProfile:
    """The six-dimensional error profile of one candidate (all in [0,1], higher = worse;
    None = not computable, e.g. no reference)."""

    id: str
    d_semantic: Optional[float] = None
    d_structure: Optional[float] = None
    d_order: Optional[float] = None
    d_logic: Optional[float] = None
    d_numeric: Optional[float] = None
    d_answer: Optional[float] = None
    wrongness: Optional[float] = None
    absurdity: Optional[float] = None
    first_error_step: Optional[int] = None
    steps: list[StepReport] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    formula_error: bool = False
    verifier_version: str = VERIFIER_VERSION
    signals: dict[str, Any] = field(default_factory=dict)
    """Fast-channel diagnostics (coverage, redundancy, drift, raw semantic distance); not in to_dict()."""

    def dims(self) -> dict[str, Optional[float]]:
        return {d: getattr(self, d) for d in DIMENSIONS}

    def to_dict(self) -> dict:
        """Exactly the SPEC §5 output fields, plus `formula_error`."""
        return {
            "id": self.id,
            "d_semantic": _round(self.d_semantic),
            "d_structure": _round(self.d_structure),
            "d_order": _round(self.d_order),
            "d_logic": _round(self.d_logic),
            "d_numeric": _round(self.d_numeric),
            "d_answer": _round(self.d_answer),
            "wrongness": _round(self.wrongness),
            "absurdity": _round(self.absurdity),
            "first_error_step": self.first_error_step,
            "steps": [s.to_dict() for s in self.steps],
            "channels": list(self.channels),
            "elapsed_ms": round(float(self.elapsed_ms), 3),
            "formula_error": bool(self.formula_error),
        }


def aggregate(dims: dict[str, Optional[float]], weights: dict[str, float]) -> Optional[float]:
    """Σ w·d / Σ w over the dimensions that are not None (weights renormalize)."""
    num = 0.0
    den = 0.0
    for name, w in weights.items():
        v = dims.get(name)
        if v is None or w <= 0:
            continue
        num += w * v
        den += w
    return None if den == 0 else num / den
