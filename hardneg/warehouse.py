"""The DuckDB warehouse: one file, the SPEC §6 tables, and partition-safe writes.

Every table carries its partition columns. Writers never append blindly: a partition
is replaced in one transaction (`replace_partition`), so re-running a step can neither
duplicate rows nor leave half of a partition behind.

Sharing the file between processes (DuckDB allows one read-write process, or many read-only
ones): reads (`query`, `count`) open the file read-only; every open that finds the file locked
says so once on stderr — naming the holder as DuckDB reports it (program and PID) — and
retries with back-off for at most `lock_timeout` seconds (argument, or
`$HARDNEG_WAREHOUSE_LOCK_TIMEOUT`, default 120), then raises `WarehouseLockedError` naming
the holder. A killed writer leaves DuckDB whole but its uncommitted blocks stay in the file
(measured: 1.1 → 44 MB after four killed 4M-row writes); CHECKPOINT and VACUUM do not give
that space back (DuckDB's docs: copy the database to reclaim it), so opening a file whose
size exceeds its used blocks by more than `compact_min_waste` bytes (and a quarter of the file)
copies it into a fresh file (`COPY FROM DATABASE`) and swaps it in atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
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
    "verifier_shards": {  # one row per verified shard: what a resumed verification skips
        "family": "VARCHAR",
        "seed": "INTEGER",
        "shard": "INTEGER",
        "run_key": "VARCHAR",
        "n": "INTEGER",
        "first_id": "VARCHAR",
        "last_id": "VARCHAR",
        "seconds": "DOUBLE",
        "encoded": "INTEGER",
        "cache_hits": "INTEGER",
        "worker": "VARCHAR",
        "finished_at": "TIMESTAMP",
    },
    "injected_labels": {  # the error-injection pool's labels (hardneg/inject.py), one row per candidate
        "candidate_id": "VARCHAR",
        "family": "VARCHAR",
        "seed": "INTEGER",
        "source": "VARCHAR",
        "error_type": "VARCHAR",
        "error_step": "INTEGER",
        "variant": "INTEGER",
    },
    "blocking_checks": {  # last outcome of each blocking check on funnel and pairs: DPO refuses failed pairs
        "family": "VARCHAR",
        "seed": "INTEGER",
        "asset": "VARCHAR",
        "check_name": "VARCHAR",
        "passed": "BOOLEAN",
        "detail": "VARCHAR",
        "checked_at": "TIMESTAMP",
    },
    "quarantine": {
        "source": "VARCHAR",
        "line_no": "INTEGER",
        "raw": "VARCHAR",
        "reason": "VARCHAR",
    },
}

_LOCKS: dict[str, threading.Lock] = {}
DEFAULT_LOCK_TIMEOUT = 120.0
DEFAULT_COMPACT_MIN_WASTE = 8 * 1024**2
logger = logging.getLogger(__name__)


class WarehouseError(RuntimeError):
    """A write was refused; nothing already stored was changed."""


class WarehouseLockedError(WarehouseError):
    """Another process held the warehouse file for longer than the lock timeout."""


def lock_timeout_from_env() -> float:
    raw = os.environ.get("HARDNEG_WAREHOUSE_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value != value or value == float("inf"):
        raise WarehouseError(f"HARDNEG_WAREHOUSE_LOCK_TIMEOUT must be a number of seconds >= 0, got {raw!r}")
    return value


def lock_holder(message: str) -> str | None:
    """`'python3.11 (PID 14208): python -m hardneg.cli run'` from DuckDB's lock error, or None."""
    m = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", message)
    if not m:
        return None
    program, pid = m.group(1), m.group(2)
    holder = f"{os.path.basename(program) or program} (PID {pid})"
    try:  # the command line says which step it is; best effort (Linux only)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = " ".join(f.read().replace(b"\0", b" ").decode("utf-8", "replace").split())
        if cmd:
            holder += f": {cmd[:200]}"
    except OSError:
        pass
    return holder


