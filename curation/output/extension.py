"""Vocabulary extension (Swallow's recipe): BPE merges learnt on domain text, appended after a base BPE
tokenizer's own, so every base id and merge is kept and text the new merges do not touch encodes as
before.

The merges are learnt over the base tokenizer's own pieces of each domain word, not over raw bytes:
a base BPE applies all its merges before any appended one, so a merge of pieces its segmentation never
produces would add a token no text ever uses.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Iterable
from itertools import islice

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

FIRST_PRIVATE_CHAR = 0xF0000  # Unicode's private-use planes: one character stands for one base piece
BYTE_FALLBACK = re.compile(r"<0x[0-9A-F]{2}>")


def not_extendable(model: dict) -> str | None:
    """Why appended merges would not work in this tokenizer.json `model`, or None."""
    if model["type"] != "BPE":
        return f"a {model['type']} tokenizer: only a BPE tokenizer can be extended"
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return "a BPE with a subword prefix or suffix: appended merges would not follow it"
    return None


class PieceWords:
    """Domain words as the base tokenizer splits them, written with one private-use character per
    base piece, so that a plain BPE trainer learns merges of base pieces."""

    def __init__(self, base: Tokenizer, texts: Iterable[str], batch: int = 256):
        model = json.loads(base.to_str())["model"]
        self.pieces: dict[str, str] = {}  # private character -> base token
        self.counts: Counter[str] = Counter()  # words as piece strings
        chars: dict[int, str] = {}
        texts = iter(texts)
        while chunk := list(islice(texts, batch)):
            for encoding in base.encode_batch(chunk, add_special_tokens=False):
                words: dict[int, str] = {}
                for token, id, word in zip(encoding.tokens, encoding.ids, encoding.word_ids):
                    if word is None:  # a special token written in the text
                        continue
                    if model.get("byte_fallback") and BYTE_FALLBACK.fullmatch(token):
                        char = " "  # a byte token comes after every merge: it splits the word
                    elif (char := chars.get(id)) is None:
                        char = chars[id] = chr(FIRST_PRIVATE_CHAR + len(chars))
                        self.pieces[char] = token
                    words[word] = words.get(word, "") + char
                self.counts.update(words.values())

    def merges(self, count: int, min_frequency: int) -> list[tuple[str, str]]:
        """The first `count` merges a BPE trainer learns on these words (fewer if no pair is left
        `min_frequency` times), in the order it learnt them."""
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.BpeTrainer(
            vocab_size=len(self.pieces) + count, min_frequency=min_frequency, show_progress=False
        )
        bpe.train_from_iterator((" ".join([word] * n) for word, n in self.counts.items()), trainer)
        return [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]


def append_merges(model: dict, first_id: int, merges: list[tuple[str, str]], pieces: dict[str, str], n: int):
    """Append to the BPE `model` (tokenizer.json's, edited in place), in training order, each merge
    whose parts are base pieces or earlier appended merges and whose token is new, until `n` tokens
    are added (ids from `first_id`); return the added tokens."""
    vocab, added = model["vocab"], []
    surface = dict(pieces)  # trainer token -> token, for the tokens the extended BPE makes
    for a, b in merges:
        if len(added) == n:
            break
        if a not in surface or b not in surface or (token := surface[a] + surface[b]) in vocab:
            continue
        vocab[token] = first_id + len(added)
        model["merges"].append([surface[a], surface[b]])
        surface[a + b] = token
        added.append(token)
    return added


def extend_bpe(
    base: Tokenizer, texts: Iterable[str], n: int, min_frequency: int
) -> tuple[Tokenizer, list[str]]:
    """`base` with up to `n` tokens learnt on `texts` (fewer when the texts run out of pairs seen
    `min_frequency` times), and the added tokens in id order."""
    data = json.loads(base.to_str())
    if problem := not_extendable(data["model"]):
        raise ValueError(problem)
    words = PieceWords(base, texts)
    first_id = 1 + max([*data["model"]["vocab"].values(), *(t["id"] for t in data["added_tokens"])])
    extra = n  # learnt merges that add nothing: tokens already in the base, or parts never made
    while True:
        model = copy.deepcopy(data["model"])
        merges = words.merges(n + extra, min_frequency)
        added = append_merges(model, first_id, merges, words.pieces, n)
        if len(added) == n or len(merges) < n + extra:
            return Tokenizer.from_str(json.dumps(data | {"model": model})), added
        extra *= 4
