"""Step segmentation of a chain-of-thought solution (SPEC §2.2 "Steps").

Every other part of the verifier works on steps, so this must be predictable on the
three shapes solutions come in:

- `Step k:` markers (also inline: the paper's Table 2 writes all steps on one line);
- one step per line (GSM8K references, MetaMathQA-style candidates): steps = lines;
- MATH prose: paragraphs of sentences with LaTeX, split at sentence ends.

Math must never be cut: `$...$` (within one line, or over one line break when LaTeX is around), `$$...$$`, `\\[...\\]`, `\\(...\\)`,
`\\begin{env}...\\end{env}` and GSM8K `<<a=b>>` annotations are protected spans; a
decimal point (`3.5`) is not a sentence end because a sentence end needs whitespace
after it. Every scan here is linear in the input length (a failed search for a closing
delimiter is remembered, so junk like 100 KB of `\\[` stays linear).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["split_steps", "segment", "Segmentation", "embedding_text", "STEP_MARKER_RE"]

# "Step 3:", "**Step 3.**", "## Step 3 -", "Step 3)": a step marker needs its number
# followed by a separator, so prose such as "in step 2, we" is not a marker.
STEP_MARKER_RE = re.compile(
    r"(?:^|(?<=[\s.!?:;*#]))[#*\s]{0,6}step\s{0,3}(\d{1,3})\s{0,3}(?:\*\*)?\s{0,3}[:.)\-–](?:\*\*)?",
    re.IGNORECASE,
)
_ASY_RE = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE_RE = re.compile(r"^\s*(?:####|the (?:final )?answer is|\\boxed|final answer)", re.IGNORECASE)
_ABBREVIATIONS = ("e.g.", "i.e.", "mr.", "mrs.", "ms.", "dr.", "vs.", "etc.", "approx.", "st.", "no.", "cf.")
_LATEX_HINT = re.compile(r"\\[a-zA-Z(\[]|\$\$")
_CURRENCY_AFTER = re.compile(r" ?-?\.?\d")
_BEGIN_RE = re.compile(r"\\begin\{([a-zA-Z*]{1,20})\}")


_MAX_WRAPPED_MATH = 400  # characters of a `$...$` allowed to span a line break
_OPENERS = re.compile(r"\$|\\[\[(]|\\begin\{|<<")


def _protected_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping [start, end) spans that must not be split."""
    spans: list[tuple[int, int]] = []
    failed: set[str] = set()  # closers already known to be absent after some position
    pos = 0
    latex = bool(_LATEX_HINT.search(text))
    for m in _OPENERS.finditer(text):
        i = m.start()
        if i < pos:
            continue
        c = text[i]
        closer = None
        width = 1
        if c == "$":
            if i > 0 and text[i - 1] == "\\":
                continue  # an escaped dollar sign is text
            if not latex and _CURRENCY_AFTER.match(text, i + 1):
                continue  # "$3 each ... a $20 bill": currency in plain text, not math
            if text.startswith("$$", i):
                closer, width = "$$", 2
            else:
                # inline math stays on its line — or, with LaTeX around, runs over one line break
                # (`$I=23\\cdot` / `29=667$`: MATH wraps long formulas); currency ("$5 and $3") may
                # pair up, harmless
                j = text.find("$", i + 1)
                inner = text[i + 1 : j]
                if j != -1 and ("\n" not in inner or (latex and inner.count("\n") == 1 and j - i <= _MAX_WRAPPED_MATH)):
                    spans.append((i, j + 1))
                    pos = j + 1
                continue
        elif c == "\\":
            nxt = text[i + 1]
            if nxt == "[":
                closer, width = "\\]", 2
            elif nxt == "(":
                closer, width = "\\)", 2
            else:
                b = _BEGIN_RE.match(text, i)
                if b:
                    closer, width = "\\end{" + b.group(1) + "}", b.end() - i
        else:
            closer, width = ">>", 2
        if closer is None or closer in failed:
            continue
        j = text.find(closer, i + width)
        if j == -1:
            failed.add(closer)
            continue
        spans.append((i, j + len(closer)))
        pos = j + len(closer)
    return spans


