"""The package layering, checked by parsing every module's imports (no module is imported to check it).

Layers, lowest first: `hardneg` (the domain library, plain Python) < `resources` <
`jobs` < `hardneg_assets` (assets, the definitions factory, the `hardneg` console
script). A module may import its own layer or a lower one, never a higher one, so the
top-level packages cannot import each other in a cycle; `hardneg` never imports Dagster.
Every `import` and `from … import` counts, also those inside functions (a lazy import
is still a dependency), except relative imports inside one package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["hardneg", "resources", "jobs", "hardneg_assets"]
DAGSTER = {"dagster", "dagster_webserver", "dagster_graphql", "dagster_dg_cli", "dagster_pipes"}


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every absolute import in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_layer_has_modules():
    for package in LAYERS:
        assert modules(package), package


@pytest.mark.parametrize("package", LAYERS)
def test_no_upward_import(package):
    rank = LAYERS.index(package)
    violations = []
    for path in modules(package):
        for top, line in imported_top_levels(path):
            if top in LAYERS and LAYERS.index(top) > rank:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
            if package == "hardneg" and top in DAGSTER:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {top} (the library is plain Python)")
    assert not violations, "\n".join(violations)


def test_the_checker_sees_lazy_and_from_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\ndef f():\n    from hardneg_assets.run import run_incremental\n    import dagster as dg\nfrom . import x\n")
    assert imported_top_levels(probe) == {("os", 1), ("hardneg_assets", 3), ("dagster", 4)}


def test_console_script_is_the_top_layer():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["hardneg"].split(":")[0].split(".")[0] == LAYERS[-1]


def test_cli_module_imports_no_dagster_until_run_needs_it():
    code = "import sys, hardneg_assets.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in {'dagster', 'torch'}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
