"""The two chat renderings the method uses.

- Training (SFT, candidate sampling, DPO): the paper's §3.1 system prompt, one user
  turn with the question, the assistant turn holding the chain of thought.
- Evaluation: the Step-DPO `qwen2-boxed` prompt (SPEC §2.6), kept byte-for-byte so
  accuracies are comparable with published numbers.
"""

from __future__ import annotations

from typing import Any

SFT_SYSTEM_PROMPT = (
    "You are a mathematical reasoning expert. Always reason step by step before providing the final answer."
)
EVAL_SYSTEM_PROMPT = "You are a helpful assistant."
EVAL_INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def training_messages(question: str, response: str | None = None, system_prompt: str = SFT_SYSTEM_PROMPT) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


def training_prompt(tokenizer: Any, question: str, system_prompt: str = SFT_SYSTEM_PROMPT) -> str:
    """The prompt string candidates are sampled from (and DPO pairs are scored on)."""
    return tokenizer.apply_chat_template(
        training_messages(question, system_prompt=system_prompt), tokenize=False, add_generation_prompt=True
    )


def eval_prompt(question: str) -> str:
    """Step-DPO's `qwen2-boxed` prompt: ChatML written out, not via a tokenizer template."""
    return (
        f"<|im_start|>system\n{EVAL_SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{question}{EVAL_INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