def _split_outside(text: str, spans: list[tuple[int, int]], is_cut, candidates: re.Pattern) -> list[str]:
    """Cut `text` where `is_cut(text, i)` holds, never inside a span; only the positions
    matched by `candidates` are tried (a C-speed scan instead of a Python loop per char).

    `is_cut` returns (characters kept before the cut, characters dropped) or None."""
    pieces: list[str] = []
    start = 0
    k = 0
    nspans = len(spans)
    for m in candidates.finditer(text):
        i = m.start()
        if i < start:
            continue
        while k < nspans and spans[k][1] <= i:
            k += 1
        if k < nspans and spans[k][0] <= i:
            continue  # inside protected math
        cut = is_cut(text, i)
        if cut:
            pieces.append(text[start : i + cut[0]])
            start = i + cut[0] + cut[1]
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


_NEWLINE = re.compile(r"\n")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|(?<=[.!?]\$)\s")


def _newline_cut(text: str, i: int):
    return (0, 1) if text[i] == "\n" else None


def _sentence_cut(text: str, i: int):
    """A sentence ends at . ! ? followed by whitespace and a capital, digit or math."""
    c = text[i]
    n = len(text)
    if c.isspace() and i >= 2 and text[i - 1] == "$" and text[i - 2] in ".!?":
        # "... = 3.$  Also": the sentence ended inside the closing math delimiter
        j = i
        while j < n and text[j].isspace():
            j += 1
        if j < n and (text[j].isupper() or text[j] in "$\\("):
            return (0, j - i)
        return None
    if c not in ".!?":
        return None
    j = i + 1
    if j >= n or not text[j].isspace():
        return None
    while j < n and text[j].isspace():
        j += 1
    if j >= n:
        return None
    nxt = text[j]
    if not (nxt.isupper() or nxt.isdigit() or nxt in "$\\("):
        return None
    if c == ".":
        lowered = text[max(0, i - 7) : i + 1].lower()
        # a whole word only: "cost." and "items." end sentences, "St." and "Ms." do not
        if any(lowered.endswith(a) and not lowered[: -len(a)][-1:].isalpha() for a in _ABBREVIATIONS):
            return None
    return (1, j - i - 1)


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph, never cutting inside math."""
    return _split_outside(text, _protected_spans(text), _sentence_cut, _SENTENCE_END)


@dataclass(frozen=True)
class Segmentation:
    """A solution cut two ways: `steps`, what the verifier analyses, and `units`, what it
    reports on (per-step flags, `first_error_step`).

    Why two: MATH prose is analysed sentence by sentence (the alignment with a reference
    needs that grain), but a person or a labelled set who wrote a solution one step per line
    counts steps in lines (SPEC §5: "Steps are the candidate's lines"). So a solution of
    several lines reports its lines, a one-paragraph solution its sentences, a `Step k:`
    solution its marked steps, and a solution given as a list of steps exactly that list.
    """

    steps: list[str]
    unit_of: list[int]
    """The unit each step lies in (same length as `steps`, non-decreasing)."""
    units: list[str]

    @property
    def identity(self) -> bool:
        """True when every step is its own unit (nothing to regroup when reporting)."""
        return len(self.units) == len(self.steps) and self.unit_of == list(range(len(self.steps)))

    def capped(self, n: int) -> tuple["Segmentation", int]:
        """At most `n` steps and `n` units, the trailing ones merged into the last; and how many were merged
        (0: none). Units merge with the steps they hold, and on their own where a caller's list has many
        empty items."""
        steps, unit_of, units = self.steps, self.unit_of, self.units
        merged = 0
        if len(steps) > n:
            merged = len(steps) - n + 1
            steps = steps[: n - 1] + ["\n".join(steps[n - 1 :])]
            unit_of = unit_of[:n]
            units = units[: unit_of[-1]] + ["\n".join(units[unit_of[-1] :])]
        if len(units) > n:
            merged = max(merged, len(self.units) - n + 1)
            units = units[: n - 1] + ["\n".join(units[n - 1 :])]
            unit_of = [min(u, n - 1) for u in unit_of]
        return Segmentation(steps, unit_of, units), merged


def segment(solution: str | Sequence[str], prose_min_chars: int = 150) -> Segmentation:
    """Steps and report units of a solution: a string, or the caller's own list of steps
    (each item is one unit, split further into steps by `split_steps`; empty items stay
    units, so the caller's numbering holds)."""
    if not isinstance(solution, str):
        steps: list[str] = []
        unit_of: list[int] = []
        for u, item in enumerate(solution):
            for s in split_steps(item, prose_min_chars):
                steps.append(s)
                unit_of.append(u)
        return Segmentation(steps, unit_of, [item.strip() for item in solution])
    text = _normalized(solution)
    if not text:
        return Segmentation([], [], [])
    if STEP_MARKER_RE.search(text):
        steps = _marked_steps(text, prose_min_chars)
        return Segmentation(steps, list(range(len(steps))), steps)
    lines = _lines(text)
    per_line = [_line_steps(line, prose_min_chars) for line in lines]
    steps = [s for part in per_line for s in part]
    if len(lines) < 2:  # one paragraph: nothing says where its steps are but its sentences
        return Segmentation(steps, list(range(len(steps))), steps)
    unit_of = [u for u, part in enumerate(per_line) for _ in part]
    return Segmentation(steps, unit_of, lines)


def split_steps(text: str, prose_min_chars: int = 150) -> list[str]:
    """Split a solution into steps.

    - With `Step k:` markers, each marker starts a step (text before the first marker is
      a step of its own; a trailing answer line is split off the last step).
    - Otherwise lines are steps (blank lines dropped, newlines inside display math kept),
      and a line of at least `prose_min_chars` characters holding several sentences
      (MATH prose) is split into sentences.
    `[asy]` figure code is dropped: it is drawing code, not reasoning.
    """
    return segment(text or "", prose_min_chars).steps


def _normalized(text: str) -> str:
    if not text or not text.strip():
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "[asy]" in text.lower():
        text = _ASY_RE.sub(" ", text)
    return text


def _marked_steps(text: str, prose_min_chars: int) -> list[str]:
    markers = list(STEP_MARKER_RE.finditer(text))
    steps: list[str] = []
    pre = text[: markers[0].start()].strip()
    if pre:
        steps.extend(s for line in _lines(pre) for s in _line_steps(line, prose_min_chars))
    for k, m in enumerate(markers):
        end = markers[k + 1].start() if k + 1 < len(markers) else len(text)
        chunk = text[m.end() : end].strip()
        if not chunk:
            continue
        if k + 1 == len(markers):
            lines = chunk.split("\n")
            tail = []
            while len(lines) > 1 and _ANSWER_LINE_RE.match(lines[-1]):
                tail.insert(0, lines.pop().strip())
            chunk = "\n".join(lines).strip()
            steps.append(chunk)
            steps.extend(t for t in tail if t)
        else:
            steps.append(chunk)
    return [s for s in steps if s]


def _lines(text: str) -> list[str]:
    """Non-blank lines, a line break inside protected math not counting."""
    return _split_outside(text, _protected_spans(text), _newline_cut, _NEWLINE)


def _line_steps(line: str, prose_min_chars: int) -> list[str]:
    return split_sentences(line) if len(line) >= prose_min_chars else [line]


_ANNOTATION_RE = re.compile(r"<<[^<>]{0,400}>>")
_WS_RE = re.compile(r"\s+")


def embedding_text(step: str, max_chars: int = 512) -> str:
    """The text a step is embedded as: calculator annotations removed (candidates from
    an SFT model trained on stripped data never have them), `#### X` read as an answer
    sentence, whitespace collapsed, length capped (the encoder truncates anyway)."""
    s = step[: max_chars * 4]
    if "<<" in s:
        s = _ANNOTATION_RE.sub("", s)
    s = s.strip()
    if s.startswith("####"):
        s = "The answer is " + s[4:].strip()
    s = _WS_RE.sub(" ", s).strip()
    return s[:max_chars]