class Warehouse:
    """A DuckDB file with the project's tables.

    DuckDB allows one writing process per file, so connections are opened per
    operation and closed straight after: Dagster steps in separate processes then
    take turns instead of failing on a held lock.
    """

    def __init__(self, path: str | Path, lock_timeout: float | None = None,
                 compact_min_waste: int = DEFAULT_COMPACT_MIN_WASTE):
        self.path = Path(path)
        self.lock_timeout = lock_timeout_from_env() if lock_timeout is None else float(lock_timeout)
        self.compact_min_waste = compact_min_waste
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            create_tables(con)
        self.compact_if_wasteful()

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        lock = _LOCKS.setdefault(str(self.path), threading.Lock())
        with lock:
            con = _connect_with_retry(self.path, read_only, self.lock_timeout)
            try:
                yield con
            finally:
                con.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run a read query on a read-only connection (other readers may share the file)."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, params or []).df()

    def file_waste(self) -> tuple[int, int]:
        """(file size, bytes not in used blocks) — what a killed writer can leave behind."""
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
        size = self.path.stat().st_size
        block_size, used = int(row[0] or 0), int(row[1] or 0)
        # Header blocks and metadata take a few blocks beyond `used_blocks`; allow for them.
        return size, max(0, size - (used + 4) * block_size)

    def compact_if_wasteful(self) -> bool:
        """Copy the database into a fresh file when dead space exceeds the threshold; True if done."""
        size, waste = self.file_waste()
        if waste < self.compact_min_waste or waste * 4 < size:
            return False
        self.compact()
        return True

    def compact(self) -> None:
        """Rewrite the file without its dead space (DuckDB: COPY FROM DATABASE), atomically."""
        before = self.path.stat().st_size
        fresh = self.path.with_name(self.path.name + ".compact")
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        with self.connect() as con:
            con.execute("CHECKPOINT")
            name = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"ATTACH '{_sql_str(fresh)}' AS hardneg_compact")
            try:
                con.execute(f'COPY FROM DATABASE "{name}" TO hardneg_compact')
            finally:
                con.execute("DETACH hardneg_compact")
            # Swap while this connection still holds the lock: no other process writes meanwhile.
            os.replace(fresh, self.path)
            Path(str(self.path) + ".wal").unlink(missing_ok=True)
        print(f"warehouse {self.path}: compacted {before / 1e6:.1f} MB -> {self.path.stat().st_size / 1e6:.1f} MB "
              "(space left by interrupted writes)", file=sys.stderr)

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
        with self.transaction() as con:
            con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
            insert_frame(con, table, df)
        return len(df)

    def replace_partition_from_files(self, table: str, files: Sequence[str | Path], **partition: Any) -> int:
        """`replace_partition` with the new rows read by DuckDB from Parquet files (never whole in Python).

        One transaction: the old rows go and the new ones arrive together, or nothing changes. A
        row outside the partition is refused, naming the file's first such row."""
        for key in partition:
            if key not in SCHEMA[table]:
                raise WarehouseError(f"{table} has no partition column {key!r}")
        where = " AND ".join(f"{k} = ?" for k in partition) or "TRUE"
        params = list(partition.values())
        with self.transaction() as con:
            con.execute(f"DELETE FROM {table} WHERE {where}", params)
            if not files:
                return 0
            listed = ", ".join(f"'{_sql_str(Path(f))}'" for f in files)
            cols = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in SCHEMA[table].items())
            source = f"(SELECT {cols} FROM read_parquet([{listed}], union_by_name = true))"
            outside = con.execute(f"SELECT {', '.join(partition) or '1'} FROM {source} WHERE NOT ({where}) LIMIT 1", params).fetchone()
            if outside is not None:
                raise WarehouseError(f"{table}: a row has {dict(zip(partition, outside))}, outside partition {partition}")
            before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            con.execute(f"INSERT INTO {table} ({', '.join(SCHEMA[table])}) SELECT * FROM {source}")
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: everything in the block lands, or nothing."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def append(self, table: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> int:
        """Insert rows (for logs such as `quarantine` that have no natural partition)."""
        df = to_table_frame(table, rows)
        if not len(df):
            return 0
        with self.connect() as con:
            insert_frame(con, table, df)
        return len(df)

    def count(self, table: str, **where: Any) -> int:
        clause = " AND ".join(f"{k} = ?" for k in where) or "TRUE"
        with self.connect(read_only=True) as con:
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


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> int:
    """Insert rows (aligned with `to_table_frame`) on an open connection, e.g. inside `Warehouse.transaction`."""
    df = to_table_frame(table, rows)
    if len(df):
        con.register("_incoming", df)
        try:
            cols = ", ".join(SCHEMA[table])
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
        finally:
            con.unregister("_incoming")
    return len(df)


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


def open_read_only(path: str | Path, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse file another process may be writing (waits for its lock,
    at most `timeout` s, default as `Warehouse`); creates and changes nothing. Close it when done."""
    return _connect_with_retry(Path(path), True, lock_timeout_from_env() if timeout is None else timeout)


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _connect_with_retry(path: Path, read_only: bool, timeout: float = DEFAULT_LOCK_TIMEOUT) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (bounded by `timeout` seconds) while another process holds it."""
    deadline = time.monotonic() + timeout
    delay, announced = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:  # another process holds the lock
            message = str(exc)
            if "lock" not in message.lower():
                raise
            holder = lock_holder(message) or "another process"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(
                    f"warehouse {path} is locked by {holder}; gave up after {timeout:g} s "
                    "(raise HARDNEG_WAREHOUSE_LOCK_TIMEOUT, or stop that process)"
                ) from None
            if not announced:
                print(f"warehouse {path} is locked by {holder}; waiting up to {timeout:g} s "
                      f"({'read' if read_only else 'write'})", file=sys.stderr)
                announced = True
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)
