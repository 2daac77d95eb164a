"""Building a large candidate pool shard by shard, so a killed build resumes where it stopped.

The `inject` and `external` pool sources (`hardneg.inject.inject_shards`,
`hardneg.candidates.iter_external_pool`) yield shards of ~`pool.shard_size` rows. Each finished
shard is written as Parquet parts (one file per warehouse table) plus a `.done` marker,
written last, under a folder named by a key of everything the rows depend on; a resumed build
starts at the first shard without a marker. When the last shard is done, every table's parts
go into the warehouse in one transaction per table (`Warehouse.replace_partition_from_files`),
then the parts are deleted. Memory stays one shard's worth on the way in, and DuckDB reads the
parts straight from disk on the way out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from hardneg.warehouse import to_table_frame

__all__ = ["PoolParts", "pool_key", "policy_fingerprint", "register_pool_problems"]


def pool_key(*parts: Any) -> str:
    """A short stable hash of what a pool's rows depend on (source config, shard size, partition, policy)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class PoolParts:
    """Finished shards of one pool build under `root/<key>/`; other keys' folders are stale and removed."""

    def __init__(self, root: str | Path, key: str):
        self.root = Path(root)
        self.dir = self.root / f"parts-{key}"
        if self.root.is_dir():
            for old in self.root.glob("parts-*"):
                if old != self.dir:
                    shutil.rmtree(old, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.done")}

    def next_shard(self) -> int:
        """The first shard without a marker (shards are built in order, so the done ones are a prefix)."""
        done, i = self.done(), 0
        while i in done:
            i += 1
        return i

    def write(self, index: int, tables: Mapping[str, pd.DataFrame]) -> None:
        """Each table's rows (aligned to its warehouse columns) as a part, then the marker."""
        for table, rows in tables.items():
            path = self.dir / f"{table}-{index:05d}.parquet"
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            try:
                to_table_frame(table, rows).to_parquet(tmp, index=False)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        (self.dir / f"shard-{index:05d}.done").write_text(json.dumps({t: len(r) for t, r in tables.items()}))

    def files(self, table: str) -> list[Path]:
        """The table's parts of finished shards, in shard order."""
        done = self.done()
        return [p for p in sorted(self.dir.glob(f"{table}-*.parquet")) if int(p.stem.rsplit("-", 1)[1]) in done]

    def rows(self, table: str) -> int:
        return sum(json.loads(p.read_text()).get(table, 0) for p in self.dir.glob("shard-*.done"))

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def register_pool_problems(wh, files) -> int:
    """Problems an `inject`/`external` pool brings (its references) that the `problems` table lacks.

    Only missing ids are added, never replaced: two partitions registering the same pool
    slice is a no-op, and a bundled problem keeps its own row."""
    if not files:
        return 0
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    with wh.transaction() as con:
        before = con.execute("SELECT count(*) FROM problems").fetchone()[0]
        con.execute(
            f"""INSERT INTO problems (problem_id, source, split, question, reference_solution, reference_answer)
            SELECT problem_id, any_value(source), 'train', any_value(question), any_value(reference_solution),
                   any_value(reference_answer)
            FROM read_parquet([{listed}], union_by_name = true)
            WHERE problem_id NOT IN (SELECT problem_id FROM problems)
            GROUP BY problem_id"""
        )
        return con.execute("SELECT count(*) FROM problems").fetchone()[0] - before


def policy_fingerprint(base_path: str, adapters) -> list:
    """What a policy-scored pool depends on: the weight files' names, sizes and times (cheap, no hashing)."""
    files = [p for root in [base_path, *map(str, adapters)] for p in sorted(Path(root).glob("*.safetensors"))]
    return [base_path, *[(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]]
