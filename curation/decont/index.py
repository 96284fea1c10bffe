"""N-gram overlap between documents and benchmark items: the one index behind `make audit` and the
corpus's `Decontaminate` step.

Text is normalised (NFKC, lower case) and cut into units: a run of word characters for
space-delimited scripts, a single character for Japanese and Chinese, so one unit stream serves
both and a Japanese item is matched by character n-grams. Seeds are the shortest allowed n-gram
(`min_words`/`min_chars`); every seed hit is verified unit by unit and extended to the longest
common run, so one hash pass per document finds matches of every length. A run counts when it is
at least the item's n (13 words by default, fewer only for shorter items) — the GPT-3/Llama-2
method. Seeds shared by many items (a task's fixed instruction) never start a match on their own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.decont.units import HAS_CJK, HashTable, UnitText, units, window_hashes
from curation.recipe import NgramSettings


@dataclass(frozen=True)
class BenchmarkText:
    """What is matched for one item: its input (context + question) followed by its answer."""

    id: str
    task: str
    lang: str
    input: str
    label: str


@dataclass
class _Item:
    text: BenchmarkText
    units: list[str]  # input units, then label units
    n_input: int
    n: int  # the run length that counts as contamination for this item


@dataclass
class _SeedTable:
    """Seeds of one length, and for each key of `table` the (item, position) pairs it occurs at."""

    table: HashTable
    occurrences: list[list[tuple[int, int]]]
    cjk_only: bool  # only Japanese/Chinese items: documents without such characters skip it


@dataclass(frozen=True)
class Run:
    """A maximal common run: item units [item_start, item_end) equal document characters [start, end)."""

    item: int
    item_start: int
    item_end: int
    start: int
    end: int


class ContaminationIndex:
    """Benchmark items in memory; `find(doc)` returns every counting run in a `UnitText` document.

    Hash tables are built lazily, so the index pickles small into datatrove workers.
    """

    def __init__(self, texts: list[BenchmarkText], settings: NgramSettings | None = None):
        self.settings = settings or NgramSettings()
        self.items: list[_Item] = []
        self.too_short: list[int] = []  # items with fewer units than the minimum n: not auditable
        s = self.settings
        for i, t in enumerate(texts):
            u_in, u_label = units(t.input), units(t.label)
            chars = t.lang in s.char_languages
            seq = u_in + u_label
            n = min(s.chars if chars else s.words, len(seq))
            if n < (s.min_chars if chars else s.min_words):
                self.too_short.append(i)
            self.items.append(_Item(t, seq, len(u_in), n))
        self._tables: dict[int, _SeedTable] | None = None

    def __getstate__(self):
        return self.__dict__ | {"_tables": None}

    def _build(self) -> dict[int, _SeedTable]:
        s, short = self.settings, set(self.too_short)
        postings: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        word_seeds = set()
        for i, item in enumerate(self.items):
            if i in short:
                continue
            chars = item.text.lang in s.char_languages
            k = s.min_chars if chars else s.min_words
            if not chars:
                word_seeds.add(k)
            seeds = window_hashes(UnitText(" ".join(item.units)).hashes, k)
            for pos, h in enumerate(seeds.tolist()):
                postings[k][h].append((i, pos))
        tables = {}
        for k, by_hash in postings.items():
            kept = {}
            for h, occurrences in by_hash.items():
                per_task = defaultdict(set)
                for i, _ in occurrences:
                    per_task[self.items[i].text.task].add(i)
                if max(map(len, per_task.values())) < s.template_items:
                    kept[h] = occurrences
            table = HashTable(np.array(list(kept), dtype=np.uint64))
            tables[k] = _SeedTable(table, [kept[h] for h in table.keys.tolist()], k not in word_seeds)
        return tables

    def find(self, doc: UnitText) -> list[Run]:
        """Every maximal run of at least its item's n units shared by `doc` and an item."""
        if self._tables is None:
            self._tables = self._build()
        runs = set()
        for k, seeds in self._tables.items():
            if not len(seeds.table) or (seeds.cjk_only and not HAS_CJK.search(doc.text)):
                continue
            for p, key in zip(*(a.tolist() for a in seeds.table.lookup(window_hashes(doc.hashes, k)))):
                for i, q in seeds.occurrences[key]:
                    runs.add(self._extend(i, q, p, k, doc.units))
        runs.discard(None)
        return [Run(i, q0, q1, *doc.char_span(p0, p1)) for i, q0, q1, p0, p1 in sorted(runs)]

    def _extend(self, i: int, q: int, p: int, k: int, doc: list[str]) -> tuple | None:
        """Grow the seed at item position q / document position p into the maximal equal run."""
        seq = self.items[i].units
        if seq[q : q + k] != doc[p : p + k]:  # a hash collision
            return None
        q0, p0 = q, p
        while q0 > 0 and p0 > 0 and seq[q0 - 1] == doc[p0 - 1]:
            q0, p0 = q0 - 1, p0 - 1
        q1, p1 = q + k, p + k
        while q1 < len(seq) and p1 < len(doc) and seq[q1] == doc[p1]:
            q1, p1 = q1 + 1, p1 + 1
        if q1 - q0 < self.items[i].n:
            return None
        return i, q0, q1, p0, p1


def load_benchmark_texts(paths: list[Path]) -> list[BenchmarkText]:
    """The items of the recipe's task files, as matched text (context + question, then the answer)."""
    from evaluation.tasks import load_items

    texts = []
    for path in paths:
        for item in load_items(path):
            prompt = "\n".join(filter(None, [item.context, item.question]))
            texts.append(BenchmarkText(item.id, item.task, item.lang, prompt, item.choices[item.answer]))
    return texts
