"""Where adapters, checkpoints, plots and reports are written, and how they are recorded.

Training writes to a local working directory (checkpoints must be local to resume);
`publish` then copies the finished artifact to the store's root, which may be a local
path or any fsspec URL (s3://, gs://, ...). Every artifact gets a `training_runs` row
with its path, sha256 and the config that produced it.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from hardneg.paths import artifacts_dir
from hardneg.training import dir_sha256
from hardneg.warehouse import Warehouse


class ArtifactStore(dg.ConfigurableResource):
    """Adapters, checkpoints, plots and reports."""

    root: str = ""
    """Local directory or fsspec URL; empty means `$HARDNEG_HOME/artifacts`."""

    def work_dir(self, *parts: str) -> Path:
        """A local directory for a step's working files (checkpoints live here)."""
        path = artifacts_dir().joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, local: Path, *parts: str) -> str:
        """Copy a finished artifact to the store root; return its location."""
        if not self.root:
            return str(local)
        if "://" not in self.root:
            target = Path(self.root).joinpath(*parts)
            if target.resolve() != Path(local).resolve():
                shutil.copytree(local, target, dirs_exist_ok=True)
            return str(target)
        import fsspec

        url = "/".join([self.root.rstrip("/"), *parts])
        fs, path = fsspec.core.url_to_fs(url)
        fs.put(str(local), path, recursive=True)
        return url

    def record(
        self,
        warehouse: Warehouse,
        *,
        run_id: str,
        family: str,
        seed: int,
        stage: str,
        strategy: str,
        local_dir: Path,
        location: str,
        config: dict[str, Any],
        metrics: dict[str, Any],
    ) -> str:
        """Replace this partition's `training_runs` row; return the artifact's sha256."""
        sha = dir_sha256(local_dir)
        row = {
            "run_id": run_id,
            "family": family,
            "seed": seed,
            "stage": stage,
            "strategy": strategy,
            "artifact_path": location,
            "sha256": sha,
            "config": json.dumps(config, default=str),
            "metrics": json.dumps(metrics, default=str),
            "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
        }
        warehouse.replace_partition("training_runs", [row], family=family, seed=seed, stage=stage, strategy=strategy)
        return sha
