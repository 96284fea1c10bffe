"""Greedy generation for generative tasks, batched like lm-eval's `generate_until`.

Prompts are sorted by length and left-padded with an attention mask, so every row continues its own
prompt and its output equals the unbatched one (up to float rounding). A row stops at EOS, at
`max_new_tokens`, or once its generated text holds a stop sequence; the text is then cut before the
first stop sequence. A prompt that leaves fewer than `max_new_tokens` of the model's context loses
tokens from its left, as in lm-eval.
"""

from __future__ import annotations

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from evaluation.scoring import context_length


class StopSequences(StoppingCriteria):
    """Stops a row once the text it generated contains a stop sequence.

    Only the generated tokens are decoded, as lm-eval does: transformers' `stop_strings` would also
    match a stop sequence that starts inside the prompt.
    """

    def __init__(self, tokenizer, stop: list[str], prompt_width: int):
        self.tokenizer, self.stop, self.prompt_width = tokenizer, [s for s in stop if s], prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width :], skip_special_tokens=True)
        done = [any(s in text for s in self.stop) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def cut_at_stop(text: str, stop: list[str]) -> str:
    """`text` up to the first stop sequence, which is left out."""
    return text[: min([text.find(s) for s in stop if s and s in text], default=len(text))]


class GreedyGenerator:
    """Greedy continuations of prompts, each after `prefix_ids` (the scorer's BOS/EOS policy)."""

    def __init__(self, model, tokenizer, batch_size: int, prefix_ids: list[int]):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.prefix_ids = prefix_ids
        eos = model.generation_config.eos_token_id  # the model's own (maybe several), and the tokenizer's
        eos = (eos if isinstance(eos, list) else [eos]) + [tokenizer.eos_token_id]
        self.eos_ids = sorted({e for e in eos if e is not None})
        pads = (tokenizer.pad_token_id, tokenizer.eos_token_id, *self.eos_ids)  # no pad token: EOS pads
        self.pad_id = next(i for i in pads if i is not None)
        self.max_length = context_length(model, tokenizer)
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def generate(self, prompts: list[str], max_new_tokens: int, stop: list[str]) -> list[str]:
        """The generated text of each prompt, in input order, cut before the first stop sequence."""
        room = max(1, self.max_length - max_new_tokens)
        tokens = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        encoded = [(self.prefix_ids + ids)[-room:] for ids in tokens]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        out = [""] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            inputs = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding: every row's last token is its prompt's
                inputs[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]) :] = 1
            generated = self.model.generate(
                input_ids=inputs.to(self.device),
                attention_mask=mask.to(self.device),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=self.eos_ids,
                pad_token_id=self.pad_id,
                stopping_criteria=StoppingCriteriaList([StopSequences(self.tokenizer, stop, width)]),
            )[:, width:].tolist()
            for row, i in enumerate(batch):
                ids = generated[row]
                ends = [ids.index(e) for e in self.eos_ids if e in ids]
                text = self.tokenizer.decode(ids[: min(ends, default=len(ids))], skip_special_tokens=True)
                out[i] = cut_at_stop(text, stop)
        return out
