"""Reworded copies of benchmark items: datasketch MinHashLSH over short shingles.

A paraphrase that changes one word in ten breaks every 13-gram, so the n-gram pass misses it.
Here benchmark items are indexed by MinHash of their word 2-grams (character 3-grams for
Japanese/Chinese) and each corpus line (long lines in overlapping windows) is queried; a
candidate counts when its true Jaccard similarity reaches the threshold. Lines that share too
few shingles with any item skip the MinHash work entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHashLSH
from pydantic import Field

from curation.decont.index import BenchmarkText
from curation.decont.units import HAS_CJK, HashTable, UnitText, splitmix64, window_hashes
from curation.recipe import Strict


class NearDuplicateSettings(Strict):
    threshold: float = Field(0.5, gt=0, le=1)  # Jaccard similarity of shingle sets
    num_perm: int = Field(128, ge=16)
    word_shingles: int = Field(2, ge=1)
    char_shingles: int = Field(3, ge=1)
    char_languages: list[str] = ["ja", "zh"]
    seed: int = 1


@dataclass(frozen=True)
class NearMatch:
    """Document characters [start, end) resemble item `item` with this Jaccard similarity."""

    item: int
    start: int
    end: int
    jaccard: float


class NearDuplicateIndex:
    """Benchmark items in a MinHashLSH; `find(doc)` returns the lines that resemble an item."""

    def __init__(self, texts: list[BenchmarkText], settings: NearDuplicateSettings | None = None):
        self.settings = s = settings or NearDuplicateSettings()
        self._params = np.random.default_rng(s.seed).integers(0, 2**63, size=s.num_perm, dtype=np.uint64)
        self.shingles: list[np.ndarray] = []
        self._sizes: dict[int, list[int]] = {}  # shingle size -> items shingled with it
        self.lsh = MinHashLSH(threshold=s.threshold, num_perm=s.num_perm)
        for i, t in enumerate(texts):
            k = s.char_shingles if t.lang in s.char_languages else s.word_shingles
            shingles = np.unique(window_hashes(UnitText(t.input).hashes, k))
            self.shingles.append(shingles)
            if len(shingles):
                self._sizes.setdefault(k, []).append(i)
                self.lsh.insert(i, self._minhash(shingles))
        self._tables = {
            k: HashTable(np.concatenate([self.shingles[i] for i in items]))
            for k, items in self._sizes.items()
        }
        self._cjk_only = {
            k: all(texts[i].lang in s.char_languages for i in v) for k, v in self._sizes.items()
        }
        sizes = [len(x) for x in self.shingles if len(x)] or [1]
        self._min_size, self._max_size = min(sizes), max(sizes)

    def _minhash(self, shingles: np.ndarray) -> LeanMinHash:
        with np.errstate(over="ignore"):
            values = splitmix64(shingles[:, None] ^ self._params[None, :]).min(axis=0)
        # our own 64-bit permutations (vectorised over all shingles); the LSH only bands the values
        return LeanMinHash(seed=self.settings.seed, hashvalues=values, scheme="affine64")

    def _passages(self, doc: UnitText, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Lines as unit ranges [a, b); lines too long to resemble any item become overlapping windows."""
        width = int(self._max_size / self.settings.threshold) + k
        starts, ends = doc.lines[:-1], doc.lines[1:]
        long = ends - starts > width
        extra = [
            (s, min(s + width, b))
            for a, b in zip(starts[long].tolist(), ends[long].tolist())
            for s in sorted({*range(a, b - width, width // 2), b - width})
        ]
        extra_a, extra_b = np.array(extra, dtype=np.int64).reshape(-1, 2).T
        return np.concatenate([starts[~long], extra_a]), np.concatenate([ends[~long], extra_b])

    def find(self, doc: UnitText) -> list[NearMatch]:
        t, found = self.settings.threshold, {}
        for k, table in self._tables.items():
            if self._cjk_only[k] and not HAS_CJK.search(doc.text):
                continue
            windows = window_hashes(doc.hashes, k)
            if not len(windows):
                continue
            shared = np.zeros(len(windows) + 1, dtype=np.int64)
            shared[1 + table.lookup(windows)[0]] = 1
            shared = np.cumsum(shared)
            a, b = self._passages(doc, k)
            a = np.minimum(a, len(windows))
            last = np.clip(b - k + 1, a, None)  # shingles that start and end inside the passage
            size = last - a
            # Jaccard >= t needs at least t of the passage's shingles in some item (0.9: repeats)
            keep = (size >= self._min_size * t) & (shared[last] - shared[a] >= 0.9 * t * size)
            for a0, b0, last0 in zip(a[keep].tolist(), b[keep].tolist(), last[keep].tolist()):
                shingles = np.unique(windows[a0:last0])
                for i in self.lsh.query(self._minhash(shingles)):
                    item = self.shingles[i]
                    common = len(np.intersect1d(item, shingles, assume_unique=True))
                    jaccard = common / (len(item) + len(shingles) - common)
                    if jaccard >= t and jaccard > found.get((i, a0), (0,))[0]:
                        found[(i, a0)] = (jaccard, b0)
        return [
            NearMatch(i, *doc.char_span(a, b), round(jaccard, 4))
            for (i, a), (jaccard, b) in sorted(found.items())
        ]
