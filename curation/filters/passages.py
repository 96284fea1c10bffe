"""Long documents judged passage by passage: cut the bad pages, keep the filing.

Web heuristics applied to a whole 300-page filing reject it for global repetition, length or a
check-box cover page; judged by pages (or runs of paragraphs), only the table of contents, the
signature page and boilerplate repeated across pages are cut.
"""

import hashlib
import re
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.filters.signals import HeuristicJudge

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"\n")
_DIGITS = re.compile(r"\d+")
# a contents line ends in a page number after a cell separator, dot leaders or a wide gap
_PAGE_NUMBER_END = re.compile(r"(?:\||\.{3,}|\s{2,})\s*\d{1,3}\s*$")
_WORD = re.compile(r"[^\W\d_]{3}")
_FIGURE = re.compile(r"^[\s\d,.$()%\u2014-]+$")
MIN_BOILERPLATE_CHARS = 20  # shorter repeated paragraphs ("Yes", "None") are not worth a rule
TABLE_SHARE = 0.5  # a passage that is mostly table is data: kept (unless repeated)
MIN_CONTENTS_LINES = 5


def _signature(text: str) -> str:
    """Repeats differ in page numbers and spacing: compare paragraphs with digits masked."""
    return _DIGITS.sub("#", " ".join(text.split())).lower()


