"""Helpers that turn results into Dagster UI metadata (plots, tables, catalog entries) and progress logs."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import dagster as dg

from hardneg.warehouse import SCHEMA

WAREHOUSE_CATALOG = "warehouse.main"
"""DuckDB names tables `<file stem>.<schema>.<table>`; the file is `warehouse.duckdb` unless configured."""


def table_metadata(table: str) -> dict:
    """Definition-time catalog entries of an asset stored in a warehouse table: its name and columns.

    Dagster's catalog shows `dagster/table_name` and `dagster/column_schema` on the asset's
    page (and searches them); the columns come from the warehouse's own SCHEMA, so they
    cannot drift from what is written.
    """
    columns = [dg.TableColumn(name, sql_type.lower()) for name, sql_type in SCHEMA[table].items()]
    return {"dagster/table_name": f"{WAREHOUSE_CATALOG}.{table}", "dagster/column_schema": dg.TableSchema(columns=columns)}


def row_count(n: int) -> dict:
    """Materialization entry for the rows this partition holds in the asset's table (catalog: "Row count")."""
    return {"dagster/row_count": dg.MetadataValue.int(int(n))}


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
