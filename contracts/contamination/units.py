"""Normalised text as units, hashed with numpy: what both contamination passes match on.

Text is NFKC-normalised and lower-cased, then cut into units: a run of word characters for
space-delimited scripts, a single character for Japanese and Chinese. One unit stream serves both
kinds of language, so a Japanese item is matched by character n-grams wherever it appears. Every
step after normalisation is a numpy pass over the UTF-8 bytes: there is no Python call per unit.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import cache, cached_property

import numpy as np

_CJK = [(0x3005, 0x3005), (0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)]
_OTHER, _WORD, _UNIT_CHAR = 0, 1, 2  # a unit char (Japanese/Chinese) is a unit on its own
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_FILTER_BITS = 20  # a 1 MiB presence table in front of a sorted hash array
_LOW_BYTES = np.array([(1 << 8 * i) - 1 for i in range(8)] + [2**64 - 1], dtype=np.uint64)  # masks


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A 64-bit mixer applied elementwise: the hash finaliser every dacp n-gram hash ends with."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


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


def _multibyte_kinds(data: np.ndarray, multibyte: np.ndarray) -> np.ndarray:
    """The kind of the character each byte of `data[multibyte]` (all bytes >= 0x80) belongs to: the
    UTF-8 sequences decoded in numpy, one pass per continuation byte."""
    lead = multibyte[data[multibyte] >= 0xC0]
    size = 2 + (data[lead] >= 0xE0) + (data[lead] >= 0xF0)
    code = (data[lead] & (0x7F >> size)).astype(np.uint32)
    padded = np.append(data, np.zeros(3, np.uint8))
    for j in (1, 2, 3):
        more = np.flatnonzero(size > j)
        code[more] = code[more] << 6 | (padded[lead[more] + j] & 0x3F)
    return np.repeat(_kind(code), size)


class _Powers:
    """B**i and B**-i modulo 2**64, grown on demand, for window hashes by prefix sums."""

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


def byte_span_hashes(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each `data[start:end]`, the same wherever the span sits: its bytes read eight
    at a time (unaligned loads, so a unit of up to 8 bytes is one load) and mixed with its length."""
    padded = np.frombuffer(data + bytes(8), dtype=np.uint8)
    loads = np.ndarray((len(data) + 1,), dtype=np.uint64, buffer=padded, strides=(1,))  # bytes [i, i+8)
    lengths = ends - starts
    with np.errstate(over="ignore"):
        hashes = splitmix64(loads[starts] & _LOW_BYTES[np.minimum(lengths, 8)] ^ lengths.astype(np.uint64))
        longer, offset = np.flatnonzero(lengths > 8), 8
        while len(longer):  # the rare long units, eight more bytes at a time
            left = lengths[longer] - offset
            chunk = loads[starts[longer] + offset] & _LOW_BYTES[np.minimum(left, 8)]
            hashes[longer] = splitmix64(hashes[longer] * np.uint64(_BASE) + chunk)
            longer, offset = longer[left > 8], offset + 8
    return hashes


def window_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n-unit window, sum(hashes[i + j] * B**j): by prefix sums over slices, the same
    wherever the window sits."""
    count = max(len(hashes) - n + 1, 0)
    _POWERS.ensure(max(len(hashes), n) + 1)
    with np.errstate(over="ignore"):
        if n <= 4:  # a few multiply-adds beat the prefix sums
            out = hashes[:count].copy()
            for j in range(1, n):
                out += hashes[j : j + count] * _POWERS.pow[j]
            return out
        prefix = np.zeros(len(hashes) + 1, dtype=np.uint64)
        np.cumsum(hashes * _POWERS.pow[: len(hashes)], out=prefix[1:])
        return (prefix[n : n + count] - prefix[:count]) * _POWERS.inv[:count]


def item_windows(sequences: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n-unit windows of many unit sequences in one pass: each window's hash, which sequence it
    lies in and where (windows across two sequences are left out)."""
    lengths = np.array([len(x) for x in sequences], dtype=np.int64)
    hashes = window_hashes(np.concatenate(sequences or [np.empty(0, np.uint64)]), n)
    owner = np.repeat(np.arange(len(sequences)), lengths)[: len(hashes)]
    positions = np.arange(len(hashes)) - (np.cumsum(lengths) - lengths)[owner]
    within = positions + n <= lengths[owner]
    return hashes[within], owner[within], positions[within]


class HashTable:
    """Sorted 64-bit keys behind a presence bitmap: membership of many hashes in one numpy pass."""

    def __init__(self, keys: np.ndarray):
        keys = np.sort(keys.astype(np.uint64))
        self.keys = keys[np.append(True, keys[1:] != keys[:-1])] if len(keys) else keys
        self.present = np.zeros(1 << _FILTER_BITS, dtype=bool)
        self.present[self._slots(self.keys)] = True

    @staticmethod
    def _slots(hashes: np.ndarray) -> np.ndarray:
        return hashes.view(np.int64) & ((1 << _FILTER_BITS) - 1)  # signed: indexes without a cast

    def __len__(self) -> int:
        return len(self.keys)

    def may_contain(self, hashes: np.ndarray) -> np.ndarray:
        """True for every key, and for a few other hashes: enough for a necessary condition."""
        return self.present[self._slots(hashes)]

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of `hashes` that are keys, and each one's index into `keys`."""
        maybe = np.flatnonzero(self.may_contain(hashes))
        idx = np.minimum(np.searchsorted(self.keys, hashes[maybe]), max(len(self.keys) - 1, 0))
        hit = self.keys[idx] == hashes[maybe] if len(self.keys) else np.zeros(len(maybe), bool)
        return maybe[hit], idx[hit]


