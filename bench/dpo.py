"""Step time of WeightedDPOTrainer vs TRL's plain DPOTrainer, same model, same data, side by side.

Goal (task brief): the weighting costs ≤ 3 % per training step.

Model: a small Llama built here from scratch (tests/tiny_model.py's builder, ChatML BPE tokenizer
trained on GSM8K lines; default hidden 128, 4 layers, 4 heads / 2 KV heads, vocab 512; under
1 M parameters, so that the fixed cost of the weighting is a *larger* share of a step than on a
real model: a conservative setting), fp32 on CPU, LoRA r=16 on all seven projections, reference = adapter disabled
(the pipeline's setup). Data: 32 GSM8K pairs (reference solution as chosen, a corrupted solution
as rejected), random log-normal raw weights, λ = 0.3. Both trainers see the same pre-collated
micro-batches of 4 pairs.

Measured: `Trainer.training_step` (policy forward + reference forward + backward) plus the
optimizer step, per micro-batch. Rounds interleave the two trainers (order alternating) so that
load from other processes on this shared machine hits both alike; the headline is the median of
the per-round ratios.

Run: .venv/bin/python bench/dpo.py [--rounds 16] [--steps 2] [--hidden 128] [--layers 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402

transformers.logging.set_verbosity_error()

from hardneg.dpo import (  # noqa: E402
    WeightedDPOConfig,
    WeightedDPOTrainer,
    WeightedPreferenceCollator,
    build_preference_dataset,
)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def gsm8k_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    with open(ROOT / "data" / "gsm8k" / "train.jsonl") as f:
        for i, line in enumerate(f):
            if len(rows) >= n:
                break
            r = json.loads(line)
            sol = r["answer"].replace("####", "The answer is:")
            steps = sol.split("\n")
            # a plausible wrong solution: a step dropped and the final number changed
            wrong = "\n".join(steps[:-2] + steps[-1:]) if len(steps) > 2 else sol
            wrong = wrong.rsplit(":", 1)[0] + ": " + str(int(rng.integers(2, 999)))
            rows.append({"pair_id": f"gsm8k-train-{i}", "prompt": r["question"], "chosen": sol, "rejected": wrong,
                         "raw_weight": float(rng.lognormal(0.5, 0.6))})
    return pd.DataFrame(rows)


def make_trainer(cls, model_dir, tmp, dataset, **kw):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    # λ = 0.3 reaches the weighted loss through its config, as β does (WeightedDPOConfig).
    config_cls = WeightedDPOConfig if issubclass(cls, WeightedDPOTrainer) else DPOConfig
    args = config_cls(output_dir=str(tmp), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=4,
                     gradient_checkpointing=False, max_length=512, seed=0, beta=0.1, learning_rate=5e-6,
                     disable_tqdm=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tr = cls(model=model, args=args, train_dataset=dataset, processing_class=tok,
             peft_config=LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS,
                                    task_type="CAUSAL_LM"), **kw)
    tr.create_optimizer()
    tr.current_gradient_accumulation_steps = 1  # normally set by the training loop
    tr.model.train()
    return tr


def step(tr, batch):
    tr.training_step(tr.model, batch)
    tr.optimizer.step()
    tr.optimizer.zero_grad(set_to_none=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2, help="micro-batches per trainer per round")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 because on this shared 2-core machine 2 threads oversubscribe")
    ap.add_argument("--aa", action="store_true", help="A/A control: plain DPOTrainer against itself")
    ns = ap.parse_args()
    torch.set_num_threads(ns.threads)

    from tiny_model import build_tiny_model
    from transformers import AutoTokenizer
    from trl import DPOTrainer

    t_start = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="bench_dpo_"))
    model_dir = build_tiny_model(tmp / "model", vocab_size=512, hidden=ns.hidden, layers=ns.layers)
    tok = AutoTokenizer.from_pretrained(model_dir)
    ds = build_preference_dataset(gsm8k_pairs(32), tok, weighted=True)

    plain = make_trainer(DPOTrainer, model_dir, tmp / "plain", ds)
    if ns.aa:  # A/A control: a second plain DPOTrainer in the "weighted" slot shows the noise floor
        weighted = make_trainer(DPOTrainer, model_dir, tmp / "weighted", ds)
    else:
        weighted = make_trainer(WeightedDPOTrainer, model_dir, tmp / "weighted", ds)
    n_params = sum(p.numel() for p in plain.model.parameters())
    examples = [weighted.train_dataset[i] for i in range(len(weighted.train_dataset))]
    batches_w = [weighted.data_collator(examples[i:i + 4]) for i in range(0, len(examples), 4)]
    batches_p = [{k: v for k, v in b.items() if k != "weight"} for b in batches_w]
    seq_tokens = [int(b["attention_mask"].sum()) for b in batches_w]

    if ns.aa:
        batches_w = batches_p
    for tr, bs in ((plain, batches_p), (weighted, batches_w)):  # warm-up (allocator, first-call paths)
        step(tr, bs[0])

    # CPU time of this process is the primary clock: on a shared machine wall time mostly measures
    # the neighbours (preemption), while the weighting's cost is CPU work done here. Wall time is
    # reported too.
    times = {"plain": [], "weighted": []}
    walls = {"plain": [], "weighted": []}
    ratios, wall_ratios = [], []
    k = 0
    for r in range(ns.rounds):
        order = [("plain", plain, batches_p), ("weighted", weighted, batches_w)]
        if r % 2:
            order.reverse()
        cpu_r, wall_r = {}, {}
        for name, tr, bs in order:
            c0, t0 = time.process_time(), time.perf_counter()
            for j in range(ns.steps):
                step(tr, bs[(k + j) % len(bs)])
            cpu_r[name] = (time.process_time() - c0) / ns.steps
            wall_r[name] = (time.perf_counter() - t0) / ns.steps
            times[name].append(cpu_r[name])
            walls[name].append(wall_r[name])
        k += ns.steps  # both trainers saw the same micro-batches this round
        ratios.append(cpu_r["weighted"] / cpu_r["plain"])
        wall_ratios.append(wall_r["weighted"] / wall_r["plain"])
        print(f"round {r}: cpu plain {cpu_r['plain']:.3f}s weighted {cpu_r['weighted']:.3f}s | "
              f"wall plain {wall_r['plain']:.3f}s weighted {wall_r['weighted']:.3f}s", file=sys.stderr)

    med_p, med_w = statistics.median(times["plain"]), statistics.median(times["weighted"])
    med_ratio = statistics.median(ratios)
    q = np.quantile(ratios, [0.25, 0.75])
    wq = np.quantile(wall_ratios, [0.25, 0.5, 0.75])
    load = os.getloadavg()

    # The weighting's own work, timed in isolation (immune to the noise above): the per-batch
    # normalisation, the extra weight tensor in the collator, the weighted mean and the log buffer.
    from hardneg.weighting import normalize_batch_weights

    reps = 2000
    w = torch.tensor([float(e["weight"]) for e in examples[:4]])
    per_seq = torch.rand(4, requires_grad=True)
    t0 = time.perf_counter()
    for _ in range(reps):
        wt, st = normalize_batch_weights(w, lam=0.3, w_min=0.5, w_max=2.0)
        (per_seq * wt).mean()
        plain.accelerator.gather(wt.detach()).float().cpu()
    t_norm = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    pc = plain.data_collator
    wcoll = WeightedPreferenceCollator(pad_token_id=pc.pad_token_id, max_length=pc.max_length,
                                       truncation_mode=pc.truncation_mode, pad_to_multiple_of=pc.pad_to_multiple_of)
    for _ in range(200):
        wcoll(examples[:4])
    t_coll_w = (time.perf_counter() - t0) / 200
    t0 = time.perf_counter()
    for _ in range(200):
        plain.data_collator(examples[:4])
    t_coll_p = (time.perf_counter() - t0) / 200
    isolated = t_norm + t_coll_w - t_coll_p
    cmd = "\n".join(["```", f".venv/bin/python bench/dpo.py --rounds {ns.rounds} --steps {ns.steps} --hidden {ns.hidden} "
                                   f"--layers {ns.layers} --threads {ns.threads}{' --aa' if ns.aa else ''}", "```"])
    title = "A/A control: TRL DPOTrainer vs a second TRL DPOTrainer" if ns.aa else \
        "WeightedDPOTrainer vs TRL DPOTrainer"
    print(f"""### DPO step time: {title}

