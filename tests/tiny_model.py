"""A tiny real causal LM with a ChatML tokenizer, built from scratch for tests.

Tests must not reach a hub, and a 135M model is too slow for unit tests, so this builds
a byte-level BPE tokenizer trained on a few hundred GSM8K lines and a 2-layer Llama
with a few hundred thousand parameters. It trains, generates and saves like any other
`transformers` model; nothing about it is faked.
"""

from __future__ import annotations

import json
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
DATA = Path(__file__).resolve().parents[1] / "data"


def build_tiny_model(out_dir: str | Path, vocab_size: int = 512, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Llama + ChatML tokenizer to `out_dir` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = []
    with open(DATA / "gsm8k" / "train.jsonl") as f:
        for i, line in enumerate(f):
            if i >= 300:
                break
            row = json.loads(line)
            texts += [row["question"], row["answer"]]
    texts += ["The answer is: 42", "\\boxed{\\frac{1}{2}}", "system user assistant You are a helpful assistant."]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    hf_tok.chat_template = CHATML_TEMPLATE
    hf_tok.padding_side = "right"
    hf_tok.save_pretrained(out)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.save_pretrained(out)
    return out


def sharpened_policy(model_dir, seed: int):
    """The tiny model with large random weights, so token probabilities are far from uniform and
    score comparisons are not vacuous: (model in eval mode, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model.eval(), tokenizer
