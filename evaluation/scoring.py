"""Multiple choice by log-likelihood: each choice scored as a continuation of the prompt.

Requests are sorted by length and batched by the scorer, not the task, and every score is taken
from its own row of the batch, so results do not depend on the batch size (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from contracts.items import McItem, Template


class LoglikelihoodScorer:
    """Sum of log-probabilities of continuation tokens given a prompt.

    `prefix` is the explicit beginning-of-sequence policy: `bos` (the tokenizer's BOS token),
    `eos` (models trained on EOS-separated documents, like ours, see EOS before each document),
    or `none`.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8, prefix: str = "auto"):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        if prefix == "auto":
            prefix = "bos" if tokenizer.bos_token_id is not None else "eos"
        self.prefix = prefix
        self.prefix_ids = {"bos": [tokenizer.bos_token_id], "eos": [tokenizer.eos_token_id], "none": []}[
            prefix
        ]
        self.device = next(model.parameters()).device

    def encode(self, prompt: str, continuation: str) -> tuple[list[int], int]:
        """Token ids of prompt+continuation and how many of them are the continuation."""
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        whole = self.tokenizer(prompt + continuation, add_special_tokens=False)["input_ids"]
        n_continuation = max(1, len(whole) - len(prompt_ids))
        return self.prefix_ids + whole, n_continuation

    @torch.no_grad()
    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        encoded = [self.encode(p, c) for p, c in requests]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        out = [0.0] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i][0]) for i in batch) - 1
            inputs = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i][0][:-1]
                inputs[row, : len(ids)], mask[row, : len(ids)] = torch.tensor(ids), 1
            logits = self.model(input_ids=inputs.to(self.device), attention_mask=mask.to(self.device)).logits
            logprobs = F.log_softmax(logits.double(), dim=-1)
            for row, i in enumerate(batch):
                ids, n = encoded[i]
                targets = torch.tensor(ids[-n:], device=self.device)
                positions = torch.arange(len(ids) - 1 - n, len(ids) - 1, device=self.device)
                out[i] = logprobs[row, positions, targets].sum().item()
        return out


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def score_items(
    scorer: LoglikelihoodScorer, items: list[McItem], template_for: Callable[[McItem], Template]
) -> list[dict]:
    """Per item: the log-likelihood of every choice and whether acc, acc_norm, acc_bytes got it right."""
    requests, spans = [], []
    for item in items:
        template = template_for(item)
        prompt = template.render(item)
        spans.append((len(requests), len(item.choices)))
        requests += [(prompt, template.delimiter + choice) for choice in item.choices]
    lls = scorer.loglikelihoods(requests)
    results = []
    for item, (start, n) in zip(items, spans):
        ll = lls[start : start + n]
        chars = [len(c) or 1 for c in item.choices]
        byte_counts = [len(c.encode()) or 1 for c in item.choices]

        results.append(
            {
                "id": item.id,
                "loglikelihoods": ll,
                "acc": float(argmax(ll) == item.answer),
                "acc_norm": float(argmax([v / c for v, c in zip(ll, chars)]) == item.answer),
                "acc_bytes": float(argmax([v / b for v, b in zip(ll, byte_counts)]) == item.answer),
            }
        )
    return results
