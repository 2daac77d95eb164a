"""Where everything a run writes lives: `$HARDNEG_HOME` (default `.hardneg/` at the repo root).

Deleting that folder resets the project; nothing under it is ever committed.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def hardneg_home() -> Path:
    home = Path(os.environ.get("HARDNEG_HOME") or REPO_ROOT / ".hardneg").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def warehouse_path() -> Path:
    return hardneg_home() / "warehouse.duckdb"


def artifacts_dir() -> Path:
    return _sub("artifacts")


def models_dir() -> Path:
    return _sub("models")


def dagster_home() -> Path:
    return _sub("dagster")


def _sub(name: str) -> Path:
    path = hardneg_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
