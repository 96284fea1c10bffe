"""Reworded copies of benchmark items: datasketch MinHashLSH over short shingles.

A paraphrase that changes one word in ten breaks every 13-gram, so the n-gram pass misses it.
Here benchmark items are indexed by MinHash of their word 2-grams (character 3-grams for
Japanese/Chinese) and each corpus line, and each run of up to `max_lines` lines, is queried (long
lines in overlapping windows); a candidate counts when its true Jaccard similarity reaches the
threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHashLSH
from pydantic import Field

from contracts.contamination.index import BenchmarkText
from contracts.contamination.units import (
    HashTable,
    UnitText,
    item_windows,
    splitmix64,
    unit_hashes,
    window_hashes,
)
from contracts.recipe import Strict


class NearDuplicateSettings(Strict):
    threshold: float = Field(0.5, gt=0, le=1)  # Jaccard similarity of shingle sets
    # candidates are checked by true Jaccard, so only the LSH's bands matter: at 0.5, 64 permutations
    # (14 bands of 4) find pairs of Jaccard 0.55-0.8 as often as 128 (25 of 5) within 0.014, and a
    # few more below (checked and dropped), at half the work
    num_perm: int = Field(64, ge=16)
    word_shingles: int = Field(2, ge=1)
    char_shingles: int = Field(3, ge=1)
    min_shingles: int = Field(6, ge=1)  # shorter items are left to the n-gram pass
    max_lines: int = Field(8, ge=1)  # passages join up to this many lines: copies of multi-line items
    char_languages: list[str] = ["ja", "zh"]
    seed: int = 1


@dataclass(frozen=True)
class NearMatch:
    """Characters [start, end) of text `text` resemble item `item` with this Jaccard similarity."""

    item: int
    text: int
    start: int
    end: int
    jaccard: float


def _unique_per_set(values: np.ndarray, set_ids: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of each set (sets given as an id per value), flat, and each set's start."""
    order = np.lexsort((values, set_ids))
    values, set_ids = values[order], set_ids[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = (values[1:] != values[:-1]) | (set_ids[1:] != set_ids[:-1])
    return values[first], np.searchsorted(set_ids[first], np.arange(count))


class NearDuplicateIndex:
    """Benchmark items in a MinHashLSH; `find(doc)` returns the lines that resemble an item.

    Work per `UnitText` (a batch of documents) is numpy over all its passages (lines and runs of
    lines) at once: passages with too few shingles in any item are skipped, the rest get MinHash
    signatures in one pass, and only passages that share an LSH band key with some item (a table of
    every item's band keys) are queried in the LSH.
    """

    _BLOCK = 4096  # shingles per signature block: the (num_perm, block) scratch stays in cache

    def __init__(self, texts: list[BenchmarkText], settings: NearDuplicateSettings | None = None):
        self.settings = s = settings or NearDuplicateSettings()
        rng = np.random.default_rng(s.seed)  # permutations x -> a*x + b (mod 2**32), a odd
        self._a, self._b = (rng.integers(0, 2**32, size=s.num_perm, dtype=np.uint32) for _ in "ab")
        self._a |= np.uint32(1)
        chars = [t.lang in s.char_languages for t in texts]
        hashes = unit_hashes([t.input for t in texts])
        self.shingles: list[np.ndarray] = [np.empty(0, np.uint64)] * len(texts)
        groups: dict[tuple[int, bool], list[int]] = {}
        for is_chars in (False, True):
            k = s.char_shingles if is_chars else s.word_shingles
            members = [i for i in range(len(texts)) if chars[i] == is_chars]
            windows, owner, _ = item_windows([hashes[i] for i in members], k)
            flat, starts = _unique_per_set(windows, owner, len(members))
            for i, shingles in zip(members, np.split(flat, starts[1:])):
                self.shingles[i] = shingles
                if len(shingles) >= s.min_shingles:
                    groups.setdefault((k, is_chars), []).append(i)
        indexed = [i for members in groups.values() for i in members]
        signatures = self._signatures(*self._flat([self.shingles[i] for i in indexed]))
        self.lsh = MinHashLSH(threshold=s.threshold, num_perm=s.num_perm)
        with self.lsh.insertion_session() as session:
            for i, signature in zip(indexed, signatures):
                session.insert(i, self._minhash(signature))
        self._bands = HashTable(self._band_keys(signatures).ravel())
        self._unions = {
            key: HashTable(np.concatenate([self.shingles[i] for i in items])) for key, items in groups.items()
        }
        sizes = [len(self.shingles[i]) for i in indexed] or [1]
        self._min_size, self._max_size = min(sizes), max(sizes)
        self._max_lines = min(s.max_lines, max([texts[i].input.count("\n") + 1 for i in indexed] or [1]))

    def __deepcopy__(self, memo) -> NearDuplicateIndex:
        return self  # read-only once built: datatrove's per-rank pipeline copies can share it

    @staticmethod
    def _flat(sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Sets as one array and each one's start."""
        starts = np.cumsum([0] + [len(x) for x in sets])[:-1]
        return np.concatenate(sets or [np.empty(0, np.uint64)]), starts

    def _signatures(self, flat: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """MinHash values of the non-empty sets `flat[starts[i]:starts[i+1]]`, vectorised: 32-bit
        permutations (x -> a*x + b mod 2**32, a odd) of the shingles folded to 32 bits, permutations
        along rows so the minimum runs over contiguous memory."""
        folded = (flat ^ (flat >> np.uint64(32))).astype(np.uint32)
        out = np.empty((len(starts), self.settings.num_perm), dtype=np.uint32)
        bounds = np.append(starts, len(flat))
        first = 0
        while first < len(starts):  # blocks of whole sets, about _BLOCK shingles each
            last = max(first + 1, int(np.searchsorted(bounds, bounds[first] + self._BLOCK, side="right")) - 1)
            last = min(last, len(starts))
            values = self._a[:, None] * folded[None, bounds[first] : bounds[last]]
            values += self._b[:, None]
            out[first:last] = np.minimum.reduceat(values, bounds[first:last] - bounds[first], axis=1).T
            first = last
        return out

    def _band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """One 64-bit key per LSH band of each signature (bands as datasketch cuts them): equal bands
        give equal keys."""
        b, r = self.lsh.b, self.lsh.r
        with np.errstate(over="ignore"):
            weights = splitmix64(np.arange(1, b * r + 1, dtype=np.uint64))
            mixed = (signatures[:, : b * r].astype(np.uint64) * weights).reshape(len(signatures), b, r)
            return splitmix64(mixed.sum(axis=2, dtype=np.uint64) + np.arange(b, dtype=np.uint64))

    def _minhash(self, values: np.ndarray) -> LeanMinHash:
        # the LSH only bands the values, so our permutations stand in for datasketch's
        return LeanMinHash(seed=self.settings.seed, hashvalues=values, scheme="affine64")

    def _passages(self, doc: UnitText, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit ranges [a, b) to compare with the items: every run of up to `_max_lines` consecutive
        lines of one text (a copy of a multi-line item spans lines) that is no longer than any item
        could match; a single line longer than that becomes overlapping windows."""
        width = int(self._max_size / self.settings.threshold) + k
        starts, ends = doc.lines[:-1], doc.lines[1:]
        starts, ends = starts[ends > starts], ends[ends > starts]
        text = np.searchsorted(doc.bounds, starts, side="right")
        long = ends - starts > width
        a, b = [starts[~long]], [ends[~long]]
        for m in range(2, self._max_lines + 1):  # m lines from each line on
            fits = (ends[m - 1 :] - starts[: len(starts) - m + 1] <= width) & (
                text[m - 1 :] == text[: len(text) - m + 1]
            )
            if not fits.any():
                break
            a.append(starts[: len(starts) - m + 1][fits])
            b.append(ends[m - 1 :][fits])
        windows = [
            (s, min(s + width, e))
            for line_start, e in zip(starts[long].tolist(), ends[long].tolist())
            for s in sorted({*range(line_start, e - width, width // 2), e - width})
        ]
        windows_a, windows_b = np.array(windows, dtype=np.int64).reshape(-1, 2).T
        return np.concatenate([*a, windows_a]), np.concatenate([*b, windows_b])

    def find(self, doc: UnitText) -> list[NearMatch]:
        t, found = self.settings.threshold, {}  # item -> [(jaccard, a, b)]
        for (k, chars), union in self._unions.items():
            if chars and not doc.has_unit_chars:
                continue
            windows = window_hashes(doc.hashes, k)
            if not len(windows):
                continue
            shared = np.zeros(len(windows) + 1, dtype=np.int64)
            np.cumsum(union.may_contain(windows), out=shared[1:])
            a, b = self._passages(doc, k)
            a = np.minimum(a, len(windows))
            last = np.clip(b - k + 1, a, None)  # shingles that start and end inside the passage
            size = last - a
            # Jaccard >= t needs t of the passage's shingles in some item (0.9: a line may repeat some)
            keep = np.flatnonzero((size >= self._min_size * t) & (shared[last] - shared[a] >= 0.9 * t * size))
            if not len(keep):
                continue
            a, b, size = a[keep], b[keep], size[keep]
            starts = np.cumsum(size) - size
            flat = windows[np.repeat(a - starts, size) + np.arange(size.sum())]  # repeats change no minimum
            signatures = self._signatures(flat, starts)
            bands = self._band_keys(signatures)
            shares_a_band = self._bands.lookup(bands.ravel())[0] // bands.shape[1]
            for p in np.unique(shares_a_band).tolist():
                shingles = np.unique(flat[starts[p] : starts[p] + size[p]])
                for i in self.lsh.query(self._minhash(signatures[p])):
                    item = self.shingles[i]
                    common = len(np.intersect1d(item, shingles, assume_unique=True))
                    jaccard = common / (len(item) + len(shingles) - common)
                    if jaccard >= t:
                        found.setdefault(i, []).append((jaccard, int(a[p]), int(b[p])))
        matches = []
        for i, candidates in sorted(found.items()):  # per item, the best passage of each overlapping group
            kept: list[tuple[int, int]] = []
            for jaccard, a0, b0 in sorted(candidates, key=lambda c: (-c[0], c[2] - c[1], c[1])):
                if all(b0 <= a1 or b1 <= a0 for a1, b1 in kept):
                    kept.append((a0, b0))
                    matches.append(NearMatch(i, *doc.locate(a0, b0), round(jaccard, 4)))
        return sorted(matches, key=lambda m: (m.item, m.text, m.start))
