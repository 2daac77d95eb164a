"""Benchmark: an older verifier against this one, interleaved in one process (ratios stay meaningful on a
shared machine). The old code is a plain copy of its `hardneg/` package, e.g.

    git archive 698d311 hardneg | tar -x -C /tmp/hn-old
    .venv/bin/python bench/verifier_compare.py 3 /tmp/hn-old

Same MiniLM weights, cold caches per pass, the GSM8K-length workload of bench/verifier.py (360 candidates).
"""
import importlib.util, os, sys, time, statistics
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT); sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

def load_old(root):
    spec = importlib.util.spec_from_file_location("hardneg_old", os.path.join(root, "hardneg/__init__.py"),
                                                  submodule_search_locations=[os.path.join(root, "hardneg")])
    mod = importlib.util.module_from_spec(spec); sys.modules["hardneg_old"] = mod; spec.loader.exec_module(mod)
    import hardneg_old.verifier as v
    return v

if __name__ == "__main__":
    import verifier as bench
    import hardneg.verifier as new
    passes = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    old = load_old(sys.argv[2] if len(sys.argv) > 2 else "/tmp/hn-old")
    cfg = new.VerifierConfig(use_nli=False, device="cpu")
    base = new.MathVerifier(cfg)
    model, packer = base.embedder.model, base.embedder.packer
    items, kinds = bench.workload(0, 60)
    warm, _ = bench.workload(5000, 3, seed=1)
    old_items = [old.VerifyInput(i.id, i.question, i.candidate, i.reference_solution, i.reference_answer) for i in items]
    old_warm = [old.VerifyInput(i.id, i.question, i.candidate, i.reference_solution, i.reference_answer) for i in warm]
    ocfg = old.VerifierConfig(use_nli=False, device="cpu")
    old.MathVerifier(ocfg, embedder=base.embedder).verify_batch(old_warm); base.verify_batch(warm)
    rates = {"old": [], "new": []}
    for _ in range(passes):
        for name in ("old", "new"):
            emb = new.SentenceEmbedder(model, cfg.embedding_batch_size, cfg.embedding_cache_size, packer=packer)
            v = old.MathVerifier(ocfg, embedder=emb) if name == "old" else new.MathVerifier(cfg, embedder=emb)
            its = old_items if name == "old" else items
            t0 = time.perf_counter(); v.verify_batch(its); dt = time.perf_counter() - t0
            rates[name].append(len(its) / dt)
    mo, mn = statistics.median(rates["old"]), statistics.median(rates["new"])
    print(f"load before: {os.getloadavg()}")
    print(f"old median {mo:.1f} cand/s {[round(r,1) for r in rates['old']]}")
    print(f"new median {mn:.1f} cand/s {[round(r,1) for r in rates['new']]}")
    print(f"new/old ratio (median of per-pass ratios): {statistics.median([n/o for n,o in zip(rates['new'], rates['old'])]):.3f}")
