"""MathVerifier: the dual-channel, six-dimension error profile of SPEC §2.2 / paper §3.2.

verify_batch(items) runs, per chunk of `config.batch_size` candidates:
1. preparation (per candidate): sanitize, split steps (references memoized: K candidates
   share one), find the equations of every step, extract the final answers;
2. fast channel (whole chunk): ONE embedding pass over all unique question / reference
   step / predicted step texts not yet cached; S_qp, S_rp, S_pp per candidate; d1;
3. fine channel (candidates passing `fine_gate`): Needleman–Wunsch alignment (d2, d3),
   exact arithmetic + symbolic identities + equations by substitution + bounded SymPy (d5:
   arithmetic slip, algebra slip, formula error), the programmatic consistency checks (d4,
   graded: value flow, changed quantities, question and conclusion contradictions, combined
   by noisy-or), and the NLI pairs, which are scored for the whole chunk in ONE batched,
   cached pass (d4 = max(NLI, programmatic));
4. d6 with `hardneg.grading`, aggregates, first_error_step.

Robustness: a candidate whose analysis raises gets None dimensions and a flag; the rest
of the batch goes on. Every input is length-capped before any quadratic work, arithmetic
is guarded (arith.py) and SymPy only runs in the bounded worker.

elapsed_ms of a profile = its own analysis time + its share (by number of texts / pairs)
of the chunk's shared embedding and NLI passes.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..bounded import BoundedCallError, TIMEOUT, call_bounded, prestart_bounded
from . import algebra, symbolic
from .alignment import align_steps, order_score, structure_score
from .arith import Computation, StepMath, analyse_step, close_enough, declared_functions, ends_on_cue, fmt_number, names_i
from .checks import (
    CASE_RE,
    QuestionInfo,
    answer_value,
    computes_with_exact,
    equation_checks,
    formula_errors,
    logic_checks,
    method_starts,
    off_path,
    other_base_links,
    question_equation_links,
    question_equations,
    question_info,
    ref_dependencies,
    reused_values,
    reversed_offsets,
    shows_result,
    value_flow,
    wrong_operation,
)
from .config import VERIFIER_VERSION, VerifierConfig
from .embedding import Embedder, LRUCache, embedder_from_config, text_key
from .facts import conic_claims, number_claims
from .inequalities import inequality_checks
from .nli import NLIScorer
from .profile import ERROR_KINDS, StepReport, VerifierProfile, VerifyInput, aggregate
from .series import sequence_term_checks, series_checks
from .steps import Segmentation, embedding_text, segment, split_steps
from .verdicts import MISSING, TimedOut, VerdictMemo

__all__ = ["MathVerifier"]

log = logging.getLogger(__name__)

_ANSWER_MAX_CHARS = 1_000_000


def _grading():
    # hardneg.grading is written by another part of the project; import late so the
    # verifier module imports even while it is being changed.
    from ..grading import answers_equal, extract_stated_answer

    return extract_stated_answer, answers_equal


def _clean(s: Optional[str]) -> Optional[str]:
    """Valid UTF-8 text (lone surrogates from JSON would crash the tokenizers)."""
    if s is None:
        return None
    if "\x00" in s:
        s = s.replace("\x00", " ")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "replace").decode("utf-8")
    return s


@dataclass
class _Reference:
    steps: list[str]
    emb_texts: list[str]
    maths: list[StepMath]
    comps: list[Computation]
    depends: dict[int, set[int]]
    notes: list[str]
    reused: frozenset  # (value, result) pairs after which it uses the value again (value_flow's `live`)


@dataclass
class _Work:
    item: Any
    id: str
    t_own: float = 0.0
    error: Optional[str] = None
    question: str = ""
    qinfo: QuestionInfo = field(default_factory=QuestionInfo)
    steps: list[str] = field(default_factory=list)
    segmentation: Optional[Segmentation] = None  # steps and the units they are reported in
    emb_texts: list[str] = field(default_factory=list)
    flags: list[list[tuple[str, str]]] = field(default_factory=list)  # per step: (kind, message)
    maths: list[StepMath] = field(default_factory=list)
    ref: Optional[_Reference] = None
    ref_answer: Optional[str] = None
    answer: Optional[str] = None
    answer_val: Optional[Fraction] = None
    answer_stated: bool = False  # a box, "the answer is", an output block (grading.extract_stated_answer): not the last number
    dims: dict[str, Optional[float]] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    formula_error: bool = False
    fine: bool = False
    nli_pairs: list[tuple[int, int, str, str]] = field(default_factory=list)  # (step, other|-1-cond, premise, hyp)
    value_flow_hit: bool = False
    n_texts: int = 0
    verdicts: dict = field(default_factory=dict)  # id(link) -> (status, lhs value, rhs value) from SymPy
    link_notes: dict = field(default_factory=dict)  # id(link) -> reason of a SymPy algebra verdict

    def flag(self, step: int, kind: str, message: str) -> None:
        if len(message) > 400:
            message = message[:397] + "..."
        if not self.flags:
            self.flags.append([])
            if not self.steps:
                self.steps.append("")
        step = min(max(step, 0), len(self.flags) - 1)
        if all(m != message for _, m in self.flags[step]):
            self.flags[step].append((kind, message))


class MathVerifier:
    """Scores candidate solutions; see the module docstring for the pipeline."""

    def __init__(self, config: Optional[VerifierConfig] = None, embedder: Optional[Embedder] = None, nli: Optional[NLIScorer] = None):
        """Components not given are loaded from `config` (the NLI model first, so a missing
        one fails before the embedding model is loaded). With use_nli=False no NLI model is
        used, even if one is given."""
        self.config = config or VerifierConfig()
        cfg = self.config
        # the SymPy worker imports SymPy and Math-Verify (~2 s) while the models and data load
        from ..grading import warm_worker

        prestart_bounded(symbolic.warm)
        prestart_bounded(warm_worker)
        if cfg.use_nli and nli is None:
            nli = NLIScorer.from_pretrained(
                cfg.nli_model,
                device=cfg.device,
                batch_size=cfg.nli_batch_size,
                max_length=cfg.nli_max_length,
                cache_size=cfg.nli_cache_size,
                local_files_only=cfg.local_files_only,
            )
        self.nli = nli if cfg.use_nli else None
        if embedder is None:
            embedder = embedder_from_config(cfg)
        self.embedder = embedder
        small = min(4096, cfg.analysis_cache_size)
        self._ref_cache = LRUCache(small)
        self._q_cache = LRUCache(small)
        self._step_cache = LRUCache(cfg.analysis_cache_size)
        self._vectors: dict[str, np.ndarray] = {}
        self.verdicts = VerdictMemo()
        """What the SymPy worker and the grader answered; verification.ShardVerifier gives each shard the stored ones."""

    @classmethod
    def from_config(cls, config: Optional[VerifierConfig] = None) -> "MathVerifier":
        """Load the models named by `config`. NLI enabled but not loadable -> ModelLoadError
        telling the user to set use_nli=False (never a hang: see embedding.resolve_local_files_only)."""
        return cls(config or VerifierConfig())

    @property
    def version(self) -> str:
        return VERIFIER_VERSION

    # ------------------------------------------------------------------ public API
    def verify_batch(self, items: Sequence[VerifyInput | Mapping], progress: bool = False) -> list[VerifierProfile]:
        """One profile per item, in input order. Never raises for a bad candidate."""
        items = list(items)
        out: list[VerifierProfile] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc="verify", unit="cand")
        size = self.config.batch_size
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            out.extend(self._verify_chunk(chunk))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return out

    # ------------------------------------------------------------------ pipeline
    def _verify_chunk(self, chunk: Sequence[Any]) -> list[VerifierProfile]:
        works = [self._prepare(item) for item in chunk]
        t_embed = self._fast_channel(works)
        for w in works:
            if w.error is None:
                self._timed(w, self._analyse, w)
        t_nli = self._nli_channel(works)
        for w in works:
            if w.error is None and w.fine:
                self._timed(w, self._off_path, w)
        n_texts = sum(w.n_texts for w in works) or 1
        n_pairs = sum(len(w.nli_pairs) for w in works) or 1
        profiles = []
        for w in works:
            shared = t_embed * w.n_texts / n_texts + t_nli * len(w.nli_pairs) / n_pairs
            profiles.append(self._finish(w, shared))
        return profiles

    def _timed(self, w: _Work, fn, *args) -> None:
        t0 = time.perf_counter()
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - one candidate must not take the batch down
            log.exception("verifier: candidate %s failed", w.id)
            w.error = f"{type(exc).__name__}: {str(exc)[:200]}"
        w.t_own += time.perf_counter() - t0

    def _prepare(self, item: Any) -> _Work:
        w = _Work(item=item, id=str(getattr(item, "id", None) if not isinstance(item, Mapping) else item.get("id")))
        self._timed(w, self._prepare_inner, w)
        return w

    def _prepare_inner(self, w: _Work) -> None:
        cfg = self.config
        item = w.item
        if isinstance(item, Mapping):
            known = ("id", "question", "candidate", "reference_solution", "reference_answer")
            item = VerifyInput(**{k: item.get(k) for k in known})
            w.item = item
        if not isinstance(item, VerifyInput):
            raise TypeError(f"expected VerifyInput, got {type(item).__name__}")
        w.id = item.id
        w.question = _clean(item.question) or ""
        given_steps = not isinstance(item.candidate, str)
        parts = [_clean(p) or "" for p in item.candidate] if given_steps else [_clean(item.candidate) or ""]
        cand = "\n".join(parts)
        notes: list[str] = []
        if len(cand) > cfg.max_chars:
            notes.append(f"note: candidate is {len(cand)} characters; only the first {cfg.max_chars} were analysed")
            parts = _first_chars(parts, cfg.max_chars)
        seg, merged = segment(parts if given_steps else parts[0], cfg.prose_min_chars).capped(cfg.max_steps)
        if merged:
            notes.append(f"note: {merged} trailing steps merged into this one (max_steps={cfg.max_steps})")
        w.steps = steps = seg.steps
        w.segmentation = seg
        w.flags = [[] for _ in steps]
        w.emb_texts = [embedding_text(s, cfg.embed_max_chars) for s in steps]
        w.qinfo = self._question(w.question)
        w.maths = self._steps_math(steps, w.qinfo)
        for i, sm in enumerate(w.maths):
            for note in sm.notes:
                w.flag(i, "note", note)
            if sm.unbalanced:
                w.flag(i, "note", "note: unbalanced braces")
        for note in notes:
            w.flag(len(w.steps) - 1, "note", note)
        extract_stated_answer, _ = _grading()
        answer_text = cand if len(cand) <= _ANSWER_MAX_CHARS else cand[-cfg.max_chars :]
        w.answer, w.answer_stated = extract_stated_answer(answer_text)
        w.answer_val = answer_value(w.answer)
        ref_sol = _clean(item.reference_solution)
        ref_ans = _clean(item.reference_answer)
        if ref_sol is not None and ref_sol.strip():
            w.ref = self._reference(ref_sol, w.qinfo)
            if not w.ref.steps:  # e.g. only figure code: nothing to compare steps with
                w.ref = None
        if ref_ans is None and ref_sol is not None and ref_sol.strip():
            ref_ans = extract_stated_answer(ref_sol if len(ref_sol) <= _ANSWER_MAX_CHARS else ref_sol[-cfg.max_chars :])[0]
        w.ref_answer = ref_ans

    def _question(self, question: str) -> QuestionInfo:
        key = text_key(question)
        info = self._q_cache.get(key)
        if info is None:
            info = question_info(question)
            self._q_cache.put(key, info)
        return info

    def _question_equations(self, question: str) -> tuple[dict, list]:
        """(symbol -> the value its one linear equation gives, the equations) of the question."""
        key = text_key(question, "equations")
        eqs = self._q_cache.get(key)
        if eqs is None:
            links = question_equation_links(question)
            eqs = (question_equations(links), links)
            self._q_cache.put(key, eqs)
        return eqs

    def _steps_math(self, steps: list[str], q: QuestionInfo) -> list[StepMath]:
        i_unknown = any(names_i(s) for s in steps)
        functions = q.functions.union(*(declared_functions(s) for s in steps))
        return [self._step_math(s, q, cued=k > 0 and ends_on_cue(steps[k - 1]), i_unknown=i_unknown, functions=functions)
                for k, s in enumerate(steps)]

    def _step_math(self, step: str, q: QuestionInfo, cued: bool = False, i_unknown: bool = False,
                   functions: frozenset = frozenset()) -> StepMath:
        """Cached: candidates of a problem repeat steps. Treated as immutable afterwards."""
        # the bases are part of the key: other_base_links reads the same step differently per base
        key = text_key(step, "*" if q.opaque_star else "", "b" + ",".join(map(str, sorted(q.bases))) if q.other_base else "",
                       ("cued" if cued else "") + ("i" if i_unknown else ""), ",".join(sorted(functions)))
        sm = self._step_cache.get(key)
        if sm is not None:
            return sm
        sm = analyse_step(step, opaque_star=q.opaque_star, cued=cued, i_unknown=i_unknown, functions=functions)
        if q.other_base and sm.links:
            sm = other_base_links(sm, q)  # only equations false in base 10 and in the question's bases
        self._step_cache.put(key, sm)
        return sm

    def _reference(self, ref_sol: str, q: QuestionInfo) -> _Reference:
        cfg = self.config
        key = text_key(ref_sol, "opaque*" if q.opaque_star else "", "base" if q.other_base else "")
        ref = self._ref_cache.get(key)
        if ref is not None:
            return ref
        notes = []
        text = ref_sol
        if len(text) > cfg.max_chars:
            text = text[: cfg.max_chars]
            notes.append("note: reference truncated for analysis")
        steps = split_steps(text, cfg.prose_min_chars)
        if len(steps) > cfg.max_steps:
            steps = steps[: cfg.max_steps - 1] + ["\n".join(steps[cfg.max_steps - 1 :])]
        maths = self._steps_math(steps, q)
        comps = [c for sm in maths for c in sm.computations]
        ref = _Reference(
            steps=steps,
            emb_texts=[embedding_text(s, cfg.embed_max_chars) for s in steps],
            maths=maths,
            comps=comps,
            depends=ref_dependencies(maths, q.numbers),
            notes=notes,
            reused=reused_values(maths),
        )
        self._ref_cache.put(key, ref)
        return ref

    # ------------------------------------------------------------------ fast channel
    def _fast_channel(self, works: list[_Work]) -> float:
        t0 = time.perf_counter()
        texts: dict[str, None] = {}
        for w in works:
            if w.error is not None:
                continue
            own = ([w.question[: self.config.embed_max_chars]] if w.question.strip() else []) + w.emb_texts
            if w.ref is not None:
                own += w.ref.emb_texts
            w.n_texts = len(own)
            for t in own:
                texts.setdefault(t, None)
        unique = list(texts)
        vectors: dict[str, np.ndarray] = {}
        if unique:
            try:
                mat = np.asarray(self.embedder.encode(unique), dtype=np.float32)
                vectors = dict(zip(unique, mat))
            except Exception as exc:  # noqa: BLE001 - fall back to one candidate at a time
                log.warning("verifier: batched embedding failed (%s); retrying per candidate", exc)
                for w in works:
                    self._timed(w, self._embed_one, w, vectors)
        self._vectors = vectors
        return time.perf_counter() - t0

    def _embed_one(self, w: _Work, vectors: dict) -> None:
        own = [t for t in ([w.question[: self.config.embed_max_chars]] + w.emb_texts + (w.ref.emb_texts if w.ref else [])) if t not in vectors]
        if own:
            mat = np.asarray(self.embedder.encode(own), dtype=np.float32)
            vectors.update(zip(own, mat))

    def _matrix(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        m = np.stack([self._vectors[t] for t in texts])
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms > 0, norms, 1.0)

    # ------------------------------------------------------------------ per candidate
    def _analyse(self, w: _Work) -> None:
        cfg = self.config
        P = self._matrix(w.emb_texts)
        m = len(w.emb_texts)
        S_pp = _sim(P, P) if m else np.zeros((0, 0))
        S_qp = None
        if w.question.strip() and m:
            qv = self._matrix([w.question[: cfg.embed_max_chars]])
            S_qp = _sim(qv, P)[0]
        w.channels.append("fast")
        S_rp = None
        if w.ref is not None:
            R = self._matrix(w.ref.emb_texts)
            S_rp = _sim(R, P) if m and len(w.ref.emb_texts) else np.zeros((len(w.ref.emb_texts), m))
            w.dims["d_semantic"] = self._semantic(w, S_rp, S_qp)
        if S_qp is not None:
            w.signals["question_similarity"] = float(S_qp.mean())
        dups = self._duplicates(S_pp) if m else []
        if m:
            w.signals["redundancy"] = len(dups) / m

        gate = cfg.fine_gate
        w.fine = gate == "all" or (
            gate == "semantic" and (w.dims.get("d_semantic") is None or w.dims["d_semantic"] <= cfg.fine_gate_max_d_semantic)
        )
        if w.fine:
            w.channels.append("fine")
            self._fine(w, S_rp, S_pp, dups, S_qp)
        else:
            w.flag(max(0, m - 1), "note", "note: fine channel skipped by the gate")
        self._answer(w)

    def _semantic(self, w: _Work, S_rp: np.ndarray, S_qp: Optional[np.ndarray]) -> float:
        cfg = self.config
        n, m = S_rp.shape
        if m == 0:
            return 1.0
        if n == 0:
            return 1.0
        best = S_rp.max(axis=0)
        raw = 1.0 - float(best.mean())
        scaled = (raw - cfg.semantic_paraphrase_level) / (cfg.semantic_unrelated_level - cfg.semantic_paraphrase_level)
        near = best if S_qp is None else np.maximum(best, S_qp)
        drift = float((near < cfg.drift_threshold).mean())
        w.signals.update(
            semantic_raw=raw,
            coverage=float(S_rp.max(axis=1).mean()),
            drift=drift,
        )
        return float(min(1.0, max(0.0, scaled) + cfg.drift_weight * drift))

    def _fine(self, w: _Work, S_rp: Optional[np.ndarray], S_pp: np.ndarray, dups: list[tuple[int, int]],
              S_qp: Optional[np.ndarray] = None) -> None:
        cfg = self.config
        m = len(w.steps)
        # a step that repeats the question (near-identical, like a near-duplicate step) adds nothing:
        # it is redundant for d2 whatever reference step it resembles (issue 12: a question echo
        # used to align with the reference steps that restate the question's facts)
        # (or that copies a sentence of it word for word: a question split into several steps)
        echoes = [] if S_qp is None else [int(j) for j in np.nonzero(S_qp > cfg.duplicate_threshold)[0] if j < m]
        q_norm = " ".join(w.question.split()).lower()
        for j, st in enumerate(w.steps):
            t = " ".join(st.split()).lower()
            if j not in echoes and len(t) >= 20 and t in q_norm:
                echoes.append(j)
        # d2 / d3: alignment against the reference
        if w.ref is not None and S_rp is not None:
            al = align_steps(S_rp, S_pp, cfg.match_threshold, cfg.duplicate_threshold)
            if echoes:
                al.pairs = [(i, j) for i, j in al.pairs if j not in echoes]
                al.reordered = [(i, j) for i, j in al.reordered if j not in echoes]
                used_r = {i for i, _ in al.matched}
                al.missing = [i for i in range(S_rp.shape[0]) if i not in used_r]
                al.extra = sorted(set(al.extra) | set(echoes))
            w.dims["d_structure"] = structure_score(al, len(w.ref.steps), m, cfg.missing_weight, cfg.extra_weight)
            ref_maths, maths = w.ref.maths, w.maths
            d3, inversions = order_score(al, w.ref.depends, cfg.key_inversion_penalty, cfg.key_inversion_cap,
                                         lambda i1, j: shows_result(ref_maths[i1], maths[j]))
            w.dims["d_order"] = d3
            for i1, j in inversions:
                w.flag(j, "order inversion", f"order inversion: this step needs the result of reference step {i1}, which comes later here")
            w.signals.update(missing=len(al.missing), extra=len(al.extra), reordered=len(al.reordered))
        for k, j in dups:
            w.flag(j, "duplicate", f"duplicate step: near-identical to step {k}")
        for j in echoes:
            w.flag(j, "duplicate", "question echo: this step repeats the question")
        # d5: equations, exact then bounded SymPy; symbolic links: identities, then substitution
        self._symbolic(w)
        slips = algebra_slips = 0
        linear, question_links = self._question_equations(w.question)
        eq_flags, withdrawn = equation_checks(w.maths, w.steps, linear)
        eq_flags = eq_flags + algebra.solution_checks(w.maths, w.steps, question_links, w.question)  # whole chains / derivations (algebra.py)
        eq_flags = eq_flags + inequality_checks(w.steps, w.question) + series_checks(w.steps)  # inequalities.py, series.py
        carried: dict = {}  # a result written rounded in an earlier step -> its exact value (`100 / 12 = 8.33`)
        for i, sm in enumerate(w.maths):
            for link in sm.links:
                status, L, R = w.verdicts.get(id(link), (link.status, link.lhs.value, link.rhs.value))
                if status != "mismatch":
                    continue
                if link.kind == "arith" and carried and computes_with_exact(link, carried):
                    continue  # `8.33 × 4 = 33.33` goes on from the exact 100/12, which the step before wrote rounded
                if link.kind == "algebra":
                    if id(link) in withdrawn:
                        continue  # values assigned later satisfy it: an equation being solved
                    algebra_slips += 1
                    w.flag(i, "algebra slip", w.link_notes.get(id(link)) or link.note or f"algebra slip: {link.text}")
                elif status == link.status and wrong_operation(link) is not None:
                    continue  # a wrong operation (`12 × 4 = 16`): a formula error, flagged by formula_errors
                else:
                    slips += 1
                    w.flag(i, "arithmetic slip", _slip_message(link, L, R))
            for link in sm.congruences:
                if link.status == "mismatch":
                    slips += 1
                    w.flag(i, "arithmetic slip", f"arithmetic slip: {link.text} ({link.note})")
            for link in sm.links:
                status, L, R = w.verdicts.get(id(link), (link.status, link.lhs.value, link.rhs.value))
                if status == "ok" and link.kind == "arith" and link.rhs.single_num is not None and None not in (L, R) and L != R:
                    carried.setdefault(Fraction(R), Fraction(L))
        for i, msg in eq_flags:
            algebra_slips += 1
            w.flag(i, "algebra slip", msg)
        for i, msg in number_claims(w.steps):  # "the consecutive primes 87, 89, 93" (facts.py)
            slips += 1
            w.flag(i, "arithmetic slip", msg)
        formulas = formula_errors(w.maths, w.steps, w.qinfo, w.answer_val, w.ref.comps if w.ref else None)
        formulas += conic_claims(w.steps) + sequence_term_checks(w.steps)  # a radius read as r^2 (facts.py), a + 4d for term 4 (series.py)
        for i, msg in formulas:
            w.flag(i, "formula error", msg)
        w.formula_error = bool(formulas)
        numeric = max(cfg.slip_score if slips else 0.0, cfg.algebra_slip_score if algebra_slips else 0.0)
        w.dims["d_numeric"] = cfg.formula_score if formulas else numeric
        # d4, programmatic part (graded): value flow and the consistency checks; NLI later for the whole chunk
        # value flow and the number checks read numbers as quantities: word problems only (in MATH,
        # `f(4) = 7`, then `g(7) = 3·7 + 5` reuses numbers as arguments, not as stale quantities)
        word = w.qinfo.word_problem
        starts = method_starts(w.steps, w.qinfo) if word else []  # both read one method or case at a time
        vf = value_flow(w.maths, w.answer_val, starts, w.ref.reused if w.ref else frozenset()) if word else []
        scores = []
        for j, msg in vf:
            w.flag(j, "value-flow contradiction", msg)
            scores.append(cfg.value_flow_score)
        for j, kind, msg in logic_checks(w.maths, w.steps, w.qinfo, w.answer_val, starts) if word else ():
            w.flag(j, kind, msg)
            scores.append(cfg.logic_scores.get(kind, cfg.value_flow_score))
        for j, msg in reversed_offsets(w.steps, w.question):  # "2 more than three times" for "2 less than ..."
            w.flag(j, "question contradiction", msg)
            scores.append(cfg.logic_scores["question contradiction"])
        w.value_flow_hit = bool(vf)
        # noisy-or: independent findings add up, each one alone gives its own score
        miss = 1.0
        for sc in scores:
            miss *= 1.0 - sc
        w.dims["d_logic"] = 1.0 - miss
        w.signals["logic_programmatic"] = w.dims["d_logic"]
        if self.nli is not None:
            w.nli_pairs = self._pairs(w)
        else:
            w.channels.append("value-flow-only")

    def _duplicates(self, S_pp: np.ndarray) -> list[tuple[int, int]]:
        """(first earlier step, later step) for every predicted step that repeats an earlier one."""
        above = np.triu(S_pp > self.config.duplicate_threshold, k=1)  # [k, j] with k < j
        has = above.any(axis=0)
        first = above.argmax(axis=0)
        return [(int(first[j]), int(j)) for j in np.nonzero(has)[0]]

    def _symbolic(self, w: _Work) -> None:
        self._symbolic_identities(w)
        pending = [(i, link) for i, sm in enumerate(w.maths) for link in sm.links if link.status == "symbolic"]
        if not pending:
            return
        try:
            res = self._in_sympy_worker(symbolic.evaluate_pairs, [link for _, link in pending])
        except BoundedCallError as exc:
            res = None
            reason = f"symbolic check failed ({str(exc)[:80]})"
        else:
            reason = f"symbolic check timed out after {self.config.sympy_timeout:g} s"
        # Step analyses are cached and shared: verdicts go to this candidate, not the links.
        if res is TIMEOUT or res is None:
            if "symbolic:timeout" not in w.channels:
                w.channels.append("symbolic:timeout")
            for i, link in pending:
                w.verdicts[id(link)] = ("unchecked", None, None)
                w.flag(i, "note", f"note: {link.text} not checked ({reason})")
            return
        for (i, link), values in zip(pending, res):
            w.verdicts[id(link)] = _numeric_verdict(link, values)
        # `\tan 45 = 1`: a trigonometric function of a bare number is read in degrees too
        trig = [(i, link) for i, link in pending if w.verdicts[id(link)][0] == "mismatch" and _TRIG_RE.search(link.text)]
        if trig:
            try:
                res = self._in_sympy_worker(symbolic.evaluate_pairs_in_degrees, [link for _, link in trig])
            except BoundedCallError:
                return
            if res is TIMEOUT:
                return
            for (i, link), values in zip(trig, res):
                in_degrees = _numeric_verdict(link, values)
                if in_degrees[0] == "ok":
                    w.verdicts[id(link)] = in_degrees

    def _in_sympy_worker(self, fn, links) -> Any:
        """`fn` over the links' (lhs, rhs) SymPy sources in the bounded worker (started first, under
        its own time limit); BoundedCallError when the worker cannot run, TIMEOUT when it overran."""
        return self._sympy_call(fn, [(l.lhs.sympy_src, l.rhs.sympy_src) for l in links])

    def _sympy_call(self, fn, arg) -> Any:
        """fn(arg) in the bounded SymPy worker, started first under its own time limit; a question asked
        before (in this process or in the shard's stored verdicts) is answered from `self.verdicts`."""
        if isinstance(fn, functools.partial):
            question = fn.func.__name__ + json.dumps(fn.keywords, sort_keys=True)
        else:
            question = fn.__name__
        key = VerdictMemo.key(question, arg)
        deadline = self.config.sympy_timeout
        known = self.verdicts.get(key, deadline=deadline)
        if known is not MISSING:
            return TIMEOUT if isinstance(known, TimedOut) else known
        warm = call_bounded(symbolic.warm, timeout=self.config.sympy_warmup_timeout)
        if warm is TIMEOUT:
            raise BoundedCallError("worker did not start")
        result = call_bounded(fn, arg, timeout=deadline)
        if result is TIMEOUT:
            self.verdicts.put_timeout(key, deadline)
        else:
            self.verdicts.put(key, result)
        return result

    def _symbolic_identities(self, w: _Work) -> None:
        """Links with free symbols and √/π/functions: SymPy at random points (algebra.py)."""
        pending = [(i, link) for i, sm in enumerate(w.maths) for link in sm.links if link.status == "symbolic-id"]
        if not pending:
            return
        try:
            res = self._in_sympy_worker(symbolic.identity_values, [link for _, link in pending])
        except BoundedCallError:
            res = None
        for k, (i, link) in enumerate(pending):
            verdict = None if res is TIMEOUT or res is None else res[k]
            if verdict is not None and verdict[0] == "differs" and (link.closed_only or _values_stated(w.maths[i], link)):
                # `\cos x = \sin x = \frac{1}{\sqrt2}`, `\tan^2 x + \tan^2 y = \frac{124}{13}\tan x\tan y = \frac{62}{39}`,
                # `\sin x + 2\cos x = −3\tan x > 0`: two sides set equal to one value or bound state values, not a
                # rewrite, unless one slip away from an identity (`\cos^2 x = 1 − \sin^3 x = 0`)
                if not self._one_slip_away(w, link):
                    w.verdicts[id(link)] = ("equation", None, None)
                continue
            if verdict is not None and verdict[0] == "differs" and link.rewrite and _same_symbols(link):
                # a later link of a chain rewrites one quantity (algebra.py): `tan x/tan y + tan y/tan x =
                # (tan²x − tan²y)/(tan x tan y) = …` differs at the sample points, so it is no rewrite
                w.verdicts[id(link)] = ("mismatch", None, None)
                w.link_notes[id(link)] = (f"algebra slip: {link.text} is not an identity (a rewrite in a chain, "
                                          f"but the sides differ at sample points)")
                continue
            if verdict is not None and verdict[0] == "differs" and self._one_slip_away(w, link):
                continue
            if verdict is None or verdict[0] not in ("ok", "const"):
                w.verdicts[id(link)] = ("equation" if verdict is not None and verdict[0] == "differs" else "unchecked", None, None)
                if verdict is None or verdict[0] == "error":
                    w.flag(i, "note", f"note: {link.text} not checked (symbolic check {'timed out' if res is TIMEOUT else 'failed'})")
                continue
            if verdict[0] == "ok":
                w.verdicts[id(link)] = ("ok", None, None)
            elif link.lhs.free and link.rhs.free:
                w.verdicts[id(link)] = ("mismatch", None, None)
                w.link_notes[id(link)] = (f"algebra slip: {link.text} is not an identity (the sides differ by "
                                          f"{fmt_number(verdict[1])} for every value)")
            else:
                w.verdicts[id(link)] = ("equation", None, None)

    def _one_slip_away(self, w: _Work, link) -> bool:
        """A closed-form link SymPy finds different (`\\sin 4x + \\sin 6x = 2 \\sin 7x \\cos x`) that one
        edited token or one dropped term turns into an identity (algebra.symbolic_edits): an algebra
        slip, as `_one_edit` decides for polynomials. Not where the clause solves or assumes an
        equation (`\\sin 2x = \\sin x` is one to solve) unless the link is a rewrite in a chain, nor in
        sides with different symbols."""
        if not (link.lhs.free and link.rhs.free and _same_symbols(link)):
            return False
        if not link.rewrite and (link.solving or CASE_RE.search(link.pre)):
            return False  # (a rewrite in a chain is meant for every value, whatever case the step is in)
        edits = algebra.symbolic_edits(link.lhs.node, link.rhs.node)
        if not edits:
            return False
        try:
            # (sides written alike, `\sin 2x = \sin x`, made equal by an edit prove nothing; sides written
            # differently, a sum = a product, made equal by one are the rewrite meant)
            differ = link.lhs.node[:2] != link.rhs.node[:2]
            found = self._sympy_call(functools.partial(symbolic.first_identity, allow_equal=[differ]),
                                     [[(l, r) for l, r, _ in edits]])
        except BoundedCallError:
            return False
        if found is TIMEOUT or found[0] is None:
            return False
        w.verdicts[id(link)] = ("mismatch", None, None)
        w.link_notes[id(link)] = (f"algebra slip: {link.text} is not an identity; it would be with "
                                  f"{edits[found[0]][2]}")
        return True

    def _pairs(self, w: _Work) -> list[tuple[int, int, str, str]]:
        cfg = self.config
        texts = w.emb_texts
        pairs: list[tuple[int, int, str, str]] = []
        for j in range(len(texts) - 1):
            if texts[j] and texts[j + 1]:
                pairs.append((j + 1, j, texts[j], texts[j + 1]))
        conds = [c[: cfg.embed_max_chars] for c in w.qinfo.conditions[: cfg.nli_max_conditions]]
        for c_idx, cond in enumerate(conds):
            for j, t in enumerate(texts):
                if t:
                    pairs.append((j, -1 - c_idx, cond, t))
        return pairs[: cfg.nli_max_pairs]

    def _nli_channel(self, works: list[_Work]) -> float:
        if self.nli is None:
            return 0.0
        todo = [w for w in works if w.error is None and w.fine]
        pairs = [(p, h) for w in todo for (_, _, p, h) in w.nli_pairs]
        t0 = time.perf_counter()
        try:
            probs = self.nli.contradiction(pairs) if pairs else np.zeros(0)
        except Exception as exc:  # noqa: BLE001 - keep the programmatic d4
            log.warning("verifier: NLI failed (%s); d4 falls back to value flow", exc)
            for w in todo:
                w.channels.append("nli:failed")
            return time.perf_counter() - t0
        k = 0
        thr = self.config.nli_flag_threshold
        for w in todo:
            n = len(w.nli_pairs)
            p = probs[k : k + n]
            k += n
            w.channels.append("nli")
            best = float(p.max()) if n else 0.0
            w.dims["d_logic"] = max(w.dims.get("d_logic") or 0.0, best)
            for (step, other, _, _), prob in zip(w.nli_pairs, p):
                if prob >= thr:
                    if other >= 0:
                        msg = f"NLI contradiction with step {other} (p={prob:.2f})"
                    else:
                        cond = w.qinfo.conditions[-1 - other]
                        msg = f"NLI contradiction with the question: '{cond[:80]}' (p={prob:.2f})"
                    w.flag(step, "NLI contradiction", msg)
        return time.perf_counter() - t0

    def _off_path(self, w: _Work) -> None:
        """A wrong final answer where no check found a wrong step: name the first step that leaves the
        reference's path (checks.off_path). It locates the error; the dimensions already count it (d6)."""
        if w.ref is None or w.answer_val is None or not w.answer_stated or w.dims.get("d_answer") != 1.0:
            return  # (a cut-off solution's last number is no answer: its error is where it stops)
        if any(kind in ERROR_KINDS for f in w.flags for kind, _ in f):
            return
        found = off_path(w.maths, w.ref.comps, answer_value(w.ref_answer), w.qinfo, w.answer_val, w.steps)
        if found is not None:
            w.flag(found[0], "off path", found[1])

    def _answer(self, w: _Work) -> None:
        if w.ref_answer is None or not str(w.ref_answer).strip():
            return
        if w.answer is None:
            w.dims["d_answer"] = 1.0
            w.signals["answer"] = None
            return
        _, answers_equal = _grading()
        key = VerdictMemo.key("answers_equal", [str(w.answer), str(w.ref_answer)])
        same = self.verdicts.get(key)
        if same is MISSING:
            try:
                same = bool(answers_equal(w.answer, w.ref_answer))
            except Exception as exc:  # noqa: BLE001 - grading problems leave d6 unknown
                w.flag(max(0, len(w.steps) - 1), "note", f"note: final answer not graded ({type(exc).__name__})")
                return
            self.verdicts.put(key, same)
        w.dims["d_answer"] = 0.0 if same else 1.0
        w.signals["answer"] = w.answer

    # ------------------------------------------------------------------ output
    def _finish(self, w: _Work, shared_s: float) -> VerifierProfile:
        cfg = self.config
        prof = VerifierProfile(id=w.id, verifier_version=VERIFIER_VERSION)
        if w.error is not None:
            if not w.flags:
                w.flags = [[]]
                w.steps = w.steps or [""]
            w.flags[0].append(("note", f"analysis failed: {w.error}"))
            prof.steps, _ = _report(w)
            prof.channels = ["failed"]
            prof.elapsed_ms = (w.t_own + shared_s) * 1000.0
            return prof
        for name, v in w.dims.items():
            setattr(prof, name, None if v is None else float(min(1.0, max(0.0, v))))
        dims = prof.dims()
        prof.wrongness = aggregate(dims, cfg.wrongness_weights)
        prof.absurdity = aggregate(dims, cfg.absurdity_weights)
        prof.steps, prof.first_error_step = _report(w)
        prof.channels = list(dict.fromkeys(w.channels))
        prof.formula_error = w.formula_error
        prof.signals = w.signals
        prof.elapsed_ms = (w.t_own + shared_s) * 1000.0
        return prof


def _first_chars(parts: list[str], limit: int) -> list[str]:
    """The parts cut to their first `limit` characters in all (joined by newlines); later
    parts empty, so a caller's step numbering survives the cut."""
    out, left = [], limit
    for p in parts:
        out.append(p[: max(left, 0)])
        left -= len(p) + 1
    return out


# A flag message names another step by its analysed index ("near-identical to step 4");
# "reference step 2" counts the reference's steps and is left alone.
_STEP_MENTION_RE = re.compile(r"(?<!reference )\bstep (\d+)\b")


def _report(w: _Work) -> tuple[list[StepReport], Optional[int]]:
    """Per-unit step reports and the first unit in error (SPEC §5 `steps`, `first_error_step`).

    The flags of the analysed steps are gathered into the units they lie in (see
    `steps.Segmentation`), and step numbers inside messages are renumbered the same way."""
    errors = [i for i, f in enumerate(w.flags) if any(k in ERROR_KINDS for k, _ in f)]
    seg = w.segmentation
    if seg is None or seg.identity or len(seg.unit_of) != len(w.flags):  # w.flag may add a step to an empty candidate
        reports = [StepReport(t, [m for _, m in f]) for t, f in zip(w.steps, w.flags)]
        return reports, (errors[0] if errors else None)

    unit_of = seg.unit_of

    def renumber(m: re.Match) -> str:
        i = int(m.group(1))
        return f"step {unit_of[i]}" if i < len(unit_of) else m.group(0)

    reports = [StepReport(u) for u in seg.units]
    for i, f in enumerate(w.flags):
        kept = reports[unit_of[i]].flags
        for _, message in f:
            message = _STEP_MENTION_RE.sub(renumber, message)
            if message not in kept:
                kept.append(message)
    return reports, (unit_of[errors[0]] if errors else None)


def _values_stated(sm: StepMath, link) -> bool:
    """`A = B = c` with c a closed form (the next link of the step goes on from B), where A and B
    are different functions (`\\cos x = \\sin x = \\frac{1}{\\sqrt2}`, `\\tan^2 x = \\sin^2 x + \\cos^2 x = 1`):
    two values set equal, not one expression rewritten.
    A chain rewriting one function (`\\frac{\\tan x}{\\tan y} + … = \\frac{\\tan^2 x − …}{…} = 5`) stays a rewrite."""
    links = sm.links
    k = next((n for n, other in enumerate(links) if other is link), None)
    if k is None or k + 1 >= len(links):
        return False
    nxt = links[k + 1]
    if nxt.lhs.text.strip() != link.rhs.text.strip() or nxt.rhs.free:
        return False
    functions = [set(_FUNCTION_RE.findall(side.text)) for side in (link.lhs, link.rhs)]
    return all(functions) and not functions[0] & functions[1]


_FUNCTION_RE = re.compile(r"\\(sin|cos|tan|sec|csc|cot|log|ln|exp)\b")


def _same_symbols(link) -> bool:
    """Both sides in the same symbols, and no √ of a symbol (√(1 − cos²θ) = |sin θ|: the sample
    points may pick the sign the solution's range excludes) but of a linear one (`\\sqrt{r+1}`)."""
    nodes = (link.lhs.node, link.rhs.node)
    return (None not in nodes and algebra.var_names(nodes[0]) == algebra.var_names(nodes[1]) != set()
            and not any(algebra.has_root_of_symbol(n, nonlinear_only=True) for n in nodes))


_TRIG_RE = re.compile(r"\\(?:sin|cos|tan|sec|csc|cot)\b(?!\s*\^?\s*\{?-)")


def _numeric_verdict(link, values) -> tuple:
    """("ok" | "mismatch" | "unchecked", lhs, rhs) from the SymPy values of a closed-form link."""
    lv, rv, err = values
    L = lv if lv is not None else link.lhs.value
    R = rv if rv is not None else link.rhs.value
    if err or L is None or R is None:
        return ("unchecked", None, None)
    try:
        Lf = Fraction(L) if isinstance(L, float) else L
        Rf = Fraction(R) if isinstance(R, float) else R
        ok = close_enough(link.lhs, link.rhs, Lf, Rf, link.approx, rounding=link.rounding)
    except (ValueError, OverflowError):
        return ("unchecked", None, None)
    return ("ok" if ok else "mismatch", Lf, Rf)


def _sim(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine matrix A·Bᵀ of normalized rows. einsum, not BLAS: for these tiny matrices a
    threaded BLAS call costs ~100× more on a busy machine (thread wake-ups), measured."""
    return np.einsum("ik,jk->ij", A, B)


def _slip_message(link, L, R) -> str:
    lhs_lit, rhs_lit = link.lhs.single_num is not None, link.rhs.single_num is not None
    if lhs_lit and rhs_lit:
        return f"arithmetic slip: {link.text} ({link.lhs.text} ≠ {link.rhs.text})"
    if rhs_lit and L is not None:
        return f"arithmetic slip: {link.text} (should be {fmt_number(L)})"
    if lhs_lit and R is not None:
        return f"arithmetic slip: {link.text} ({link.rhs.text} is {fmt_number(R)})"
    if L is not None and R is not None:
        return f"arithmetic slip: {link.text} ({fmt_number(L)} ≠ {fmt_number(R)})"
    return f"arithmetic slip: {link.text}"
