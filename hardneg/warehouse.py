"""The DuckDB warehouse: one file, the SPEC §6 tables, and partition-safe writes.

Every table carries its partition columns. Writers never append blindly: a partition
is replaced in one transaction (`replace_partition`), so re-running a step can neither
duplicate rows nor leave half of a partition behind.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import duckdb
import pandas as pd

# Column order matters: DataFrames are aligned to it before insertion.
SCHEMA: dict[str, dict[str, str]] = {
    "problems": {
        "problem_id": "VARCHAR",
        "source": "VARCHAR",
        "split": "VARCHAR",
        "question": "VARCHAR",
        "reference_solution": "VARCHAR",
        "reference_answer": "VARCHAR",
        "subject": "VARCHAR",
        "level": "VARCHAR",
    },
    "candidates": {
        "candidate_id": "VARCHAR",
        "problem_id": "VARCHAR",
        "family": "VARCHAR",
        "seed": "INTEGER",
        "text": "VARCHAR",
        "finish_reason": "VARCHAR",
        "answer": "VARCHAR",
        "confidence": "DOUBLE",
        "perplexity": "DOUBLE",
        "correct": "BOOLEAN",
        "n_tokens": "INTEGER",
    },
    "verifier_profiles": {
        "candidate_id": "VARCHAR",
        "family": "VARCHAR",
        "seed": "INTEGER",
        "verifier_version": "VARCHAR",
        "d_semantic": "DOUBLE",
        "d_structure": "DOUBLE",
        "d_order": "DOUBLE",
        "d_logic": "DOUBLE",
        "d_numeric": "DOUBLE",
        "d_answer": "DOUBLE",
        "wrongness": "DOUBLE",
        "absurdity": "DOUBLE",
        "first_error_step": "INTEGER",
        "formula_error": "BOOLEAN",
        "steps": "JSON",
        "channels": "JSON",
    },
    "funnel_counts": {
        "family": "VARCHAR",
        "seed": "INTEGER",
        "stage": "INTEGER",
        "name": "VARCHAR",
        "n_in": "BIGINT",
        "n_out": "BIGINT",
        "reason": "VARCHAR",
    },
    "preference_pairs": {
        "pair_id": "VARCHAR",
        "family": "VARCHAR",
        "seed": "INTEGER",
        "strategy": "VARCHAR",
        "problem_id": "VARCHAR",
        "prompt": "VARCHAR",
        "chosen": "VARCHAR",
        "rejected": "VARCHAR",
        "raw_weight": "DOUBLE",
        "chosen_candidate_id": "VARCHAR",
        "rejected_candidate_id": "VARCHAR",
    },
    "training_runs": {
        "run_id": "VARCHAR",
        "family": "VARCHAR",
        "seed": "INTEGER",
        "stage": "VARCHAR",
        "strategy": "VARCHAR",
        "artifact_path": "VARCHAR",
        "sha256": "VARCHAR",
        "config": "JSON",
        "metrics": "JSON",
        "created_at": "TIMESTAMP",
    },
    "eval_samples": {
        "run_id": "VARCHAR",
        "family": "VARCHAR",
        "seed": "INTEGER",
        "strategy": "VARCHAR",
        "benchmark": "VARCHAR",
        "item_id": "VARCHAR",
        "prompt": "VARCHAR",
        "completion": "VARCHAR",
        "extracted": "VARCHAR",
        "reference": "VARCHAR",
        "correct": "BOOLEAN",
        "correct_math_verify": "BOOLEAN",
        "subject": "VARCHAR",
        "level": "VARCHAR",
    },
    "eval_summary": {
        "family": "VARCHAR",
        "seed": "INTEGER",
        "strategy": "VARCHAR",
        "benchmark": "VARCHAR",
        "n": "INTEGER",
        "accuracy": "DOUBLE",
        "accuracy_math_verify": "DOUBLE",
    },
    "quarantine": {
        "source": "VARCHAR",
        "line_no": "INTEGER",
        "raw": "VARCHAR",
        "reason": "VARCHAR",
    },
}

_LOCKS: dict[str, threading.Lock] = {}


class WarehouseError(RuntimeError):
    """A write was refused; nothing already stored was changed."""


class Warehouse:
    """A DuckDB file with the project's tables.

    DuckDB allows one writing process per file, so connections are opened per
    operation and closed straight after: Dagster steps in separate processes then
    take turns instead of failing on a held lock.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            create_tables(con)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        lock = _LOCKS.setdefault(str(self.path), threading.Lock())
        with lock:
            con = _connect_with_retry(self.path, read_only)
            try:
                yield con
            finally:
                con.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    def replace_partition(
        self, table: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]], **partition: Any
    ) -> int:
        """Replace the rows of `table` whose partition columns equal `partition`.

        The delete and the insert share one transaction: a failure leaves the
        previous rows in place. Returns the number of rows written.
        """
        df = to_table_frame(table, rows)
        for key, value in partition.items():
            if key not in SCHEMA[table]:
                raise WarehouseError(f"{table} has no partition column {key!r}")
            if len(df) and not (df[key] == value).all():
                bad = df.index[df[key] != value][0]
                raise WarehouseError(
                    f"{table}: row {bad} has {key}={df.loc[bad, key]}, outside partition {key}={value!r}"
                )
        where = " AND ".join(f"{k} = ?" for k in partition) or "TRUE"
        return self.replace_where(table, df, where, list(partition.values()))

    def replace_where(self, table: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]], where: str, params: Sequence[Any]) -> int:
        """Delete the rows matching `where` and insert `rows`, in one transaction."""
        df = to_table_frame(table, rows)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
                if len(df):
                    con.register("_incoming", df)
                    cols = ", ".join(SCHEMA[table])
                    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
                    con.unregister("_incoming")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return len(df)

    def append(self, table: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> int:
        """Insert rows (for logs such as `quarantine` that have no natural partition)."""
        df = to_table_frame(table, rows)
        if not len(df):
            return 0
        with self.connect() as con:
            con.register("_incoming", df)
            cols = ", ".join(SCHEMA[table])
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
            con.unregister("_incoming")
        return len(df)

    def count(self, table: str, **where: Any) -> int:
        clause = " AND ".join(f"{k} = ?" for k in where) or "TRUE"
        with self.connect() as con:
            return con.execute(f"SELECT count(*) FROM {table} WHERE {clause}", list(where.values())).fetchone()[0]


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in SCHEMA.items():
        cols = ", ".join(f"{name} {dtype}" for name, dtype in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        # Columns added in later versions of the schema appear in old files too.
        existing = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        for name, dtype in columns.items():
            if name not in existing:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {dtype}")


def to_table_frame(table: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Align rows to the table's columns; JSON columns are serialized here."""
    if table not in SCHEMA:
        raise WarehouseError(f"unknown table {table!r}")
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    columns = SCHEMA[table]
    for name, dtype in columns.items():
        if name not in df.columns:
            df[name] = None
        elif dtype == "JSON":
            df[name] = [v if v is None or isinstance(v, str) else json.dumps(v) for v in df[name]]
    return df[list(columns)].reset_index(drop=True)


def _connect_with_retry(path: Path, read_only: bool, attempts: int = 50) -> duckdb.DuckDBPyConnection:
    import time

    for i in range(attempts):
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:  # another process holds the write lock
            if "lock" not in str(exc).lower() or i == attempts - 1:
                raise
            time.sleep(0.1 * (1 + i % 10))
    raise AssertionError("unreachable")
