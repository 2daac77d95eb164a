"""Remembered verdicts of the bounded SymPy worker, keyed by exactly what it was asked.

Why: every question the verifier sends to the worker (evaluate these equation sides, is this an
identity, are these two answers equal) has an answer that depends only on the question and the
verifier version: symbolic.py draws its sample points from the sources, and grading settles
timeouts deterministically. A re-verification after a changed threshold asks the same questions
again. Without a memo it waits for the worker to start (importing SymPy and Math-Verify, 1.5-2 s)
and pays a round trip per call. With a shard's verdicts from the persistent cache
(`hardneg.embedding_cache.VerdictStore`), it does not call the worker at all.

A timeout or a failed call is never remembered: it depends on the machine, not on the question.
Values are stored as JSON text (floats round-trip exactly), so a cache file holds no pickles.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from .config import VERIFIER_VERSION
from .embedding import text_key

__all__ = ["VerdictMemo", "MISSING"]

MISSING = object()


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

    def get(self, key: bytes) -> Any:
        """The remembered verdict, or MISSING."""
        text = self.used.get(key)
        if text is None:
            text = self.known.get(key)
        if text is None:
            return MISSING
        try:
            value = _decode(json.loads(text))
        except ValueError:  # a damaged cache entry costs one worker call, not the run
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


def _decode(value: Any) -> Any:
    # the worker returns lists of tuples; JSON gives lists back
    if isinstance(value, list):
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return value