Command:
{cmd}

- machine: {os.cpu_count()} CPU cores visible, {platform.processor() or platform.machine()}, torch {torch.__version__}
  (threads {torch.get_num_threads()}), transformers {transformers.__version__}, TRL {trl.__version__}
- model: Llama built in the script, hidden {ns.hidden}, {ns.layers} layers, vocab 512, {n_params / 1e6:.2f} M parameters incl. LoRA
  (r=16 on q,k,v,o,gate,up,down), fp32 CPU; reference = adapter disabled
- data: 32 GSM8K pairs, micro-batch 4 pairs ({min(seq_tokens)}-{max(seq_tokens)} non-pad tokens per micro-batch
  incl. prompt), λ = 0.3, log-normal raw weights
- measured: training_step (policy fwd + reference fwd + backward) + optimizer step, {ns.rounds} interleaved rounds x
  {ns.steps} micro-batches per trainer

| trainer | median CPU s / micro-batch | min | max | median wall s |
|---|---|---|---|---|
| TRL DPOTrainer | {med_p:.4f} | {min(times['plain']):.4f} | {max(times['plain']):.4f} | {statistics.median(walls['plain']):.4f} |
| {'TRL DPOTrainer (2nd)' if ns.aa else 'WeightedDPOTrainer'} | {med_w:.4f} | {min(times['weighted']):.4f} | {max(times['weighted']):.4f} | {statistics.median(walls['weighted']):.4f} |

Overhead, CPU time (median of per-round ratios weighted/plain − 1): **{(med_ratio - 1) * 100:+.2f} %**
(interquartile range {(q[0] - 1) * 100:+.2f} % … {(q[1] - 1) * 100:+.2f} %; goal ≤ 3 %).
Overhead, wall time: {(wq[1] - 1) * 100:+.2f} % (IQR {(wq[0] - 1) * 100:+.2f} % … {(wq[2] - 1) * 100:+.2f} %).
Isolated cost of the weighting per micro-batch: {t_norm * 1e6:.0f} µs (normalise + weighted mean + gather)
{(t_coll_w - t_coll_p) * 1e6:+.0f} µs (collator with vs without the weight tensor; noise-level) = {isolated / med_p * 100:.3f} % of the plain step.
Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (on {os.cpu_count()} cores).
Wall time of the script: {time.time() - t_start:.0f} s.
""")


if __name__ == "__main__":
    main()
