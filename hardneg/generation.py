"""Text generation shared by the candidate pool (SPEC §2.3) and the evaluation runner (§2.6).

Both consumers need the same thing: many prompts, `n` completions each, returned in input
order with the reason each completion stopped. This module hides *how* that is done behind
the `GenerationBackend` protocol so the transformers implementation used on CPU and in tests
(`HFBackend`) can be swapped for vLLM on a GPU (`VLLMBackend`) without touching callers.

Three backends, chosen by a profile's `generation:` section (`GenerationConfig`,
built by `build_backend`):
- `hf`: transformers `generate` (`HFBackend`), any model, CPU or GPU;
- `native`: a hand-written continuous-batching decode loop for Llama-architecture models
  (`hardneg.generation_native.NativeBackend`), the fast CPU path of the embedded default;
- `vllm`: vLLM on GPUs (`VLLMBackend`), serving the policy from merged weights written
  under the artifact root once per stage, or the base model plus a LoRA request.
Decoding settings mean the same in all three: temperature (0 = greedy), nucleus top-p,
top-k off, `max_new_tokens`, stop strings cut from the text, EOS / `<|im_end|>` always stop,
and a seed per call (the partition's seed) that makes sampling reproducible.

`HFBackend` batches with LEFT padding (decoder-only models continue from the last position,
so every row must end at the same index), sorts sequences by prompt length so a batch holds
prompts of similar length (less padding, fewer wasted FLOPs), and seeds each call from
`SamplingParams.seed` inside a forked RNG so sampling is reproducible without disturbing the
caller's global random state.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

from hardneg.configuration import ConfigError
from hardneg.progress import as_progress

FINISH_EOS = "eos"
FINISH_LENGTH = "length"
FINISH_STOP = "stop"
CHAT_END_TOKEN = "<|im_end|>"

ProgressCallback = Callable[[int, int, int], None]
"""Called during generation (every decode step for `hf` and `native`, every chunk of
requests for `vllm`) with (sequences done, sequences total, new tokens so far)."""

VLLM_VERSION = "0.33.0"
VLLM_INSTALL = f"pip install 'vllm=={VLLM_VERSION}'"
"""How to get vLLM (Linux + CUDA only; a multi-GB wheel that brings its own torch build)."""


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX): there bf16 matmuls run
    ~2.5x faster than fp32 (bench/generate.py); elsewhere they are emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass
class GenerationConfig:
    """Which engine decodes (pool sampling and evaluation) and how it is set up. Profiles set it
    under `generation:`; SPEC §2.3 / §2.6 decoding settings are per call (`SamplingParams`)."""

    backend: Literal["hf", "native", "vllm"] = "hf"
    """'hf': transformers generate (any model, CPU/GPU). 'native': hardneg's continuous-batching
    loop for Llama-architecture models (CPU; other models fall back to 'hf' with a log line).
    'vllm': vLLM on GPUs; a profile asking for it fails at load when vllm is not installed."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights and activations while decoding. auto: 'hf' fp32 on CPU / bf16 on CUDA (as the
    policy is loaded); 'native' bf16 on CPUs with AVX512-BF16/AMX, else fp32; 'vllm' its own
    choice. bf16 changes greedy outputs slightly (agreement in BENCHMARKS.md)."""
    tensor_parallel_size: int = 1
    """vllm: GPUs one model is sharded over."""
    gpu_memory_utilization: float = 0.85
    """vllm: fraction of each GPU's memory vLLM may take (weights + KV cache)."""
    max_num_batched_tokens: int | None = None
    """vllm: tokens scheduled per engine step (prefill chunking); None: vLLM's default."""
    max_num_seqs: int | None = None
    """vllm: sequences decoded together; None: vLLM's default (256)."""
    vllm_weights: Literal["merged", "lora"] = "merged"
    """vllm: 'merged' writes the merged policy under the stage's artifact dir once and serves
    it; 'lora' serves the base model with the policy's LoRA adapter as a LoRA request (only for
    policies with exactly one adapter: stacked SFT + DPO adapters need 'merged')."""
    max_lora_rank: int = 64
    """vllm with 'lora': the largest adapter rank vLLM reserves room for."""
    request_chunk: int = 512
    """vllm: requests per `LLM.generate` call; progress is reported between chunks."""

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "native", "vllm"):
            raise ConfigError(f"generation.backend: expected hf, native or vllm, got {self.backend!r}")
        if self.tensor_parallel_size < 1:
            raise ConfigError(f"generation.tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"generation.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        for name in ("max_num_batched_tokens", "max_num_seqs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"generation.{name} must be >= 1 or null, got {value}")
        if self.request_chunk < 1:
            raise ConfigError(f"generation.request_chunk must be >= 1, got {self.request_chunk}")
        if self.backend == "vllm" and not vllm_available():
            raise ConfigError(
                "generation.backend is 'vllm' but the vllm package is not installed here. "
                f"Install it on a CUDA machine with: {VLLM_INSTALL}  (or set generation.backend: hf)"
            )

    def native_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if cpu_has_bf16() else "float32"


@dataclass
class SamplingParams:
    """How to decode. Field names follow vLLM's where they mean the same thing."""

    max_new_tokens: int
    """Upper bound on generated tokens per sequence; hitting it gives finish_reason 'length'."""
    temperature: float = 0.0
    """Softmax temperature; 0 means greedy decoding (argmax, no randomness)."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]; ignored when greedy. 1.0 disables it."""
    n: int = 1
    """Completions per prompt. With greedy decoding they are identical copies."""
    seed: int = 0
    """Seed of this call's sampling RNG: the same seed, prompts and parameters give the same samples."""
    batch_size: int = 8
    """Sequences decoded together (HFBackend); vLLM schedules its own batches and ignores this."""
    stop: list[str] = field(default_factory=list)
    """Extra stop strings (EOS and `<|im_end|>` always stop). The stop string is cut from the text."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.batch_size < 1:
            raise ValueError(f"SamplingParams.batch_size must be >= 1, got {self.batch_size}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"SamplingParams.stop must hold non-empty strings, got {self.stop!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Generation:
    """One completion of one prompt."""

    prompt_index: int
    """Index of the prompt in the list given to `generate`."""
    text: str
    """Decoded completion, special tokens and the terminating EOS / stop string removed."""
    finish_reason: str
    """'eos' (EOS or `<|im_end|>`), 'stop' (a `SamplingParams.stop` string) or 'length' (hit max_new_tokens)."""
    token_ids: list[int]
    """Generated token ids, without the terminating EOS token and without padding."""
    n_tokens: int
    """len(token_ids): generated tokens excluding the terminating EOS."""
    sample_index: int = 0
    """Which of the `n` completions of this prompt (0-based)."""


@runtime_checkable
class GenerationBackend(Protocol):
    def generate(
        self, prompts: list[str], params: SamplingParams, progress: bool | ProgressCallback = True
    ) -> list[Generation]:
        """`len(prompts) * params.n` generations, prompt-major (all samples of prompt 0 first)."""
        ...


def _check_prompts(prompts: Sequence[str]) -> None:
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompt {i} is {type(p).__name__}, expected str")


def _encode_prompts(tokenizer: Any, prompts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    """Token ids of every prompt; a prompt that tokenizes to nothing gives the model no context."""
    encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"prompt {i} tokenizes to nothing: a completion needs a context")
    return encoded


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """Every token id that ends a completion: the tokenizer's EOS, the ChatML end token
    `<|im_end|>` when the vocabulary has it, and the model's generation-config EOS ids
    (Qwen instruct models list both `<|im_end|>` and `<|endoftext|>` there)."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    im_end = tokenizer.convert_tokens_to_ids(CHAT_END_TOKEN)
    unk = getattr(tokenizer, "unk_token_id", None)
    if isinstance(im_end, int) and im_end != unk and im_end >= 0:
        ids.append(im_end)
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.extend(int(i) for i in (gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]))
    if not ids:
        raise ValueError("the tokenizer has no EOS token and no <|im_end|>: generation could never stop early")
    return list(dict.fromkeys(ids))


class HFBackend:
    """Batched `transformers` generation (CPU or one GPU).

    Prompts are strings already rendered with their chat template, so they are tokenized
    with `add_special_tokens=False` (a template that wants a BOS writes it itself; adding
    another would shift every probability).
    """

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu", add_special_tokens: bool = False):
        import torch

        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        # A model already placed (device_map, 4-bit weights that refuse `.to`) stays put.
        current = next(model.parameters()).device
        self.model = (model if current == self.device else model.to(self.device)).eval()
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.eos_ids = stop_token_ids(tokenizer, model)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eos_ids[0]

    @classmethod
    def from_pretrained(
        cls, path: str, device: str = "cpu", dtype: Any = None, gguf_file: str | None = None, **model_kwargs: Any
    ) -> "HFBackend":
        """Load model + tokenizer from a directory or hub id. dtype: a torch dtype or its name;
        default fp32 on CPU, bf16 on CUDA when the card supports it."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if dtype is None:
            cuda = str(device).startswith("cuda")
            dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(path, **extra)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra, **model_kwargs)
        return cls(model, tokenizer, device=device)

    def _generation_config(self, params: SamplingParams) -> Any:
        from transformers import GenerationConfig

        # Everything is explicit so a checkpoint's own defaults (Qwen ships top_k=20,
        # repetition_penalty=1.05) cannot silently change the protocol.
        common = dict(
            max_new_tokens=params.max_new_tokens,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            num_beams=1,
            num_return_sequences=1,
            repetition_penalty=1.0,
            stop_strings=list(params.stop) or None,
        )
        if params.greedy:
            return GenerationConfig(do_sample=False, **common)
        return GenerationConfig(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0, **common)

    def generate(
        self, prompts: list[str], params: SamplingParams, progress: bool | ProgressCallback = True
    ) -> list[Generation]:
        import torch

        _check_prompts(prompts)
        if not prompts:
            return []
        encoded = _encode_prompts(self.tokenizer, prompts, self.add_special_tokens)
        # One work item per (prompt, sample). Longest first: similar lengths share a batch,
        # and an out-of-memory shows up in the first batch rather than the last.
        work = [(i, s) for i in range(len(prompts)) for s in range(params.n)]
        work.sort(key=lambda w: (-len(encoded[w[0]]), w[0], w[1]))
        gen_config = self._generation_config(params)
        results: dict[tuple[int, int], Generation] = {}
        bar = as_progress(progress, len(work), "generate", token_budget=len(work) * params.max_new_tokens)
        self._tokens_before = 0
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(params.seed)
                for start in range(0, len(work), params.batch_size):
                    batch = work[start : start + params.batch_size]
                    step_report = _StepReport(bar, len(results), self._tokens_before, self.eos_ids)
                    gens = self._generate_batch([encoded[i] for i, _ in batch], gen_config, params, step_report)
                    for (i, s), g in zip(batch, gens):
                        g.prompt_index, g.sample_index = i, s
                        results[(i, s)] = g
                    self._tokens_before += sum(g.n_tokens for g in gens)
                    bar.update(len(results), self._tokens_before)
        finally:
            bar.close()
        return [results[(i, s)] for i in range(len(prompts)) for s in range(params.n)]

    def _generate_batch(
        self, batch_ids: list[list[int]], gen_config: Any, params: SamplingParams, step_report: Any = None
    ) -> list[Generation]:
        import torch
        from transformers import StoppingCriteriaList

        width = max(len(ids) for ids in batch_ids)
        input_ids = torch.full((len(batch_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for row, ids in enumerate(batch_ids):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        kwargs: dict[str, Any] = {"tokenizer": self.tokenizer} if params.stop else {}
        if step_report is not None:
            step_report.width = width
            kwargs["stopping_criteria"] = StoppingCriteriaList([step_report])
        out = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            generation_config=gen_config,
            **kwargs,
        )
        new_tokens = out[:, width:].tolist()
        eos = set(self.eos_ids)
        gens = []
        for row in new_tokens:
            end = next((j for j, t in enumerate(row) if t in eos), None)
            if end is not None:
                ids, reason = row[:end], FINISH_EOS
            else:
                # Without an EOS the row either ran to max_new_tokens or was halted by a stop
                # string (then the rest of the row is padding the other rows forced on it).
                ids, reason = row, FINISH_LENGTH
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if params.stop:
                text, hit = _cut_at_stop(text, params.stop)
                if hit:
                    reason = FINISH_STOP
                    ids = _trim_trailing(ids, self.pad_id, keep=len(row) if end is None else end)
            gens.append(Generation(prompt_index=-1, text=text, finish_reason=reason, token_ids=ids, n_tokens=len(ids)))
        return gens


class _StepReport:
    """A StoppingCriteria that never stops: it reports tokens made so far after every decode
    step, so progress moves while one long batch runs (a batch of 64 × 192 tokens takes
    minutes on 2 cores; per-batch reports would leave the log silent that long)."""

    def __init__(self, bar: Any, done: int, tokens_before: int, eos_ids: list[int]):
        self.bar, self.done, self.tokens_before, self.eos_ids = bar, done, tokens_before, eos_ids
        self.width = 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[:, self.width :]
        if new.shape[1]:
            ended = torch.isin(new, torch.tensor(self.eos_ids, device=new.device)).long().cummax(-1).values
            self.bar.update(self.done, self.tokens_before + int((1 - ended).sum()))
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _trim_trailing(ids: list[int], pad_id: int, keep: int) -> list[int]:
    """Drop the pad tokens `generate` appends to a row that stopped on a stop string."""
    ids = ids[:keep]
    while ids and ids[-1] == pad_id:
        ids = ids[:-1]
    return ids


class VLLMBackend:
    """The same protocol on vLLM (GPU). vLLM is imported lazily: it is an optional
    dependency, absent on CPU machines, and the rest of the package must import without it.

    `model` is a directory (merged weights, see `build_backend`) or hub id. With `lora_path`
    the base `model` is served and every request carries the adapter as a LoRA request.

    vLLM reports EOS and stop strings both as finish_reason 'stop'; its `stop_reason` tells
    them apart (None = EOS, a string = one of our stop strings, an int = a stop token id,
    which for us is `<|im_end|>`, i.e. EOS).

    Seeds: vLLM seeds each request; request j of a call gets `seed * 1_000_003 + j`, so one
    partition seed fixes every sample while prompts do not share one random stream."""

    def __init__(
        self,
        model: str,
        tokenizer: str | None = None,
        dtype: str = "auto",
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_num_batched_tokens: int | None = None,
        max_num_seqs: int | None = None,
        lora_path: str | None = None,
        max_lora_rank: int = 64,
        request_chunk: int = 512,
        **llm_kwargs: Any,
    ):
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                f"VLLMBackend needs the optional `vllm` package ({VLLM_INSTALL}, CUDA only); "
                "use HFBackend on machines without it"
            ) from exc
        self._vllm = vllm
        extra = dict(llm_kwargs)
        if max_num_batched_tokens is not None:
            extra["max_num_batched_tokens"] = max_num_batched_tokens
        if max_num_seqs is not None:
            extra["max_num_seqs"] = max_num_seqs
        if lora_path is not None:
            extra.update(enable_lora=True, max_lora_rank=max_lora_rank)
        self.llm = vllm.LLM(
            model=model,
            tokenizer=tokenizer or model,
            dtype=dtype,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            **extra,
        )
        self.lora = None
        if lora_path is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("policy", 1, str(lora_path))
        self.request_chunk = request_chunk
        self.tokenizer = self.llm.get_tokenizer()
        self.eos_ids = stop_token_ids(self.tokenizer)

    def sampling_params(self, params: SamplingParams, seed: int) -> Any:
        """vLLM's SamplingParams for ours: the one place where the two vocabularies meet."""
        return self._vllm.SamplingParams(
            n=1 if params.greedy else params.n,  # greedy copies are identical: decode one
            temperature=params.temperature,
            top_p=params.top_p if not params.greedy else 1.0,
            top_k=-1,  # off, as in HFBackend (top_k=0) and SPEC §2.3
            max_tokens=params.max_new_tokens,
            seed=seed,
            stop=list(params.stop) or None,
            stop_token_ids=self.eos_ids,
            skip_special_tokens=True,
            repetition_penalty=1.0,
        )

    def generate(
        self, prompts: list[str], params: SamplingParams, progress: bool | ProgressCallback = True
    ) -> list[Generation]:
        _check_prompts(prompts)
        if not prompts:
            return []
        total = len(prompts) * params.n
        bar = as_progress(progress, total, "generate", token_budget=total * params.max_new_tokens)
        gens: list[Generation] = []
        tokens = 0
        try:
            for lo in range(0, len(prompts), self.request_chunk):
                chunk = prompts[lo : lo + self.request_chunk]
                seeds = [(params.seed * 1_000_003 + lo + j) % (2**63) for j in range(len(chunk))]
                sps = [self.sampling_params(params, seed) for seed in seeds]
                kwargs: dict[str, Any] = {"use_tqdm": progress is True}
                if self.lora is not None:
                    kwargs["lora_request"] = self.lora
                outputs = self.llm.generate(chunk, sps, **kwargs)
                for j, request in enumerate(outputs):  # vLLM returns requests in input order
                    made = [self._generation(lo + j, s, c) for s, c in enumerate(request.outputs)]
                    if params.greedy:
                        g = made[0]
                        made = [
                            Generation(g.prompt_index, g.text, g.finish_reason, list(g.token_ids), g.n_tokens, s)
                            for s in range(params.n)
                        ]
                    gens.extend(made)
                    tokens += sum(g.n_tokens for g in made)
                bar.update(len(gens), tokens)
        finally:
            bar.close()
        return gens

    def _generation(self, i: int, s: int, c: Any) -> Generation:
        if c.finish_reason == "length":
            reason = FINISH_LENGTH
        elif isinstance(c.stop_reason, str):
            reason = FINISH_STOP
        else:
            reason = FINISH_EOS
        ids = [t for t in c.token_ids if t not in self.eos_ids]
        return Generation(i, c.text, reason, ids, len(ids), sample_index=s)


def build_backend(
    config: GenerationConfig | None,
    model: Any,
    tokenizer: Any,
    device: str = "cpu",
    *,
    base_path: str | None = None,
    adapters: Sequence[str | Path] = (),
    workdir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> GenerationBackend:
    """The profile's generation backend for a loaded policy.

    model/tokenizer: the merged HF policy (also what `hf` and `native` decode with).
    base_path/adapters: where the policy came from (vllm 'lora' serves base + adapter).
    workdir: the stage's artifact directory; vllm 'merged' writes the weights to
    `workdir/merged-policy` (once per stage run) and serves them from there."""
    config = config or GenerationConfig()
    say = log or (lambda _msg: None)
    if config.backend == "native":
        from hardneg.generation_native import NativeBackend, UnsupportedModelError

        if str(device).startswith("cuda"):
            say("generation: 'native' is the CPU path; on CUDA decoding with 'hf' (use 'vllm' for speed)")
            return HFBackend(model, tokenizer, device=device)
        try:
            dtype = config.native_dtype()
            say(f"generation: native decode loop ({dtype})")
            return NativeBackend(model, tokenizer, device=device, dtype=dtype)
        except UnsupportedModelError as exc:
            say(f"generation: native loop unavailable ({exc}); using hf")
            return HFBackend(model, tokenizer, device=device)
    if config.backend == "vllm":
        settings = dict(
            dtype="auto" if config.dtype == "auto" else config.dtype,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_num_batched_tokens=config.max_num_batched_tokens,
            max_num_seqs=config.max_num_seqs,
            request_chunk=config.request_chunk,
        )
        if config.vllm_weights == "lora":
            if base_path is None or len(adapters) != 1:
                raise ConfigError(
                    f"generation.vllm_weights 'lora' serves a base model + one adapter; this policy has "
                    f"{len(adapters)} adapter(s): use 'merged'"
                )
            say(f"generation: vllm serving {base_path} + LoRA {adapters[0]}")
            return VLLMBackend(
                str(base_path), lora_path=str(adapters[0]), max_lora_rank=config.max_lora_rank, **settings
            )
        if workdir is None:
            raise ValueError("build_backend: vllm 'merged' needs workdir (where the merged weights are written)")
        target = Path(workdir) / "merged-policy"
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
        say(f"generation: vllm serving merged weights from {target}")
        return VLLMBackend(str(target), **settings)
    # 'hf' decodes the policy as loaded (fp32 on CPU, bf16 on CUDA): the same module also
    # scores candidates, so its dtype is not changed here.
    return HFBackend(model, tokenizer, device=device)
