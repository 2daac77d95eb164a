"""Rebuild a policy for inference: a base checkpoint with LoRA adapters merged in order.

A family's policy is its base model, then its SFT adapter (if the family has SFT),
then optionally a DPO adapter trained on top of that merged SFT model. Merging keeps
generation as fast as the plain model (no adapter overhead per token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def merge_adapters(base_path: str, adapters: Sequence[str | Path], dtype):
    """The base checkpoint with each LoRA adapter merged into its weights, in order."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    for adapter in adapters:
        if not (Path(adapter) / "adapter_config.json").exists():
            raise FileNotFoundError(f"no PEFT adapter at {adapter}: materialize the upstream asset first")
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model


def load_merged_policy(base_path: str, adapters: Sequence[str | Path] = (), device: str = "cpu"):
    """Return `(model, tokenizer)` with every adapter merged; fp32 on CPU, bf16 on CUDA."""
    import torch

    from hardneg.registry import load_tokenizer

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = merge_adapters(base_path, adapters, dtype)
    # A saved adapter dir carries the tokenizer it was trained with (pad token included).
    tok_source = str(adapters[-1]) if adapters and (Path(adapters[-1]) / "tokenizer_config.json").exists() else base_path
    model.to(device).eval()
    return model, load_tokenizer(tok_source)
