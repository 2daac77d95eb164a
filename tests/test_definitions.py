"""One profile drives the code location: partitions, code versions, sizes, staleness and re-verification.

`build_definitions(profile)` is what the UI's code location and `hardneg run --profile`
both call. These tests run real Dagster (materializations in a real instance, the
automation conditions evaluated by Dagster's own evaluator) on small real inputs.
"""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import yaml

from pipeline_support import definitions_for, materialize, tiny_profile

SFT_FAMILY = "smollm2-135m-sft"


def _served(profile_path: str) -> str:
    from resources.profile import read_profile, served

    return served(read_profile(profile_path))


def test_profile_named_in_run_config_drives_partitions_and_sizes(hardneg_home, tiny_model_dir, monkeypatch):
    from hardneg.warehouse import Warehouse

    monkeypatch.setenv("HARDNEG_PROFILE", "paper")  # the environment names another profile: it must not matter
    profile = tiny_profile(hardneg_home, tiny_model_dir, seeds=[3, 7], default_partition=f"{SFT_FAMILY}|3",
                           sft={"max_steps": 2, "save_steps": 1})
    defs = definitions_for(profile)
    graph = defs.resolve_asset_graph()
    keys = set(graph.get(dg.AssetKey("candidate_pool")).partitions_def.get_partition_keys())
    assert keys == {f"{f}|{s}" for f in ("smollm2-135m-instruct", SFT_FAMILY) for s in (3, 7)}
    assert set(graph.get(dg.AssetKey("sft_adapter")).partitions_def.get_partition_keys()) == {"smollm2-135m-instruct", SFT_FAMILY}

    # The launchpad's run config names the profile; the run's sizes come from it.
    run_config = {"resources": {"profile": {"config": {"name": profile}}}}
    result = materialize(defs, ["sft_adapter"], SFT_FAMILY, run_config=run_config)
    assert result.success
    runs = Warehouse(hardneg_home / "warehouse.duckdb").query("SELECT config, metrics FROM training_runs WHERE stage = 'sft'")
    assert json.loads(runs["config"][0])["sft"]["max_steps"] == 2  # smoke and paper say otherwise
    assert json.loads(runs["metrics"][0])["steps"] == 2


def test_run_config_naming_another_profile_is_refused_before_any_work(hardneg_home, tiny_model_dir):
    from hardneg.warehouse import Warehouse

    profile = tiny_profile(hardneg_home, tiny_model_dir, seeds=[3, 7], default_partition=f"{SFT_FAMILY}|3")
    defs = definitions_for(profile)
    result = materialize(
        defs, ["sft_adapter"], SFT_FAMILY, run_config={"resources": {"profile": {"config": {"name": "smoke"}}}},
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message if failure.step_failure_data.error else failure.message
    assert "'smoke'" in message and _served(profile) in message and "HARDNEG_PROFILE=smoke" in message
    assert Warehouse(hardneg_home / "warehouse.duckdb").count("training_runs") == 0


def _seed_candidates(wh, family: str, seed: int) -> None:
    """Two candidates (one right, one with a wrong product) for one real GSM8K-style problem."""
    wh.replace_partition("problems", [{
        "problem_id": "p-apples", "source": "test", "split": "train",
        "question": "Tom has 3 boxes of 4 apples. How many apples does he have?",
        "reference_solution": "3 * 4 = 12\nThe answer is: 12", "reference_answer": "12",
    }], source="test", split="train")
    wh.replace_partition("candidates", pd.DataFrame([
        {"candidate_id": "c-right", "problem_id": "p-apples", "family": family, "seed": seed,
         "text": "3 * 4 = 12\nThe answer is: 12", "finish_reason": "stop", "answer": "12",
         "confidence": 0.9, "perplexity": 1.5, "correct": True, "n_tokens": 12},
        {"candidate_id": "c-wrong", "problem_id": "p-apples", "family": family, "seed": seed,
         "text": "3 * 4 = 13\nThe answer is: 13", "finish_reason": "stop", "answer": "13",
         "confidence": 0.8, "perplexity": 1.7, "correct": False, "n_tokens": 12},
    ]), family=family, seed=seed)


def test_changed_verifier_weight_in_yaml_marks_verifier_profiles_stale_and_reverifies(hardneg_home, tiny_model_dir):
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver  # Dagster's own staleness resolver (the UI's)

    from hardneg.verifier import VerifierConfig
    from hardneg.warehouse import Warehouse

    path = tiny_profile(hardneg_home, tiny_model_dir)
    key = f"{SFT_FAMILY}|0"
    _seed_candidates(Warehouse(hardneg_home / "warehouse.duckdb"), SFT_FAMILY, 0)
    with dg.instance_for_test() as instance:
        before = definitions_for(path)
        assert materialize(before, ["verifier_profiles"], key, instance=instance).success
        verifier = dg.AssetKey("verifier_profiles")
        first = dg.evaluate_automation_conditions(defs=before, instance=instance)
        assert first.get_requested_partitions(verifier) == set()  # nothing changed: nothing to re-verify

        # The user edits one verifier weight in the YAML and the code location reloads.
        data = yaml.safe_load(open(path))
        weights = dict(VerifierConfig().wrongness_weights)
        weights["d_logic"], weights["d_answer"] = weights["d_logic"] + 0.05, weights["d_answer"] - 0.05
        data.setdefault("verifier", {})["wrongness_weights"] = weights
        open(path, "w").write(yaml.safe_dump(data))
        after = definitions_for(path)

        graph_before, graph_after = before.resolve_asset_graph(), after.resolve_asset_graph()
        assert graph_after.get(verifier).code_version != graph_before.get(verifier).code_version
        assert graph_after.get(dg.AssetKey("candidate_pool")).code_version == graph_before.get(dg.AssetKey("candidate_pool")).code_version
        assert get_stale_status_resolver(instance, list(before.assets)).get_status(verifier, key) == StaleStatus.FRESH
        assert get_stale_status_resolver(instance, list(after.assets)).get_status(verifier, key) == StaleStatus.STALE

        second = dg.evaluate_automation_conditions(defs=after, instance=instance, cursor=first.cursor)
        # Only the partition that exists is re-verified; the funnel follows once it has run.
        assert second.get_requested_partitions(verifier) == {key}
        assert second.get_requested_partitions(dg.AssetKey("funnel")) == set()


def test_weekly_reverification_requests_the_existing_partitions(hardneg_home, tiny_model_dir):
    import datetime as dt

    from hardneg.warehouse import Warehouse

    path = tiny_profile(hardneg_home, tiny_model_dir)
    key = f"{SFT_FAMILY}|0"
    _seed_candidates(Warehouse(hardneg_home / "warehouse.duckdb"), SFT_FAMILY, 0)
    verifier = dg.AssetKey("verifier_profiles")
    with dg.instance_for_test() as instance:
        defs = definitions_for(path)
        assert materialize(defs, ["verifier_profiles"], key, instance=instance).success
        now = dt.datetime.now(dt.timezone.utc)
        saturday = (now + dt.timedelta(days=(5 - now.weekday()) % 7 or 7)).replace(hour=12, minute=0)
        before = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=saturday)
        assert before.get_requested_partitions(verifier) == set()
        sunday = (saturday + dt.timedelta(days=1)).replace(hour=3, minute=5)  # just past Sunday 03:00 UTC
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=sunday, cursor=before.cursor)
        assert after.get_requested_partitions(verifier) == {key}  # the one that exists, not the missing ones
