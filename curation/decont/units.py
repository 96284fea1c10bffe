"""Normalised text as units, hashed with numpy: what both contamination passes match on.

Text is NFKC-normalised and lower-cased, then cut into units: a run of word characters for
space-delimited scripts, a single character for Japanese and Chinese. One unit stream serves both
kinds of language, so a Japanese item is matched by character n-grams wherever it appears. Every
step after normalisation is a numpy pass over the code points: there is no Python call per unit.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import cache, cached_property

import numpy as np

from curation.dedup.minhash import splitmix64

_CJK = [(0x3005, 0x3005), (0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)]
_OTHER, _WORD, _UNIT_CHAR = 0, 1, 2  # a unit char (Japanese/Chinese) is a unit on its own
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_FILTER_BITS = 20  # a 1 MiB presence table in front of a sorted hash array


def normalise(text: str) -> str:
    return text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).lower()


@cache
def _kinds() -> np.ndarray:
    """Each BMP code point's kind: word characters are Python's `\\w`, minus the Japanese/Chinese
    ones (the rare code points above the BMP are looked up one by one)."""
    every = "".join(map(chr, range(0x10000)))
    kinds = np.frombuffer(re.sub(r"\w", "\x01", re.sub(r"\W", "\x00", every)).encode("latin-1"), np.uint8)
    kinds = kinds.copy()
    for lo, hi in _CJK:
        kinds[lo : hi + 1] = _UNIT_CHAR
    return kinds


@cache
def _ascii_words() -> bytes:
    return bytes(_kinds()[:128] == _WORD) + bytes(128)


def _kind(codes: np.ndarray) -> np.ndarray:
    kind = _kinds()[np.minimum(codes, 0xFFFF)]
    astral = np.flatnonzero(codes > 0xFFFF)
    kind[astral] = [_WORD if chr(c).isalnum() else _OTHER for c in codes[astral].tolist()]
    return kind


class _Powers:
    """B**i and B**-i modulo 2**64, grown on demand, for O(1) hashes of any span."""

    def __init__(self):
        self.pow = self.inv = np.ones(1, dtype=np.uint64)

    def ensure(self, n: int) -> None:
        if len(self.pow) < n:
            size = max(n, 2 * len(self.pow))
            self.pow, self.inv = (
                np.concatenate([[np.uint64(1)], np.cumprod(np.full(size - 1, b, np.uint64))])
                for b in (_BASE, pow(_BASE, -1, 2**64))
            )


_POWERS = _Powers()


def span_hashes(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hash of each `values[start:end]`, the same wherever the span sits."""
    _POWERS.ensure(len(values) + 1)
    prefix = np.zeros(len(values) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(values.astype(np.uint64) * _POWERS.pow[: len(values)], out=prefix[1:])
        return (prefix[ends] - prefix[starts]) * _POWERS.inv[starts]


def window_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n-unit window."""
    starts = np.arange(max(len(hashes) - n + 1, 0))
    return span_hashes(hashes, starts, starts + n)


class HashTable:
    """Sorted 64-bit keys behind a presence bitmap: membership of many hashes in one numpy pass."""

    def __init__(self, keys: np.ndarray):
        self.keys = np.unique(keys.astype(np.uint64))
        self.present = np.zeros(1 << _FILTER_BITS, dtype=bool)
        self.present[self.keys & np.uint64((1 << _FILTER_BITS) - 1)] = True

    def __len__(self) -> int:
        return len(self.keys)

    def may_contain(self, hashes: np.ndarray) -> np.ndarray:
        """True for every key, and for a few other hashes: enough for a necessary condition."""
        return self.present[hashes & np.uint64((1 << _FILTER_BITS) - 1)]

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of `hashes` that are keys, and each one's index into `keys`."""
        maybe = np.flatnonzero(self.may_contain(hashes))
        idx = np.minimum(np.searchsorted(self.keys, hashes[maybe]), max(len(self.keys) - 1, 0))
        hit = self.keys[idx] == hashes[maybe] if len(self.keys) else np.zeros(len(maybe), bool)
        return maybe[hit], idx[hit]


class UnitText:
    """One text as units: a 64-bit hash per unit, where each unit and line lies, and the way back to
    character offsets in the original text."""

    def __init__(self, text: str):
        self.text = text
        self.norm = normalise(text)
        if self.norm.isascii():  # bytes.translate classifies ASCII at C speed; no unit chars here
            encoded = self.norm.encode()
            self._codes = np.frombuffer(encoded, dtype=np.uint8)
            word = np.frombuffer(b"\0" + encoded.translate(_ascii_words()) + b"\0", dtype=np.bool_)
            self.has_unit_chars = False
            self.starts = np.flatnonzero(word[1:-1] > word[:-2])
            self.ends = np.flatnonzero(word[1:-1] > word[2:]) + 1
        else:
            self._codes = np.frombuffer(self.norm.encode("utf-32-le"), dtype=np.uint32)
            kind = _kind(self._codes)
            unit_char, word = kind == _UNIT_CHAR, np.concatenate([[False], kind == _WORD, [False]])
            self.has_unit_chars = bool(unit_char.any())
            self.starts = np.flatnonzero(unit_char | (word[1:-1] > word[:-2]))
            self.ends = np.flatnonzero(unit_char | (word[1:-1] > word[2:])) + 1
        with np.errstate(over="ignore"):
            self.hashes = splitmix64(
                span_hashes(self._codes, self.starts, self.ends) + (self.ends - self.starts).astype(np.uint64)
            )

    def __len__(self) -> int:
        return len(self.hashes)

    @cached_property
    def lines(self) -> np.ndarray:
        """The unit index each line starts at, then the end (a line without units is empty)."""
        breaks = np.flatnonzero(self._codes == 10)
        return np.concatenate([[0], np.searchsorted(self.starts, breaks), [len(self.starts)]])

    def unit(self, u: int) -> str:
        return self.norm[self.starts[u] : self.ends[u]]

    @cached_property
    def _offsets(self) -> np.ndarray | None:
        """Each normalised character's original offset, where NFKC changed the length."""
        if len(self.norm) == len(self.text):
            return None
        pieces = [unicodedata.normalize("NFKC", c).lower() for c in self.text]
        if "".join(pieces) == self.norm:  # no composition across characters
            return np.repeat(np.arange(len(self.text)), [len(p) for p in pieces])
        return None

    def _original(self, position: int, end: bool) -> int:
        if len(self.norm) == len(self.text):
            return position
        if self._offsets is not None:
            return int(self._offsets[position - 1]) + 1 if end else int(self._offsets[position])

        # NFKC composed characters (half-width kana and their voicing marks): search the prefixes
        def length(o: int) -> int:
            return len(normalise(self.text[:o]))

        def last_within(n: int) -> int:  # the longest prefix that normalises to at most n characters
            return bisect.bisect_right(range(len(self.text) + 1), n, key=length) - 1

        if end:  # include characters that merge into the last one (voicing marks)
            return last_within(length(bisect.bisect_left(range(len(self.text) + 1), position, key=length)))
        return last_within(position)

    def char_span(self, u0: int, u1: int) -> tuple[int, int]:
        """Where units [u0, u1) lie in the original text."""
        start, end = int(self.starts[u0]), int(self.ends[u1 - 1])
        return self._original(start, end=False), self._original(end, end=True)


def unit_hashes(texts: list[str]) -> list[np.ndarray]:
    """The unit hashes of many short texts (benchmark items), in one numpy pass."""
    joined = UnitText("\x00".join(texts))  # NUL is no unit and composes with nothing
    ends = np.cumsum([len(normalise(t)) + 1 for t in texts])
    return np.split(joined.hashes, np.searchsorted(joined.starts, ends[:-1]))
