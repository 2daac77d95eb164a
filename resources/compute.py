"""The compute device. Every asset that runs a model declares `pool="gpu"`; `dagster.yaml`
limits that pool to one step at a time so two trainings never share one accelerator."""

from __future__ import annotations

from typing import Literal

import dagster as dg


class ComputeResource(dg.ConfigurableResource):
    """Which device models run on, and whether 4-bit QLoRA is usable there."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` picks CUDA when present, else CPU."""
    allow_4bit: bool = True
    """Use 4-bit NF4 QLoRA where it fits (CUDA with bitsandbytes); CPU always trains plain LoRA in fp32."""
    torch_threads: int = 0
    """CPU threads for torch (0: torch's default)."""

    def resolved_device(self) -> str:
        import torch

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()):
            if not torch.cuda.is_available():
                raise RuntimeError("compute.device is 'cuda' but torch sees no CUDA device")
            return "cuda"
        return "cpu"

    def use_4bit(self) -> bool:
        from hardneg.training import bitsandbytes_usable

        return self.allow_4bit and self.resolved_device() == "cuda" and bitsandbytes_usable()
