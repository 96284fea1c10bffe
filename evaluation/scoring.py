"""Multiple choice by log-likelihood: each choice scored as a continuation of the prompt.

Requests are encoded as lm-evaluation-harness encodes them, so the log-likelihoods are the same
(up to float rounding), but each prompt runs once: the requests that share a prompt are packed into
one sequence, the prompt then every choice's continuation, under a block attention mask in which
a continuation sees the prompt and itself, its positions restarting after the prompt. Only the
rows that predict a continuation token get logits and a float32 log-softmax. Sequences are sorted
by length and batched by the scorer, not the task, and every score comes from its own row of the
batch, so results do not depend on the batch size (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from contracts.items import McItem, Template


def context_length(model, tokenizer) -> int:
    """The tokens a model attends to, found as lm-eval finds them: its config, else the
    tokenizer's `model_max_length` when set, else 2048."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        if value := getattr(model.config, key, None):
            return value
    return tokenizer.model_max_length if tokenizer.model_max_length < 1e9 else 2048


class Packed(NamedTuple):
    """One prompt's tokens and its requests' continuation tokens (request index, token ids)."""

    context: list[int]
    continuations: list[tuple[int, list[int]]]

    def __len__(self) -> int:
        return len(self.context) + sum(max(0, len(ids) - 1) for _, ids in self.continuations)


class LoglikelihoodScorer:
    """Sum of log-probabilities of continuation tokens given a prompt.

    `prefix` is the explicit beginning-of-sequence policy: `bos` (the tokenizer's BOS token),
    `eos` (models trained on EOS-separated documents, like ours, see EOS before each document),
    or `none` (a chat template's prompt starts the sequence itself). `batch_size` counts packed
    sequences, one per distinct prompt. A request longer than the model's context loses tokens from
    the left of its prompt, as in lm-eval.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8, prefix: str = "auto"):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        if prefix == "auto":
            prefix = "bos" if tokenizer.bos_token_id is not None else "eos"
        self.prefix = prefix
        self.prefix_ids = {"bos": [tokenizer.bos_token_id], "eos": [tokenizer.eos_token_id], "none": []}[
            prefix
        ]
        self.max_length = context_length(model, tokenizer)
        self.device = next(model.parameters()).device

    def encode(self, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation ids as lm-eval's `_encode_pair`: the prompt's trailing spaces
        move to the continuation, which is what follows the context's tokens in the encoding of
        both (the prompt's tokens are the same for all of its choices)."""
        spaces = len(prompt) - len(prompt.rstrip())
        if spaces:
            prompt, continuation = prompt[:-spaces], prompt[-spaces:] + continuation
        context = self.prefix_ids + self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        whole = self.prefix_ids + self.tokenizer(prompt + continuation, add_special_tokens=False)["input_ids"]
        continuation_ids = whole[len(context) :]
        excess = len(context) + len(continuation_ids) - 1 - self.max_length  # the last token is no input
        return context[max(0, excess) :] or [self.tokenizer.eos_token_id], continuation_ids

    def pack(self, requests: list[tuple[str, str]]) -> list[Packed]:
        by_context: dict[tuple[int, ...], Packed] = {}
        for i, (prompt, continuation) in enumerate(requests):
            context, ids = self.encode(prompt, continuation)
            by_context.setdefault(tuple(context), Packed(context, [])).continuations.append((i, ids))
        return sorted(by_context.values(), key=len, reverse=True)

    @torch.no_grad()
    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        out = torch.zeros(len(requests), dtype=torch.float64)
        packed = self.pack(requests)
        for start in range(0, len(packed), self.batch_size):
            self.score_batch(packed[start : start + self.batch_size], out)
        return out.tolist()

    def score_batch(self, batch: list[Packed], out: torch.Tensor) -> None:
        """One forward pass over left-padded packed sequences, adding each request's sum into `out`."""
        width = len(batch[0])
        tail = max(len(p) - len(p.context) + 1 for p in batch)  # last prompt token to the end
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        positions = torch.zeros((len(batch), width), dtype=torch.long)
        segment = torch.full((len(batch), width), -1)  # -1 padding, 0 prompt, j continuation j
        rows, columns, targets, owners = [], [], [], []
        for row, p in enumerate(batch):
            at = width - len(p)
            ids[row, at : at + len(p.context)] = torch.tensor(p.context)
            positions[row, at : at + len(p.context)] = torch.arange(len(p.context))
            segment[row, at : at + len(p.context)] = 0
            last_prompt, at = at + len(p.context) - 1, at + len(p.context)
            for j, (request, cont) in enumerate(p.continuations, 1):
                body = cont[:-1]  # the last token is predicted, never an input
                ids[row, at : at + len(body)] = torch.tensor(body, dtype=torch.long)
                positions[row, at : at + len(body)] = torch.arange(len(p.context), len(p.context) + len(body))
                segment[row, at : at + len(body)] = j
                rows += [row] * len(cont)
                columns += [last_prompt, *range(at, at + len(body))]
                targets += cont
                owners += [request] * len(cont)
                at += len(body)
        dtype = next(self.model.parameters()).dtype
        logits = self.model(
            input_ids=ids.to(self.device),
            attention_mask=block_mask(segment, dtype).to(self.device),
            position_ids=positions.to(self.device),
            logits_to_keep=tail,
        ).logits
        if not targets:
            return
        picked = logits[torch.tensor(rows), torch.tensor(columns) - (width - tail)].float()
        token_lls = picked.log_softmax(-1).gather(1, torch.tensor(targets, device=self.device)[:, None])
        out.index_add_(0, torch.tensor(owners), token_lls[:, 0].double().cpu())


def block_mask(segment: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (batch, 1, width, width) mask: causal, a continuation sees the prompt (segment 0)
    and itself; a padding row sees only itself, so no row is empty (an empty one would be NaN)."""
    query, key = segment[:, :, None], segment[:, None, :]
    width = segment.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = causal & (key != -1) & ((key == 0) | (key == query)) | torch.eye(width, dtype=torch.bool)
    return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)[:, None]


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def score_items(
    scorer: LoglikelihoodScorer,
    items: list[McItem],
    template_for: Callable[[McItem], Template],
) -> list[dict]:
    """Per item: the log-likelihood of every choice and whether acc, acc_norm, acc_bytes got it right.

    A template renders a prompt and joins each choice to it with its delimiter (a chat prompt's
    is "", the choice following the assistant header as in lm-eval's `apply_chat_template`).
    """
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
