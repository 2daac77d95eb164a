"""SFT training throughput on this machine: packed vs unpacked, same model, data and steps.

Trains the embedded default (SmolLM2-135M-Instruct, LoRA fp32 on CPU) for a few
optimizer steps with the smoke profile's SFT settings, alternating packed and
unpacked runs (ABAB) so machine noise hits both. Throughput = non-padding tokens the
trainer consumed (TRL's `num_tokens`) per second of `trainer.train()`.

    .venv/bin/python bench/sft.py [--steps 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_once(model_path: str, examples, base_cfg, packing: bool, steps: int) -> float:
    from hardneg.sft import train_sft

    cfg = dataclasses.replace(base_cfg, packing=packing, max_steps=steps, save_steps=10_000, logging_steps=1)
    with tempfile.TemporaryDirectory() as out:
        result = train_sft(model_path, examples, out, cfg)
    tokens = max(float(e.get("num_tokens", 0)) for e in result.log_history)
    return tokens / result.metrics["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    from hardneg.data import load_sft_examples
    from hardneg.profiles import load_profile
    from hardneg.registry import resolve_model

    profile = load_profile("smoke")
    model_path = resolve_model("smollm2-135m-instruct")
    examples, _ = load_sft_examples(profile.sft.data)
    rates = {True: [], False: []}
    for _ in range(args.repeats):
        for packing in (True, False):
            rates[packing].append(run_once(model_path, examples, profile.sft, packing, args.steps))
    packed, unpacked = (sum(rates[k]) / len(rates[k]) for k in (True, False))
    print(f"## SFT throughput (smoke profile, SmolLM2-135M, LoRA fp32, {args.steps} steps × {args.repeats} repeats)\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    print("| mode | tokens/s (mean) | runs |")
    print("|---|---|---|")
    print(f"| packed | {packed:.0f} | {', '.join(f'{r:.0f}' for r in rates[True])} |")
    print(f"| unpacked | {unpacked:.0f} | {', '.join(f'{r:.0f}' for r in rates[False])} |")
    print(f"\npacked / unpacked = {packed / unpacked:.2f}×")


if __name__ == "__main__":
    main()
