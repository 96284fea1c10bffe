"""N-gram overlap between documents and benchmark items: the one index behind `make audit` and the
corpus's `Decontaminate` step, so both agree on what counts as contamination.

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
from pydantic import Field

from contracts.contamination.units import HashTable, UnitText, item_windows, unit_hashes, window_hashes
from contracts.items import gold_text, load_items
from contracts.recipe import Strict


class NgramSettings(Strict):
    """What counts as benchmark overlap; `make audit` and the `decontaminate` step share it."""

    words: int = Field(13, ge=1)  # n for space-delimited languages
    chars: int = Field(25, ge=1)  # n for `char_languages`, in characters
    min_words: int = Field(8, ge=1)  # shorter items use their whole length, down to this
    min_chars: int = Field(12, ge=1)
    char_languages: list[str] = ["ja", "zh"]
    template_items: int = Field(5, ge=2)  # a seed in this many items of one task is template text


@dataclass(frozen=True)
class BenchmarkText:
    """What is matched for one item: its input (context + question) followed by its answer;
    `context` is the input's leading passage (a reading text, a table), audited apart."""

    id: str
    task: str
    lang: str
    input: str
    label: str
    context: str = ""


@dataclass
class _Item:
    text: BenchmarkText
    hashes: np.ndarray  # input units, then label units
    n_input: int
    n_context: int  # the input's first units are its context's
    n: int  # the run length that counts as contamination for this item
    chars: bool  # matched by characters (Japanese/Chinese)


@dataclass
class _SeedTable:
    """Seeds of one length; the occurrences of key j are `items/positions[offsets[j]:offsets[j+1]]`."""

    table: HashTable
    offsets: np.ndarray
    items: np.ndarray
    positions: np.ndarray


@dataclass(frozen=True)
class Run:
    """A maximal common run: item units [item_start, item_end) equal characters [start, end) of
    text `text` (of those a `UnitText` holds)."""

    item: int
    item_start: int
    item_end: int
    text: int
    start: int
    end: int


def _template_keys(keys: np.ndarray, tasks: np.ndarray, items: np.ndarray, min_items: int) -> np.ndarray:
    """Seeds found in `min_items` or more distinct items of one task: its fixed instruction text."""
    order = np.lexsort((items, tasks, keys))
    keys, tasks, items = keys[order], tasks[order], items[order]
    new_task = np.ones(len(keys), dtype=bool)
    new_task[1:] = (keys[1:] != keys[:-1]) | (tasks[1:] != tasks[:-1])
    new_item = new_task.copy()
    new_item[1:] |= items[1:] != items[:-1]
    starts = np.flatnonzero(new_task)
    return keys[starts[np.add.reduceat(new_item, starts) >= min_items]]


