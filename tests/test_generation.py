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


def test_progress_callback_sees_every_sequence_and_every_step(backend):
    calls = []
    backend.generate(PROMPTS, SamplingParams(max_new_tokens=3, batch_size=2), progress=lambda *a: calls.append(a))
    done = [c[0] for c in calls]
    assert done == sorted(done) and {2, 4, 5} <= set(done)
    assert all(c[1] == 5 for c in calls)
    tokens = [c[2] for c in calls]
    assert tokens == sorted(tokens)
    # Token counts move inside a batch (per decode step), not only when a batch ends.
    assert len(set(tokens)) > 3
    assert calls[-1][0] == 5 and calls[-1][2] == 15  # 5 sequences × 3 tokens: no EOS in 3 tokens


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


# ---------------------------------------------------------------- native backend

from hardneg.configuration import ConfigError  # noqa: E402
from hardneg.generation import GenerationConfig, build_backend  # noqa: E402
from hardneg.generation_native import NativeBackend, UnsupportedModelError, warp_probs  # noqa: E402
from hardneg.progress import ProgressReporter  # noqa: E402


@pytest.fixture(scope="module")
def native(backend):
    return NativeBackend(backend.model, backend.tokenizer)


@pytest.mark.parametrize("slots", [1, 2, 64])
def test_native_greedy_equals_hf_token_for_token(backend, native, slots):
    """Any number of KV slots (1: strictly one at a time; 2: refills and compaction; 64: all
    at once) gives HF's greedy output, in input order, with HF's finish reasons."""
    params = SamplingParams(max_new_tokens=16, batch_size=3)
    expected = backend.generate(PROMPTS, params, progress=False)
    got = native.generate(PROMPTS, SamplingParams(max_new_tokens=16, batch_size=slots), progress=False)
    assert [(g.prompt_index, g.sample_index) for g in got] == [(i, 0) for i in range(len(PROMPTS))]
    for e, g in zip(expected, got):
        assert g.token_ids == e.token_ids
        assert g.text == e.text and g.finish_reason == e.finish_reason and g.n_tokens == e.n_tokens


def test_native_eos_midway_refills_the_slot(tiny_model_dir):
    """Sequences ending at different steps (declared EOS tokens) free their slots for waiting
    ones; every output still equals HF's, which decodes each batch to its longest row."""
    model, tokenizer = sharpened(tiny_model_dir)
    free = HFBackend(model, tokenizer).generate(PROMPTS, SamplingParams(max_new_tokens=12), progress=False)
    # Make a token that appears early in some completions (not all) an EOS.
    stop_at = free[0].token_ids[2]
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, stop_at]
    hf = HFBackend(model, tokenizer).generate(PROMPTS, SamplingParams(max_new_tokens=12, batch_size=5), progress=False)
    reasons = {g.finish_reason for g in hf}
    assert reasons == {"eos", "length"}, reasons  # the case under test really happens
    nat = NativeBackend(model, tokenizer).generate(PROMPTS, SamplingParams(max_new_tokens=12, batch_size=2), progress=False)
    assert [(g.token_ids, g.finish_reason, g.text) for g in nat] == [(g.token_ids, g.finish_reason, g.text) for g in hf]


def test_native_stop_string_like_hf(backend, native):
    full = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16), progress=False)[0]
    piece = backend.tokenizer.decode(full.token_ids[6:8])
    params = SamplingParams(max_new_tokens=16, stop=[piece])
    hf = backend.generate(PROMPTS[:1], params, progress=False)[0]
    nat = native.generate(PROMPTS[:1], params, progress=False)[0]
    assert nat.finish_reason == hf.finish_reason == "stop"
    assert nat.text == hf.text == full.text[: full.text.find(piece)]


def test_native_sampling_seeded_prompt_major_and_rng_neutral(native):
    def run(seed, slots=8):
        params = SamplingParams(max_new_tokens=12, temperature=0.7, top_p=0.95, n=3, seed=seed, batch_size=slots)
        return native.generate(PROMPTS[:3], params, progress=False)

    torch.manual_seed(5)
    expected_rand = torch.rand(2)
    torch.manual_seed(5)
    first = run(1)
    assert torch.equal(torch.rand(2), expected_rand)  # the caller's RNG is untouched
    assert [(g.prompt_index, g.sample_index) for g in first] == [(i, s) for i in range(3) for s in range(3)]
    assert [g.token_ids for g in run(1)] == [g.token_ids for g in first]
    assert [g.token_ids for g in run(2)] != [g.token_ids for g in first]
    # The n samples of one prompt share its prefill but not their draws.
    assert len({tuple(g.token_ids) for g in first[:3]}) > 1


