"""A model grown to an extended tokenizer (curation's `tokenizer.extend`): each new token's embedding
and output rows start as the mean of the rows of the pieces its base tokenizer splits it into, as in
NVIDIA's tokenizer-extension guide, or, where extension.json gives a token FOCUS's `sources`, as the
weighted sum of those old tokens' rows."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase


def extends(
    tokenizer: PreTrainedTokenizerBase, base: PreTrainedTokenizerBase, extension: Path | None
) -> bool:
    """Whether `extension` (extension.json beside the corpus tokenizer) records `tokenizer` as `base`
    plus its added tokens, every base id kept."""
    if extension is None or not extension.is_file():
        return False
    added = {entry["token"]: entry["id"] for entry in json.loads(extension.read_text())["added"]}
    return base.get_vocab() | added == tokenizer.get_vocab() and not set(added) & set(base.get_vocab())


def extension_sources(extension: Path | None) -> dict[int, list[tuple[int, float]]]:
    """The old tokens (and weights) each new token starts from, by id, where extension.json has them."""
    if extension is None or not extension.is_file():
        return {}
    added = json.loads(extension.read_text())["added"]
    return {entry["id"]: entry["sources"] for entry in added if entry.get("sources")}


def base_pieces(base: PreTrainedTokenizerBase, token: str) -> list[int]:
    """The base ids a new token stands for: its string through the base's BPE merges (a byte-level
    token that is part of a character has no text of its own to encode)."""
    return [piece.id for piece in base.backend_tokenizer.model.tokenize(token)]


def add_token_rows(
    model,
    tokenizer: PreTrainedTokenizerBase,
    base: PreTrainedTokenizerBase,
    sources: dict[int, list[tuple[int, float]]] | None = None,
) -> None:
    """Grow the embedding table (and the output layer with it) to the extended tokenizer, and set the
    rows of each token new to `base` to the weighted sum of its `sources`' rows, or else to the mean of
    its pieces' rows. A table padded past the base's vocabulary stays padded (to a multiple of 64)."""
    sources = sources or {}
    vocab, old = tokenizer.get_vocab(), base.get_vocab()
    size = 1 + max(vocab.values())
    if size > model.config.vocab_size:
        padded = model.config.vocab_size > 1 + max(old.values())
        model.resize_token_embeddings(size, pad_to_multiple_of=64 if padded else None, mean_resizing=False)
    tables = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not tables[0]:  # tied: one table for both
        tables.append(output.weight)
    with torch.no_grad():
        for token, id in vocab.items():
            if token not in old:
                if id in sources:
                    ids, weights = zip(*sources[id])
                else:
                    ids = base_pieces(base, token)
                    weights = [1 / len(ids)] * len(ids)
                for table in tables:
                    table[id] = torch.tensor(weights, dtype=table.dtype) @ table[list(ids)]
