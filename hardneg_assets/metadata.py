"""Helpers that turn results into Dagster UI metadata (plots, tables) and progress logs."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import dagster as dg


def image_metadata(name: str, png_path: str | None) -> dict:
    """Embed a PNG as markdown (shown inline in the UI) plus its path."""
    if not png_path or not Path(png_path).exists():
        return {}
    data = base64.b64encode(Path(png_path).read_bytes()).decode()
    return {
        name: dg.MetadataValue.md(f"![{name}](data:image/png;base64,{data})"),
        f"{name}_path": dg.MetadataValue.path(str(png_path)),
    }


def md_table(df) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.to_markdown(index=False) if len(df) else "_empty_")


def log_progress_callback(context, label: str):
    """A transformers TrainerCallback that writes step, loss and steps/s to the Dagster log."""
    from transformers import TrainerCallback

    class _DagsterLog(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.time()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs:
                return
            rate = state.global_step / max(time.time() - self.start, 1e-9)
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}
            context.log.info(f"{label} step {state.global_step}/{state.max_steps} ({rate:.2f} steps/s): {shown}")

    return _DagsterLog()


def generation_progress(context, label: str, every_s: float = 20.0):
    """A generation progress callback `(done, total, tokens)` that writes done/total, tokens/s
    and ETA to the Dagster run log at least every `every_s` seconds (backends call it every
    decode step), plus a tqdm bar when stderr is a terminal (see hardneg.progress)."""
    from hardneg.progress import ProgressReporter

    return ProgressReporter(label, log=context.log.info, every_s=every_s)
