"""The sft_adapter asset: trains a real (tiny) model through Dagster, records the artifact, re-runs cleanly."""

import json

from pipeline_support import definitions_for, materialize, tiny_profile


def _sft_metadata(result):
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == "sft_adapter"]
    return mats[-1].materialization.metadata


def test_sft_asset_trains_records_and_rematerializes_without_duplicates(hardneg_home, tiny_model_dir):
    from hardneg.warehouse import Warehouse

    profile = tiny_profile(hardneg_home, tiny_model_dir)
    defs = definitions_for(profile)
    first = materialize(defs, ["problems", "sft_adapter"], "smollm2-135m-sft")
    assert first.success
    meta = _sft_metadata(first)
    assert meta["precision_mode"].value == "lora-fp32"
    assert meta["final_loss"].value < meta["first_loss"].value  # the loss went down
    assert "loss_curve" in meta

    wh = Warehouse(hardneg_home / "warehouse.duckdb")
    runs = wh.query("SELECT * FROM training_runs WHERE stage = 'sft'")
    assert len(runs) == 1 and len(runs["sha256"][0]) == 64
    adapter = hardneg_home / "artifacts" / "sft" / "smollm2-135m-sft" / "adapter"
    assert (adapter / "adapter_config.json").exists()
    assert json.loads(runs["config"][0])["sft"]["max_steps"] == 12
    assert not list(adapter.parent.glob("checkpoint-*"))  # checkpoints are only kept to survive a kill
    n_problems = wh.count("problems")

    second = materialize(defs, ["problems", "sft_adapter"], "smollm2-135m-sft")
    assert second.success
    assert wh.count("training_runs", stage="sft") == 1
    assert wh.count("problems") == n_problems


def test_family_without_sft_is_skipped(hardneg_home, tiny_model_dir):
    profile = tiny_profile(hardneg_home, tiny_model_dir)
    result = materialize(definitions_for(profile), ["sft_adapter"], "smollm2-135m-instruct")
    assert result.success
    assert "skipped" in _sft_metadata(result)


def test_malformed_sft_line_lands_in_quarantine(hardneg_home, tiny_model_dir, tmp_path):
    from hardneg.warehouse import Warehouse

    data = tmp_path / "meta.jsonl"
    good = [json.dumps({"query": f"What is {i}+{i}?", "response": f"{i}+{i}={2 * i}\nThe answer is: {2 * i}"}) for i in range(6)]
    data.write_text("\n".join(good[:3] + ['{"query": "broken', json.dumps({"response": "no query"})] + good[3:]) + "\n")
    profile = tiny_profile(hardneg_home, tiny_model_dir, sft={"data": {"kind": "jsonl", "path": str(data), "max_examples": None}, "max_steps": 2})
    result = materialize(definitions_for(profile), ["sft_adapter"], "smollm2-135m-sft")
    assert result.success
    q = Warehouse(hardneg_home / "warehouse.duckdb").query("SELECT line_no, reason FROM quarantine ORDER BY line_no")
    assert list(q["line_no"]) == [4, 5]
    assert "invalid JSON" in q["reason"][0] and "query" in q["reason"][1]
    assert _sft_metadata(result)["examples"].value == 6
