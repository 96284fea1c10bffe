"""MinHash signatures without spaCy: vectorised shingles, characters for unspaced scripts.

datatrove's MinhashDedupSignature spends ~84% of its time in spaCy word splitting (41 docs/s).
Here words are lower-cased `\\w+` runs, each distinct word is hashed once, n-gram hashes are
combined with numpy, and the 112 permutations are xor-and-mix (no 64-bit modulo); Japanese (and
other unspaced scripts) are shingled by characters. Buckets, clustering and filtering stay
datatrove's stages, reading the signatures this step writes in datatrove's format.
"""

import re

import numpy as np
import xxhash
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupFilter, MinhashDedupSignature

from contracts.contamination.units import splitmix64

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_ODD = np.uint64(0x9E3779B97F4A7C15)


def normalised_text(doc: Document) -> str:
    """Content compared by exact dedup: case, punctuation and whitespace differences ignored."""
    return " ".join(_WORD.findall(doc.text.lower()))


_WORD = re.compile(r"\w+")


def ngram_hashes(units: list[str], n: int) -> np.ndarray:
    """64-bit hashes of all n-grams of `units`, shape (count, 1), as datatrove's get_signature expects."""
    if len(units) < n:
        return np.empty((0, 1), dtype=np.uint64)
    vocab, inverse = np.unique(np.asarray(units), return_inverse=True)
    unit_hash = np.fromiter((xxhash.xxh64_intdigest(u) for u in vocab), dtype=np.uint64, count=len(vocab))
    h = unit_hash[inverse]
    count = len(units) - n + 1
    with np.errstate(over="ignore"):
        acc = np.zeros(count, dtype=np.uint64)
        for k in range(n):  # position-dependent mixing, so "a b" and "b a" differ
            acc = splitmix64(acc * _ODD + h[k : k + count])
    return acc.reshape((-1, 1))


class FastMinhashSignature(MinhashDedupSignature):
    """Stage 1 of datatrove's MinHash with fast, language-aware shingles."""

    name = "🎯 MinHash signatures"

    def __init__(self, output_folder, config: MinhashConfig, char_ngrams: int, char_languages: list[str]):
        super().__init__(output_folder, config)
        self.char_ngrams = char_ngrams
        self.char_languages = set(char_languages)
        self._language = None

    @property
    def parameters(self) -> np.ndarray:
        if self._parameters is None:
            gen = np.random.RandomState(self.config.seed)
            self._parameters = gen.randint(0, 2**63, size=(1, self.num_hashes), dtype=np.uint64)
        return self._parameters

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        # datatrove's readers stop at values >= 2**61 - 1 (64-bit) or beyond `max` (32-bit): stay below
        limit = np.uint64(
            (1 << 60) - 1 if self.config.hash_config.precision == 64 else self.config.hash_config.max
        )
        with np.errstate(over="ignore"):
            phv = splitmix64(shingles ^ self.parameters) & limit
        mins = phv.min(axis=0).astype(self.config.hash_config.np_dtype)
        return [x.tolist() for x in np.split(mins, self.config.num_buckets)]

    def get_shingles(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        if self._language in self.char_languages:
            return ngram_hashes(list("".join(words)), self.char_ngrams)
        return ngram_hashes(words, self.config.n_grams)

    def run(self, data, rank: int = 0, world_size: int = 1):
        def with_language(docs):
            for doc in docs:
                self._language = doc.metadata.get("language")  # read by get_shingles for this doc
                yield doc

        return super().run(with_language(data), rank, world_size)


class MinhashClusterFilter(MinhashDedupFilter):
    """Stage 4 of datatrove's MinHash; every kept document records its cluster size.

    datatrove skips reading cluster sizes in a task that removed nothing (no `.remove` file), and
    fails in a task whose documents are in no cluster (no `.sizes` file): empty files fix both.
    """

    def run(self, data, rank: int = 0, world_size: int = 1):
        for suffix in ("remove", "sizes"):
            if not self.data_folder.exists(f"{rank:06d}.{suffix}"):
                with self.data_folder.open(f"{rank:06d}.{suffix}", "wb"):
                    pass
        for doc in super().run(data, rank, world_size):
            doc.metadata.setdefault("minhash_cluster_size", 1)
            yield doc
