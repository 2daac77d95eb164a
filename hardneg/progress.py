"""Progress you can watch: done / total, rate and ETA for long loops (generation, verification,
grading), as log lines at a fixed interval and as a tqdm bar when a person is watching.

Sampling a pool or evaluating a policy runs for minutes to hours; without this the log says
nothing between "sampling 4 × 16 problems" and the end. One `ProgressReporter` serves every
consumer:

- the Dagster run log: `ProgressReporter("eval gsm8k", log=context.log.info)` writes a line
  at most every `every_s` seconds (and always at the end);
- a terminal: `bar=True` (default: when stderr is a TTY) draws a tqdm bar;
- the generation backends: a reporter is a callable `(done, total, tokens)`, the
  `ProgressCallback` signature of `hardneg.generation`, and backends call it every decode step.

ETA: from the fraction done, taken as the larger of sequences done / total and tokens made /
token budget (a backend knows the budget: sequences × max_new_tokens). Finished sequences
alone arrive in bursts (a static batch finishes together), tokens alone overestimate the
work left (most sequences stop before the cap); the larger of the two is the better guess.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

LogFn = Callable[[str], None]


def _fmt_seconds(s: float) -> str:
    s = int(round(max(s, 0)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class ProgressReporter:
    """Counts done / total (and tokens), logs `label: done/total unit, rate, ETA` every
    `every_s` seconds and at the end, and drives a tqdm bar when `bar` is true."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        log: LogFn | None = None,
        every_s: float = 20.0,
        bar: bool | None = None,
        unit: str = "seq",
        token_budget: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.total, self.log, self.every_s, self.unit = label, total, log, every_s, unit
        self.token_budget = token_budget
        self.clock = clock
        self.done = 0
        self.tokens = 0
        self.started = clock()
        self.last_log = self.started
        self.closed = False
        self.lines: list[str] = []
        self._bar_wanted = sys.stderr.isatty() if bar is None else bar
        self._bar: Any = None
        if total is not None:
            self._open_bar()

    def _open_bar(self) -> None:
        if self._bar_wanted and self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.label, unit=self.unit, dynamic_ncols=True, file=sys.stderr)

    def start(self, total: int, token_budget: int | None = None) -> None:
        """(Re)start the clock for a new loop of `total` items (a reporter may serve several)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.total, self.token_budget = total, token_budget
        self.done = self.tokens = 0
        self.started = self.last_log = self.clock()
        self.closed = False
        self._open_bar()

    # The generation backends' ProgressCallback: (sequences done, total, tokens so far).
    def __call__(self, done: int, total: int, tokens: int = 0) -> None:
        if self.total != total:
            self.total = total
        self.update(done=done, tokens=tokens)

    def update(self, done: int | None = None, advance: int = 0, tokens: int | None = None) -> None:
        """Set `done` (absolute) or add `advance`; `tokens` is the running token count."""
        previous = self.done
        self.done = done if done is not None else self.done + advance
        if tokens is not None:
            self.tokens = tokens
        if self._bar is not None:
            self._bar.update(self.done - previous)
            if self.tokens:
                self._bar.set_postfix(tok_s=f"{self.rate_tokens():.1f}", refresh=False)
        now = self.clock()
        finished = self.total is not None and self.done >= self.total
        if finished or now - self.last_log >= self.every_s:
            self.last_log = now
            self._emit()
            if finished:
                self.close()

    def elapsed(self) -> float:
        return max(self.clock() - self.started, 1e-9)

    def rate_tokens(self) -> float:
        return self.tokens / self.elapsed()

    def fraction(self) -> float:
        parts = []
        if self.total:
            parts.append(self.done / self.total)
        if self.token_budget:
            parts.append(self.tokens / self.token_budget)
        return min(max(parts, default=0.0), 1.0)

    def eta(self) -> float | None:
        """Seconds left, or None before anything measurable happened."""
        f = self.fraction()
        if f <= 0:
            return None
        return self.elapsed() * (1 - f) / f

    def message(self) -> str:
        total = "?" if self.total is None else self.total
        parts = [f"{self.label}: {self.done}/{total} {self.unit}"]
        if self.tokens:
            parts.append(f"{self.tokens} tokens, {self.rate_tokens():.1f} tokens/s")
        else:
            parts.append(f"{self.done / self.elapsed():.2f} {self.unit}/s")
        eta = self.eta()
        done = self.total is not None and self.done >= self.total
        if done:
            parts.append(f"took {_fmt_seconds(self.elapsed())}")
        else:
            parts.append(f"ETA {_fmt_seconds(eta) if eta is not None else '?'}")
        return ", ".join(parts)

    def _emit(self) -> None:
        line = self.message()
        self.lines.append(line)
        if self.log is not None:
            self.log(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.closed = True


class _Silent:
    def update(self, done: int, tokens: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Adapter:
    """What a backend drives: `update(done, tokens)` and `close()`, over a bar / callback."""

    def __init__(self, target: Any, total: int):
        self.target, self.total = target, total

    def update(self, done: int, tokens: int) -> None:
        self.target(done, self.total, tokens)

    def close(self) -> None:
        close = getattr(self.target, "close", None)
        if isinstance(self.target, ProgressReporter) and close is not None:
            close()


def as_progress(progress: Any, total: int, label: str, token_budget: int | None = None) -> Any:
    """The backends' `progress` argument made uniform: True → a tqdm bar on stderr (with
    tokens/s), False/None → nothing, a ProgressReporter → (re)started for this loop, any
    other callable → called as `(done, total, tokens)` after every step."""
    if progress is None or progress is False:
        return _Silent()
    if progress is True:
        progress = ProgressReporter(label, bar=True, log=None)
    if isinstance(progress, ProgressReporter):
        progress.start(total, token_budget)
    elif not callable(progress):
        raise TypeError(f"progress must be a bool or a callable (done, total, tokens), got {type(progress).__name__}")
    return _Adapter(progress, total)


def stderr_reporter(
    label: str, total: int | None = None, unit: str = "item", every_s: float = 20.0
) -> ProgressReporter:
    """For CLI commands (`hardneg verify`, `hardneg grade`): a tqdm bar on a TTY, else plain
    lines on stderr every `every_s` seconds (stdout stays the data)."""
    tty = sys.stderr.isatty()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return ProgressReporter(label, total=total, log=None if tty else log, bar=tty, unit=unit, every_s=every_s)
