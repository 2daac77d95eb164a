"""Text generation shared by the candidate pool (SPEC §2.3) and the evaluation runner (§2.6).

Both consumers need the same thing: many prompts, `n` completions each, returned in input
order with the reason each completion stopped. This module hides *how* that is done behind
the `GenerationBackend` protocol so the transformers implementation used on CPU and in tests
(`HFBackend`) can be swapped for vLLM on a GPU (`VLLMBackend`) without touching callers.

`HFBackend` batches with LEFT padding (decoder-only models continue from the last position,
so every row must end at the same index), sorts sequences by prompt length so a batch holds
prompts of similar length (less padding, fewer wasted FLOPs), and seeds each call from
`SamplingParams.seed` inside a forked RNG so sampling is reproducible without disturbing the
caller's global random state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

FINISH_EOS = "eos"
FINISH_LENGTH = "length"
FINISH_STOP = "stop"
CHAT_END_TOKEN = "<|im_end|>"

ProgressCallback = Callable[[int, int, int], None]
"""Called after every batch with (sequences done, sequences total, new tokens so far)."""


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


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class _Progress:
    """tqdm bar with a tokens/s readout, or a user callback, or nothing."""

    def __init__(self, progress: bool | ProgressCallback, total: int, desc: str):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.done = 0
        self.tokens = 0
        self.total = total
        self.start = time.perf_counter()
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="seq", dynamic_ncols=True)

    def update(self, n_seqs: int, n_tokens: int) -> None:
        self.done += n_seqs
        self.tokens += n_tokens
        if self.bar is not None:
            rate = self.tokens / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix(tok_s=f"{rate:.1f}", refresh=False)
            self.bar.update(n_seqs)
        if self.callback is not None:
            self.callback(self.done, self.total, self.tokens)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
        encoded = [
            self.tokenizer(p, add_special_tokens=self.add_special_tokens)["input_ids"] for p in prompts
        ]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(f"prompt {i} tokenizes to nothing: a completion needs a context")
        # One work item per (prompt, sample). Longest first: similar lengths share a batch,
        # and an out-of-memory shows up in the first batch rather than the last.
        work = [(i, s) for i in range(len(prompts)) for s in range(params.n)]
        work.sort(key=lambda w: (-len(encoded[w[0]]), w[0], w[1]))
        gen_config = self._generation_config(params)
        results: dict[tuple[int, int], Generation] = {}
        bar = _Progress(progress, len(work), "generate")
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(params.seed)
                for start in range(0, len(work), params.batch_size):
                    batch = work[start : start + params.batch_size]
                    gens = self._generate_batch([encoded[i] for i, _ in batch], gen_config, params)
                    for (i, s), g in zip(batch, gens):
                        g.prompt_index, g.sample_index = i, s
                        results[(i, s)] = g
                    bar.update(len(batch), sum(g.n_tokens for g in gens))
        finally:
            bar.close()
        return [results[(i, s)] for i in range(len(prompts)) for s in range(params.n)]

    def _generate_batch(self, batch_ids: list[list[int]], gen_config: Any, params: SamplingParams) -> list[Generation]:
        import torch

        width = max(len(ids) for ids in batch_ids)
        input_ids = torch.full((len(batch_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for row, ids in enumerate(batch_ids):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        kwargs = {"tokenizer": self.tokenizer} if params.stop else {}
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


def _trim_trailing(ids: list[int], pad_id: int, keep: int) -> list[int]:
    """Drop the pad tokens `generate` appends to a row that stopped on a stop string."""
    ids = ids[:keep]
    while ids and ids[-1] == pad_id:
        ids = ids[:-1]
    return ids


class VLLMBackend:
    """The same protocol on vLLM (GPU). vLLM is imported lazily: it is an optional
    dependency, absent on CPU machines, and the rest of the package must import without it.

    vLLM reports EOS and stop strings both as finish_reason 'stop'; its `stop_reason` tells
    them apart (None = EOS, a string = one of our stop strings, an int = a stop token id,
    which for us is `<|im_end|>`, i.e. EOS)."""

    def __init__(self, model: str, tokenizer: str | None = None, dtype: str = "auto", seed: int = 0, **llm_kwargs: Any):
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "VLLMBackend needs the optional `vllm` package (pip install vllm, CUDA only); "
                "use HFBackend on machines without it"
            ) from exc
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, tokenizer=tokenizer or model, dtype=dtype, seed=seed, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.eos_ids = stop_token_ids(self.tokenizer)

    def generate(
        self, prompts: list[str], params: SamplingParams, progress: bool | ProgressCallback = True
    ) -> list[Generation]:
        _check_prompts(prompts)
        if not prompts:
            return []
        sp = self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=-1,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            stop=list(params.stop) or None,
            stop_token_ids=self.eos_ids,
            skip_special_tokens=True,
        )
        outputs = self.llm.generate(prompts, sp, use_tqdm=progress is True)
        gens: list[Generation] = []
        for i, request in enumerate(outputs):  # vLLM returns requests in input order
            for s, c in enumerate(request.outputs):
                if c.finish_reason == "length":
                    reason = FINISH_LENGTH
                elif isinstance(c.stop_reason, str):
                    reason = FINISH_STOP
                else:
                    reason = FINISH_EOS
                ids = [t for t in c.token_ids if t not in self.eos_ids]
                gens.append(Generation(i, c.text, reason, ids, len(ids), sample_index=s))
        if callable(progress):
            progress(len(gens), len(gens), sum(g.n_tokens for g in gens))
        return gens
