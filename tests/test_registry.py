"""The model registry: the embedded SmolLM2 loads offline with its ChatML template; hub ids fail fast here."""

import os

import pytest

from hardneg.prompts import SFT_SYSTEM_PROMPT, training_messages
from hardneg.registry import ModelSpec, ModelUnavailableError, embedding_model_path, load_tokenizer, resolve_model


def test_smollm2_loads_with_chat_template_and_generates(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM

    assert (smollm2_dir / "model.safetensors").exists()
    assert "quantization_config" not in (smollm2_dir / "config.json").read_text()  # trainable, not GGUF-flagged
    tok = load_tokenizer(str(smollm2_dir))
    text = tok.apply_chat_template(training_messages("What is 2+3?", "2+3=5\nThe answer is: 5"), tokenize=False)
    assert text.startswith(f"<|im_start|>system\n{SFT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nWhat is 2+3?")
    assert text.rstrip().endswith("The answer is: 5<|im_end|>")
    assert tok.pad_token_id != tok.eos_token_id  # EOS stays a trainable label

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    prompt = tok.apply_chat_template(training_messages("What is 2+3?"), tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    reply = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert len(reply.strip()) > 0


def test_conversion_is_cached(smollm2_dir):
    before = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("smollm2-135m-instruct") == str(smollm2_dir)
    assert (smollm2_dir / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.timeout(60)
def test_hub_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="Qwen/Qwen2.5-1.5B-Instruct"):
        resolve_model("qwen2.5-1.5b-instruct")


def test_unknown_model_and_missing_local_path_are_clear_errors(tmp_path):
    with pytest.raises(ModelUnavailableError, match="unknown model 'nope'"):
        resolve_model("nope")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        resolve_model(ModelSpec(name="x", local_path=str(tmp_path / "missing")))


def test_embedding_model_is_the_local_package():
    path = embedding_model_path()
    assert os.path.isdir(path) and os.path.exists(os.path.join(path, "model.safetensors"))
