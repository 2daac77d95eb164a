"""The code location loads from the repo root with nothing set, as a fresh clone would.

`dagster definitions validate -w workspace.yaml` and `dg check defs` (which reads
`[tool.dg]` in pyproject.toml) run in a subprocess whose environment has no
DAGSTER_HOME, HARDNEG_HOME or HARDNEG_PROFILE: the repo's dagster.yaml must name no
environment variable, and the definitions must build from the default profile.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _bare_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "HARDNEG_"))}


@pytest.mark.parametrize(
    "command",
    [["dagster", "definitions", "validate", "-w", "workspace.yaml"], ["dg", "check", "defs"]],
    ids=["dagster-validate", "dg-check-defs"],
)
def test_code_location_loads_with_no_environment(command):
    exe = BIN / command[0]
    if not exe.exists():
        pytest.skip(f"{command[0]} is not installed next to {sys.executable} (make install installs it)")
    proc = subprocess.run([str(exe), *command[1:]], cwd=ROOT, env=_bare_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "successful" in (proc.stdout + proc.stderr).lower()


def test_instance_yaml_reads_no_environment_variable():
    import yaml

    def envs(node):
        if isinstance(node, dict):
            return (["env"] if "env" in node else []) + [e for v in node.values() for e in envs(v)]
        if isinstance(node, list):
            return [e for v in node for e in envs(v)]
        return []

    assert envs(yaml.safe_load((ROOT / "dagster.yaml").read_text())) == []
