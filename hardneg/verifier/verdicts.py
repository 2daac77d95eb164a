"""Remembered verdicts of the bounded SymPy worker, keyed by exactly what it was asked.

Why: every question the verifier sends to the worker (evaluate these equation sides, is this an
identity, are these two answers equal) has an answer that depends only on the question and the
verifier version: symbolic.py draws its sample points from the sources, and grading settles
timeouts deterministically. A re-verification after a changed threshold asks the same questions
again. Without a memo it waits for the worker to start (importing SymPy and Math-Verify, 1.5-2 s)
and pays a round trip per call. With a shard's verdicts from the persistent cache
(`hardneg.embedding_cache.VerdictStore`), it does not call the worker at all.

A timeout is remembered with the deadline it overran (`TimedOut`): the same question under that
deadline or a shorter one is answered "timeout" again without waiting, a longer deadline asks again.
Why: a few references hold a step SymPy cannot settle in time (Pascal's identity with symbols in
counting_and_probability/129); each of their ~40 injected variants asks it, and each ask waited
the whole deadline and then restarted the worker (~2.4 s). On the `scale` pool three such shards
took 87-315 s against ~10 s for the others, on a re-verification that asked nothing else. A
remembered timeout also makes a re-run reproduce the first run's profile, whatever the box's load
is now. A failed call (the worker could not start) is never remembered.
Values are stored as JSON text (floats round-trip exactly), so a cache file holds no pickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .config import VERIFIER_VERSION
from .embedding import text_key

__all__ = ["VerdictMemo", "MISSING", "TimedOut"]

MISSING = object()
_TIMED_OUT = "timed_out_after_s"  # the one key of a stored timeout (no worker answer is a dict)


@dataclass(frozen=True)
class TimedOut:
    """A question that overran a deadline of `seconds`."""

    seconds: float


class VerdictMemo:
    """Question key -> verdict, answering from `known` (a shard's stored verdicts) and what this
    process computed. Everything looked up or added is kept in `used`: what the shard stores back."""

    def __init__(self, known: Optional[Mapping[bytes, str]] = None, max_entries: int = 200_000):
        self.known = dict(known or {})
        self.used: dict[bytes, str] = {}
        self.max_entries = max_entries
        """A verifier that lives for a whole pool (no shards) forgets its verdicts past this many."""
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(question: str, arg: Any) -> bytes:
        """The key of one question: its name and its JSON-encoded argument, under this verifier version."""
        return text_key("verdict", VERIFIER_VERSION, question, json.dumps(arg, sort_keys=True, ensure_ascii=False))

    def get(self, key: bytes, deadline: Optional[float] = None) -> Any:
        """The remembered verdict, or MISSING. A remembered timeout is a `TimedOut`, served only to a
        caller whose `deadline` is no longer than the one it overran (a longer one deserves a new try)."""
        text = self.used.get(key)
        if text is None:
            text = self.known.get(key)
        if text is None:
            return MISSING
        try:
            value = _decode(json.loads(text))
        except (ValueError, TypeError):  # a damaged cache entry costs one worker call, not the run
            return MISSING
        if isinstance(value, TimedOut) and (deadline is None or deadline > value.seconds):
            return MISSING
        self.hits += 1
        self.used[key] = text
        return value

    def put(self, key: bytes, value: Any) -> None:
        self.misses += 1
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):  # not plain data: answer it again next time rather than store a guess
            return
        if len(self.used) >= self.max_entries:
            self.used.clear()
        self.used[key] = text

    def put_timeout(self, key: bytes, deadline: float) -> None:
        """Remember that the question overran `deadline` seconds."""
        self.put(key, {_TIMED_OUT: float(deadline)})


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_TIMED_OUT}:
        return TimedOut(float(value[_TIMED_OUT]))
    # the worker returns lists of tuples; JSON gives lists back
    if isinstance(value, list):
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return value
