"""`NativeBackend`: a hand-written decode loop for Llama-architecture models (SmolLM2, Llama,
Qwen2), the fast CPU path for the embedded default (issue 14).

Why not `transformers.generate`? For a 135M model on 2 cores, `generate` wastes most of the
machine on things that are not the model's arithmetic:
- every row of a batch keeps decoding until the *last* row ends, so finished rows (EOS) burn
  compute, and a batch runs half-empty near its end;
- `n` samples of one prompt each re-encode the prompt (the pool samples K=4..8 per prompt:
  prompt encoding is as much work as the completions themselves at the smoke shapes);
- the KV cache grows by concatenation, and nucleus sampling sorts the whole 49K-token
  vocabulary for every row at every step.

This backend keeps one preallocated KV cache of `batch_size` slots and schedules sequences
onto slots continuously: a prompt is encoded once, its KV rows are copied into `n` slots,
a slot whose sequence ends is refilled at once with the next waiting sequence, and when
nothing is waiting the live slots are compacted to the front so every step computes only
live rows. Nucleus sampling looks at the top 64 tokens first and sorts the whole vocabulary
only for a row whose nucleus is wider than that (exactly HF's top-p, cheaper).

The arithmetic is the model's own: weights are the loaded module's tensors (q/k/v and
gate/up concatenated into one matmul each), rotary tables come from the model's own
`rotary_emb`, RMSNorm and SiLU as in `LlamaForCausalLM`. Greedy outputs match
`HFBackend`'s up to float summation order (bench/generate.py measures the agreement).
Anything the loop does not implement (another architecture, sliding windows, a non-SiLU
MLP) is refused at construction with the reason, so callers fall back to `HFBackend`.
"""

from __future__ import annotations

from typing import Any

from hardneg.generation import (
    FINISH_EOS,
    FINISH_LENGTH,
    FINISH_STOP,
    Generation,
    ProgressCallback,
    SamplingParams,
    _check_prompts,
    _cut_at_stop,
    _encode_prompts,
    stop_token_ids,
)
from hardneg.progress import as_progress

SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "mistral")
NUCLEUS_SHORTLIST = 64
"""Tokens examined before falling back to a full-vocabulary sort for top-p (see `sample_next`)."""


class UnsupportedModelError(ValueError):
    """The native decode loop cannot run this model (the message says why); use HFBackend."""


def warp_probs(logits: Any, temperature: float, top_p: float) -> Any:
    """The sampling distribution over the vocabulary for each row of `logits` [B, V]:
    softmax(logits / temperature), restricted to the nucleus (the smallest set of most
    likely tokens whose mass reaches `top_p`; the token that crosses the threshold is in),
    renormalized. top-k is off. This is what HF's TemperatureLogitsWarper + TopPLogitsWarper
    and vLLM's sampler compute; tests check it against HF's warpers.
    """
    import torch

    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    k = min(NUCLEUS_SHORTLIST, probs.shape[-1])
    top, idx = probs.topk(k, dim=-1)  # descending
    cum = top.cumsum(-1)
    out = torch.zeros_like(probs)
    inside = cum[:, -1] >= top_p  # rows whose nucleus fits in the shortlist
    if bool(inside.any()):
        rows = inside.nonzero().squeeze(-1)
        # Keep token j if the mass *before* it is < top_p (so the crossing token is kept).
        keep = (cum[rows] - top[rows]) < top_p
        out[rows.unsqueeze(-1), idx[rows]] = torch.where(keep, top[rows], torch.zeros_like(top[rows]))
    if not bool(inside.all()):
        rows = (~inside).nonzero().squeeze(-1)
        sp, si = probs[rows].sort(dim=-1, descending=True)
        keep = (sp.cumsum(-1) - sp) < top_p
        out[rows.unsqueeze(-1), si] = torch.where(keep, sp, torch.zeros_like(sp))
    return out / out.sum(-1, keepdim=True)


