"""End to end: the whole smoke graph on the tiny model, then a run killed during DPO and re-run.

The re-run materializes only what the kill left undone (issue 17, `hardneg run` is incremental).

The tiny model cannot solve GSM8K, so the candidate pool comes from an external JSONL
pool (the same ingestion path as the paper's numina pool): real GSM8K reference
solutions and perturbed versions of them (a wrong product, a dropped step), re-scored
under the tiny policy. Its confidences are near zero, so this profile sets the funnel's
confidence floor to 0 — configuration, not a special case in code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipeline_support import definitions_for, materialize, tiny_profile

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def external_pool(path: Path, n_problems: int = 6, offset: int = 64) -> str:
    """Correct and perturbed solutions for GSM8K train problems, as an external-pool JSONL."""
    from hardneg.data import load_problems

    problems, _ = load_problems("gsm8k", "train")
    lines = []
    for row in problems.iloc[offset : offset + n_problems].itertuples():
        steps = row.reference_solution.splitlines()
        answer = row.reference_answer
        wrong = str(int(float(answer)) + 3) if answer.lstrip("-").replace(".", "", 1).isdigit() else answer + "1"
        lines.append({"problem_id": row.problem_id, "question": row.question, "completion": row.reference_solution})
        lines.append({"problem_id": row.problem_id, "question": row.question, "completion": "\n".join(steps[:-1] + [f"The answer is: {wrong}"])})
        if len(steps) > 2:
            lines.append({"problem_id": row.problem_id, "question": row.question, "completion": "\n".join(steps[1:-1] + [f"The answer is: {wrong}"])})
        lines.append({"problem_id": row.problem_id, "question": row.question, "completion": "\n".join([steps[0], steps[0], "The answer is: " + wrong])})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return str(path)


def e2e_profile(home: Path, tiny_model_dir: Path) -> str:
    pool = external_pool(home / "pool.jsonl")
    return tiny_profile(
        home,
        tiny_model_dir,
        pool={"source": "external", "external": {"path": pool}, "num_problems": None},
        funnel={"min_confidence": 0.0},
        funnel_expected={1: {"min": 1, "max": 100}, 2: {"min": 1, "max": 100}, 3: {"min": 1, "max": 100}, 4: {"min": 1, "max": 50}},
    )


def materialize_partition(defs, family: str, seed: int):
    """The steps of `hardneg run` (jobs.selections.RUN_STEPS) for one partition, in-process."""
    from hardneg_assets.partitions import family_seed_key
    from jobs.selections import RUN_STEPS

    keys = {"none": None, "family": family, "family_seed": family_seed_key(family, seed)}
    return [materialize(defs, selection, keys[partitions]) for _, selection, partitions in RUN_STEPS]


def test_smoke_graph_end_to_end(hardneg_home, tiny_model_dir):
    from hardneg.warehouse import Warehouse

    profile = e2e_profile(hardneg_home, tiny_model_dir)
    results = materialize_partition(definitions_for(profile), "smollm2-135m-sft", 0)
    assert all(r.success for r in results)
    materialized = {m.asset_key.to_user_string() for r in results for m in r.get_asset_materialization_events()}
    assert materialized == {
        "problems", "sft_adapter", "eval_base", "candidate_pool", "verifier_profiles", "funnel", "preference_pairs_hardneg",
        "preference_pairs_random", "dpo_hardneg", "dpo_random", "eval_hardneg", "eval_random", "report",
    }
    checks = [c for r in results for c in r.get_asset_check_evaluations()]
    blocking = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in checks if c.severity == dg.AssetCheckSeverity.ERROR}
    assert len(blocking) == 4 and all(blocking.values()), blocking
    assert ("verifier_profiles", "one_profile_per_candidate") in blocking
    warned = {(c.asset_key.to_user_string(), c.check_name) for c in checks if c.severity == dg.AssetCheckSeverity.WARN}
    assert warned == {
        *((f"eval_{s}", n) for s in ("base", "random", "hardneg") for n in ("truncation_rate", "item_counts")),
        *((f"dpo_{s}", n) for s in ("random", "hardneg") for n in ("finite_loss", "margin_moved")),
    }
    [item_counts] = [c for c in checks if (c.asset_key.to_user_string(), c.check_name) == ("eval_base", "item_counts")]
    assert item_counts.passed  # 3 + 3 items asked for, 3 + 3 evaluated
    [finite] = [c for c in checks if (c.asset_key.to_user_string(), c.check_name) == ("dpo_hardneg", "finite_loss")]
    assert finite.passed
    [verified] = [m for r in results for m in r.get_asset_materialization_events()
                  if m.asset_key.to_user_string() == "verifier_profiles"]
    meta = verified.materialization.metadata
    assert meta["engine"].value.startswith("local") and meta["texts_encoded"].value > 0
    assert meta["dagster/row_count"].value == meta["profiles"].value > 0  # the catalog's row count

    wh = Warehouse(hardneg_home / "warehouse.duckdb")
    key = {"family": "smollm2-135m-sft", "seed": 0}
    for table in ("candidates", "verifier_profiles", "funnel_counts", "preference_pairs", "eval_samples", "eval_summary"):
        assert wh.count(table, **key) > 0, table
    funnel = wh.query("SELECT * FROM funnel_counts ORDER BY stage")
    assert list(funnel["stage"]) == [1, 2, 3, 4]
    assert (funnel["n_out"] <= funnel["n_in"]).all()
    assert (funnel["n_in"].iloc[1:].values == funnel["n_out"].iloc[:-1].values).all()
    orphans = wh.query(
        "SELECT count(*) AS n FROM preference_pairs p WHERE strategy = 'hardneg' AND rejected_candidate_id NOT IN (SELECT candidate_id FROM candidates)"
    )["n"][0]
    assert orphans == 0
    pairs = wh.query("SELECT strategy, count(*) AS n FROM preference_pairs GROUP BY strategy ORDER BY strategy")
    assert list(pairs["strategy"]) == ["hardneg", "random"] and pairs["n"].nunique() == 1
    strategies = set(wh.query("SELECT DISTINCT strategy FROM eval_summary")["strategy"])
    assert strategies == {"base", "random", "hardneg"}
    runs = wh.query("SELECT stage, strategy FROM training_runs ORDER BY stage, strategy")
    assert runs.values.tolist() == [["dpo", "hardneg"], ["dpo", "random"], ["sft", "sft"]]
    report = (hardneg_home / "artifacts" / "report" / "table1.md").read_text()
    assert "hard-neg DPO" in report and "GSM8K" in report


def test_failed_funnel_check_stops_dpo_in_the_run_and_in_a_later_manual_run(hardneg_home, tiny_model_dir):
    """An unreachable stage-4 range: the funnel check fails, no DPO trains (in the run, nor when asked for later)."""
    from hardneg.warehouse import Warehouse
    from hardneg_assets.partitions import family_seed_key
    from jobs.selections import RUN_STEPS

    profile = e2e_profile(hardneg_home, tiny_model_dir)
    defs = definitions_for(profile, ("funnel_expected.4.min=100000", "funnel_expected.4.max=200000"))
    keys = {"none": None, "family": "smollm2-135m-sft", "family_seed": family_seed_key("smollm2-135m-sft", 0)}
    results = [materialize(defs, sel, keys[parts], raise_on_error=False) for _, sel, parts in RUN_STEPS]
    checks = {(c.asset_key.to_user_string(), c.check_name): c for r in results for c in r.get_asset_check_evaluations()}
    failed = checks[("funnel", "funnel_counts_in_range")]
    assert not failed.passed and "stage 4" in failed.metadata["failures"].value
    materialized = {m.asset_key.to_user_string() for r in results for m in r.get_asset_materialization_events()}
    assert {"funnel", "preference_pairs_hardneg"} <= materialized
    assert not materialized & {"dpo_hardneg", "dpo_random", "eval_hardneg", "eval_random"}

    wh = Warehouse(hardneg_home / "warehouse.duckdb")
    assert wh.count("training_runs", stage="dpo") == 0
    gate = wh.query("SELECT asset, check_name, passed FROM blocking_checks ORDER BY asset, check_name")
    assert gate.values.tolist()[0] == ["funnel", "funnel_counts_in_range", False]

    # A later, explicit DPO run is refused by the stored check outcome, naming the check.
    manual = materialize(defs, ["dpo_hardneg"], keys["family_seed"], raise_on_error=False)
    assert not manual.success
    [failure] = [e for e in manual.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.user_failure_data
    assert "funnel check funnel_counts_in_range failed" in error.metadata["failed_checks"].value
    assert wh.count("training_runs", stage="dpo") == 0


def _snapshot(wh):
    return {
        "candidates": wh.query("SELECT candidate_id, text, confidence FROM candidates ORDER BY candidate_id"),
        "verifier_profiles": wh.query("SELECT candidate_id, wrongness, absurdity FROM verifier_profiles ORDER BY candidate_id"),
        "preference_pairs": wh.query("SELECT pair_id, strategy, raw_weight FROM preference_pairs ORDER BY strategy, pair_id"),
        "funnel_counts": wh.query("SELECT * FROM funnel_counts ORDER BY stage"),
    }


def materialization_counts(instance) -> dict[str, int]:
    """How many materializations each asset of the graph has in the instance."""
    from hardneg_assets.definitions import build_definitions

    keys = build_definitions("smoke").resolve_asset_graph().get_all_asset_keys()
    return {
        k.to_user_string(): len(instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=k), limit=100).records)
        for k in keys
    }


def test_run_killed_during_dpo_resumes_without_duplicates(hardneg_home, tiny_model_dir):
    from hardneg.warehouse import Warehouse
    from hardneg_assets.run import instance_at

    profile = e2e_profile(hardneg_home, tiny_model_dir)
    # Long enough DPO that the kill lands mid-training, after a checkpoint.
    Path(profile).write_text(Path(profile).read_text().replace("max_steps: 2\n", "max_steps: 40\n", 1))
    env = {**os.environ, "HARDNEG_HOME": str(hardneg_home), "DAGSTER_HOME": str(hardneg_home / "dagster")}
    cmd = [sys.executable, "-m", "hardneg_assets.cli", "run", "--profile", profile, "--partition", "smollm2-135m-sft|0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt_dir = hardneg_home / "artifacts" / "dpo" / "hardneg" / "smollm2-135m-sft" / "0"
    deadline = time.time() + 600
    while not list(ckpt_dir.glob("checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, "the run ended before DPO checkpointed"
        assert time.time() < deadline, "DPO never started"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    wh = Warehouse(hardneg_home / "warehouse.duckdb")
    before = _snapshot(wh)
    assert wh.count("training_runs", stage="dpo", strategy="hardneg") == 0  # the killed DPO recorded nothing

    instance = instance_at(hardneg_home / "dagster")
    done_before = materialization_counts(instance)
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # The re-run did only what the kill left undone: the killed DPO, what depends on it, and what never ran.
    done_after = materialization_counts(instance)
    rerun_did = {k for k in done_after if done_after[k] > done_before[k]}
    never_ran = {k for k in done_before if done_before[k] == 0}
    assert rerun_did == {"dpo_hardneg", "eval_hardneg", "report"} | never_ran, (rerun_did, never_ran)
    assert all(done_after[k] == 1 for k in done_after), done_after  # nothing materialized twice
    after = _snapshot(wh)
    for table in ("candidates", "verifier_profiles", "funnel_counts"):
        assert before[table].equals(after[table]), table
    for table, cols in {"candidates": "candidate_id", "verifier_profiles": "candidate_id", "preference_pairs": "pair_id"}.items():
        dup = wh.query(f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY {cols} HAVING n > 1")
        assert dup.empty, table
    runs = wh.query("SELECT stage, strategy, metrics FROM training_runs ORDER BY stage, strategy")
    assert runs[["stage", "strategy"]].values.tolist() == [["dpo", "hardneg"], ["dpo", "random"], ["sft", "sft"]]
    resumed = json.loads(runs["metrics"][0])
    assert resumed.get("resumed_from"), resumed  # the hard-negative DPO picked up its checkpoint