class UnitText:
    """Texts as units: a 64-bit hash per unit, where each unit, line and text lies, and the way back to
    character offsets in the original texts.

    Several texts are cut in one numpy pass, joined by newlines (a text boundary is a line boundary);
    `bounds` says where each one's units start, so matching never runs from one into the next.
    """

    def __init__(self, *texts: str):
        self.texts = texts
        self._norms = [normalise(t) for t in texts]
        pieces = [n.encode("utf-8", "surrogatepass") for n in self._norms]  # lone surrogates: kept
        self.utf8 = b"\n".join(pieces)
        self._text_starts = np.cumsum([0] + [len(p) + 1 for p in pieces])  # in bytes
        self._bytes = data = np.frombuffer(self.utf8, dtype=np.uint8)
        kind = np.frombuffer(self.utf8.translate(_ascii_words()), dtype=np.uint8)
        multibyte = np.flatnonzero(data >= 0x80)
        if len(multibyte):  # the non-ASCII characters' kinds, decoded from their bytes
            kind = kind.copy()
            kind[multibyte] = _multibyte_kinds(data, multibyte)
        word = np.concatenate([[False], kind == _WORD, [False]])
        starts, ends = word[1:-1] > word[:-2], word[1:-1] > word[2:]
        unit_char = kind == _UNIT_CHAR if len(multibyte) else None
        self.has_unit_chars = unit_char is not None and bool(unit_char.any())
        if self.has_unit_chars:  # a unit char is a unit of its own: from its first byte to its last
            first = (data & 0xC0) != 0x80
            starts |= unit_char & first
            ends |= unit_char & np.append(first[1:], True)
        self.starts, self.ends = np.flatnonzero(starts), np.flatnonzero(ends) + 1  # in bytes
        self.hashes = byte_span_hashes(self.utf8, self.starts, self.ends)
        self.bounds = np.searchsorted(self.starts, self._text_starts)
        self._offset_maps: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return len(self.hashes)

    @cached_property
    def lines(self) -> np.ndarray:
        """The unit index each line starts at, then the end (a line without units is empty)."""
        breaks = np.flatnonzero(self._bytes == 10)
        return np.concatenate([[0], np.searchsorted(self.starts, breaks), [len(self.starts)]])

    def unit(self, u: int) -> str:
        return self.utf8[self.starts[u] : self.ends[u]].decode("utf-8", "surrogatepass")

    def _offsets(self, i: int) -> np.ndarray | None:
        """Each normalised character's original offset in text i, where NFKC changed the length and
        composed nothing across characters."""
        if i not in self._offset_maps:
            text = self.texts[i]
            pieces = [unicodedata.normalize("NFKC", c).lower() for c in text]
            same = "".join(pieces) == self._norms[i]
            self._offset_maps[i] = np.repeat(np.arange(len(text)), [len(p) for p in pieces]) if same else None
        return self._offset_maps[i]

    def _original(self, i: int, position: int, end: bool) -> int:
        text = self.texts[i]
        if len(self._norms[i]) == len(text):
            return position
        offsets = self._offsets(i)
        if offsets is not None:
            return int(offsets[position - 1]) + 1 if end else int(offsets[position])

        # NFKC composed characters (half-width kana and their voicing marks): search the prefixes
        def length(o: int) -> int:
            return len(normalise(text[:o]))

        def last_within(n: int) -> int:  # the longest prefix that normalises to at most n characters
            return bisect.bisect_right(range(len(text) + 1), n, key=length) - 1

        if end:  # include characters that merge into the last one (voicing marks)
            return last_within(length(bisect.bisect_left(range(len(text) + 1), position, key=length)))
        return last_within(position)

    def locate(self, u0: int, u1: int) -> tuple[int, int, int]:
        """Which text units [u0, u1) lie in, and where in its characters."""
        i = int(np.searchsorted(self.bounds, u0, side="right")) - 1
        base, stop = int(self._text_starts[i]), int(self._text_starts[i + 1]) - 1
        piece = self.utf8[base:stop]

        def chars(byte: int) -> int:  # offset in text i's normalised characters
            return (
                byte
                if len(piece) == len(self._norms[i])
                else len(piece[:byte].decode("utf-8", "surrogatepass"))
            )

        start, end = chars(int(self.starts[u0]) - base), chars(int(self.ends[u1 - 1]) - base)
        return i, self._original(i, start, end=False), self._original(i, end, end=True)


def unit_hashes(texts: list[str]) -> list[np.ndarray]:
    """The unit hashes of many short texts (benchmark items), in one numpy pass."""
    joined = UnitText(*texts)
    return [joined.hashes[a:b] for a, b in zip(joined.bounds[:-1].tolist(), joined.bounds[1:].tolist())]
