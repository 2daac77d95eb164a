"""Jobs, selections and the re-verification automation, evaluated against real Definitions."""

import dagster as dg
import pytest

from pipeline_support import definitions_for, tiny_profile

PARTITION_STAGES = {
    "candidate_pool", "verifier_profiles", "funnel", "preference_pairs_hardneg", "preference_pairs_random",
    "dpo_hardneg", "dpo_random", "eval_hardneg", "eval_random",
}


@pytest.fixture(scope="module")
def defs():
    from hardneg_assets.definitions import build_definitions

    return build_definitions("smoke")


def _job_assets(defs, name):
    return {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys}


def test_jobs_select_by_group_and_partitions_tag(defs):
    graph = defs.resolve_asset_graph()
    upstream = {k.to_user_string() for k in graph.get(dg.AssetKey("dpo_hardneg")).parent_keys}
    assert upstream == {"funnel", "preference_pairs_hardneg", "sft_adapter"}  # funnel: its blocking check gates DPO
    # The per-partition step is every family × seed asset: derived from the partitions, never listed.
    assert _job_assets(defs, "pipeline_job") == PARTITION_STAGES
    family_seed = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None
                   and isinstance(graph.get(k).partitions_def, dg.MultiPartitionsDefinition)}
    assert family_seed == PARTITION_STAGES
    assert _job_assets(defs, "family_job") == {"sft_adapter", "eval_base"}
    assert _job_assets(defs, "report_job") == {"problems", "report"}
    assert _job_assets(defs, "evaluation_job") == {"eval_hardneg", "eval_random"}
    assert _job_assets(defs, "reverify_job") == {"verifier_profiles", "funnel", "preference_pairs_hardneg", "preference_pairs_random"}


def test_run_steps_cover_the_graph_once_in_dependency_order(defs):
    from jobs.selections import RUN_STEPS

    graph = defs.resolve_asset_graph()
    seen: list[set[str]] = []
    for _, selection, _ in RUN_STEPS:
        seen.append({k.to_user_string() for k in selection.resolve(graph)})
    everything = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set().union(*seen) == everything and sum(map(len, seen)) == len(everything)
    position = {a: i for i, step in enumerate(seen) for a in step}
    for key in graph.get_all_asset_keys():
        for parent in graph.get(key).parent_keys:
            assert position[parent.to_user_string()] <= position[key.to_user_string()], (parent, key)


def _version(defs, name: str) -> str:
    return defs.resolve_asset_graph().get(dg.AssetKey(name)).code_version


def test_code_version_follows_the_profile_sections_a_stage_reads(hardneg_home, tiny_model_dir):
    before = definitions_for(tiny_profile(hardneg_home, tiny_model_dir))
    after = definitions_for(tiny_profile(hardneg_home, tiny_model_dir, dpo={"learning_rate": 0.5}))
    assert _version(before, "dpo_hardneg") != _version(after, "dpo_hardneg")
    # the pairs read only `dpo.weighting` (Z): a DPO learning rate must not redo the funnel (issue 17)
    for unaffected in ("eval_base", "verifier_profiles", "candidate_pool", "funnel", "preference_pairs_hardneg"):
        assert _version(before, unaffected) == _version(after, unaffected), unaffected


def test_a_moved_encoder_keeps_the_verifier_code_version(hardneg_home, tiny_model_dir, tmp_path):
    """A second venv or a moved clone keeps MiniLM at another path: the verifier is not stale; a changed
    model file is another model, and it is."""
    import shutil

    from hardneg.verifier.config import default_embedding_model

    moved = tmp_path / "another-venv" / "model"
    shutil.copytree(default_embedding_model(), moved)
    here = definitions_for(tiny_profile(hardneg_home, tiny_model_dir))
    there = definitions_for(tiny_profile(hardneg_home, tiny_model_dir, verifier={"embedding_model": str(moved)}))
    assert _version(here, "verifier_profiles") == _version(there, "verifier_profiles")
    (moved / "config.json").write_text((moved / "config.json").read_text() + "\n")  # edited in place: re-hashed
    changed = definitions_for(tiny_profile(hardneg_home, tiny_model_dir, verifier={"embedding_model": str(moved)}))
    assert _version(here, "verifier_profiles") != _version(changed, "verifier_profiles")


def test_a_moved_local_model_keeps_the_sft_code_version(hardneg_home, tiny_model_dir, tmp_path):
    """`models.<name>.local_path` names the model by content too: a copy elsewhere is the same SFT input."""
    import shutil

    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(tiny_model_dir, moved)
    model = lambda path: {"models": {"smollm2-135m-instruct": {"name": "smollm2-135m-instruct", "local_path": str(path)}}}
    here = definitions_for(tiny_profile(hardneg_home, tiny_model_dir))
    there = definitions_for(tiny_profile(hardneg_home, tiny_model_dir, **model(moved)))
    assert _version(here, "sft_adapter") == _version(there, "sft_adapter")
    (moved / "config.json").write_text((moved / "config.json").read_text() + "\n")
    changed = definitions_for(tiny_profile(hardneg_home, tiny_model_dir, **model(moved)))
    assert _version(here, "sft_adapter") != _version(changed, "sft_adapter")


def test_set_override_reaches_the_code_version(hardneg_home, tiny_model_dir):
    import inspect

    from hardneg.profiles import load_profile

    if "overrides" not in inspect.signature(load_profile).parameters:
        pytest.skip("load_profile(overrides=...) arrives with issue 15")
    profile = tiny_profile(hardneg_home, tiny_model_dir)
    before, after = definitions_for(profile), definitions_for(profile, overrides=("dpo.learning_rate=0.5",))
    assert _version(before, "dpo_hardneg") != _version(after, "dpo_hardneg")
    assert after.resources["profile"].overrides == ["dpo.learning_rate=0.5"]  # and the runs load the same profile


def test_reverify_sensor_targets_the_automated_assets_and_is_off_by_default(defs):
    [sensor] = [s for s in defs.sensors if s.name == "reverify_sensor"]
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    graph = defs.resolve_asset_graph()
    automated = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    assert automated == {"verifier_profiles", "funnel", "preference_pairs_hardneg", "preference_pairs_random"}
    assert "cron_tick_passed" in str(graph.get(dg.AssetKey("verifier_profiles")).automation_condition.get_snapshot())
