"""Data versions: what an asset's materialization holds, as a hash Dagster compares.

Dagster marks an asset stale when its code version changed or when an upstream's *data
version* differs from the one recorded at its last materialization. Without data versions
every re-materialization counts as new data, so staleness would follow run order: a
re-run that rewrites identical rows would still make everything downstream stale. So each
warehouse-backed asset reports a hash of the rows it holds for its partition
(`rows_version`), and the trained adapters a hash of their weights and LoRA config
(`adapter_version`; not of the whole folder, whose run log and training arguments carry
timings and paths that differ on every run):
re-writing the same rows leaves the version, and so everything below, as it was.

Hashing happens inside DuckDB (a row cast to text, md5 per row, rows sorted so insertion
order does not count), so a large partition is never pulled into Python for this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import dagster as dg

from hardneg.warehouse import SCHEMA, Warehouse

ROWS_HASH_SQL = """
SELECT count(*) AS n, md5(coalesce(string_agg(h, ',' ORDER BY h), '')) AS digest
FROM (SELECT md5(CAST(t AS VARCHAR)) AS h FROM (SELECT {columns} FROM {table} WHERE {where}) t)
"""


def rows_version(
    wh: Warehouse, table: str, where: str = "TRUE", params: Sequence = (), exclude: Sequence[str] = (), **key
) -> dg.DataVersion:
    """Data version of the rows of `table` matching `key` (column = value) and `where`.

    `exclude` names columns that change on every write without changing the data (a run
    id, a timestamp). The row count leads the version so the UI shows it at a glance.
    """
    unknown = [c for c in [*key, *exclude] if c not in SCHEMA[table]]
    if unknown:
        raise KeyError(f"rows_version: {table} has no column(s) {unknown}")
    columns = ", ".join(c for c in SCHEMA[table] if c not in exclude)
    clauses = [f"{k} = ?" for k in key] + [f"({where})"]
    sql = ROWS_HASH_SQL.format(columns=columns, table=table, where=" AND ".join(clauses))
    with wh.connect() as con:
        n, digest = con.execute(sql, [*key.values(), *params]).fetchone()
    return dg.DataVersion(f"{n}-{digest[:16]}")


def text_version(*parts: object) -> dg.DataVersion:
    """Data version of a value given as text (an adapter's sha256, a report, why a step was skipped)."""
    blob = "\x1f".join(str(p) for p in parts)
    return dg.DataVersion(hashlib.sha256(blob.encode()).hexdigest()[:16])


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def adapter_version(adapter_dir) -> dg.DataVersion:
    """Data version of a saved LoRA adapter: its weights and config, nothing run-specific."""
    from pathlib import Path

    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = Path(adapter_dir) / name
        if not path.exists():
            raise FileNotFoundError(f"adapter_version: {path} is missing (not a saved LoRA adapter?)")
        digest.update(name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return dg.DataVersion(digest.hexdigest()[:16])
