"""Fuzz: the MathVerifier on generated hostile inputs — zero crashes, bounded latency.

Why: the verifier sees every sampled candidate, and a 135M policy emits anything: empty
strings, 100 KB of repetition, unicode junk, runaway LaTeX, `10^10^10^10`. The contract is
that no input can crash or hang a batch (SPEC §2.2, COMMON.md). Each generated input (a
seeded mix of the kinds below, with a normal or hostile question/reference) goes through
`verify_batch` in small batches; a crash is an exception out of `verify_batch`, an analysis
failure a profile with channel 'failed' (the batch survives it, but it should not happen).

Latency per input = the profile's elapsed_ms (its own analysis time plus its share of the
batch's embedding pass); the slowest whole batch is reported too.

On a busy 2-core machine the MiniLM encoder does ~50 texts/s and 10,000 hostile inputs take
far longer than a few minutes; `--embedder hash` swaps in a deterministic hashing embedder
(random unit vectors keyed by the text) so the rest of the pipeline — segmentation,
equations, SymPy, alignment, value flow, grading — gets the full 10,000 quickly. The
default (`minilm`) also exercises the real tokenizer/encoder on the junk.

    .venv/bin/python bench/fuzz_verifier.py [--n 10000] [--batch 20] [--seed 0] [--threads N] [--embedder hash]

Prints a markdown block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LATEX_VOCAB = [
    "\\frac", "\\sqrt", "^", "_", "{", "}", "(", ")", "[", "]", "\\left(", "\\right)", "\\pi", "\\sin", "\\cdot",
    "\\times", "=", "+", "-", "*", "/", "!", "%", "$", "$$", "\\[", "\\]", "x", "y", "2", "10", "3.5", "0", "\\boxed",
    "\\begin{align}", "\\end{align}", "&", "\\\\", "\\text{cm}", "\\approx", "<<", ">>", "\\%", ",", ".", " ",
]
TOWERS = [
    "10^10^10^10", "9^9^9^9 = 1", "2**2**2**2**2**2 = 4", "(10^{10^{10}}) = 7", "$10^{10^{10^{10}}} = x$",
    "1000000! = 1", "\\sqrt[10^10]{2} = 1", "2^{-10^{10}} = 0", "$\\sqrt{2}^{256} = 2^{128}$", "$\\sin(10^{100}) = 0$",
    "(-8)^{1/3} = -2", "0^{-1} = 5", "1/0 = 3", "$\\frac{1}{0} = \\infty$", "99999999999999999999^99 = 1",
    "$\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}} = 1.011$", "$e^{\\pi i} = -1$", "$\\log(0) = 1$",
]


def _rand_unicode(rng: random.Random, n: int) -> str:
    ranges = [(0x0, 0x7F), (0x80, 0x2FF), (0x300, 0x36F), (0x590, 0x6FF), (0x2000, 0x206F), (0x4E00, 0x4FFF),
              (0x1F300, 0x1F6FF), (0xD800, 0xDFFF), (0xFFF0, 0xFFFF), (0x10000, 0x10FFFF)]
    out = []
    for _ in range(n):
        a, b = rng.choice(ranges)
        out.append(chr(rng.randint(a, b)))
    return "".join(out)


def _latex_soup(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(LATEX_VOCAB) for _ in range(n))


def _mutate(rng: random.Random, text: str, k: int) -> str:
    chars = list(text)
    for _ in range(k):
        op = rng.random()
        i = rng.randrange(len(chars) + 1)
        if op < 0.4:
            chars.insert(i, rng.choice("{}()[]$\\^_=<>|!%.,0123456789\n"))
        elif op < 0.7 and chars:
            del chars[min(i, len(chars) - 1)]
        elif chars:
            j = min(i, len(chars) - 1)
            chars[j:j] = chars[j : j + rng.randint(1, 20)]
    return "".join(chars)


def generate(rng: random.Random, gsm: list[dict]):
    """(kind, question, candidate, reference_solution, reference_answer)."""
    row = rng.choice(gsm)
    q, ref, ans = row["question"], row["answer"], row["answer"].split("####")[-1].strip()
    kind = rng.choices(
        ["empty", "huge", "unicode", "nested", "tower", "unbalanced", "bignum", "many_eq", "regex", "mutated", "soup", "hostile_ref"],
        weights=[5, 1, 10, 10, 12, 10, 6, 6, 8, 16, 12, 4],
    )[0]
    if kind == "empty":
        cand = rng.choice(["", " ", "\n\n\n", "\t", "Step 1:", "####", "The answer is:", "$$", "\\boxed{}"])
    elif kind == "huge":
        unit = rng.choice(["Step 1: 2 + 2 = 5. ", "x", "word ", "1+1=2\n", "\\frac{1}{2} ", _rand_unicode(rng, 50)])
        cand = (unit * (100_000 // len(unit) + 1))[:100_000]
    elif kind == "unicode":
        cand = _rand_unicode(rng, rng.randint(1, 2000))
    elif kind == "nested":
        d = rng.randint(10, 3000)
        op, cl = rng.choice([("\\frac{", "}{2}"), ("\\sqrt{", "}"), ("(", ")"), ("{", "}"), ("\\left(", "\\right)"), ("2^{", "}")])
        cand = op * d + "1" + cl * rng.choice([d, d // 2, 0]) + " = " + str(rng.randint(0, 9))
    elif kind == "tower":
        cand = "\n".join(rng.choice(TOWERS) for _ in range(rng.randint(1, 6)))
    elif kind == "unbalanced":
        cand = "".join(rng.choice(["{", "}", "(", ")", "[", "]", "$", "\\[", "\\]", "<<", ">>", "1+2=3", " = ", "\\frac{"]) for _ in range(rng.randint(1, 500)))
    elif kind == "bignum":
        n = rng.choice([50, 500, 5000, 50_000])
        cand = "".join(rng.choice("0123456789") for _ in range(n)) + " * 2 = " + "9" * min(n, 100)
    elif kind == "many_eq":
        cand = "\n".join(f"{i} + {i} = {2 * i + rng.choice([0, 0, 0, 1])}" for i in range(rng.randint(10, 800)))
    elif kind == "regex":
        unit = rng.choice(["a. B", "$", "<<", "\\", "Step 1:", "= ", ".5", "\\begin{x}", "1,000,", "$1 ", "e.g. "])
        cand = unit * rng.randint(100, 20_000)
    elif kind == "mutated":
        cand = _mutate(rng, ref, rng.randint(1, 60))
    elif kind == "soup":
        cand = _latex_soup(rng, rng.randint(1, 1500))
    else:  # hostile question and reference, normal candidate
        cand = ref
        q = _latex_soup(rng, rng.randint(0, 500))
        ref = rng.choice([_mutate(rng, ref, 50), "\\frac{" * 2000, _rand_unicode(rng, 500), ""])
        ans = rng.choice([ans, "\\frac{1}{0}", "10^10^10^10", _rand_unicode(rng, 20), ""])
    r = rng.random()
    if r < 0.25:
        ref_sol, ref_ans = None, None
    elif r < 0.35:
        ref_sol, ref_ans = None, ans
    else:
        ref_sol, ref_ans = ref, ans
    return kind, q, cand, ref_sol, ref_ans


class HashEmbedder:
    """Unit vectors from a hash of the text: same text, same vector; nothing semantic."""

    def __init__(self, dim: int = 384):
        self.dim = dim

    def encode(self, texts):
        import hashlib

        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode("utf-8", "replace"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--embedding-model", default=None, help="sentence-transformers folder (default: the offline package)")
    ap.add_argument("--embedder", choices=("minilm", "hash"), default="minilm",
                    help="minilm: the real encoder; hash: a hashing stand-in that isolates the rest of the pipeline")
    ap.add_argument("--time-limit", type=float, default=None, help="stop generating inputs after this many seconds (report what ran)")
    args = ap.parse_args()

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from hardneg.verifier import MathVerifier, SentenceEmbedder, VerifierConfig, VerifyInput, default_embedding_model

    with open(ROOT / "data/gsm8k/train.jsonl") as f:
        gsm = [json.loads(line) for _, line in zip(range(500), f)]
    if args.embedder == "hash":
        emb = HashEmbedder()
    else:
        emb = SentenceEmbedder.from_pretrained(args.embedding_model or default_embedding_model(), device="cpu")
    verifier = MathVerifier(VerifierConfig(use_nli=False, device="cpu"), embedder=emb)
    verifier.verify_batch([VerifyInput("warm", gsm[0]["question"], gsm[0]["answer"], gsm[0]["answer"], "72")])

    rng = random.Random(args.seed)
    crashes: list[str] = []
    failed = Counter()
    lat: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    flagged = 0
    worst_batch = (0.0, "")
    t_start = time.perf_counter()
    done = 0
    while done < args.n and (args.time_limit is None or time.perf_counter() - t_start < args.time_limit):
        size = min(args.batch, args.n - done)
        gen = [generate(rng, gsm) for _ in range(size)]
        items = [VerifyInput(f"f{done + i}", q, c, rs, ra) for i, (_, q, c, rs, ra) in enumerate(gen)]
        t0 = time.perf_counter()
        try:
            profiles = verifier.verify_batch(items)
        except BaseException as exc:  # noqa: BLE001 - that is exactly what we count
            crashes.append(f"{type(exc).__name__}: {exc}"[:200])
            done += size
            continue
        wall = time.perf_counter() - t0
        if wall > worst_batch[0]:
            worst_batch = (wall, Counter(k for k, *_ in gen).most_common(2).__repr__())
        assert len(profiles) == size
        for (kind, *_), p in zip(gen, profiles):
            json.dumps(p.to_dict())
            if "failed" in p.channels:
                failed[kind] += 1
            lat.append(p.elapsed_ms)
            by_kind[kind].append(p.elapsed_ms)
            flagged += any(s.flags for s in p.steps)
        done += size
    total = time.perf_counter() - t_start
    lat_a = np.array(lat)

    print("### MathVerifier fuzz (bench/fuzz_verifier.py)\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
          f"torch {torch.__version__} with {torch.get_num_threads()} intra-op threads; load average before run "
          f"{os.getloadavg()[0]:.1f}; embedder: "
          + ("all-MiniLM-L6-v2 on CPU" if args.embedder == "minilm" else "hashing stand-in (no neural encoder)") + "; no NLI")
    extra = (f" --threads {args.threads}" if args.threads else "") + (f" --time-limit {args.time_limit:g}" if args.time_limit else "")
    extra += " --embedder hash" if args.embedder == "hash" else ""
    print(f"- command: `.venv/bin/python bench/fuzz_verifier.py --n {args.n} --batch {args.batch} --seed {args.seed}{extra}`")
    stopped = f" (stopped by --time-limit {args.time_limit:g} s before {args.n})" if done < args.n else ""
    print(f"- inputs: {done} in batches of {args.batch}{stopped}; total wall {total:.1f} s ({done / total:.1f} inputs/s)")
    print(f"- **crashes (exceptions out of verify_batch): {len(crashes)}**; profiles with channel 'failed': {sum(failed.values())}"
          + (f" ({dict(failed)})" if failed else ""))
    print(f"- latency per input (elapsed_ms): p50 {np.percentile(lat_a, 50):.1f} ms, p99 {np.percentile(lat_a, 99):.1f} ms, "
          f"**max {lat_a.max():.1f} ms**; slowest whole batch {worst_batch[0]:.2f} s (kinds {worst_batch[1]})")
    print(f"- inputs with at least one step flag: {flagged}\n")
    print("| kind | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for kind in sorted(by_kind):
        a = np.array(by_kind[kind])
        print(f"| {kind} | {len(a)} | {np.percentile(a, 50):.1f} | {np.percentile(a, 99):.1f} | {a.max():.1f} |")
    for c in crashes[:5]:
        print(f"\n    crash: {c}")


if __name__ == "__main__":
    main()
