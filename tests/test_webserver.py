"""The real Dagster UI: the webserver serves every asset, check, job and sensor, and the catalog shows the tables.

Materializes `problems` into a fresh instance (a real run), starts `dagster-webserver` on
127.0.0.1 against workspace.yaml, queries its GraphQL API, then (where Debian's chromium
is installed) takes headless screenshots of the asset graph and of the `problems` table
in the asset catalog, whose rendered page must show the row count and the columns.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

QUERY = """
{
  assetNodes {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
    metadataEntries {
      label
      ... on TextMetadataEntry { text }
      ... on TableSchemaMetadataEntry { schema { columns { name type } } }
    }
    assetMaterializations(limit: 1) { metadataEntries { label ... on IntMetadataEntry { intValue } } }
  }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    jobs { name } schedules { name } sensors { name } } } }
}
"""
TABLE_ASSETS = {
    "problems": "problems", "candidate_pool": "candidates", "verifier_profiles": "verifier_profiles",
    "funnel": "funnel_counts", "preference_pairs_hardneg": "preference_pairs", "preference_pairs_random": "preference_pairs",
    "sft_adapter": "training_runs", "dpo_hardneg": "training_runs", "dpo_random": "training_runs",
    "eval_base": "eval_samples", "eval_random": "eval_samples", "eval_hardneg": "eval_samples",
}
MATERIALIZE_PROBLEMS = """
import dagster as dg
from hardneg_assets.definitions import build_definitions
from jobs.selections import DATA
defs = build_definitions("smoke")
result = dg.materialize(list(defs.assets), selection=DATA, resources=defs.resources, instance=dg.DagsterInstance.get())
assert result.success
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


class Server(int):
    """The webserver's port, with the HARDNEG_HOME it serves."""

    def __new__(cls, port: int, home: Path):
        server = super().__new__(cls, port)
        server.home = home
        return server


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("ui_home")
    (home / "dagster").mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    env = {**os.environ, "HARDNEG_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    loaded = subprocess.run([sys.executable, "-c", MATERIALIZE_PROBLEMS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    port = _free_port()
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(exe), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 180
    try:
        while True:
            try:
                data = _graphql(port, QUERY)
                if data["assetNodes"]:
                    break
            except Exception:  # noqa: BLE001 - not up yet
                if proc.poll() is not None:
                    pytest.fail(f"webserver exited: {proc.stderr.read().decode()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("webserver did not answer within 180 s")
            time.sleep(1)
        yield Server(port, home)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_graphql_lists_every_asset_check_job_and_sensor(webserver):
    data = _graphql(webserver, QUERY)
    assets = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
    assert {
        "problems", "sft_adapter", "candidate_pool", "verifier_profiles", "funnel", "preference_pairs_hardneg",
        "preference_pairs_random", "dpo_hardneg", "dpo_random", "eval_base", "eval_hardneg", "eval_random", "report",
    } <= assets
    checks = {
        ("/".join(n["assetKey"]["path"]), c["name"])
        for n in data["assetNodes"]
        for c in (n["assetChecksOrError"] or {}).get("checks", [])
    }
    assert ("funnel", "funnel_counts_in_range") in checks
    assert ("preference_pairs_hardneg", "pairs_fit_for_dpo") in checks
    assert ("preference_pairs_random", "pairs_fit_for_dpo") in checks
    assert {("eval_base", "truncation_rate"), ("eval_hardneg", "item_counts"), ("dpo_hardneg", "finite_loss"),
            ("dpo_random", "margin_moved")} <= checks
    repo = data["repositoriesOrError"]["nodes"][0]
    assert {"family_job", "pipeline_job", "reverify_job", "evaluation_job", "report_job"} <= {j["name"] for j in repo["jobs"]}
    assert repo["schedules"] == []  # the weekly re-verification is an automation condition now
    assert {s["name"] for s in repo["sensors"]} == {"reverify_sensor"}


def test_catalog_knows_every_warehouse_table_its_columns_and_row_count(webserver):
    from hardneg.warehouse import SCHEMA, Warehouse

    nodes = {"/".join(n["assetKey"]["path"]): n for n in _graphql(webserver, QUERY)["assetNodes"]}
    for asset, table in TABLE_ASSETS.items():
        entries = {e["label"]: e for e in nodes[asset]["metadataEntries"]}
        assert entries["dagster/table_name"]["text"] == f"warehouse.main.{table}", asset
        columns = [(c["name"], c["type"]) for c in entries["dagster/column_schema"]["schema"]["columns"]]
        assert columns == [(name, sql.lower()) for name, sql in SCHEMA[table].items()], asset
    [latest] = nodes["problems"]["assetMaterializations"]
    rows = {e["label"]: e.get("intValue") for e in latest["metadataEntries"]}["dagster/row_count"]
    assert rows == Warehouse(webserver.home / "warehouse.duckdb").count("problems") > 1000


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    return subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1600,1000", "--virtual-time-budget=20000", *args,
        ],
        check=True, capture_output=True, timeout=120, text=True,
    )


def test_asset_graph_screenshot(webserver, tmp_path):
    out = tmp_path / "asset-graph.png"
    _chromium(tmp_path, f"--screenshot={out}", f"http://127.0.0.1:{webserver}/asset-groups")
    assert out.exists() and out.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("HARDNEG_UPDATE_SCREENSHOT"):
        shutil.copy(out, ROOT / "docs" / "asset-graph.png")


def test_catalog_page_shows_row_count_and_columns(webserver, tmp_path):
    from hardneg.warehouse import Warehouse

    page = f"http://127.0.0.1:{webserver}/assets/problems"
    dom = _chromium(tmp_path, "--dump-dom", page).stdout
    rows = Warehouse(webserver.home / "warehouse.duckdb").count("problems")
    assert f"{rows:,}" in dom or str(rows) in dom  # the row count, as the UI formats it
    for column in ("problem_id", "reference_answer", "subject"):
        assert column in dom, column
    out = tmp_path / "catalog-problems.png"
    _chromium(tmp_path, f"--screenshot={out}", page)
    assert out.exists() and out.stat().st_size > 20_000
    if os.environ.get("HARDNEG_UPDATE_SCREENSHOT"):
        shutil.copy(out, ROOT / "docs" / "catalog-problems.png")
