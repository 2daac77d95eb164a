"""HFBackend on the tiny real model: order, left padding, seeding, finish reasons, stops."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from hardneg.generation import (
    Generation,
    GenerationBackend,
    HFBackend,
    SamplingParams,
    VLLMBackend,
    stop_token_ids,
)

PROMPTS = [
    "<|im_start|>user\nJanet has 16 eggs and eats 3. How many are left?<|im_end|>\n<|im_start|>assistant\n",
    "x",
    "The answer is: 42",
    "She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much",
    "A robe takes 2 bolts",
]


def sharpened(model_dir):
    """The tiny model with larger random weights: its greedy output varies token to token
    instead of repeating one token, so order/padding bugs cannot hide behind repetition."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model, tokenizer


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    model, tokenizer = sharpened(tiny_model_dir)
    return HFBackend(model, tokenizer)


def test_backend_satisfies_protocol(backend):
    assert isinstance(backend, GenerationBackend)


def test_batched_greedy_equals_one_at_a_time_in_input_order(backend):
    params = SamplingParams(max_new_tokens=16, batch_size=3)
    batched = backend.generate(PROMPTS, params, progress=False)
    assert [g.prompt_index for g in batched] == list(range(len(PROMPTS)))
    singles = [backend.generate([p], SamplingParams(max_new_tokens=16), progress=False)[0] for p in PROMPTS]
    for b, s in zip(batched, singles):
        assert b.token_ids == s.token_ids
        assert b.text == s.text
        assert b.finish_reason == s.finish_reason
        assert b.n_tokens == len(b.token_ids)
    # The outputs really differ between prompts (a mix-up of rows would be visible).
    assert len({tuple(g.token_ids) for g in batched}) == len(PROMPTS)


def test_same_seed_same_samples_different_seed_different(backend):
    def run(seed):
        params = SamplingParams(max_new_tokens=12, temperature=0.7, top_p=0.95, n=2, seed=seed, batch_size=4)
        return [g.token_ids for g in backend.generate(PROMPTS[:3], params, progress=False)]

    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert first != other
    # n samples of one prompt differ from each other when sampling.
    assert first[0] != first[1]


def test_sampling_leaves_global_rng_alone(backend):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    backend.generate(PROMPTS[:2], SamplingParams(max_new_tokens=4, temperature=1.0, seed=7), progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_n_samples_are_prompt_major(backend):
    gens = backend.generate(PROMPTS[:2], SamplingParams(max_new_tokens=5, n=3), progress=False)
    assert [(g.prompt_index, g.sample_index) for g in gens] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    # Greedy: the three copies are identical.
    assert gens[0].token_ids == gens[1].token_ids == gens[2].token_ids


def test_finish_reason_eos_vs_length(tiny_model_dir):
    model, tokenizer = sharpened(tiny_model_dir)
    free = HFBackend(model, tokenizer).generate(PROMPTS[:1], SamplingParams(max_new_tokens=10), progress=False)[0]
    assert free.finish_reason == "length" and free.n_tokens == 10

    # Declare the 4th generated token an EOS of the model: generation must stop right
    # there, report 'eos', and leave the EOS token out of the ids and text.
    stop_at = free.token_ids[3]
    first = free.token_ids.index(stop_at)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, stop_at]
    capped = HFBackend(model, tokenizer).generate(PROMPTS[:1], SamplingParams(max_new_tokens=10), progress=False)[0]
    assert capped.finish_reason == "eos"
    assert capped.token_ids == free.token_ids[:first]
    assert capped.text == tokenizer.decode(free.token_ids[:first], skip_special_tokens=True)


def test_chat_end_token_always_stops(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, eos_token="<|endoftext|>")
    ids = stop_token_ids(tokenizer)
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") in ids
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in ids


def test_stop_string_cuts_text(backend):
    full = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16), progress=False)[0]
    piece = backend.tokenizer.decode(full.token_ids[6:8])
    assert piece and piece in full.text
    stopped = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16, stop=[piece]), progress=False)[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[: full.text.find(piece)]
    assert stopped.n_tokens < full.n_tokens


def test_progress_callback_sees_every_sequence(backend):
    calls = []
    backend.generate(PROMPTS, SamplingParams(max_new_tokens=3, batch_size=2), progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [2, 4, 5]
    assert all(c[1] == 5 for c in calls)
    assert calls[-1][2] == 15  # 5 sequences × 3 tokens: no EOS in 3 tokens for these prompts


def test_empty_and_bad_inputs(backend):
    assert backend.generate([], SamplingParams(max_new_tokens=3), progress=False) == []
    with pytest.raises(TypeError, match="prompt 1"):
        backend.generate(["ok", None], SamplingParams(max_new_tokens=3), progress=False)
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(max_new_tokens=3, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(max_new_tokens=3, top_p=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)


def test_generation_dataclass_fields():
    g = Generation(prompt_index=0, text="a", finish_reason="eos", token_ids=[1], n_tokens=1)
    assert g.sample_index == 0


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_reports_missing_vllm():
    with pytest.raises(ImportError, match="vllm"):
        VLLMBackend("some/model")
