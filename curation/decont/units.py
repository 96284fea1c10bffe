"""Normalised text as units, hashed with numpy: what both contamination passes match on.

Text is NFKC-normalised and lower-cased, then cut into units: a run of word characters for
space-delimited scripts, a single character for Japanese and Chinese. One unit stream serves both
kinds of language, so a Japanese item is matched by character n-grams wherever it appears.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property

import numpy as np

from curation.dedup.minhash import splitmix64

_CJK = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
UNIT = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
_UNIT_OR_LINE = re.compile(f"\n|{UNIT.pattern}")
HAS_CJK = re.compile(f"[{_CJK}]")
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_FILTER_BITS = 20  # a 1 MiB presence table in front of a sorted hash array
# ASCII fast path: letters lower-cased, letters/digits/_ kept, line breaks kept, the rest splits
_ASCII_UNITS = (
    bytes(c + 32 if 65 <= c <= 90 else c if chr(c).isalnum() or c in (10, 95) else 32 for c in range(128))
    + b" " * 128
)


def normalise(text: str) -> tuple[str, np.ndarray | None]:
    """NFKC + lower case, and where lengths moved, each normalised character's original offset."""
    if text.isascii():
        return text.lower(), None
    norm = unicodedata.normalize("NFKC", text).lower()
    if len(norm) == len(text):
        return norm, None
    pieces = [unicodedata.normalize("NFKC", c).lower() for c in text]
    return "".join(pieces), np.repeat(np.arange(len(text)), [len(p) for p in pieces])


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

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of `hashes` that are keys, and each one's index into `keys`."""
        maybe = np.flatnonzero(self.present[hashes & np.uint64((1 << _FILTER_BITS) - 1)])
        idx = np.minimum(np.searchsorted(self.keys, hashes[maybe]), max(len(self.keys) - 1, 0))
        hit = self.keys[idx] == hashes[maybe] if len(self.keys) else np.zeros(len(maybe), bool)
        return maybe[hit], idx[hit]


class UnitText:
    """One text as units: hashes for every unit, line boundaries, and character offsets on demand.

    Hashing works on the UTF-8 bytes of the unit stream, so there is no Python call per unit.
    """

    def __init__(self, text: str):
        self.text = text
        if text.isascii():
            self.stream = text.encode().translate(_ASCII_UNITS)
        else:
            self.stream = " ".join(_UNIT_OR_LINE.findall(normalise(text)[0])).encode()
        data = np.frombuffer(self.stream, dtype=np.uint8)
        edges = np.diff((data > 32).view(np.int8), prepend=np.int8(0), append=np.int8(0))
        self._starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        with np.errstate(over="ignore"):
            self.hashes = splitmix64(
                span_hashes(data, self._starts, ends) + (ends - self._starts).astype(np.uint64)
            )

    @cached_property
    def lines(self) -> np.ndarray:
        """The unit index each line starts at, then the end (a line without units is empty)."""
        breaks = np.flatnonzero(np.frombuffer(self.stream, dtype=np.uint8) == 10)
        return np.concatenate([[0], np.searchsorted(self._starts, breaks), [len(self._starts)]])

    def __len__(self) -> int:
        return len(self.hashes)

    @cached_property
    def units(self) -> list[str]:
        return self.stream.decode().split()

    @cached_property
    def _char_spans(self) -> tuple[list[tuple[int, int]], np.ndarray | None]:
        norm, offsets = normalise(self.text)
        return [m.span() for m in UNIT.finditer(norm)], offsets

    def char_span(self, u0: int, u1: int) -> tuple[int, int]:
        """Where units [u0, u1) lie in the original text."""
        spans, offsets = self._char_spans
        start, end = spans[u0][0], spans[u1 - 1][1]
        if offsets is not None:
            start, end = int(offsets[start]), int(offsets[end - 1]) + 1
        return start, end


def units(text: str) -> list[str]:
    return UnitText(text).units
