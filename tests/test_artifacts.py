"""Portable artifacts: SFT → merged SFT model → DPO adapter on top of it, loadable with plain
transformers + PEFT in a fresh process, from a moved copy, with no absolute path in any artifact;
SFT resumes only its own run; `hardneg export` writes a merged model with a model card."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from hardneg.dpo import DPORunConfig, load_dpo_policy, train_dpo
from hardneg.sft import SFTRunConfig, train_sft
from hardneg.training import absolute_paths_in_json

PROMPT_IDS = [[5, 17, 42, 99, 7, 3, 250]]

PLAIN_LOAD = r"""
import json, sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM
from peft import AutoPeftModelForCausalLM, PeftModel
adapter = sys.argv[1]
base = json.loads((Path(adapter) / "adapter_config.json").read_text())["base_model_name_or_path"]
ids = torch.tensor(json.loads(sys.argv[2]))
with torch.no_grad():
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()(ids).logits
    auto = AutoPeftModelForCausalLM.from_pretrained(adapter).eval()(ids).logits
torch.save({"plain": plain, "auto": auto, "base": base}, sys.argv[3])
"""


def _pairs(n=6):
    rows = []
    for i in range(n):
        a, b = i + 2, 3 + (i % 3)
        rows.append({"pair_id": f"p{i}", "problem_id": f"q{i}",
                     "prompt": f"Tom has {a} apples and buys {b} more. How many apples?",
                     "chosen": f"{a}+{b}={a + b}. The answer is: {a + b}",
                     "rejected": f"{a}*{b}={a * b}. The answer is: {a * b}", "raw_weight": 1.0 + 0.3 * i})
    return pd.DataFrame(rows)


def _sft_examples(n=4):
    return pd.DataFrame({"query": [f"What is {i} + {i}?" for i in range(n)],
                         "response": [f"{i} + {i} = {2 * i}. The answer is: {2 * i}" for i in range(n)]})


@pytest.fixture(scope="module")
def trained_root(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("artifacts")
    from hardneg.training import LoraSettings

    sft_cfg = SFTRunConfig(lora=LoraSettings(r=4, alpha=8, dropout=0.0), learning_rate=5e-2, per_device_batch_size=2,
                           gradient_accumulation_steps=1, max_length=64, max_steps=2, save_steps=1, packing=False)
    sft = train_sft(str(tiny_model_dir), _sft_examples(), root / "sft" / "fam", sft_cfg, artifact_root=root)
    dpo_cfg = DPORunConfig(max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                           lora={"r": 4, "alpha": 8}, learning_rate=5e-2, max_length=128, save_steps=1)
    dpo = train_dpo(sft.merged_dir, _pairs(), str(root / "dpo" / "hardneg" / "fam" / "0"), dpo_cfg, weighted=True,
                    heldout_fraction=0.34, artifact_root=str(root))
    return root, sft, dpo, sft_cfg


def _logits(model):
    with torch.no_grad():
        return model.eval()(torch.tensor(PROMPT_IDS)).logits


def test_dpo_checkpoint_loads_with_plain_peft_in_a_fresh_process(trained_root, tiny_model_dir, tmp_path):
    root, sft, dpo, _ = trained_root
    cfg = json.loads((Path(dpo.adapter_dir) / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "sft/fam/merged"  # the SFT-merged model, relative to the root
    ours, _ = load_dpo_policy(dpo.adapter_dir)  # the project's own loader (as evaluation uses)
    expected = _logits(ours)
    # A moved copy of the artifact root: nothing in it may depend on where it was written.
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    adapter = "dpo/hardneg/fam/0/adapter"
    out = tmp_path / "plain.pt"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", PLAIN_LOAD, adapter, json.dumps(PROMPT_IDS), str(out)], cwd=moved,
                   env=env, check=True, capture_output=True, timeout=300)
    got = torch.load(out)
    torch.testing.assert_close(got["plain"], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(got["auto"], expected, atol=1e-5, rtol=0)
    # ...and the SFT stage is really in there: the DPO adapter on the raw base gives other logits
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    without_sft = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), dpo.adapter_dir))
    assert float((without_sft - expected).abs().max()) > 1e-3


def test_no_absolute_path_in_any_artifact(trained_root):
    root, sft, dpo, _ = trained_root
    assert absolute_paths_in_json(root) == []
    for readme in root.rglob("README.md"):
        assert str(root) not in readme.read_text() and "/tmp/" not in readme.read_text(), readme
    prov = json.loads((Path(dpo.adapter_dir) / "hardneg_dpo.json").read_text())
    assert prov["base"] == "sft/fam/merged" and prov["paths_relative_to"] == "artifact root"
    assert json.loads((Path(sft.adapter_dir) / "adapter_config.json").read_text())["base_model_name_or_path"].startswith("../")


def test_dpo_heldout_metrics_before_and_after(trained_root):
    _, _, dpo, _ = trained_root
    m = dpo.metrics
    assert m["n_heldout_pairs"] == 2 and m["n_train_examples"] == 4
    before, after = m["heldout"]["before"], m["heldout"]["after"]
    assert before["reward_margin"] == pytest.approx(0.0, abs=1e-6) and before["reward_accuracy"] == 0.0
    assert before["logp_margin"] == pytest.approx(before["ref_logp_margin"], abs=1e-5)  # policy == reference
    assert after["ref_logp_margin"] == pytest.approx(before["ref_logp_margin"], abs=1e-5)  # reference stays frozen
    assert after["reward_margin"] != pytest.approx(0.0, abs=1e-6)  # the policy moved on unseen pairs
    assert len(m["pairs_sha256"]) == 64


def test_sft_resumes_only_its_own_run(trained_root, tiny_model_dir):
    root, _, _, sft_cfg = trained_root
    out = root / "sft" / "fam"
    assert (out / "checkpoint-2").exists()
    other = SFTRunConfig(**{**sft_cfg.__dict__, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"different run.*config"):
        train_sft(str(tiny_model_dir), _sft_examples(), out, other, artifact_root=root)
    with pytest.raises(ValueError, match=r"different run.*examples_sha256"):
        train_sft(str(tiny_model_dir), _sft_examples(3), out, sft_cfg, artifact_root=root)


def test_export_writes_a_merged_model_with_a_model_card(trained_root, tmp_path, monkeypatch):
    from hardneg.cli import main
    from hardneg.warehouse import Warehouse

    root, sft, dpo, _ = trained_root
    home = tmp_path / "home"
    monkeypatch.setenv("HARDNEG_HOME", str(home))
    wh = Warehouse(home / "warehouse.duckdb")
    wh.replace_partition("training_runs", [{
        "run_id": "dagster-run-1", "family": "fam", "seed": 0, "stage": "dpo", "strategy": "hardneg",
        "artifact_path": dpo.adapter_dir, "sha256": "abc", "created_at": pd.Timestamp("2026-01-01"),
        "config": json.dumps({"profile": "smoke", "dpo": {"beta": 0.1, "weighting": {"lam": 0.3, "w_min": 0.5, "w_max": 2.0}}}),
        "metrics": json.dumps(dpo.metrics, default=str)}], family="fam", seed=0, stage="dpo", strategy="hardneg")
    wh.replace_partition("eval_summary", [
        {"family": "fam", "seed": 0, "strategy": "hardneg", "benchmark": "gsm8k", "n": 25, "accuracy": 0.16,
         "accuracy_math_verify": 0.08},
        {"family": "fam", "seed": 0, "strategy": "base", "benchmark": "gsm8k", "n": 25, "accuracy": 0.12,
         "accuracy_math_verify": 0.04}], family="fam")
    out = tmp_path / "export"
    assert main(["export", "fam|0|hardneg", str(out)]) == 0
    from transformers import AutoModelForCausalLM

    ours, _ = load_dpo_policy(dpo.adapter_dir)
    torch.testing.assert_close(_logits(AutoModelForCausalLM.from_pretrained(out)), _logits(ours), atol=1e-5, rtol=0)
    card = (out / "README.md").read_text()
    for needle in (dpo.metrics["pairs_sha256"], "fam|0|hardneg", "dagster-run-1", "`smoke`", "| hardneg", "16", "8"):
        assert needle in card, needle
    assert absolute_paths_in_json(out) == []
    # the Dagster run id works too when it names one adapter; unknown ids are a clear error
    assert main(["export", "dagster-run-1", str(tmp_path / "export2")]) == 0
    assert main(["export", "fam|3|hardneg", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_a_pipeline_owned_folder_discards_checkpoints_of_another_run(tmp_path):
    from hardneg.training import RUN_CONFIG_FILE, check_resume_fingerprint, write_fingerprint

    run = tmp_path / "dpo"
    (run / "checkpoint-2").mkdir(parents=True)
    (run / "checkpoint-2" / "trainer_state.json").write_text("{}")
    write_fingerprint(run, {"pairs_sha256": "old"})
    with pytest.raises(ValueError, match=r"different run.*pairs_sha256"):
        check_resume_fingerprint(run, {"pairs_sha256": "new"})
    assert (run / "checkpoint-2").is_dir()  # the default refuses and deletes nothing
    with pytest.warns(UserWarning, match="deleting them"):
        assert check_resume_fingerprint(run, {"pairs_sha256": "new"}, other_runs="discard") is None
    assert not list(run.glob("checkpoint-*")) and (run / RUN_CONFIG_FILE).exists()
