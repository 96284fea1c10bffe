"""Vocabulary extension (Swallow's recipe): BPE merges learnt on domain text, appended after a base BPE
tokenizer's own, so every base id and merge is kept and text the new merges do not touch encodes as
before.

The merges are learnt over the base tokenizer's own pieces of each domain word, not over raw bytes:
a base BPE applies all its merges before any appended one, so a merge of pieces its segmentation never
produces would add a token no text ever uses.

`focus_sources` says which old tokens each new one starts from under FOCUS (Dobler & de Melo 2023);
the trainer, which owns the model, builds the rows.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Iterable
from itertools import islice

import numpy as np
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


def sparsemax(z: np.ndarray) -> np.ndarray:
    """The Euclidean projection of `z` onto the simplex (Martins & Astudillo 2016): weights like a
    softmax's, but exactly zero for all but the highest scores."""
    ranked = np.sort(z)[::-1]
    cumulative = np.cumsum(ranked)
    k = np.arange(1, len(z) + 1)
    support = k[1 + k * ranked > cumulative][-1]
    return np.maximum(z - (cumulative[support - 1] - 1) / support, 0)


def token_vectors(
    tokenizer: Tokenizer, texts: Iterable[str], min_count: int, window: int = 5, dim: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Ids seen `min_count` times in `texts` (as `tokenizer` splits them) and a vector for each: the
    rank-`dim` SVD of their positive PMI within `window` tokens, the matrix skip-gram with negative
    sampling factorises (Levy & Goldberg 2014). Computed outright it needs no learning rate and no
    seed, so a small domain corpus gives the same vectors every time (fastText's skip-gram stopped with
    NaN in 8 of 12 settings on finance-ja's 25k tokens of domain text)."""
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.linalg import svds

    docs, texts = [], iter(texts)
    while chunk := list(islice(texts, 256)):
        encodings = tokenizer.encode_batch(chunk, add_special_tokens=False)
        docs += [np.array(encoding.ids, dtype=np.int64) for encoding in encodings]
    every = np.concatenate([*docs, np.zeros(0, np.int64)])
    counts = np.bincount(every, minlength=tokenizer.get_vocab_size())
    seen = np.flatnonzero(counts >= min_count)
    dim = min(dim, len(seen) - 1)  # a truncated SVD keeps fewer dimensions than the matrix has
    if dim < 1:
        return seen, np.zeros((len(seen), 0))
    row = np.full(len(counts), -1)
    row[seen] = np.arange(len(seen))
    cooc, pairs, pending = csr_matrix((len(seen), len(seen))), [], 0
    for i, doc in enumerate(docs):  # counted a million tokens at a time: a corpus's pairs would not fit
        doc, pending = row[doc], pending + len(doc)
        pairs += [(doc[:-shift], doc[shift:]) for shift in range(1, window + 1)]
        if pending > 1_000_000 or i == len(docs) - 1:
            a, b = (np.concatenate(side) for side in zip(*pairs))
            keep = (a >= 0) & (b >= 0)
            a, b = np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]])
            cooc += coo_matrix((np.ones(len(a)), (a, b)), shape=cooc.shape).tocsr()
            pairs, pending = [], 0
    cooc = cooc.tocoo()
    if not cooc.nnz:
        return seen, np.zeros((len(seen), 0))
    rows, cols = np.asarray(cooc.sum(1)).ravel(), np.asarray(cooc.sum(0)).ravel()
    pmi = np.log(cooc.data * cooc.sum() / (rows[cooc.row] * cols[cooc.col]))
    keep = pmi > 0
    ppmi = coo_matrix((pmi[keep], (cooc.row[keep], cooc.col[keep])), shape=cooc.shape)
    u, singular, _ = svds(ppmi.tocsc(), k=dim, random_state=0)
    return seen, u * np.sqrt(singular)


def focus_sources(
    tokenizer: Tokenizer, texts: Iterable[str], new_ids: set[int], min_count: int = 3
) -> dict[int, list[tuple[int, float]]]:
    """FOCUS's recipe (Dobler & de Melo 2023) for the rows of each new token seen `min_count` times in
    `texts`: the old tokens it resembles and their weights (summing to 1), sparsemax over its cosine to
    every old token seen as often, in vectors learnt here on `texts` as the extended `tokenizer` splits
    them (`token_vectors`; FOCUS learns fastText vectors). A new token seen less often has no entry:
    the trainer falls back on the mean of its pieces."""
    ids, matrix = token_vectors(tokenizer, texts, min_count)
    if not matrix.shape[1]:
        return {}
    norms = np.linalg.norm(matrix, axis=1)
    placed = norms > 1e-9  # a token with no vector shares no context with the others: it keeps the mean
    ids, matrix = ids[placed], matrix[placed] / norms[placed, None]
    new = np.isin(ids, list(new_ids))
    old_ids, old = ids[~new], matrix[~new]
    if not len(old_ids):
        return {}
    sources = {}
    for id, vector in zip(ids[new], matrix[new]):
        weights = sparsemax(old @ vector)
        kept = np.flatnonzero(weights)
        sources[int(id)] = [(int(old_ids[i]), float(weights[i])) for i in kept]
    return sources
