"""The real Dagster UI: the webserver serves every asset, check, job, schedule and sensor; a screenshot of the graph.

Starts `dagster-webserver` on 127.0.0.1 against workspace.yaml, queries its GraphQL API,
then (where Debian's chromium is installed) takes a headless screenshot of the asset graph.
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
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    jobs { name } schedules { name } sensors { name } } } }
}
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


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("ui_home")
    (home / "dagster").mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    env = {**os.environ, "HARDNEG_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
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
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_graphql_lists_every_asset_check_job_schedule_and_sensor(webserver):
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
    repo = data["repositoriesOrError"]["nodes"][0]
    assert {"family_job", "pipeline_job", "reverify_job", "evaluation_job", "report_job"} <= {j["name"] for j in repo["jobs"]}
    assert {s["name"] for s in repo["schedules"]} == {"reverify_schedule"}
    assert {s["name"] for s in repo["sensors"]} == {"stale_verifier_sensor"}


def test_asset_graph_screenshot(webserver, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    out = tmp_path / "asset-graph.png"
    subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1600,1000", "--virtual-time-budget=20000",
            f"--screenshot={out}", f"http://127.0.0.1:{webserver}/asset-groups",
        ],
        check=True, capture_output=True, timeout=120,
    )
    assert out.exists() and out.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("HARDNEG_UPDATE_SCREENSHOT"):
        shutil.copy(out, ROOT / "docs" / "asset-graph.png")
