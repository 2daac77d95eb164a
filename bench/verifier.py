"""Benchmark: MathVerifier throughput (candidates/s), batched + cached vs naive, with and without NLI.

Why: the verifier scores every candidate of the pool (K per problem); the paper's efficiency
claim is batching + caching. Workload: real GSM8K *train* reference solutions
(data/gsm8k/train.jsonl) as references, and per problem K candidates derived from them in
candidate style (annotations stripped, "The answer is: X"): a clean copy, an arithmetic slip,
a dropped step, two swapped steps, a duplicated step and a wrong final answer.

- batched: one `MathVerifier` with the shipped defaults (cache on, texts packed into rows of 128
  tokens), `verify_batch` over all candidates; and the same with padded batches of 32 texts;
- naive (baseline, same run, same model weights): no batching, no cache — one
  `verify_batch([item])` call per candidate and an embedder with batch size 1 and cache 0;
- NLI: the batched path with an NLI model. `cross-encoder/nli-deberta-v3-base` is used when it
  loads offline; otherwise a randomly initialized DeBERTa-v3-base-sized classifier (12 layers,
  hidden 768; BERT word-piece vocabulary of the MiniLM tokenizer) built locally — same compute,
  meaningless probabilities, which the output says.

    .venv/bin/python bench/verifier.py [--problems 60] [--naive 60] [--nli 24] [--repeats 3] [--threads N]
                                       [--warehouse .hardneg/warehouse.duckdb]

`--warehouse` swaps the synthetic candidates for the sampled pool of a warehouse: real samples
share fewer steps with the reference, so they need more encoder work per candidate.

`--inject N` (issue 12) validates the verifier on the error-injection pool (hardneg.inject, GSM8K
and MATH *train* only): per error type the detection rate and the exact first-error-step accuracy,
false alarms on untouched references, the d4 distribution without NLI and the funnel stage-3
count. Floors: MATH algebra slips ≥ 0.80 exact first-error step, arithmetic slips ≥ 0.90, false
alarms on untouched MATH references ≤ 1 %. `--inject-only` skips the throughput runs. `--audit N`
also counts identities with symbols, algebra slips and flagged references per data set.
`--untouched-test N` runs the whole verifier over the first N MATH *test* references and lists
every one it flags (a blind check until session 11 read its flags; the train references have all
served development). A flag on the step of a reference that writes a false equality listed in
`bench/math_test_errata.jsonl` (re-checked with SymPy on every run) is a reference error found,
not a false alarm; both counts are printed.

    .venv/bin/python bench/verifier.py --inject 60 --inject-variants 12 --algebra-rows 1000 \
        --arith-rows 1000 --untouched 1000 --inject-only

Prints a markdown block (and a per-perturbation sanity table of the mean dimensions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KINDS = ("clean", "slip", "drop", "swap", "dup", "wrong_answer")


def candidate_style(answer: str) -> list[str]:
    body, final = answer.split("####", 1)
    lines = [re.sub(r"<<[^>]*>>", "", l).strip() for l in body.strip().split("\n") if l.strip()]
    return lines + [f"The answer is: {final.strip()}"]


def perturb(lines: list[str], kind: str, rng: random.Random) -> str:
    lines = list(lines)
    body = lines[:-1]
    if kind == "slip":
        idx = [i for i, l in enumerate(body) if re.search(r"=\s*\$?(\d+)", l)]
        if idx:
            i = rng.choice(idx)
            body[i] = re.sub(r"(=\s*\$?)(\d+)(?!.*=)", lambda m: m.group(1) + str(int(m.group(2)) + 1), body[i], count=1)
    elif kind == "drop" and len(body) >= 2:
        del body[rng.randrange(len(body))]
    elif kind == "swap" and len(body) >= 2:
        i = rng.randrange(len(body) - 1)
        body[i], body[i + 1] = body[i + 1], body[i]
    elif kind == "dup" and body:
        i = rng.randrange(len(body))
        body.insert(i + 1, body[i])
    elif kind == "wrong_answer":
        m = re.search(r"([\d.]+)\s*$", lines[-1])
        if m:
            lines[-1] = lines[-1][: m.start(1)] + str(float(m.group(1)) + 3).rstrip("0").rstrip(".")
    return "\n".join(body + [lines[-1]])


def workload(start: int, n_problems: int, seed: int = 0):
    from hardneg.verifier import VerifyInput

    rng = random.Random(seed)
    rows = []
    with open(ROOT / "data/gsm8k/train.jsonl") as f:
        for i, line in enumerate(f):
            if i >= start + n_problems:
                break
            if i >= start:
                rows.append(json.loads(line))
    items, kinds = [], []
    for p, row in enumerate(rows):
        lines = candidate_style(row["answer"])
        ref_answer = row["answer"].split("####")[-1].strip()
        for kind in KINDS:
            items.append(VerifyInput(f"{start + p}-{kind}", row["question"], perturb(lines, kind, rng), row["answer"], ref_answer))
            kinds.append(kind)
    return items, kinds


def warehouse_workload(path: str, limit: int):
    """Sampled candidates of a real pool: the `candidates` table of a hardneg warehouse (e.g. the
    one `make run` leaves in .hardneg/), joined with their problems."""
    import duckdb

    from hardneg.verifier import VerifyInput

    con = duckdb.connect(path, read_only=True)
    try:
        rows = con.execute(
            "SELECT c.candidate_id, p.question, c.text, p.reference_solution, p.reference_answer "
            "FROM candidates c JOIN problems p USING (problem_id) ORDER BY c.problem_id, c.candidate_id LIMIT ?",
            [limit],
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise SystemExit(f"{path}: no candidates (materialize candidate_pool first)")
    return [VerifyInput(*row) for row in rows]


def random_deberta_nli(tokenizer_dir: str):
    import torch
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2ForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    labels = ("contradiction", "entailment", "neutral")
    config = DebertaV2Config(
        vocab_size=len(tok), hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=512, relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, num_labels=3, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        pad_token_id=tok.pad_token_id,
    )
    return DebertaV2ForSequenceClassification(config), tok


def audit(n: int, sets=None, show: int = 0) -> dict:
    """Reference solutions are (almost) right: every equality called wrong is a false alarm or a data error.

    Arithmetic links (no free symbols) are counted as before; links with free symbols are
    identities (checked), equations/assignments (checked by substitution, checks.equation_checks)
    or unchecked. "references flagged" counts solutions with at least one slip of either kind."""
    from collections import Counter
    from fractions import Fraction

    from hardneg.bounded import call_bounded
    from hardneg.verifier import split_steps, symbolic
    from hardneg.verifier.arith import analyse_step, close_enough
    from hardneg.verifier.algebra import solution_checks
    from hardneg.verifier.checks import equation_checks

    sets = sets or (("GSM8K train", "data/gsm8k/train.jsonl", "answer"), ("MATH test", "data/math/test.jsonl", "solution"))
    print("\n| reference solutions | solutions | steps | equalities checked | called wrong | wrong via SymPy "
          "| identities with symbols checked | algebra slips called | equations/assignments | references flagged | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for name, path, field in sets:
        with open(ROOT / path) as f:
            rows = [json.loads(line) for _, line in zip(range(n), f)]
        t0 = time.perf_counter()
        stat, steps, pending, pending_id = Counter(), 0, [], []
        flagged_refs: set[int] = set()
        examples = []
        for r, row in enumerate(rows):
            maths = []
            for step in split_steps(row[field]):
                steps += 1
                sm = analyse_step(step)
                maths.append(sm)
                for link in sm.links:
                    if link.status == "symbolic":
                        pending.append((r, link))
                    elif link.status == "symbolic-id":
                        pending_id.append((r, link))
                    elif link.kind == "algebra":
                        stat["alg_" + link.status] += 1
                    else:
                        stat[link.status] += 1
                        if link.status == "mismatch":
                            flagged_refs.add(r)
                            examples.append((name, r, link.text))
            ref_steps = split_steps(row[field])
            eq_flags, withdrawn = equation_checks(maths, ref_steps)
            eq_flags = eq_flags + solution_checks(maths, ref_steps)  # as the verifier does (core.py)
            for sm in maths:
                for link in sm.links:
                    if link.kind == "algebra" and link.status == "mismatch":
                        if id(link) in withdrawn:
                            stat["alg_withdrawn"] += 1
                        else:
                            stat["alg_called"] += 1
                            flagged_refs.add(r)
                            examples.append((name, r, link.note))
            for _, msg in eq_flags:
                stat["alg_called"] += 1
                stat["alg_eqseq"] += 1
                flagged_refs.add(r)
                examples.append((name, r, msg))
        wrong_sym = 0
        if pending:
            res = call_bounded(symbolic.evaluate_pairs, [(l.lhs.sympy_src, l.rhs.sympy_src) for _, l in pending], timeout=120)
            for (r, link), (lv, rv, err) in zip(pending, res):
                if err:
                    continue
                L = Fraction(lv) if lv is not None else link.lhs.value
                R = Fraction(rv) if rv is not None else link.rhs.value
                ok = close_enough(link.lhs, link.rhs, L, R, link.approx, rounding=link.rounding)
                stat["ok" if ok else "mismatch"] += 1
                wrong_sym += not ok
                if not ok:
                    flagged_refs.add(r)
                    examples.append((name, r, link.text))
        if pending_id:
            res = call_bounded(symbolic.identity_values, [(l.lhs.sympy_src, l.rhs.sympy_src) for _, l in pending_id], timeout=120)
            for (r, link), (verdict, c) in zip(pending_id, res):
                if verdict == "ok":
                    stat["alg_ok"] += 1
                elif verdict == "const" and link.lhs.free and link.rhs.free:
                    stat["alg_called"] += 1
                    flagged_refs.add(r)
                    examples.append((name, r, f"{link.text} (SymPy: differ by {c})"))
                else:
                    stat["alg_equation"] += 1
        checked = stat["ok"] + stat["mismatch"]
        ident = stat["alg_ok"] + stat["alg_called"] + stat["alg_withdrawn"]
        eqs = stat["alg_equation"] + stat["alg_assign"]
        print(f"| {name} | {len(rows)} | {steps} | {checked} ({len(pending)} via SymPy) | {stat['mismatch']} "
              f"({stat['mismatch'] / max(1, checked):.2%}) | {wrong_sym} | {ident} ({len(pending_id)} via SymPy) | "
              f"{stat['alg_called']} ({stat['alg_eqseq']} by substitution; {stat['alg_withdrawn']} withdrawn by context) | "
              f"{eqs} | {len(flagged_refs)} ({len(flagged_refs) / max(1, len(rows)):.2%}) | {time.perf_counter() - t0:.1f} |")
        results[name] = dict(stat=stat, flagged=len(flagged_refs), rows=len(rows), examples=examples)
    print()
    for name, r, text in [e for res in results.values() for e in res["examples"]][:show]:
        print(f"  {name} #{r}: {text}")
    return results


STEP_TYPES = ("arithmetic_slip", "algebra_slip", "wrong_operator", "carry_error")


def _detected(p, etype: str) -> bool:
    """Did the profile notice the injected error (the finding each error type should cause)?"""
    if etype in STEP_TYPES:
        return p.first_error_step is not None
    if etype == "dropped_step":
        return (p.d_structure or 0) > 0
    if etype == "duplicated_step":
        return (p.d_structure or 0) > 0 or any("duplicate" in f for s in p.steps for f in s.flags)
    if etype == "swapped_steps":
        return (p.d_order or 0) > 0 or p.first_error_step is not None
    if etype in ("wrong_answer", "missing_answer"):
        return p.d_answer == 1.0
    if etype == "truncated":
        return p.d_answer == 1.0 or (p.d_structure or 0) > 0
    return (p.wrongness or 0) > 0.3


def test_false_alarms(verifier, n: int) -> None:
    """The whole verifier (every channel, as `hardneg verify` runs it) on the first n MATH test reference
    solutions, each with its problem and answer: a reference flagged anywhere is a false alarm unless the
    reference itself is wrong (the rows are printed so that a person can tell)."""
    from collections import Counter

    from hardneg.inject import math_reference
    from hardneg.verifier import VerifyInput

    rows = (ROOT / "data/math/test.jsonl").read_text().splitlines()
    refs = []
    for k, line in enumerate(rows[:n]):
        ref = math_reference(json.loads(line))
        if ref is not None:
            ref.problem_id = str(k)  # the test rows carry no unique_id: the line number names them
            refs.append(ref)
    t0 = time.perf_counter()
    profs = verifier.verify_batch([VerifyInput(r.problem_id, r.question, r.text, r.raw, r.answer) for r in refs])
    seconds = time.perf_counter() - t0
    flagged = [(r, p, (p.steps[p.first_error_step].flags or ["?"])[0]) for r, p in zip(refs, profs)
               if p.first_error_step is not None]
    errata = math_test_errata(rows)
    # a flag is a found reference error when it sits on the very step that holds a listed false equality
    found = {r.problem_id for r, p, _ in flagged
             if r.problem_id in errata and errata[r.problem_id]["written"] in p.steps[p.first_error_step].text}
    false_alarms = len(flagged) - len(found)
    kinds = Counter(flag.split(":", 1)[0] for r, _, flag in flagged if r.problem_id not in found)
    print(f"\n### Whole verifier on untouched MATH test references ({verifier.version}, {len(refs)} references, {seconds:.0f} s)\n")
    print(f"- flagged: {len(flagged)}/{len(refs)} = {len(flagged) / max(1, len(refs)):.2%}; of these {len(found)} sit on a false "
          f"equality the reference itself writes ({ERRATA_PATH.name}, {len(errata)} listed, each re-checked with SymPy)")
    print(f"- false alarms: {false_alarms}/{len(refs)} = **{false_alarms / max(1, len(refs)):.2%}** (goal ≤ 1 %); by the first "
          "flag's kind: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    for r, p, flag in flagged:
        mark = " (reference error: " + errata[r.problem_id]["correct"] + ")" if r.problem_id in found else ""
        print(f"  - MATH test #{r.problem_id} step {p.first_error_step}: {flag[:160]}{mark}")


ERRATA_PATH = ROOT / "bench/math_test_errata.jsonl"


def math_test_errata(rows: list[str]) -> dict[str, dict]:
    """Reference solutions of the MATH test set (`rows`, its JSON lines) that write a false equality, by line
    number. Each entry names the text as written, both sides transcribed for SymPy and what is right; an entry
    whose text is not in that reference or whose sides SymPy finds equal is an error in this list, and stops
    the run."""
    import sympy

    out = {}
    for n, line in enumerate(ERRATA_PATH.read_text().splitlines(), 1):
        e = json.loads(line)
        solution = json.loads(rows[e["line"]])["solution"]
        if e["written"] not in solution:
            raise SystemExit(f"{ERRATA_PATH.name}:{n}: field 'written' is not in MATH test line {e['line']}")
        if sympy.simplify(sympy.sympify(e["lhs"]) - sympy.sympify(e["rhs"])) == 0:
            raise SystemExit(f"{ERRATA_PATH.name}:{n}: 'lhs' equals 'rhs': MATH test line {e['line']} is no reference error")
        out[str(e["line"])] = e
    return out


def inject_eval(verifier, n_refs: int, variants: int, algebra_rows: int, arith_rows: int, untouched: int, seed: int = 0,
                skip: int = 0) -> None:
    """Validation on the error-injection pool (hardneg.inject; GSM8K and MATH *train* only).

    `skip`: leave out the first `skip` references of each train set (a held-out slice: develop
    with seed 0 on the first references, report with another seed on references ≥ skip)."""
    from collections import Counter, defaultdict

    import numpy as np

    from hardneg.inject import InjectConfig, inject_reference, iter_references
    from hardneg.verifier import VerifyInput

    def run(cfg: InjectConfig, want=None, limit_rows=None, only_variant0=False):
        items, rows = [], []
        seen_refs = Counter()
        for ref in iter_references(cfg):
            seen_refs[ref.source] += 1
            if seen_refs[ref.source] <= skip:
                continue
            if only_variant0:
                new = [dict(candidate_id=f"u-{ref.problem_id}", problem_id=ref.problem_id, source=ref.source, text=ref.text,
                            error_type="correct", error_step=None, variant=0)]
            else:
                new = [r for r in inject_reference(ref, cfg) if want is None or r["error_type"] in want]
            for r in new:
                rows.append(r)
                items.append(VerifyInput(r["candidate_id"], ref.question, r["text"], ref.raw, ref.answer))
            if limit_rows is not None and len(rows) >= limit_rows:
                break
        t0 = time.perf_counter()
        profiles = verifier.verify_batch(items)
        return rows, profiles, time.perf_counter() - t0

    t_all = time.perf_counter()
    # A: the default error mix over the first n_refs references of each source
    mix_rows, mix_prof, mix_s = run(InjectConfig(seed=seed, variants_per_reference=variants, max_references=skip + n_refs))
    # B: MATH algebra slips until algebra_rows of them; C: arithmetic slips of both sources
    alg_rows, alg_prof, alg_s = run(InjectConfig(seed=seed, variants_per_reference=8, sources=("math",), max_references=7499,
                                                 error_mix={"algebra_slip": 1.0}), want={"algebra_slip"}, limit_rows=algebra_rows)
    ar_rows, ar_prof, ar_s = [], [], 0.0
    for src in ("gsm8k", "math"):
        r_, p_, s_ = run(InjectConfig(seed=seed, variants_per_reference=3, sources=(src,), max_references=7499,
                                      error_mix={"arithmetic_slip": 1.0}), want={"arithmetic_slip"}, limit_rows=arith_rows // 2)
        ar_rows += r_
        ar_prof += p_
        ar_s += s_
    # D: untouched MATH and GSM8K references (false alarms)
    un_rows, un_prof, un_s = [], [], 0.0
    for src in ("math", "gsm8k"):
        r_, p_, s_ = run(InjectConfig(seed=seed, sources=(src,), max_references=skip + untouched), only_variant0=True)
        un_rows += r_
        un_prof += p_
        un_s += s_
    n_verified = len(mix_rows) + len(alg_rows) + len(ar_rows) + len(un_rows)
    verify_s = mix_s + alg_s + ar_s + un_s

    print(f"### Verifier on the error-injection pool (bench/verifier.py --inject {n_refs})\n")
    print(f"- pool: hardneg.inject, seed {seed}, references from index {skip} of each train set; A = default error mix, {variants} variants × first {n_refs} references of "
          f"GSM8K train and of MATH train; B = MATH train algebra slips (8 per reference with a symbolic identity) until "
          f"{algebra_rows} rows; C = arithmetic slips (3 per reference) until {arith_rows // 2} rows per source; D = the first "
          f"{untouched} untouched references of each train set")
    print(f"- verifier: {verifier.version}, no NLI; {n_verified} candidates verified in {verify_s:.0f} s "
          f"({n_verified / verify_s:.1f} candidates/s), total with generation {time.perf_counter() - t_all:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f}\n")

    def table(title, rows, profs):
        print(f"| {title} | source | n | detected | exact first-error step | first error earlier | later / other step | d_logic mean | d_numeric mean "
              f"| W mean | A mean | stage 3 (W > 0.8 and A > 0.8) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        groups = defaultdict(list)
        for r, p in zip(rows, profs):
            groups[(r["error_type"], r["source"])].append((r, p))
        for (etype, src), rp in sorted(groups.items()):
            n = len(rp)
            det = sum(_detected(p, etype) for r, p in rp)
            if rp[0][0]["error_step"] is not None and etype not in ("repetition", "question_echo"):
                exact = sum(p.first_error_step == r["error_step"] for r, p in rp)
                early = sum(p.first_error_step is not None and p.first_error_step < r["error_step"] for r, p in rp)
                late = sum(p.first_error_step is not None and p.first_error_step > r["error_step"] for r, p in rp)
                ex = f"{exact / n:.3f} ({exact})"
                el = f"{early} / {late}"
            elif etype == "correct":
                fa = sum(p.first_error_step is not None for r, p in rp)
                ex, el = f"false alarms {fa} ({fa / n:.2%})", "—"
            else:
                ex, el = "—", "—"
            dl = np.mean([p.d_logic or 0 for r, p in rp])
            dn = np.mean([p.d_numeric or 0 for r, p in rp])
            wm = np.mean([p.wrongness or 0 for r, p in rp])
            am = np.mean([p.absurdity or 0 for r, p in rp])
            s3 = sum((p.wrongness or 0) > 0.8 and (p.absurdity or 0) > 0.8 for r, p in rp)
            print(f"| {etype} | {src} | {n} | {det / n:.3f} | {ex} | {el} | {dl:.3f} | {dn:.3f} | {wm:.3f} | {am:.3f} | {s3} |")
        print()

    table("A: error type (default mix)", mix_rows, mix_prof)
    table("B: MATH algebra slips", alg_rows, alg_prof)
    table("C: arithmetic slips", ar_rows, ar_prof)
    table("D: untouched references", un_rows, un_prof)

    def floor(name, rows, profs, goal):
        n = len(rows)
        exact = sum(p.first_error_step == r["error_step"] for r, p in zip(rows, profs))
        print(f"- {name}: exact first-error step {exact}/{n} = **{exact / max(1, n):.3f}** (goal ≥ {goal}) "
              f"{'met' if n and exact / n >= goal else 'NOT met'}")

    floor("MATH algebra slips (B)", alg_rows, alg_prof, 0.80)
    floor("arithmetic slips (C, both sources)", ar_rows, ar_prof, 0.90)
    for src in ("math", "gsm8k"):
        rp = [(r, p) for r, p in zip(un_rows, un_prof) if r["source"] == src]
        fa = sum(p.first_error_step is not None for r, p in rp)
        goal = " (goal ≤ 1 %)" if src == "math" else ""
        print(f"- false alarms on untouched {src.upper()} train references (D): {fa}/{len(rp)} = **{fa / max(1, len(rp)):.2%}**{goal}")
    # d4 without NLI: graded?
    all_prof = mix_prof
    bins = Counter()
    for p in all_prof:
        v = p.d_logic or 0.0
        b = "0" if v == 0 else "(0, 0.5]" if v <= 0.5 else "(0.5, 0.7]" if v <= 0.7 else "(0.7, 0.9)" if v < 0.9 - 1e-9 else "[0.9, 1]"
        bins[b] += 1
    distinct = len({round(p.d_logic or 0, 3) for p in all_prof})
    order = ["0", "(0, 0.5]", "(0.5, 0.7]", "(0.7, 0.9)", "[0.9, 1]"]
    print(f"- d_logic (d4) without NLI on pool A ({len(all_prof)} candidates): "
          + ", ".join(f"{b}: {bins[b]}" for b in order) + f"; {distinct} distinct values")
    stage3 = sum((p.wrongness or 0) > 0.8 and (p.absurdity or 0) > 0.8 for p in all_prof)
    hard = sum(0.3 <= (p.wrongness or 0) <= 0.8 for p in all_prof)
    print(f"- funnel stage 3 rule (W > 0.8 and A > 0.8) on pool A: {stage3} of {len(all_prof)} candidates would be removed; "
          f"{hard} have 0.3 ≤ W ≤ 0.8\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=60, help="GSM8K train problems (× 6 candidates) for the batched run")
    ap.add_argument("--naive", type=int, default=60, help="candidates for the naive one-at-a-time run")
    ap.add_argument("--nli", type=int, default=24, help="candidates for the NLI run (0 to skip)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per path (interleaved; the median is reported)")
    ap.add_argument("--warehouse", default=None, help="instead of the synthetic workload, the sampled candidates of this "
                    "hardneg warehouse (DuckDB file), up to 6 × --problems of them")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="torch device of both models (cpu, cuda)")
    ap.add_argument("--embedding-model", default=None, help="sentence-transformers folder (default: the offline package)")
    ap.add_argument("--audit", type=int, default=0, help="also run the equation checker over this many GSM8K train and MATH test "
                    "reference solutions and count the equalities it calls wrong (false-alarm audit)")
    ap.add_argument("--inject", type=int, default=0, help="validation on the error-injection pool: the default error mix "
                    "over this many references per train set, plus the algebra/arithmetic/untouched sets below (0: skip)")
    ap.add_argument("--inject-variants", type=int, default=12, help="variants per reference of the default-mix pool")
    ap.add_argument("--algebra-rows", type=int, default=1000, help="injected MATH algebra slips to verify")
    ap.add_argument("--arith-rows", type=int, default=1000, help="injected arithmetic slips to verify (half per source)")
    ap.add_argument("--untouched", type=int, default=2000, help="untouched references per train set (false alarms)")
    ap.add_argument("--inject-seed", type=int, default=0, help="InjectConfig.seed of the validation pool")
    ap.add_argument("--inject-skip", type=int, default=0, help="leave out the first N references of each train set "
                    "(held-out slice; the rules were developed on seed 0, MATH train references < 3000)")
    ap.add_argument("--inject-only", action="store_true", help="run only the --inject validation and the --audit (no throughput runs)")
    ap.add_argument("--untouched-test", type=int, default=0, help="false alarms of the whole verifier on the first N MATH "
                    "*test* references (a blind check: no rule was developed on them; 0: skip)")
    args = ap.parse_args()

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from hardneg.bounded import call_bounded
    from hardneg.verifier import MathVerifier, ModelLoadError, NLIScorer, SentenceEmbedder, VerifierConfig, default_embedding_model
    from hardneg.verifier import symbolic

    t_load = time.perf_counter()
    model_path = args.embedding_model or default_embedding_model()
    dev = args.device
    cfg = VerifierConfig(use_nli=False, device=dev, embedding_model=model_path)
    verifier = MathVerifier(cfg)  # the shipped defaults: packed embedding, cache on
    batched_emb = verifier.embedder
    load_s = time.perf_counter() - t_load
    call_bounded(symbolic.warm, timeout=120)
    warm_items, _ = workload(5000, 3, seed=1)  # different problems: warms torch/tokenizer, not the cache
    verifier.verify_batch(warm_items)
    if args.inject_only:
        if args.inject:
            inject_eval(verifier, args.inject, args.inject_variants, args.algebra_rows, args.arith_rows, args.untouched,
                        seed=args.inject_seed, skip=args.inject_skip)
        if args.audit:  # `--inject-only --audit N` (with or without --inject): the audit runs too
            audit(args.audit)
        if args.untouched_test:
            test_false_alarms(verifier, args.untouched_test)
        return

    if args.warehouse:
        items = warehouse_workload(args.warehouse, len(KINDS) * args.problems)
        kinds = ["sampled"] * len(items)
    else:
        items, kinds = workload(0, args.problems)
    naive_items = items[: args.naive]
    model, packer = batched_emb.model, batched_emb.packer
    naive_cfg = VerifierConfig(use_nli=False, device=dev, batch_size=1, embedding_batch_size=1, embedding_cache_size=0,
                               analysis_cache_size=0)
    paths = {
        # the shipped defaults: texts packed into rows, caches on
        "packed": (cfg, lambda: SentenceEmbedder(model, cfg.embedding_batch_size, cfg.embedding_cache_size, packer=packer)),
        # the same, with texts in padded batches of embedding_batch_size
        "padded": (cfg, lambda: SentenceEmbedder(model, cfg.embedding_batch_size, cfg.embedding_cache_size)),
        # naive: same weights, no batching, no cache, one candidate per call
        "naive": (naive_cfg, lambda: SentenceEmbedder(model, batch_size=1, cache_size=0)),
    }
    walls: dict[str, list[float]] = {name: [] for name in paths}
    outputs: dict[str, list] = {}
    encoded = 0
    encoder_rate: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # interleaved, every pass with cold caches, so drift hits all paths alike
        for name, (config, make_embedder) in paths.items():
            embedder = make_embedder()
            v = MathVerifier(config, embedder=embedder)
            t0 = time.perf_counter()
            if name == "naive":
                out = [p for it in naive_items for p in v.verify_batch([it])]
            else:
                out = v.verify_batch(items)
            walls[name].append(time.perf_counter() - t0)
            outputs[name] = out
            encoder_rate.setdefault(name, []).append(embedder.encoded_texts / max(embedder.encode_seconds, 1e-9))
            if name == "packed":
                encoded = embedder.encoded_texts
    profiles = outputs["packed"]
    wall = {name: float(np.median(w)) for name, w in walls.items()}
    n_items = {"packed": len(items), "padded": len(items), "naive": len(naive_items)}
    rate = {name: n_items[name] / wall[name] for name in paths}
    spread = {name: (n_items[name] / max(w), n_items[name] / min(w)) for name, w in walls.items()}
    batched_rate, naive_rate = rate["packed"], rate["naive"]

    def agreement(a_list, b_list) -> str:
        """Numbers agree to float noise (the encoders' vectors differ in the 7th digit) and every
        decision (flags, reasons, first_error_step, answers, None-ness) is the same."""
        worst, same = 0.0, True

        def walk(x, y):
            nonlocal worst, same
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
            if numbers and (isinstance(x, float) or isinstance(y, float)):  # ints (step indices) stay exact
                worst = max(worst, abs(x - y))
            elif isinstance(x, dict) and isinstance(y, dict) and x.keys() == y.keys():
                for k in x:
                    walk(x[k], y[k])
            elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
                for u, v in zip(x, y):
                    walk(u, v)
            else:
                same &= x == y

        for a, b in zip(a_list, b_list):
            walk(a.to_dict() | {"elapsed_ms": 0.0}, b.to_dict() | {"elapsed_ms": 0.0})
        return f"decisions {'identical' if same else 'DIFFER'}, max difference of any number {worst:.1e}"

    same, same_padded = agreement(profiles, outputs["naive"]), agreement(profiles, outputs["padded"])

    nli_line = "skipped"
    if args.nli:
        nli_kind = "cross-encoder/nli-deberta-v3-base (offline cache)"
        try:
            scorer = NLIScorer.from_pretrained("cross-encoder/nli-deberta-v3-base", device=dev)
        except ModelLoadError:
            model, tok = random_deberta_nli(model_path)
            scorer = NLIScorer(model, tok, device=dev, batch_size=16)
            nli_kind = "randomly initialized DeBERTa-v3-base-sized classifier (no MNLI weights offline)"
        nli_v = MathVerifier(VerifierConfig(use_nli=True, device=dev), embedder=batched_emb, nli=scorer)
        nli_v.verify_batch(warm_items[:2])
        nli_items = items[: args.nli]
        p0 = scorer.scored_pairs
        t0 = time.perf_counter()
        nli_profiles = nli_v.verify_batch(nli_items)
        nli_s = time.perf_counter() - t0
        pairs = scorer.scored_pairs - p0
        n_params = sum(p.numel() for p in scorer.model.parameters()) / 1e6
        nli_line = (
            f"{len(nli_items) / nli_s:.2f} candidates/s ({len(nli_items)} candidates, {pairs} unique NLI pairs scored, "
            f"{pairs / nli_s:.1f} pairs/s; model: {nli_kind}, {n_params:.0f}M parameters)"
        )
        assert all(0.0 <= p.d_logic <= 1.0 for p in nli_profiles)

    print("### MathVerifier throughput (bench/verifier.py)\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
          f"torch {torch.__version__} with {torch.get_num_threads()} intra-op threads; load average before run "
          f"{os.getloadavg()[0]:.1f}; models on {dev}"
          + (f" ({torch.cuda.get_device_name()})" if dev.startswith("cuda") else ""))
    extra = (f" --threads {args.threads}" if args.threads else "") + (f" --device {dev}" if dev != "cpu" else "")
    extra += f" --audit {args.audit}" if args.audit else ""
    extra += f" --warehouse {args.warehouse}" if args.warehouse else ""
    print(f"- command: `.venv/bin/python bench/verifier.py --problems {args.problems} --naive {args.naive} --nli {args.nli} "
          f"--repeats {args.repeats}{extra}`")
    if args.warehouse:
        n_problems = len({it.question for it in items})
        print(f"- workload: {len(items)} sampled candidates of {n_problems} problems from {args.warehouse}; "
              f"mean {np.mean([len(p.steps) for p in profiles]):.1f} steps per candidate; embedding model load {load_s:.1f} s "
              "(not timed below)\n")
    else:
        print(f"- workload: {args.problems} GSM8K train problems × {len(KINDS)} candidates ({', '.join(KINDS)}); "
              f"mean {np.mean([len(p.steps) for p in profiles]):.1f} steps per candidate; embedding model load {load_s:.1f} s (not timed below)\n")
    print(f"| path | candidates | median wall s of {args.repeats} | candidates/s (median) | range |")
    print("|---|---|---|---|---|")
    packing = "packed rows" if packer is not None else "padded batches (packing unavailable for this model)"
    labels = {
        "packed": f"batched + cached, {packing} (no NLI; shipped defaults)",
        "padded": f"batched + cached, padded batches of {cfg.embedding_batch_size} texts (no NLI)",
        "naive": "naive: one at a time, no batching, no cache (no NLI)",
    }
    for name, label in labels.items():
        value = f"**{rate[name]:.1f}**" if name == "packed" else f"{rate[name]:.1f}"
        print(f"| {label} | {n_items[name]} | {wall[name]:.2f} | {value} | {spread[name][0]:.1f}–{spread[name][1]:.1f} |")
    print(f"\n- ratio batched / naive: **{batched_rate / naive_rate:.1f}×** (goal ≥ 10×); goal ≥ 100 candidates/s without NLI: "
          f"{'met' if batched_rate >= 100 else 'NOT met'} (median of {args.repeats})")
    print(f"- packed / padded: {rate['packed'] / rate['padded']:.2f}×; the encoder alone (median texts/s inside "
          f"`encode`): packed {np.median(encoder_rate['packed']):.0f}, padded {np.median(encoder_rate['padded']):.0f}, "
          f"one text at a time {np.median(encoder_rate['naive']):.0f}")
    print(f"- texts encoded by one batched pass: {encoded} (for {len(items)} candidates); profiles vs the naive path: "
          f"{same}; vs the padded path: {same_padded}")
    print(f"- with NLI: {nli_line}")
    print(f"- mean elapsed_ms per candidate (batched): {np.mean([p.elapsed_ms for p in profiles]):.2f}\n")
    if args.audit:
        audit(args.audit)
    if args.inject:
        inject_eval(verifier, args.inject, args.inject_variants, args.algebra_rows, args.arith_rows, args.untouched,
                    seed=args.inject_seed, skip=args.inject_skip)
    if args.warehouse:
        return
    print("| perturbation | n | d_semantic | d_structure | d_order | d_logic | d_numeric | d_answer | wrongness | flagged |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        ps = [p for p, k in zip(profiles, kinds) if k == kind]
        row = [np.mean([getattr(p, d) for p in ps]) for d in ("d_semantic", "d_structure", "d_order", "d_logic", "d_numeric", "d_answer", "wrongness")]
        flagged = sum(p.first_error_step is not None for p in ps)
        print(f"| {kind} | {len(ps)} | " + " | ".join(f"{x:.3f}" for x in row) + f" | {flagged}/{len(ps)} |")


if __name__ == "__main__":
    main()
