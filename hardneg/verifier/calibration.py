"""Calibration of the d1 (semantic) constants and the alignment threshold.

SPEC §2.2: d1 = 1 − mean_j max_i S_rp[i,j], "rescaled so paraphrases ≈ 0 (calibrated on
reference-vs-paraphrase pairs)". How the defaults in VerifierConfig were obtained:

- PARAPHRASES below are hand-written paraphrases (same reasoning, new wording, candidate
  style: no calculator annotations, "The answer is: X") of GSM8K *train* references 0–23
  (by line number in data/gsm8k/train.jsonl; 8, 9, 10, 15, 17, 21 left out).
- raw(ref, para) over these pairs: `semantic_paraphrase_level` = its 90th percentile
  (so ~90 % of paraphrases score d1 = 0 and the rest a little above).
- raw(ref_i, ref_k) for references of *different* problems (each reference against the
  next one): `semantic_unrelated_level` = the median (an unrelated solution scores ≈ 1).
- `match_threshold` (alignment): midway between the 10th percentile of the best match
  of a paraphrase step and the 90th percentile of cross-problem step similarities.
- `drift_threshold`: the 95th percentile of cross-problem step similarities to the
  question (a step less similar than that to the question and the reference is off-topic).

Re-run with `python -m hardneg.verifier.calibration` (prints the constants and a markdown
table); tests/test_verifier_calibration.py checks that the shipped defaults still match.
The paraphrase test in tests/test_verifier.py uses a problem NOT in this set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from .steps import embedding_text, split_steps

__all__ = ["PARAPHRASES", "calibrate", "raw_semantic"]

DATA = Path(__file__).resolve().parents[2] / "data" / "gsm8k" / "train.jsonl"

# GSM8K train line number -> hand-written paraphrase of its reference solution.
PARAPHRASES: dict[int, str] = {
    0: "In May Natalia sold half as many clips, which is 48/2 = 24 clips.\n"
    "Over April and May together she sold 48+24 = 72 clips.\nThe answer is: 72",
    1: "Per minute Weng makes 12/60 = $0.2.\nFor 50 minutes of babysitting she gets 0.2 x 50 = $10.\nThe answer is: 10",
    2: "Betty starts with half of the wallet price, 100 / 2 = $50.\n"
    "Her grandparents give her twice what her parents gave, 15 * 2 = $30.\n"
    "She still needs 100 - 50 - 30 - 15 = $5.\nThe answer is: 5",
    3: "Today Julie read twice yesterday's pages: 12 x 2 = 24 pages.\n"
    "Since yesterday she has read 12 + 24 = 36 pages in total.\n"
    "The pages still unread are 120 - 36 = 84.\n"
    "Half of the remaining pages is 84/2 = 42 pages, which she reads tomorrow.\nThe answer is: 42",
    4: "Each week James writes 3*2 = 6 pages to one friend.\nFor both friends that makes 6*2 = 12 pages weekly.\n"
    "Over a year he writes 12*52 = 624 pages.\nThe answer is: 624",
    5: "Purple flowers outnumber yellow ones by 80/100 * 10 = 8.\nSo the garden has 10 + 8 = 18 purple flowers.\n"
    "Yellow and purple flowers together make 10 + 18 = 28.\nGreen flowers are 25/100 * 28 = 7.\n"
    "Altogether Mark has 28 + 7 = 35 plants.\nThe answer is: 35",
    6: "From the two large pizzas Albert eats 2 x 16 = 32 slices.\nFrom the two small pizzas he eats 2 x 8 = 16 slices.\n"
    "In total he eats 32 + 16 = 48 pieces.\nThe answer is: 48",
    7: "Adding brownies tripled the 2 pounds of jelly beans to 2*3 = 6 pounds.\n"
    "Two more pounds of jelly beans brought the box to 6+2 = 8 pounds.\n"
    "The gummy worms doubled it again to 8*2 = 16 pounds.\nThe answer is: 16",
    11: "Together Tobias had 95 + 15 = $110 before buying the shoes.\nHis allowance gave him 3 x 5 = $15.\n"
    "Mowing lawns brought in 4 x 15 = $60.\nShoveling driveways therefore earned 110 - 60 - 15 = $35.\n"
    "That is 35 / 7 = 5 driveways.\nThe answer is: 5",
    12: "Half of Randy's 60 mango trees is 60/2 = 30 trees.\nHe has 5 fewer coconut trees than that: 30 - 5 = 25.\n"
    "His farm has 60 + 25 = 85 trees in total.\nThe answer is: 85",
    13: "The cream cheese costs half the cheddar price, $10 / 2 = $5.\nThe cold cuts cost twice as much, $10 x 2 = $20.\n"
    "Jasper's ingredients cost $10 + $5 + $20 = $35.\nThe answer is: 35",
    14: "An hour has 3 blocks of 20 minutes.\nSo in one hour Joy reads 8 x 3 = 24 pages.\n"
    "Reading 120 pages takes 120/24 = 5 hours.\nThe answer is: 5",
    16: "The ratio gives Johnson 5 parts for every 2 parts Mike gets.\nOne part is worth $2500/5 = $500.\n"
    "Mike's share is 2*$500 = $1000.\nAfter spending $200 on a shirt he keeps $1000-$200 = $800.\nThe answer is: 800",
    18: "Walking one way takes Roque 2*3 = 6 hours each week.\nWalking there and back takes 6*2 = 12 hours weekly.\n"
    "Biking one way takes 1*2 = 2 hours per week.\nBiking both ways takes 2*2 = 4 hours per week.\n"
    "Altogether he spends 12+4 = 16 hours a week commuting.\nThe answer is: 16",
    19: "Each workday Tim bikes 20*2 = 40 miles.\nOver the five workdays that is 40*5 = 200 miles.\n"
    "With the 200-mile weekend ride the total is 200+200 = 400 miles.\nAt 25 mph this takes 400/25 = 16 hours.\n"
    "The answer is: 16",
    20: "Bella bought 11 + 9 = 20 truck stamps.\nShe bought 20 − 13 = 7 rose stamps.\n"
    "In total she bought 11 + 20 + 7 = 38 stamps.\nThe answer is: 38",
    22: "Bobbie's last name has twice as many letters as Jamie's plus two: 4*2 +2 = 10 letters.\n"
    "Samantha's last name is three letters shorter: 10 - 3 = 7 letters.\nThe answer is: 7",
    23: "The five pairs of shorts cost 5*7 = $35.\nThe two pairs of shoes cost 2*10 = $20.\n"
    "Shorts and shoes together cost 35+20 = $55.\nThat leaves 75-55 = $20 for the tops.\n"
    "Each of the 4 tops cost 20/4 = $5.\nThe answer is: 5",
}


def raw_semantic(R: np.ndarray, P: np.ndarray) -> float:
    """1 − mean_j max_i S_rp[i,j] for normalized step embeddings R (ref) and P (pred)."""
    S = R @ P.T
    return 1.0 - float(S.max(axis=0).mean())


def _load_rows(n: int) -> list[dict]:
    rows = []
    with open(DATA) as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            rows.append(json.loads(line))
    return rows


def calibrate(embedder, n_unrelated: int = 60) -> dict:
    """The calibrated constants (see the module docstring) and the raw distributions."""
    rows = _load_rows(max(max(PARAPHRASES) + 1, n_unrelated + 1))
    ref_steps = {i: split_steps(rows[i]["answer"]) for i in set(PARAPHRASES) | set(range(n_unrelated + 1))}
    para_steps = {i: split_steps(t) for i, t in PARAPHRASES.items()}
    texts = {embedding_text(s) for steps in list(ref_steps.values()) + list(para_steps.values()) for s in steps}
    texts |= {rows[i]["question"] for i in range(n_unrelated)}
    texts = sorted(texts)
    mat = np.asarray(embedder.encode(texts), dtype=np.float32)  # one batched pass
    mat = mat / np.linalg.norm(mat, axis=1, keepdims=True)
    index = {t: k for k, t in enumerate(texts)}

    def emb(steps: list[str]) -> np.ndarray:
        return mat[[index[embedding_text(s)] for s in steps]]

    para_raw, para_best = [], []
    for idx in PARAPHRASES:
        R, P = emb(ref_steps[idx]), emb(para_steps[idx])
        para_raw.append(raw_semantic(R, P))
        para_best.extend((R @ P.T).max(axis=0).tolist())
    unrel_raw, cross_sim, q_cross = [], [], []
    for i in range(n_unrelated):
        R, P = emb(ref_steps[i]), emb(ref_steps[i + 1])
        unrel_raw.append(raw_semantic(R, P))
        cross_sim.extend((R @ P.T).ravel().tolist())
        qv = mat[[index[rows[i]["question"]]]]
        q_cross.extend((qv @ P.T).ravel().tolist())
    return {
        "semantic_paraphrase_level": float(np.percentile(para_raw, 90)),
        "semantic_unrelated_level": float(np.median(unrel_raw)),
        "match_threshold": float((np.percentile(para_best, 10) + np.percentile(cross_sim, 90)) / 2),
        "drift_threshold": float(np.percentile(q_cross, 95)),
        "paraphrase_raw": para_raw,
        "unrelated_raw": unrel_raw,
        "paraphrase_best_p10": float(np.percentile(para_best, 10)),
        "cross_step_p90": float(np.percentile(cross_sim, 90)),
    }


def main(embedding_model: Optional[str] = None) -> None:
    from .config import VerifierConfig
    from .embedding import SentenceEmbedder

    cfg = VerifierConfig()
    emb = SentenceEmbedder.from_pretrained(embedding_model or cfg.embedding_model, device="cpu")
    c = calibrate(emb)
    print("| constant | calibrated | shipped default |\n|---|---|---|")
    for k in ("semantic_paraphrase_level", "semantic_unrelated_level", "match_threshold", "drift_threshold"):
        print(f"| {k} | {c[k]:.3f} | {getattr(cfg, k):.3f} |")
    pr = np.array(c["paraphrase_raw"])
    ur = np.array(c["unrelated_raw"])
    print(f"\nparaphrase raw: min {pr.min():.3f} median {np.median(pr):.3f} max {pr.max():.3f} (n={len(pr)})")
    print(f"unrelated raw:  min {ur.min():.3f} median {np.median(ur):.3f} max {ur.max():.3f} (n={len(ur)})")
    print(f"paraphrase best-match p10 {c['paraphrase_best_p10']:.3f}; cross-problem step similarity p90 {c['cross_step_p90']:.3f}")


if __name__ == "__main__":
    main()