def test_native_greedy_n_copies(native):
    gens = native.generate(PROMPTS[:2], SamplingParams(max_new_tokens=5, n=3), progress=False)
    assert [(g.prompt_index, g.sample_index) for g in gens] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert gens[0].token_ids == gens[1].token_ids == gens[2].token_ids


def test_native_refuses_what_it_does_not_implement(tiny_model_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64))
    _, tokenizer = sharpened(tiny_model_dir)
    with pytest.raises(UnsupportedModelError, match="model_type 'gpt2'"):
        NativeBackend(model, tokenizer)
    # The factory falls back to HF for such a model and says so.
    said = []
    got = build_backend(GenerationConfig(backend="native"), model, tokenizer, log=said.append)
    assert isinstance(got, HFBackend) and "using hf" in said[-1]


def test_native_too_long_is_an_error(native):
    with pytest.raises(ValueError, match="exceeds the model's 2048 positions"):
        native.generate(PROMPTS[:1], SamplingParams(max_new_tokens=5000), progress=False)


# ---------------------------------------------------------------- decoding settings contract


def test_warp_probs_is_hf_temperature_and_top_p():
    """The native sampler's distribution equals HF's TemperatureLogitsWarper + TopPLogitsWarper
    (what HFBackend samples from), for peaked rows (nucleus inside the 64-token shortlist) and
    flat rows (nucleus wider: the full-sort fallback)."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    gen = torch.Generator().manual_seed(0)
    peaked = torch.randn(3, 500, generator=gen) * 8
    flat = torch.randn(3, 500, generator=gen) * 0.1
    logits = torch.cat([peaked, flat])
    for temperature, top_p in ((0.7, 0.95), (1.0, 0.5), (1.3, 1.0), (0.7, 0.01)):
        scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_p < 1.0:
            scores = TopPLogitsWarper(top_p)(None, scores)
        expected = torch.softmax(scores, -1)
        got = warp_probs(logits, temperature, top_p)
        assert torch.allclose(got, expected, atol=1e-6), (temperature, top_p)
        assert bool(((got > 0) == (expected > 0)).all())  # same support, token for token


def test_tiny_top_p_means_greedy_in_every_backend(backend, native):
    """top-p → 0 keeps only the most likely token: sampling must then equal greedy decoding,
    in HF and native alike (a backend ignoring top_p, or applying it after the draw, fails)."""
    greedy = backend.generate(PROMPTS, SamplingParams(max_new_tokens=10), progress=False)
    tight = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=1e-6, seed=3, batch_size=2)
    for b in (backend, native):
        assert [g.token_ids for g in b.generate(PROMPTS, tight, progress=False)] == [g.token_ids for g in greedy]


# ---------------------------------------------------------------- vLLM through a fake engine


class FakeEngine:
    """Stands in for `vllm.LLM`: records every request and decodes it with the tiny HF model,
    applying vLLM's documented semantics (stop strings cut from the text with stop_reason =
    the string, EOS / stop_token_ids reported as finish_reason 'stop' with the id kept in
    token_ids, 'length' at max_tokens)."""

    instances: list = []

    def __init__(self, model, **kwargs):
        self.kwargs = dict(model=model, **kwargs)
        self.calls: list = []
        FakeEngine.instances.append(self)

    def get_tokenizer(self):
        return FakeEngine.hf.tokenizer

    def generate(self, prompts, sampling_params, use_tqdm=True, lora_request=None):
        from types import SimpleNamespace

        self.calls.append(dict(prompts=list(prompts), params=list(sampling_params), lora=lora_request))
        out = []
        for prompt, sp in zip(prompts, sampling_params):
            ours = SamplingParams(
                max_new_tokens=sp.max_tokens, temperature=sp.temperature, top_p=sp.top_p, n=sp.n, seed=sp.seed
            )
            completions = []
            for g in FakeEngine.hf.generate([prompt], ours, progress=False):
                ids = list(g.token_ids)
                if g.finish_reason == "eos":
                    with_eos = ids + [FakeEngine.hf.eos_ids[0]]
                    completions.append(SimpleNamespace(text=g.text, token_ids=with_eos, finish_reason="stop", stop_reason=None))
                    continue
                text, reason, stop_reason = g.text, "length", None
                for s in sp.stop or []:
                    if s in text:
                        text, reason, stop_reason = text[: text.find(s)], "stop", s
                completions.append(SimpleNamespace(text=text, token_ids=ids, finish_reason=reason, stop_reason=stop_reason))
            out.append(SimpleNamespace(outputs=completions))
        return out


@pytest.fixture()
def fake_vllm(monkeypatch, backend):
    import sys
    import types

    mod = types.ModuleType("vllm")
    mod.LLM = FakeEngine

    class FakeSamplingParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    mod.SamplingParams = FakeSamplingParams
    lora_mod = types.ModuleType("vllm.lora")
    req_mod = types.ModuleType("vllm.lora.request")

    class LoRARequest:
        def __init__(self, name, int_id, path):
            self.name, self.int_id, self.path = name, int_id, path

    req_mod.LoRARequest = LoRARequest
    for name, m in (("vllm", mod), ("vllm.lora", lora_mod), ("vllm.lora.request", req_mod)):
        monkeypatch.setitem(sys.modules, name, m)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a))
    FakeEngine.instances = []
    FakeEngine.hf = backend
    return mod


def test_vllm_requests_carry_our_decoding_settings(fake_vllm):
    vb = VLLMBackend("some/dir", seed=0, tensor_parallel_size=2, gpu_memory_utilization=0.5, max_num_batched_tokens=4096)
    engine = FakeEngine.instances[-1]
    assert engine.kwargs["tensor_parallel_size"] == 2 and engine.kwargs["gpu_memory_utilization"] == 0.5
    assert engine.kwargs["max_num_batched_tokens"] == 4096
    params = SamplingParams(max_new_tokens=9, temperature=0.7, top_p=0.9, n=2, seed=11, stop=["\n\n"])
    vb.generate(PROMPTS[:3], params, progress=False)
    sps = engine.calls[-1]["params"]
    assert len(sps) == 3
    for j, sp in enumerate(sps):
        assert (sp.temperature, sp.top_p, sp.top_k, sp.max_tokens, sp.n) == (0.7, 0.9, -1, 9, 2)
        assert sp.stop == ["\n\n"] and set(vb.eos_ids) <= set(sp.stop_token_ids)
        assert sp.repetition_penalty == 1.0 and sp.skip_special_tokens
    # One seed per request, all derived from the partition seed: reproducible, not shared.
    seeds = [sp.seed for sp in sps]
    assert len(set(seeds)) == 3
    vb.generate(PROMPTS[:3], params, progress=False)
    assert [sp.seed for sp in engine.calls[-1]["params"]] == seeds


def test_vllm_greedy_and_stops_equal_hf(fake_vllm, backend):
    """Greedy through the vLLM adapter gives HFBackend's output, finish reasons mapped back
    (EOS id stripped from token_ids, a stop string → 'stop' with the text cut)."""
    vb = VLLMBackend("some/dir")
    params = SamplingParams(max_new_tokens=16, n=2)
    got = vb.generate(PROMPTS, params, progress=False)
    want = backend.generate(PROMPTS, params, progress=False)
    assert [(g.prompt_index, g.sample_index, g.token_ids, g.text, g.finish_reason) for g in got] == [
        (g.prompt_index, g.sample_index, g.token_ids, g.text, g.finish_reason) for g in want
    ]
    assert all(sp.n == 1 for sp in FakeEngine.instances[-1].calls[-1]["params"])  # greedy copies not re-decoded
    piece = backend.tokenizer.decode(want[0].token_ids[6:8])
    stopped = vb.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16, stop=[piece]), progress=False)[0]
    assert stopped.finish_reason == "stop" and stopped.text == want[0].text[: want[0].text.find(piece)]


def test_vllm_chunks_report_progress_and_keep_order(fake_vllm):
    vb = VLLMBackend("some/dir", request_chunk=2)
    calls = []
    gens = vb.generate(PROMPTS, SamplingParams(max_new_tokens=4), progress=lambda *a: calls.append(a))
    assert [g.prompt_index for g in gens] == list(range(5))
    assert [c[0] for c in calls] == [2, 4, 5] and calls[-1][1] == 5
    assert len(FakeEngine.instances[-1].calls) == 3


def test_build_backend_vllm_merged_and_lora(fake_vllm, backend, tmp_path):
    cfg = GenerationConfig(backend="vllm", tensor_parallel_size=1, max_num_seqs=32)
    vb = build_backend(cfg, backend.model, backend.tokenizer, "cuda", workdir=tmp_path)
    merged = tmp_path / "merged-policy"
    assert (merged / "config.json").exists() and (merged / "model.safetensors").exists()
    engine = FakeEngine.instances[-1]
    assert engine.kwargs["model"] == str(merged) and engine.kwargs["max_num_seqs"] == 32
    vb.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2), progress=False)
    assert FakeEngine.instances[-1].calls[-1]["lora"] is None

    lora = GenerationConfig(backend="vllm", vllm_weights="lora")
    vb = build_backend(lora, backend.model, backend.tokenizer, "cuda", base_path="/base", adapters=["/adapters/dpo"])
    engine = FakeEngine.instances[-1]
    assert engine.kwargs["model"] == "/base" and engine.kwargs["enable_lora"] is True
    vb.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2), progress=False)
    assert engine.calls[-1]["lora"].path == "/adapters/dpo"
    with pytest.raises(ConfigError, match="2 adapter"):
        build_backend(lora, backend.model, backend.tokenizer, "cuda", base_path="/base", adapters=["/a", "/b"])


# ---------------------------------------------------------------- config and progress


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_profile_asking_for_vllm_fails_at_load_with_install_command():
    from hardneg.configuration import from_dict

    with pytest.raises(ConfigError, match=r"pip install 'vllm==\d"):
        from_dict(GenerationConfig, {"backend": "vllm"}, path="generation")
    with pytest.raises(ConfigError, match="backend"):
        from_dict(GenerationConfig, {"backend": "llama.cpp"}, path="generation")
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        GenerationConfig(gpu_memory_utilization=1.5)


def test_build_backend_hf_and_native(backend):
    assert isinstance(build_backend(None, backend.model, backend.tokenizer), HFBackend)
    nat = build_backend(GenerationConfig(backend="native", dtype="float32"), backend.model, backend.tokenizer)
    assert isinstance(nat, NativeBackend) and nat.dtype == torch.float32
    # On CUDA 'native' defers to HF (it is the CPU path); no GPU needed to check the choice.
    said = []
    assert GenerationConfig(backend="native").native_dtype() in ("float32", "bfloat16")
    auto = build_backend(GenerationConfig(backend="native"), backend.model, backend.tokenizer, "cpu", log=said.append)
    assert isinstance(auto, NativeBackend)
    assert said and "native" in said[0]


def test_progress_reporter_logs_rate_and_eta_on_schedule():
    now = [0.0]
    lines = []
    rep = ProgressReporter("sampling", log=lines.append, every_s=30, bar=False, clock=lambda: now[0])
    rep.start(total=64, token_budget=64 * 100)
    now[0] = 10.0
    rep(0, 64, 500)
    assert lines == []  # under 30 s: quiet
    now[0] = 31.0
    rep(0, 64, 1550)  # no sequence done yet: ETA from the token budget
    assert lines[-1].startswith("sampling: 0/64 seq, 1550 tokens, 50.0 tokens/s, ETA ")
    assert lines[-1].endswith("ETA 1:37")  # 1550/6400 of the budget in 31 s → 97 s left
    now[0] = 62.0
    rep(32, 64, 3100)  # half the sequences: ETA from the larger fraction
    assert lines[-1].endswith("ETA 1:02")
    now[0] = 70.0
    rep(64, 64, 3300)
    assert "64/64" in lines[-1] and "took 1:10" in lines[-1]
    assert len(lines) == 3


def test_generation_progress_through_a_reporter(native):
    lines = []
    rep = ProgressReporter("gen", log=lines.append, every_s=0, bar=False)
    native.generate(PROMPTS, SamplingParams(max_new_tokens=4, batch_size=2), progress=rep)
    assert lines[-1].startswith("gen: 5/5 seq, 20 tokens") and "took" in lines[-1]
    assert len(lines) > 2  # per-step lines, not only one at the end


def test_stderr_reporter_for_cli_commands(capsys):
    """`hardneg verify` / `grade` progress: plain lines on stderr when it is not a terminal
    (stdout stays the JSONL data), the last one with the final count."""
    from hardneg.progress import stderr_reporter

    rep = stderr_reporter("verify", total=3, unit="cand", every_s=0)
    for _ in range(3):
        rep.update(advance=1)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("verify: 1/3 cand") and lines[-1].startswith("verify: 3/3 cand") and "took" in lines[-1]
    assert rep.closed