def sample_next(logits: Any, params: SamplingParams, generator: Any) -> Any:
    """Next token per row: argmax when greedy, else a draw from `warp_probs`."""
    import torch

    if params.greedy:
        return logits.argmax(-1)
    probs = warp_probs(logits, params.temperature, params.top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _Layer:
    __slots__ = ("ln1", "wqkv", "bqkv", "wo", "ln2", "wgu", "wdown")


class NativeBackend:
    """Continuous-batching decode loop with a static KV cache (see the module docstring).

    `batch_size` of `SamplingParams` is the number of KV-cache slots (sequences decoded
    together). `dtype` (default: the model's) may be torch.bfloat16 to halve weight traffic
    on CPUs with AVX512-BF16; outputs then differ from fp32 (measure before using it)."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu", dtype: Any = None):
        import torch

        cfg = model.config
        mtype = getattr(cfg, "model_type", None)
        if mtype not in SUPPORTED_MODEL_TYPES:
            raise UnsupportedModelError(f"native generation supports {SUPPORTED_MODEL_TYPES}, not model_type {mtype!r}")
        if getattr(cfg, "hidden_act", "silu") != "silu":
            raise UnsupportedModelError(f"native generation needs a SiLU MLP, got hidden_act {cfg.hidden_act!r}")
        if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", mtype == "mistral"):
            raise UnsupportedModelError("native generation does not implement sliding-window attention")
        if hasattr(model, "peft_config"):
            raise UnsupportedModelError("merge LoRA adapters first (hardneg.policy.load_merged_policy)")
        self.model = model.to(device).eval()  # kept: scoring (candidates) uses the HF module
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        self.dtype = dtype if dtype is not None else next(model.parameters()).dtype
        self.eos_ids = stop_token_ids(tokenizer, model)
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.max_positions = cfg.max_position_embeddings
        inner = model.model

        def w(t):
            return t.detach().to(self.device, self.dtype).contiguous()

        self.embed = w(inner.embed_tokens.weight)
        self.norm = w(inner.norm.weight)
        self.lm_head = w(model.lm_head.weight)
        self.layers = []
        for block in inner.layers:
            att, mlp = block.self_attn, block.mlp
            if getattr(att, "q_norm", None) is not None:
                raise UnsupportedModelError("native generation does not implement per-head q/k norms")
            layer = _Layer()
            layer.ln1 = w(block.input_layernorm.weight)
            layer.ln2 = w(block.post_attention_layernorm.weight)
            layer.wqkv = w(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]))
            biases = [att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]
            layer.bqkv = w(torch.cat(biases)) if all(b is not None for b in biases) else None
            if att.o_proj.bias is not None or mlp.gate_proj.bias is not None:
                raise UnsupportedModelError("native generation does not implement o_proj / MLP biases")
            layer.wo = w(att.o_proj.weight)
            layer.wgu = w(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]))
            layer.wdown = w(mlp.down_proj.weight)
            self.layers.append(layer)
        self._rotary = inner.rotary_emb
        self._cos = self._sin = None

    # ------------------------------------------------------------ model arithmetic

    def _rope_tables(self, length: int) -> None:
        import torch

        if self._cos is not None and self._cos.shape[0] >= length:
            return
        length = min(max(length, 512), self.max_positions)
        pos = torch.arange(length, device=self.device).unsqueeze(0)
        probe = torch.zeros(1, dtype=torch.float32, device=self.device)
        cos, sin = self._rotary(probe, pos)  # the model's own tables (rope scaling included)
        self._cos, self._sin = cos[0].to(self.dtype), sin[0].to(self.dtype)

    def _rms(self, x: Any, weight: Any) -> Any:
        import torch

        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h.to(x.dtype)

    @staticmethod
    def _rotate(x: Any, cos: Any, sin: Any) -> Any:
        import torch

        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def _qkv(self, layer: _Layer, x: Any) -> tuple[Any, Any, Any]:
        import torch.nn.functional as F

        h = F.linear(self._rms(x, layer.ln1), layer.wqkv, layer.bqkv)
        nq, nk = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        return h[..., :nq], h[..., nq : nq + nk], h[..., nq + nk :]

    def _mlp(self, layer: _Layer, x: Any) -> Any:
        import torch.nn.functional as F

        gu = F.linear(self._rms(x, layer.ln2), layer.wgu)
        half = gu.shape[-1] // 2
        return x + F.linear(F.silu(gu[..., :half]) * gu[..., half:], layer.wdown)

    def _prefill(self, ids: list[int], k_cache: list, v_cache: list, slots: list[int]) -> Any:
        """Encode one prompt; write its K/V into every slot in `slots`; last-token logits [V]."""
        import torch
        import torch.nn.functional as F

        n = len(ids)
        self._rope_tables(n)
        cos, sin = self._cos[:n], self._sin[:n]
        x = self.embed[torch.tensor(ids, device=self.device)].unsqueeze(0)  # [1, n, h]
        D = self.head_dim
        for li, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x)
            q = self._rotate(q.view(1, n, self.n_heads, D).transpose(1, 2), cos, sin)
            k = self._rotate(k.view(1, n, self.n_kv, D).transpose(1, 2), cos, sin)
            v = v.view(1, n, self.n_kv, D).transpose(1, 2)
            for s in slots:
                k_cache[li][s, :, :n] = k[0]
                v_cache[li][s, :, :n] = v[0]
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv != self.n_heads)
            x = x + F.linear(a.transpose(1, 2).reshape(1, n, -1), layer.wo)
            x = self._mlp(layer, x)
        return F.linear(self._rms(x[0, -1:], self.norm), self.lm_head)[0]

    def _decode(self, tokens: Any, pos: Any, k_cache: list, v_cache: list, width: int) -> Any:
        """One step for live slots 0..A-1: token [A] at position pos [A] → logits [A, V]."""
        import torch
        import torch.nn.functional as F

        A, D, G = tokens.shape[0], self.head_dim, self.n_heads // self.n_kv
        rows = torch.arange(A, device=self.device)
        cos, sin = self._cos[pos].unsqueeze(1), self._sin[pos].unsqueeze(1)  # [A, 1, D]
        mask = (torch.arange(width, device=self.device).unsqueeze(0) <= pos.unsqueeze(1)).view(A, 1, 1, width)
        x = self.embed[tokens]  # [A, h]
        for li, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x)
            q = self._rotate(q.view(A, self.n_heads, D), cos, sin)
            k = self._rotate(k.view(A, self.n_kv, D), cos, sin)
            kc, vc = k_cache[li], v_cache[li]
            kc[rows, :, pos] = k
            vc[rows, :, pos] = v.view(A, self.n_kv, D)
            # Grouped-query attention without copying K/V: the G query heads sharing one KV
            # head are that head's G "query positions".
            a = F.scaled_dot_product_attention(
                q.view(A, self.n_kv, G, D), kc[:A, :, :width], vc[:A, :, :width], attn_mask=mask
            )
            x = x + F.linear(a.reshape(A, -1), layer.wo)
            x = self._mlp(layer, x)
        return F.linear(self._rms(x, self.norm), self.lm_head)

    # ------------------------------------------------------------ scheduling

    def generate(
        self, prompts: list[str], params: SamplingParams, progress: bool | ProgressCallback = True
    ) -> list[Generation]:
        import torch

        _check_prompts(prompts)
        if not prompts:
            return []
        encoded = _encode_prompts(self.tokenizer, prompts, add_special_tokens=False)
        longest = max(len(e) for e in encoded) + params.max_new_tokens
        if longest > self.max_positions:
            raise ValueError(
                f"prompt + max_new_tokens = {longest} exceeds the model's {self.max_positions} positions"
            )
        # Greedy samples of one prompt are identical: decode one and copy it (HF decodes all n).
        copies = 1 if params.greedy else params.n
        slots_n = max(1, min(params.batch_size, len(prompts) * copies))
        # A prompt's samples share one prefill, so a group needs `per_group` free slots.
        per_group = min(copies, slots_n)
        queue = []  # (prompt index, first sample index, count): longest prompts first
        for i in sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i)):
            for s0 in range(0, copies, per_group):
                queue.append((i, s0, min(per_group, copies - s0)))
        queue.reverse()  # pop() from the end

        self._rope_tables(longest)
        shape = (slots_n, self.n_kv, longest, self.head_dim)
        k_cache = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        v_cache = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        eos = set(self.eos_ids)
        stop_window = (max(len(s) for s in params.stop) + 8) if params.stop else 0
        live: list[dict] = []  # slot j holds live[j]
        next_tok: list[int] = []
        results: dict[tuple[int, int], Generation] = {}
        total = len(prompts) * params.n
        bar = as_progress(progress, total, "generate", token_budget=total * params.max_new_tokens)
        counted = [0]  # generated tokens (EOS excluded, as in Generation.n_tokens)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []

        def finish(seq: dict, reason: str, text: str | None = None) -> None:
            ids = seq["ids"]
            if text is None:
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
            for s in range(seq["s"], seq["s"] + (params.n if copies == 1 else 1)):
                results[(seq["i"], s)] = Generation(seq["i"], text, reason, list(ids), len(ids), sample_index=s)

        def accept(seq: dict, tok: int) -> bool:
            """Append `tok` to `seq`; True when the sequence has ended (its result stored)."""
            if tok in eos:
                finish(seq, FINISH_EOS)
                return True
            seq["ids"].append(tok)
            counted[0] += 1
            if params.stop:
                tail = self.tokenizer.decode(seq["ids"][-stop_window:], skip_special_tokens=True)
                if any(s in tail for s in params.stop):
                    text, _ = _cut_at_stop(self.tokenizer.decode(seq["ids"], skip_special_tokens=True), params.stop)
                    finish(seq, FINISH_STOP, text)
                    return True
            if len(seq["ids"]) >= params.max_new_tokens:
                finish(seq, FINISH_LENGTH)
                return True
            return False

        try:
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                gen = torch.Generator(device=self.device).manual_seed(params.seed)
                while queue or live:
                    # Refill free slots (slots len(live)..slots_n-1 are free: live ones are packed).
                    while queue and slots_n - len(live) >= queue[-1][2]:
                        i, s0, count = queue.pop()
                        first = len(live)
                        logits = self._prefill(encoded[i], k_cache, v_cache, list(range(first, first + count)))
                        toks = sample_next(logits.unsqueeze(0).expand(count, -1), params, gen).tolist()
                        # The `count` slots hold identical prompt K/V, so samples that ended on
                        # their first token simply leave the last slots of the range free.
                        for c, tok in enumerate(toks):
                            seq = {"i": i, "s": s0 + c, "ids": [], "pos": len(encoded[i])}
                            if not accept(seq, tok):
                                live.append(seq)
                                next_tok.append(tok)
                    if not live:
                        continue
                    pos = torch.tensor([s["pos"] for s in live], device=self.device)
                    width = int(pos.max()) + 1
                    logits = self._decode(torch.tensor(next_tok, device=self.device), pos, k_cache, v_cache, width)
                    toks = sample_next(logits, params, gen).tolist()
                    ended = []
                    for j, (seq, tok) in enumerate(zip(live, toks)):
                        seq["pos"] += 1
                        next_tok[j] = tok
                        if accept(seq, tok):
                            ended.append(j)
                    for j in reversed(ended):  # fill the hole with the last live slot
                        last = len(live) - 1
                        if j != last:
                            width_j = live[last]["pos"]
                            for kc, vc in zip(k_cache, v_cache):
                                kc[j, :, :width_j] = kc[last, :, :width_j]
                                vc[j, :, :width_j] = vc[last, :, :width_j]
                            live[j], next_tok[j] = live[last], next_tok[last]
                        live.pop()
                        next_tok.pop()
                    bar.update(len(results), counted[0])
        finally:
            bar.close()
        return [results[(i, s)] for i in range(len(prompts)) for s in range(params.n)]
