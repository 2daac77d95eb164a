"""WeightedDPOTrainer against TRL's DPOTrainer and against a hand computation; train_dpo end to end.

The loss tests use a float64 copy of the tiny Llama with a LoRA whose weights are set to fixed
random values, so that policy != reference and the per-pair DPO losses differ (with a fresh LoRA
every pair's loss is log 2 and any weighting would look right).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from hardneg.training import device_arguments, last_checkpoint
from hardneg.dpo import (
    DPORunConfig,
    WeightedDPOConfig,
    WeightedDPOTrainer,
    build_preference_dataset,
    load_dpo_policy,
    load_policy,
    main,
    train_dpo,
)
from hardneg.prompts import SFT_SYSTEM_PROMPT

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_pairs(n: int = 8, raw_weights=None) -> pd.DataFrame:
    rows = []
    for i in range(n):
        a, b = i + 2, 3 + (i % 3)
        rows.append(
            {
                "pair_id": f"gsm-{i}#0",
                "prompt": f"Tom has {a} apples and buys {b} bags with {a} apples each. How many apples now?",
                "chosen": f"Each bag has {a} apples, so {b} bags hold {a * b}. Total {a}+{a * b}={a + a * b}. "
                f"The answer is: {a + a * b}" + " Check." * (i % 4),
                "rejected": f"He buys {b} bags, so {a}+{b}={a + b}. The answer is: {a + b}",
                "raw_weight": float(raw_weights[i]) if raw_weights is not None else 1.0 + 0.37 * i,
            }
        )
    return pd.DataFrame(rows)


def _dpo_args(tmp_path, cls=None, **kw):
    from trl import DPOConfig

    cls = cls or DPOConfig
    base = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to="none",
        per_device_train_batch_size=4,
        gradient_checkpointing=False,
        max_length=256,
        seed=0,
        beta=0.1,
    )
    base.update(kw)
    return cls(**base)


def _set_lora(model, seed: int = 123):
    # Same fixed LoRA values in every trainer, whatever PEFT's init drew.
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if "lora_A" in name or "lora_B" in name:
            p.data.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * 0.3)


def _trainer(cls, tiny_model_dir, tmp_path, dataset, args_kw=None, **kw):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float64)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    args_cls = WeightedDPOConfig if issubclass(cls, WeightedDPOTrainer) else None
    trainer = cls(
        model=model,
        args=_dpo_args(tmp_path, args_cls, **(args_kw or {})),
        train_dataset=dataset,
        processing_class=tok,
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"),
        **kw,
    )
    _set_lora(trainer.model)
    return trainer


@pytest.fixture(scope="module")
def loss_setup(tiny_model_dir, tmp_path_factory):
    from transformers import AutoTokenizer
    from trl import DPOTrainer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = build_preference_dataset(make_pairs(4), tok, weighted=True)
    trl_tr = _trainer(DPOTrainer, tiny_model_dir, tmp_path_factory.mktemp("trl"), ds)
    ours = _trainer(WeightedDPOTrainer, tiny_model_dir, tmp_path_factory.mktemp("ours"), ds)
    examples = [ours.train_dataset[i] for i in range(4)]
    return trl_tr, ours, examples


def _loss(trainer, batch):
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def _per_pair_losses_by_hand(trainer, batch, beta=0.1):
    """Sigmoid DPO loss per pair from full logits (no TRL code): policy = LoRA on, reference = LoRA off."""
    ids, attn, cm = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    model = trainer.model

    def seq_logps():
        logits = model(input_ids=ids, attention_mask=attn).logits
        lp = torch.log_softmax(logits[:, :-1].double(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return (lp * cm[:, 1:]).sum(dim=1)

    with torch.no_grad():
        pol = seq_logps()
        with model.disable_adapter():
            ref = seq_logps()
    pc, pr = pol.chunk(2)
    rc, rr = ref.chunk(2)
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))


def test_lambda_zero_and_equal_weights_equal_trl_loss(loss_setup):
    trl_tr, ours, examples = loss_setup
    trl_batch = trl_tr.data_collator([{k: v for k, v in ex.items() if k != "weight"} for ex in examples])
    batch = ours.data_collator(examples)
    assert "weight" in batch and "weight" not in trl_batch
    ref_loss = _loss(trl_tr, trl_batch)
    assert abs(ref_loss - math.log(2)) > 1e-3, "policy == reference: the comparison would be vacuous"
    per_pair = _per_pair_losses_by_hand(ours, batch)
    assert float(per_pair.std()) > 1e-3, "all pairs have the same loss: weighting could not show"

    unequal = batch["weight"].clone()
    assert float(unequal.std()) > 0.1
    ours.args.weight_lambda = 0.0
    assert _loss(ours, batch) == pytest.approx(ref_loss, abs=1e-6)

    ours.args.weight_lambda = 0.3
    equal = dict(batch, weight=torch.full((4,), 3.7))
    assert _loss(ours, equal) == pytest.approx(ref_loss, abs=1e-6)
    # ...and the weights do matter when they differ
    assert abs(_loss(ours, batch) - ref_loss) > 1e-5


def test_lambda_one_equals_hand_computed_weighted_mean(loss_setup):
    trl_tr, ours, examples = loss_setup
    batch = ours.data_collator(examples)
    w = torch.tensor([0.4, 1.0, 2.5, 6.0], dtype=torch.float64)
    batch["weight"] = w.float()
    per_pair = _per_pair_losses_by_hand(ours, batch)
    w_tilde = w / w.mean()  # λ = 1, no clipping
    expected = float((w_tilde * per_pair).mean())
    ours.args.weight_lambda, ours.args.weight_min, ours.args.weight_max = 1.0, 1e-3, 1e3
    got = _loss(ours, batch)
    ours.args.weight_lambda, ours.args.weight_min, ours.args.weight_max = 0.3, 0.5, 2.0
    assert got == pytest.approx(expected, abs=1e-6)
    assert abs(expected - float(per_pair.mean())) > 1e-4  # not the unweighted mean in disguise
    # the hand computation agrees with TRL's unweighted loss too, so both use the same reference
    trl_batch = {k: v for k, v in batch.items() if k != "weight"}
    assert _loss(trl_tr, trl_batch) == pytest.approx(float(per_pair.mean()), abs=1e-6)


def test_weight_column_survives_preprocessing_and_column_removal(loss_setup, tiny_model_dir, tmp_path):
    trl_tr, _, _ = loss_setup
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs = make_pairs(8)
    ds = build_preference_dataset(pairs, tok, weighted=True)
    ours = _trainer(WeightedDPOTrainer, tiny_model_dir, tmp_path, ds)
    # through TRL's tokenisation map, in order
    assert ours.train_dataset["weight"] == pytest.approx(pairs["raw_weight"].tolist())
    assert "prompt_ids" in ours.train_dataset.column_names
    # through remove_unused_columns and the collator, every pair exactly once
    seen = []
    for b in ours.get_train_dataloader():
        assert set(b) >= {"input_ids", "attention_mask", "completion_mask", "weight"}
        assert b["weight"].shape == (b["input_ids"].shape[0] // 2,)
        seen += b["weight"].tolist()
    assert sorted(seen) == pytest.approx(sorted(pairs["raw_weight"].tolist()))
    # plain TRL drops it: that is why the override exists
    trl_batch = next(iter(trl_tr.get_train_dataloader()))
    assert "weight" not in trl_batch


def test_unsupported_trl_options_are_rejected(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = build_preference_dataset(make_pairs(2), tok, weighted=False)
    with pytest.raises(NotImplementedError, match="ipo"):
        WeightedDPOTrainer(model=str(tiny_model_dir), args=_dpo_args(tmp_path, WeightedDPOConfig, loss_type=["ipo"]),
                           train_dataset=ds, processing_class=tok)
    # λ and the clip bounds are config fields, validated once when the config is built
    with pytest.raises(ValueError, match="lam"):
        _dpo_args(tmp_path, WeightedDPOConfig, weight_lambda=1.5)
    with pytest.raises(ValueError, match="w_min"):
        _dpo_args(tmp_path, WeightedDPOConfig, weight_min=3.0, weight_max=2.0)
    with pytest.raises(TypeError, match="WeightedDPOConfig"):
        WeightedDPOTrainer(model=str(tiny_model_dir), args=_dpo_args(tmp_path), train_dataset=ds, processing_class=tok)


def test_build_preference_dataset_validation_and_prompts(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs = make_pairs(3)
    pairs.loc[1, "raw_weight"] = float("nan")
    with pytest.raises(ValueError, match="gsm-1#0"):
        build_preference_dataset(pairs, tok, weighted=True)
    # the uniform baseline ignores raw weights entirely
    ds = build_preference_dataset(pairs, tok, weighted=False)
    assert ds["weight"] == [1.0, 1.0, 1.0]
    bad = make_pairs(3)
    bad.loc[2, "rejected"] = "  "
    with pytest.raises(ValueError, match=r"gsm-2#0.*rejected"):
        build_preference_dataset(bad, tok, weighted=False)
    with pytest.raises(ValueError, match="raw_weight"):
        build_preference_dataset(make_pairs(2).drop(columns=["raw_weight"]), tok, weighted=True)
    # the exported DPO parquet (hardneg.pairs.export_pairs) names the raw weight `weight`
    exported = make_pairs(2).rename(columns={"raw_weight": "weight"})
    assert build_preference_dataset(exported, tok, weighted=True)["weight"] == pytest.approx([1.0, 1.37])
    dup = make_pairs(2)
    dup.loc[1, "pair_id"] = dup.loc[0, "pair_id"]
    with pytest.raises(ValueError, match="duplicate"):
        build_preference_dataset(dup, tok, weighted=False)
    # bare questions are rendered with the training system prompt; rendered prompts are kept as they are
    q = make_pairs(1)
    rendered = build_preference_dataset(q, tok, weighted=False)["prompt"][0]
    assert SFT_SYSTEM_PROMPT in rendered and rendered.endswith("<|im_start|>assistant\n")
    q.loc[0, "prompt"] = rendered
    assert build_preference_dataset(q, tok, weighted=False)["prompt"][0] == rendered


def _sft_adapter(tiny_model_dir, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, task_type="CAUSAL_LM"))
    _set_lora(peft, seed=7)
    peft.save_pretrained(out)
    return out


def test_load_policy_merges_the_sft_adapter(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    sft = _sft_adapter(tiny_model_dir, tmp_path / "sft")
    merged, precision = load_policy(str(tiny_model_dir), str(sft), "cpu", False, tmp_path)
    assert precision == "lora-fp32"
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(sft))(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        got = merged(ids).logits
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert float((got - base).abs().max()) > 1e-3


def test_train_dpo_writes_adapter_logs_and_resumes(tiny_model_dir, tmp_path):
    pairs = make_pairs(8)
    cfg = DPORunConfig(max_steps=4, per_device_train_batch_size=2, gradient_accumulation_steps=1, lora={"r": 4, "alpha": 8},
                       save_steps=2, learning_rate=1e-3, max_length=256)
    out = tmp_path / "run"

    def crash_at_3(step, max_steps, logs):
        if step >= 3:
            raise RuntimeError("simulated kill")

    with pytest.raises(RuntimeError, match="simulated kill"):
        train_dpo(str(tiny_model_dir), pairs, str(out), cfg, weighted=True, progress_callback=crash_at_3)
    assert last_checkpoint(out) == str(out / "checkpoint-2")
    assert not (out / "adapter").exists()
    # a kill while checkpoint-3 was being saved: its trainer state is empty, so it is no resume point
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-3")
    (out / "checkpoint-3" / "trainer_state.json").write_text("")
    assert last_checkpoint(out) == str(out / "checkpoint-2")
    # a checkpoint of another run must not be silently resumed
    with pytest.raises(ValueError, match="different run"):
        train_dpo(str(tiny_model_dir), pairs, str(out), cfg, weighted=False)
    assert not (out / "checkpoint-3").exists()  # the cut-off checkpoint is gone, the complete one kept
    assert (out / "checkpoint-2").exists()

    seen = []
    res = train_dpo(str(tiny_model_dir), pairs, str(out), cfg, weighted=True,
                    progress_callback=lambda s, m, logs: seen.append(s))
    assert res.metrics["resumed_from"] == "checkpoint-2"  # relative to the artifact root (here the run dir)
    assert res.metrics["global_step"] == 4
    assert res.metrics["precision"] == "lora-fp32" and res.metrics["use_cpu"] is True
    assert min(seen) == 3  # steps 1-2 were not trained again
    adapter = Path(res.adapter_dir)
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    steps = [r for r in res.log_history if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    for r in steps:
        for k in ("rewards/margins", "rewards/accuracies", "weight/mean", "weight/min", "weight/max",
                  "weight/n_clipped"):
            assert k in r, (k, r)
        assert 0.5 <= r["weight/min"] <= r["weight/mean"] <= r["weight/max"] <= 2.0
    assert any(r["weight/max"] - r["weight/min"] > 0.01 for r in steps)  # weighted: weights differ
    assert Path(res.loss_curve_png).stat().st_size > 1000
    # the saved adapter rebuilds a policy that differs from the starting one
    from transformers import AutoModelForCausalLM

    model, tok = load_dpo_policy(res.adapter_dir)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        diff = (model(ids).logits - AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits).abs().max()
    assert float(diff) > 1e-6


def test_uniform_run_on_sft_starts_at_log2_via_cli(tiny_model_dir, tmp_path, capsys):
    """Reference == starting policy (merged SFT): the first loss is exactly log 2; weights all 1."""
    sft = _sft_adapter(tiny_model_dir, tmp_path / "sft")
    pairs_path = tmp_path / "pairs.parquet"
    make_pairs(4).to_parquet(pairs_path)
    out = tmp_path / "run"
    rc = main(["--pairs", str(pairs_path), "--policy", str(tiny_model_dir), "--output", str(out),
               "--sft-adapter", str(sft), "--device", "cpu", "--max-steps", "2", "--per-device-train-batch-size", "2",
               "--gradient-accumulation-steps", "1", "--max-length", "256", "--learning-rate", "1e-3",
               "--lora.r", "4", "--lora.alpha", "8", "--weighting.lam", "0.5"])
    assert rc == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.rfind('{\n  "adapter_dir"'):])
    assert summary["metrics"]["strategy"] == "uniform" and summary["metrics"]["global_step"] == 2
    assert "merged SFT" in summary["metrics"]["reference"]
    adapter = out / "adapter"
    assert (adapter / "adapter_model.safetensors").exists()
    prov = json.loads((adapter / "hardneg_dpo.json").read_text())
    # paths in artifacts are relative (to --output here): the SFT-merged model is the adapter's base
    assert prov["sft_adapter_path"] == "../sft" and prov["base"] == "sft_merged" and prov["weighted"] is False
    assert prov["config"]["weighting"]["lam"] == 0.5 and prov["config"]["lora"]["r"] == 4  # generated options
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == "sft_merged"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    steps = [r for r in state["log_history"] if "loss" in r]
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert steps[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    for r in steps:
        assert r["weight/min"] == r["weight/max"] == 1.0 and r["weight/n_clipped"] == 0


def test_device_arguments_follow_device_and_precision():
    """SFT and DPO take these TrainingArguments fields from one place: CPU runs never get bf16,
    paged optimizers or gradient checkpointing, whatever the config asks for."""
    cpu = device_arguments(on_cuda=False, quantized=False, bf16=True, gradient_checkpointing=True)
    assert cpu == {"optim": "adamw_torch", "bf16": False, "fp16": False, "use_cpu": True,
                   "gradient_checkpointing": False, "report_to": "none"}
    qlora = device_arguments(on_cuda=True, quantized=True, bf16=True, gradient_checkpointing=True)
    assert (qlora["optim"], qlora["bf16"], qlora["use_cpu"], qlora["gradient_checkpointing"]) == ("paged_adamw_32bit", True, False, True)
    fp32_gpu = device_arguments(on_cuda=True, quantized=False, bf16=False, gradient_checkpointing=False)
    assert (fp32_gpu["optim"], fp32_gpu["bf16"], fp32_gpu["gradient_checkpointing"]) == ("adamw_torch", False, False)


def _accum_trainer(tiny_model_dir, tmp_path, raw_weights, batch_size, accum, **args_kw):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = build_preference_dataset(make_pairs(len(raw_weights), raw_weights), tok, weighted=True)
    kw = dict(per_device_train_batch_size=batch_size, gradient_accumulation_steps=accum, max_steps=1,
              learning_rate=1e-6, logging_steps=1, save_strategy="no", **args_kw)
    return _trainer(WeightedDPOTrainer, tiny_model_dir, tmp_path, ds, args_kw=kw)


def test_weights_are_normalized_over_the_optimizer_batch(tiny_model_dir, tmp_path):
    """Micro-batches of ONE pair, 4 accumulated per step: normalised per micro-batch every weight
    would be exactly 1 (plain DPO); normalised over the optimizer batch they are w / mean(w)."""
    raw = [0.5, 1.0, 2.0, 4.5]
    w = torch.tensor(raw, dtype=torch.float64)
    expected = w / w.mean()  # λ = 1, clip wide open
    trainer = _accum_trainer(tiny_model_dir, tmp_path / "a", raw, batch_size=1, accum=4,
                             weight_lambda=1.0, weight_min=1e-3, weight_max=1e3)
    # 1) the loss the Trainer backpropagates over one accumulation step, micro-batch by micro-batch,
    #    equals (1/B) Σ w̃_i ℓ_i over the whole optimizer batch (B = 4)
    batches, _ = trainer.get_batch_samples(iter(trainer.get_train_dataloader()), 4, trainer.args.device)
    assert len(batches) == 4 and all(b["input_ids"].shape[0] == 2 for b in batches)
    total, by_hand = 0.0, 0.0
    for b in batches:
        total += _loss(trainer, b) / 4  # the Trainer divides by the accumulation steps
        w_i = float(b["weight"][0]) / float(w.mean())
        by_hand += w_i * float(_per_pair_losses_by_hand(trainer, b)[0]) / 4
    plain = sum(float(_per_pair_losses_by_hand(trainer, b)[0]) for b in batches) / 4
    assert total == pytest.approx(by_hand, abs=1e-6)
    assert abs(total - plain) > 1e-4  # micro-batch normalisation would give exactly the plain mean
    # 2) the real training loop logs the optimizer-batch weights
    trainer.train()
    log = next(r for r in trainer.state.log_history if "weight/min" in r)
    assert log["weight/min"] == pytest.approx(float(expected.min()), abs=1e-5)
    assert log["weight/max"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert log["weight/mean"] == pytest.approx(1.0, abs=1e-5)


def test_clip_fires_over_the_optimizer_batch(tiny_model_dir, tmp_path):
    """λ = 0.3, clip [0.5, 2], batch 2 × accumulation 4, one outlier weight: over its own
    micro-batch of 2 the outlier gets 1.29 (no clip); over the optimizer batch of 8 it gets
    1 + 0.3 (100 / 13.375 − 1) = 2.94, clipped to 2."""
    raw = [1.0] * 7 + [100.0]
    trainer = _accum_trainer(tiny_model_dir, tmp_path, raw, batch_size=2, accum=4)
    trainer.train()
    log = next(r for r in trainer.state.log_history if "weight/n_clipped" in r)
    assert log["weight/n_clipped"] == 1
    assert log["weight/max"] == pytest.approx(2.0)
    assert log["weight/min"] == pytest.approx(1 + 0.3 * (1 / (107 / 8) - 1), abs=1e-5)


def test_profile_loads_without_torch_or_trl_and_paper_writes_out_the_knobs():
    import subprocess
    import sys

    code = ("import sys; from hardneg.profiles import load_profile; p = load_profile('paper'); "
            "print(sorted(m for m in ('torch', 'trl', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout
    import yaml

    from hardneg.profiles import PROFILES_DIR, load_profile

    raw = yaml.safe_load((PROFILES_DIR / "paper.yaml").read_text())
    assert raw["dpo"]["beta"] == 0.1 and raw["dpo"]["weighting"] == {"lam": 0.3, "w_min": 0.5, "w_max": 2.0}
    assert raw["pairs"]["perplexity_z"] == 10.0 and "z" not in raw["dpo"]["weighting"]
    assert "eq. 2" in (PROFILES_DIR / "paper.yaml").read_text() and "SPEC §2.5" in (PROFILES_DIR / "paper.yaml").read_text()
    paper, smoke = load_profile("paper"), load_profile("smoke")
    assert paper.dpo.learning_rate == 5e-6 and paper.dpo.gradient_accumulation_steps == 16
    assert smoke.dpo.max_steps <= 20  # SPEC §4: smoke DPO ≤ 20 steps


def test_report_to_is_validated_at_load():
    from hardneg.training import normalize_report_to, report_to_argument

    assert DPORunConfig().report_to == "none" and DPORunConfig(report_to=["none"]).report_to == "none"
    assert normalize_report_to(["tensorboard", "mlflow", "tensorboard"]) == "tensorboard,mlflow"
    with pytest.raises(ValueError, match="unknown tracker"):
        DPORunConfig(report_to="tensorbord")
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ValueError, match="not installed"):
            report_to_argument("wandb")
    assert report_to_argument("none") == "none"