def _runs(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    """[start, end) split at `pattern` matches into non-blank pieces (absolute offsets)."""
    pieces, at = [], start
    for m in pattern.finditer(text, start, end):
        if text[at : m.start()].strip():
            pieces.append((at, m.start()))
        at = m.end()
    if text[at:end].strip():
        pieces.append((at, end))
    return pieces


def paragraphs(
    text: str, start: int = 0, end: int | None = None, max_chars: int = 6000
) -> list[tuple[int, int]]:
    """Blank-line paragraphs; one longer than `max_chars` (a transcript without blank lines) by lines."""
    end = len(text) if end is None else end
    out = []
    for a, b in _runs(text, start, end, _PARAGRAPH_BREAK):
        out += _runs(text, a, b, _LINE_BREAK) if b - a > max_chars else [(a, b)]
    return out


def passage_spans(text: str, pages: list[int] | None, target_chars: int) -> list[tuple[int, int]]:
    """PDF pages when the extractor recorded them, else paragraphs packed up to `target_chars`."""
    if pages:
        bounds = [*pages, len(text)]
        return [(a, b) for a, b in zip(bounds, bounds[1:]) if text[a:b].strip()]
    spans: list[tuple[int, int]] = []
    for a, b in paragraphs(text, max_chars=2 * target_chars):
        if spans and spans[-1][1] - spans[-1][0] + (b - a) <= target_chars:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    return spans


def _is_contents_line(line: str) -> bool:
    """A title and a page number; a row of figures ("California | 118 | 18 | 28") is not one."""
    end = _PAGE_NUMBER_END.search(line)
    if end is None or not _WORD.search(line[: end.start()]):
        return False
    return not any(_FIGURE.match(cell) for cell in line[: end.start()].split("|"))


def _is_contents(text: str) -> bool:
    """A table of contents (titles with page numbers), as a table or as dot leaders."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    hits = sum(_is_contents_line(line) for line in lines)
    return hits >= MIN_CONTENTS_LINES and hits >= 0.5 * len(lines)


def _prose(text: str, pieces: list[tuple[int, int]], tables: list[tuple[int, int]]) -> str:
    """The text of `pieces` with table regions taken out: rows of numbers are data, not junk."""
    out = []
    for a, b in pieces:
        at = a
        for s, e in sorted(tables):
            if s < b and e > at:
                out.append(text[at:s] if s > at else "")
                at = max(at, e)
        out.append(text[at:b] if b > at else "")
    return "\n\n".join(part.strip() for part in out if part.strip())


@dataclass
class Passage:
    start: int
    end: int
    paragraphs: list[tuple[int, int]]
    tables: list[tuple[int, int]] = field(default_factory=list)
    reason: str | None = None  # why it was cut
    dropped: list[tuple[int, int]] = field(default_factory=list)  # boilerplate paragraphs inside it


class PassageFilter(BaseFilter):
    """Cuts bad passages out of `document`-kind texts longer than `min_chars`.

    A passage is cut for a heuristic failure of its prose (its text outside tables, judged with
    the document settings of its language), or as a repeat of an earlier passage; paragraphs found
    on `min_repeats` or more passages are boilerplate after their first occurrence. A document
    loses only what was cut, and is dropped (`all_passages_cut`) only when nothing is left.
    Metadata `passages` records the count, what was kept and the characters cut per reason; with
    `split`, every kept passage leaves as a document of its own with `parent_id`.
    """

    name = "📑 Passages"

    def __init__(
        self,
        judges: dict[str, HeuristicJudge],
        min_chars: int = 10_000,
        target_chars: int = 3_000,
        min_repeats: int = 3,
        split: bool = False,
        exclusion_writer: DiskWriter | None = None,
        cut_writer: DiskWriter | None = None,
    ):
        super().__init__(exclusion_writer)
        self.judges = judges
        self.min_chars = min_chars
        self.target_chars = target_chars
        self.min_repeats = min_repeats
        self.split = split
        self.cut_writer = cut_writer

    def _passages(self, doc: Document) -> list[Passage]:
        text = doc.text
        tables = [tuple(span) for span in doc.metadata.get("tables", [])]
        passages = []
        for a, b in passage_spans(text, doc.metadata.get("pages"), self.target_chars):
            inside = [(s, e) for s, e in tables if s < b and e > a]
            passages.append(Passage(a, b, paragraphs(text, a, b), inside))
        return passages

    def _judge(self, text: str, passages: list[Passage], judge: HeuristicJudge) -> None:
        """Sets each passage's `reason` and boilerplate `dropped` paragraphs."""
        seen_in = Counter()
        for p in passages:
            seen_in.update({_signature(text[a:b]) for a, b in p.paragraphs if b - a >= MIN_BOILERPLATE_CHARS})
        boilerplate = {sig for sig, n in seen_in.items() if n >= self.min_repeats}
        first_seen: set[str] = set()
        kept_passages: set[str] = set()
        for p in passages:
            whole = _signature(text[p.start : p.end])
            if whole in kept_passages:
                p.reason = "repeated_passage"
                continue
            for a, b in p.paragraphs:
                sig = _signature(text[a:b])
                if sig in boilerplate:
                    if sig in first_seen:
                        p.dropped.append((a, b))
                    first_seen.add(sig)
            prose = _prose(text, [(a, b) for a, b in p.paragraphs if (a, b) not in p.dropped], p.tables)
            in_tables = sum(min(e, p.end) - max(s, p.start) for s, e in p.tables)
            if _is_contents(text[p.start : p.end]):
                p.reason = "table_of_contents"
            elif prose and in_tables < TABLE_SHARE * (p.end - p.start):
                p.reason = judge.judge(prose).reason
            elif not prose and not p.tables:  # every paragraph of it is boilerplate seen before
                p.reason = "repeated_boilerplate"
            if p.reason is None:
                kept_passages.add(whole)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        judge = self.judges.get(doc.metadata.get("language"))
        if doc.metadata.get("kind") != "document" or len(doc.text) <= self.min_chars or judge is None:
            return True
        text = doc.text
        passages = self._passages(doc)
        self._judge(text, passages, judge)
        chars_cut: Counter = Counter()
        pieces, tables, offsets, at = [], [], [], 0
        for k, p in enumerate(passages):
            self.stat_update("passages")
            if p.reason is not None:
                self.stat_update(f"passages_cut_{p.reason}")
                chars_cut[p.reason] += p.end - p.start
                self._write_cut(doc, k, text[p.start : p.end], p.reason)
                continue
            kept = [(a, b) for a, b in p.paragraphs if (a, b) not in p.dropped]
            for a, b in p.dropped:
                chars_cut["repeated_boilerplate"] += b - a
                self.stat_update("paragraphs_cut_repeated_boilerplate")
                self._write_cut(doc, k, text[a:b], "repeated_boilerplate")
            offsets.append(at)
            for j, (a, b) in enumerate(kept):
                if j:
                    at += 2
                for s, e in p.tables:  # a table lies inside one paragraph
                    if a <= s and e <= b:
                        tables.append([at + s - a, at + e - a])
                pieces.append(("\n\n" if j else "") + text[a:b])
                at += b - a
            pieces.append("\n\n")
            at += 2
        for reason, n in chars_cut.items():
            self.stat_update(f"chars_cut_{reason}", value=n)
        if not offsets:
            return False, "all_passages_cut"
        doc.text = "".join(pieces)[:-2]
        doc.metadata.pop("pages", None)
        doc.metadata["tables"] = tables
        doc.metadata["passage_offsets"] = offsets
        doc.metadata["passages"] = {
            "total": len(passages),
            "kept": len(offsets),
            "chars_in": len(text),
            "chars_cut": dict(chars_cut),
        }
        return True

    def _write_cut(self, doc: Document, k: int, text: str, reason: str) -> None:
        if self.cut_writer is None:
            return
        meta = {key: doc.metadata[key] for key in ("input", "language", "kind") if key in doc.metadata}
        cut = Document(text, f"{doc.id}#{k}", metadata=meta | {"parent_id": doc.id, "filter_reason": reason})
        self.cut_writer.write(cut, self._rank)

    def run(self, data, rank: int = 0, world_size: int = 1):
        self._rank = rank
        with self.cut_writer or nullcontext():
            for doc in super().run(data, rank, world_size):
                if self.split and "passage_offsets" in doc.metadata:
                    yield from self._passage_documents(doc)
                else:
                    yield doc

    def _passage_documents(self, doc: Document):
        offsets = doc.metadata.pop("passage_offsets")
        bounds = [*offsets, len(doc.text) + 2]
        tables = doc.metadata.pop("tables", [])
        parent = hashlib.sha1(doc.text.encode()).hexdigest()[:16]  # the split keeps siblings together
        for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
            meta = doc.metadata | {
                "parent_id": doc.id,
                "parent_digest": parent,
                "passage": k,
                "tables": [[s - a, e - a] for s, e in tables if a <= s < b],
            }
            self.stat_update("passage_documents")
            yield Document(doc.text[a : b - 2], f"{doc.id}#{k}", metadata=meta)
