"""Where everything a run writes lives: `$HARDNEG_HOME` (default `.hardneg/` at the repo root).

Deleting that folder resets the project; nothing under it is ever committed.

Names taken from a profile (family names, model names) become folder names under it, so
they are checked here to be one plain path component (`safe_component`) and joined with
`under`, which refuses any result outside its base: a family called `../escape` or
`/etc` must never write (or, for model conversion, delete) outside `$HARDNEG_HOME`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Characters that are unsafe or ambiguous in a folder name, a Dagster partition key or a shell
# argument: path separators, the partition separator `|`, NUL and other control characters.
_UNSAFE = re.compile(r"[/\\|\x00-\x1f\x7f:*?\"<>]")
MAX_COMPONENT = 128


def safe_component(name: object, what: str = "name") -> str:
    """Return `name` if it is a single harmless path component; raise ValueError saying why not."""
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__}")
    if not name or not name.strip():
        raise ValueError(f"{what} is empty")
    if name in (".", "..") or name.startswith(("-", "~", ".")) or name != name.strip():
        raise ValueError(f"{what} {name!r} is not a plain folder name (no leading '.', '-', '~' or spaces)")
    bad = _UNSAFE.search(name)
    if bad:
        raise ValueError(f"{what} {name!r} contains {bad.group()!r}; use letters, digits, '.', '-', '_'")
    if len(name) > MAX_COMPONENT:
        raise ValueError(f"{what} is {len(name)} characters long; at most {MAX_COMPONENT}")
    return name


def under(base: Path, *parts: str) -> Path:
    """`base/parts…`, resolved; ValueError if the result is not strictly inside `base`."""
    root = Path(base).resolve()
    path = root.joinpath(*parts).resolve()
    if path == root or root not in path.parents:
        raise ValueError(f"{'/'.join(map(str, parts))!r} leaves {root}")
    return path


def hardneg_home() -> Path:
    home = Path(os.environ.get("HARDNEG_HOME") or REPO_ROOT / ".hardneg").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def warehouse_path() -> Path:
    return hardneg_home() / "warehouse.duckdb"


def artifacts_dir() -> Path:
    return _sub("artifacts")


def embeddings_dir() -> Path:
    """The persistent embedding cache (`hardneg.embedding_cache`): survives re-runs, safe to delete."""
    return _sub("embeddings")


def models_dir() -> Path:
    return _sub("models")


def dagster_home() -> Path:
    return _sub("dagster")


def _sub(name: str) -> Path:
    path = hardneg_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