class ContaminationIndex:
    """Benchmark items in memory; `find(doc)` returns every counting run in a `UnitText` document.

    Seed tables are built lazily, so the index pickles small into datatrove workers.
    """

    def __init__(self, texts: list[BenchmarkText], settings: NgramSettings | None = None):
        self.settings = s = settings or NgramSettings()
        self.items: list[_Item] = []
        self.too_short: list[int] = []  # items with fewer units than the minimum n: not auditable
        units = unit_hashes([t.input for t in texts] + [t.label for t in texts] + [t.context for t in texts])
        inputs, labels, contexts = (
            units[: len(texts)],
            units[len(texts) : 2 * len(texts)],
            units[2 * len(texts) :],
        )
        for i, (t, u_in, u_label, u_context) in enumerate(zip(texts, inputs, labels, contexts)):
            chars = t.lang in s.char_languages
            n = min(s.chars if chars else s.words, len(u_in) + len(u_label))
            if n < (s.min_chars if chars else s.min_words):
                self.too_short.append(i)
            self.items.append(_Item(t, np.concatenate([u_in, u_label]), len(u_in), len(u_context), n, chars))
        self._tables: dict[tuple[int, bool], _SeedTable] | None = None

    def __getstate__(self):
        return self.__dict__ | {"_tables": None}

    def __deepcopy__(self, memo) -> ContaminationIndex:
        return self  # read-only once built: datatrove's per-rank pipeline copies can share it

    def _build(self) -> dict[tuple[int, bool], _SeedTable]:
        s, short = self.settings, set(self.too_short)
        groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
        for i, item in enumerate(self.items):
            if i not in short:
                groups[(s.min_chars if item.chars else s.min_words, item.chars)].append(i)
        task_ids = {task: j for j, task in enumerate(sorted({item.text.task for item in self.items}))}
        task_of = np.array([task_ids[item.text.task] for item in self.items], dtype=np.uint64)
        tables = {}
        for (k, chars), members in groups.items():
            keys, owner, positions = item_windows([self.items[i].hashes for i in members], k)
            items = np.array(members)[owner]
            keep = ~np.isin(keys, _template_keys(keys, task_of[items], items, s.template_items))
            keys, items, positions = keys[keep], items[keep], positions[keep]
            order = np.argsort(keys, kind="stable")
            table = HashTable(keys)
            offsets = np.append(np.searchsorted(keys[order], table.keys), len(keys))
            tables[(k, chars)] = _SeedTable(table, offsets, items[order], positions[order])
        return tables

    def find(self, doc: UnitText) -> list[Run]:
        """Every maximal run of at least its item's n units shared by one of `doc`'s texts and an item."""
        if self._tables is None:
            self._tables = self._build()
        runs: dict[tuple[int, int], list[tuple[int, int, int, int]]] = defaultdict(list)  # (item, p - q)
        for (k, chars), seeds in self._tables.items():
            if not len(seeds.table) or (chars and not doc.has_unit_chars):
                continue
            hits, keys = seeds.table.lookup(window_hashes(doc.hashes, k))
            text = np.searchsorted(doc.bounds, hits, side="right")
            lo, hi = doc.bounds[text - 1], doc.bounds[text]
            within = hits + k <= hi  # a seed across two texts is no seed
            for p, key, start, end in zip(*(x[within].tolist() for x in (hits, keys, lo, hi))):
                a, b = seeds.offsets[key], seeds.offsets[key + 1]
                for i, q in zip(seeds.items[a:b].tolist(), seeds.positions[a:b].tolist()):
                    diagonal = runs[(i, p - q)]
                    if diagonal and p < diagonal[-1][3]:  # inside a run already grown
                        continue
                    run = self._extend(i, q, p, k, doc.hashes, start, end)
                    if run:
                        diagonal.append(run)
        return [
            Run(i, q0, q1, *doc.locate(p0, p1))
            for i, q0, q1, p0, p1 in sorted((i, *run) for (i, _), found in runs.items() for run in found)
            if q1 - q0 >= self.items[i].n
        ]

    def _extend(
        self, i: int, q: int, p: int, k: int, doc: np.ndarray, lo: int, hi: int
    ) -> tuple[int, int, int, int] | None:
        """Grow the seed at item position q / document position p into the maximal equal run within
        document units [lo, hi)."""
        seq = self.items[i].hashes
        if not np.array_equal(seq[q : q + k], doc[p : p + k]):  # a window-hash collision
            return None
        back = min(q, p - lo)
        same = seq[q - back : q][::-1] == doc[p - back : p][::-1]
        back = back if same.all() else int(same.argmin())
        ahead = min(len(seq) - q - k, hi - p - k)
        same = seq[q + k : q + k + ahead] == doc[p + k : p + k + ahead]
        ahead = ahead if same.all() else int(same.argmin())
        return q - back, q + k + ahead, p - back, p + k + ahead


def load_benchmark_texts(paths: list[Path]) -> list[BenchmarkText]:
    """The items of the recipe's task files, as matched text (context + question, then the answer:
    the correct choice, or a generative item's `answer_text`)."""
    texts = []
    for path in paths:
        for item in load_items(path):
            prompt = "\n".join(filter(None, [item.context, item.question]))
            texts.append(
                BenchmarkText(item.id, item.task, item.lang, prompt, gold_text(item), item.context or "")
            )
    return texts
