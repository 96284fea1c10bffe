"""PDF to text with pymupdf: reading order, de-hyphenation, running headers/footers removed, tables as rows.

Metadata `pages` holds the offset in the text where each page (that produced text) starts, and
`tables` the [start, end) spans of tables, written one row per line with cells joined by " | ".
"""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import groupby

import pymupdf  # at import time, so the sandbox process forked per task inherits it

from curation.extractors.base import Extractor, Rejected

_DIGITS = re.compile(r"\d+")
# a word hyphenated across blocks or pages (the dehyphenate flag only joins lines within a block)
_SPLIT_WORD_END = re.compile(r"\w-\Z")
_PAGE_NUMBER = re.compile(r"^(page\s*)?[\divxlc]+(\s*(/|of)\s*\d+)?$", re.IGNORECASE)
# a table value: amount, percentage, year, negative in parentheses, or a dash for zero
_NUMBER = re.compile(r"[(\[]?[-+−]?[$€£¥]?\(?\d[\d,.]*\)?%?\)?|[—–-]+")
_EQUATION_NUMBER = re.compile(r"\(\d{1,3}[a-z]?\)")
_CURRENCY = {"$", "€", "£", "¥"}
_CLOSERS = {"%", ")", ")%"}
_FIRST_WORD = re.compile(r"(\S+)\s*")
MIN_NUMERIC_LINES = 4  # lines of figures on a page before its rows are built
MIN_VALUE_ROWS = 2  # rows with figures in a table: one is a footer ("Apple Inc. | 2015 Form 10-K | 41")
ROW_GAP = 2.0  # most blank space between two rows of one table, in line heights

Word = tuple  # pymupdf word: x0, y0, x1, y1, text, block_no, line_no, word_no


def _signature(block: str) -> str:
    """Headers/footers repeat with a changing page number: compare them with digits masked."""
    return _DIGITS.sub("#", " ".join(block.split())).lower()


def _block_text(block: tuple) -> str:
    # lines inside a block belong to one paragraph; the dehyphenate flag already joined split words
    return " ".join(line.strip() for line in block[4].splitlines() if line.strip())


class _Table(str):
    """A page block that is a table: it keeps its mark through running-line removal."""


@dataclass
class _Row:
    """A visual line of a page: its words, its cells and where each cell starts."""

    words: list[Word]
    cells: list[str]
    starts: list[float]
    y0: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def is_value_row(self) -> bool:
        """A label (or year) followed by figures; "x = | y | (3)" is a numbered formula, not a table."""
        figures = [c for c in self.cells[1:] if _NUMBER.fullmatch(c)]
        if not figures:
            return False
        return figures != [self.cells[-1]] or not _EQUATION_NUMBER.fullmatch(figures[0])

    @property
    def value_x(self) -> float:
        """Where the value columns start: the left edge of the first figure after the label."""
        return next(x for x, c in zip(self.starts[1:], self.cells[1:]) if _NUMBER.fullmatch(c))


def _numeric_line(line: str) -> bool:
    return bool(_DIGITS.search(line)) and all(
        _NUMBER.fullmatch(t) or t in _CURRENCY or t in _CLOSERS for t in line.split()
    )


def has_table_evidence(blocks: list[tuple]) -> bool:
    """Cheap test on a page's text blocks before building rows: tables print columns of figures,
    and pymupdf gives them as lines made only of numbers."""
    lines = (line for block in blocks for line in block[4].splitlines())
    return sum(_numeric_line(line) for line in lines) >= MIN_NUMERIC_LINES


def _visual_rows(words: list[Word]) -> list[list[Word]]:
    """Words grouped by vertical position: a table row's cells are separate lines for pymupdf."""
    rows: list[list[Word]] = []
    center = height = 0.0
    for w in sorted(words, key=lambda w: (w[1] + w[3]) / 2):
        mid, h = (w[1] + w[3]) / 2, w[3] - w[1]
        if rows and abs(mid - center) <= 0.5 * max(h, height):
            rows[-1].append(w)
        else:
            rows.append([w])
            center, height = mid, h
    return [sorted(row, key=lambda w: w[0]) for row in rows]


def _cells(row: list[Word]) -> list[list[Word]]:
    """A gap wider than the line height separates cells; a lone currency sign opens its column."""
    cells = [[row[0]]]
    for prev, word in zip(row, row[1:]):
        if word[0] - prev[2] > min(prev[3] - prev[1], word[3] - word[1]) or word[4] in _CURRENCY:
            cells.append([])
        cells[-1].append(word)
    return cells


def _row(words: list[Word]) -> _Row:
    """Cells of a visual line; "$" and "%" columns go with their figure, "(1,968 )" is "(1,968)"
    (but "43.78 2063.35", figures one space apart in monospace output, stay apart)."""
    cells: list[str] = []
    starts: list[float] = []
    for cell in _cells(words):
        text = " ".join(w[4] for w in cell)
        one_figure = len(cell) > 1 and sum(bool(_DIGITS.search(w[4])) for w in cell) == 1
        if one_figure and _NUMBER.fullmatch(compact := text.replace(" ", "")):
            text = compact
        if cells and (cells[-1] in _CURRENCY or text in _CLOSERS):
            cells[-1] += text
        else:
            cells.append(text)
            starts.append(cell[0][0])
    return _Row(words, cells, starts, min(w[1] for w in words), max(w[3] for w in words))


def _fits(row: _Row, value_x: float) -> bool:
    """A row without figures belongs to the table when it keeps to the label column
    ("Current assets:") or to the value columns (a header), unlike prose running across both."""
    left, right = row.words[0][0], row.words[-1][2]
    return len(row.cells) > 1 or right <= value_x + row.height or left >= value_x - row.height


def _close(upper: _Row, lower: _Row) -> bool:
    return lower.y0 - upper.y1 <= ROW_GAP * max(upper.height, lower.height)


def _table_end(rows: list[_Row], first: int) -> tuple[int, int, float]:
    """Last row, number of value rows and value column start of the table whose figures start at `first`."""
    value_x, last, value_rows = rows[first].value_x, first, 1
    for j in range(first + 1, len(rows)):
        row = rows[j]
        if not _close(rows[j - 1], row):
            break
        if row.is_value_row:
            value_x, last, value_rows = min(value_x, row.value_x), j, value_rows + 1
        elif not _fits(row, value_x):
            break
    return last, value_rows, value_x


def table_row_spans(rows: list[_Row]) -> list[tuple[int, int]]:
    """[first, last] row indices of each table: rows with figures, the label and header rows
    between and above them; footnotes after the last figures stay prose."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(rows):
        if not rows[i].is_value_row:
            i += 1
            continue
        last, value_rows, value_x = _table_end(rows, i)
        first, floor = i, spans[-1][1] + 1 if spans else 0
        while first > floor and _close(rows[first - 1], rows[first]) and _header(rows[first - 1], value_x):
            first -= 1
        if value_rows >= MIN_VALUE_ROWS:
            spans.append((first, last))
        i = last + 1
    return spans


def _header(row: _Row, value_x: float) -> bool:
    """Column headers above the figures: several cells, or one over the value columns."""
    return len(row.cells) > 1 or row.words[0][0] >= value_x - row.height


def page_tables(words: list[Word]) -> list[list[_Row]]:
    """The tables of a page, as lists of rows in reading order."""
    rows = [_row(ws) for ws in _visual_rows(words)]
    return [rows[first : last + 1] for first, last in table_row_spans(rows)]


def _word_key(w: Word) -> tuple[int, int, int]:
    return w[5], w[6], w[7]


def _page_blocks_with_tables(blocks: list[tuple], words: list[Word], tables: list[list[_Row]]) -> list[str]:
    """Block texts with each table in place of the words it covers, where its first word was.

    pymupdf blocks cut across tables (a paragraph and the rows under it, a column of figures), so
    a block partly in a table keeps only its other words, before or after the table as they come.
    """
    owner = {_word_key(w): i for i, rows in enumerate(tables) for row in rows for w in row.words}
    by_block = defaultdict(list)
    for w in words:
        by_block[w[5]].append(w)
    texts: list[str] = []
    emitted: set[int] = set()
    for block in blocks:
        block_words = by_block[block[5]]
        if not any(_word_key(w) in owner for w in block_words):
            texts.append(_block_text(block))
            continue
        for table, run in groupby(block_words, key=lambda w: owner.get(_word_key(w))):
            if table is None:
                texts.append(" ".join(w[4] for w in run))
            elif table not in emitted:
                emitted.add(table)
                texts.append(_Table("\n".join(" | ".join(row.cells) for row in tables[table])))
    return [t for t in texts if t]


def _page_blocks(page, flags: int, tables: bool) -> list[str]:
    textpage = page.get_textpage(flags=flags)
    blocks = [b for b in page.get_text("blocks", textpage=textpage) if b[6] == 0]  # no image blocks
    if tables and has_table_evidence(blocks):
        words = page.get_text("words", textpage=textpage)
        if found := page_tables(words):
            return _page_blocks_with_tables(blocks, words, found)
    return [text for text in map(_block_text, blocks) if text]


def remove_running_lines(pages: list[list[str]], edge: int = 2, min_pages: int = 3) -> list[list[str]]:
    """Drop page numbers, and short blocks at a page's top or bottom repeated on `min_pages`+ pages.

    Chapter-level running headers ("Getting Started" on every page of one chapter) count too.
    """
    counts = Counter(
        sig
        for blocks in pages
        for sig in {_signature(b) for b in blocks[:edge] + blocks[-edge:] if len(b) < 100}
    )
    running = {sig for sig, n in counts.items() if n >= min_pages}
    cleaned = []
    for blocks in pages:
        n = len(blocks)
        cleaned.append(
            [
                b
                for i, b in enumerate(blocks)
                if not (
                    (i < edge or i >= n - edge)
                    and (_signature(b) in running or _PAGE_NUMBER.match(b.strip()))
                )
            ]
        )
    return cleaned


def _splits_word(prev: str, block: str) -> bool:
    """A prose block ending in "eco-" followed by one starting "nomics" (tables are left alone)."""
    prose = not isinstance(prev, _Table) and not isinstance(block, _Table)
    return prose and bool(_SPLIT_WORD_END.search(prev)) and block[:1].islower() and block[:1].isascii()


def rejoin_split_words(pages: list[list[str]]) -> list[tuple[int, str]]:
    """(page index, block) in order, with words hyphenated across blocks made whole.

    A word split across pages goes whole to the first page, so the next one starts after it.
    """
    merged: list[tuple[int, str]] = []
    for page, blocks in enumerate(pages):
        for block in blocks:
            if merged and _splits_word(merged[-1][1], block):
                prev_page, prev = merged[-1]
                if prev_page == page:
                    merged[-1] = (page, prev[:-1] + block)
                    continue
                head = _FIRST_WORD.match(block)
                merged[-1] = (prev_page, prev[:-1] + head.group(1))
                block = block[head.end() :]
                if not block:
                    continue
            merged.append((page, block))
    return merged


def join_pages(pages: list[list[str]]) -> tuple[str, list[int], list[list[int]]]:
    """Blocks joined by blank lines; the offsets where pages start and the spans of tables."""
    parts, starts, tables = [], [], []
    offset, last_page = 0, None
    for page, block in rejoin_split_words(pages):
        if parts:
            offset += 2
        if page != last_page:
            starts.append(offset)
            last_page = page
        if isinstance(block, _Table):
            tables.append([offset, offset + len(block)])
        parts.append(block)
        offset += len(block)
    return "\n\n".join(parts), starts, tables


# what mupdf raises on a malformed file; anything else is a failure of the library (or ours) and is
# rejected as `error_<type>` with its cause, so a regression cannot pass for damaged input
_DAMAGE = (pymupdf.FileDataError, pymupdf.mupdf.FzErrorFormat, pymupdf.mupdf.FzErrorSyntax)
_HEADER_WINDOW = 1024  # readers accept the `%PDF-` header anywhere in the first kilobyte


class PdfExtractor(Extractor):
    """Rejects PDFs that are not PDFs, damaged, encrypted, empty, image-only or over the limits,
    each with that reason and its cause.

    With `tables`, pages showing columns of figures get their tables rebuilt as rows (cheap: from
    word positions; pymupdf's find_tables is two orders of magnitude slower than the text).
    `max_pages` is checked before any page is read, `max_text_chars` page by page, so a document
    over either costs no more than the limit.
    """

    name = "📕 PDF extractor"
    file_format = "pdf"

    def __init__(
        self,
        timeout: float = 60,
        min_chars_per_page: int = 20,
        exclusion_writer=None,
        tables: bool = True,
        max_pages: int = 2000,
        max_text_chars: int = 10_000_000,
    ):
        super().__init__(timeout, exclusion_writer, max_text_chars)
        self.min_chars_per_page = min_chars_per_page
        self.tables = tables
        self.max_pages = max_pages

    def _pages(self, doc, flags: int) -> list[list[str]]:
        pages, chars = [], 0
        for page in doc:
            try:
                blocks = _page_blocks(page, flags, self.tables)
            except _DAMAGE as e:
                raise Rejected("damaged", e) from None
            pages.append(blocks)
            chars += sum(map(len, blocks))
            if chars > self.max_text_chars:
                raise Rejected(
                    "text_too_long",
                    f"over {self.max_text_chars:,} characters by page {page.number + 1} of {doc.page_count}",
                )
        return pages

    def extract(self, payload: bytes) -> tuple[str, dict]:
        if not payload:
            raise Rejected("empty_file")
        if b"%PDF-" not in payload[:_HEADER_WINDOW]:
            raise Rejected("not_a_pdf", f"no %PDF- header; starts with {payload[:16]!r}")
        try:
            doc = pymupdf.open(stream=payload, filetype="pdf")
        except _DAMAGE as e:
            raise Rejected("damaged", e) from None
        with doc:
            if doc.needs_pass or doc.is_encrypted:
                raise Rejected("encrypted")
            if doc.page_count == 0:
                raise Rejected("damaged" if doc.is_repaired else "empty", "no pages")
            if doc.page_count > self.max_pages:
                raise Rejected("too_many_pages", f"{doc.page_count:,} pages, limit {self.max_pages:,}")
            flags = pymupdf.TEXTFLAGS_BLOCKS | pymupdf.TEXT_DEHYPHENATE
            text, starts, tables = join_pages(remove_running_lines(self._pages(doc, flags)))
            if len(text) < self.min_chars_per_page * doc.page_count:
                if doc.is_repaired:  # pymupdf rebuilt a broken file (e.g. truncated)
                    raise Rejected(
                        "damaged", f"repaired by mupdf; {len(text)} characters from {doc.page_count} pages"
                    )
                # listing images costs as much as extracting text: only for documents without text
                raise Rejected("image_only" if any(page.get_images() for page in doc) else "no_text")
            metadata = {"title": (doc.metadata or {}).get("title") or "", "page_count": doc.page_count}
            return text, metadata | {"pages": starts, "tables": tables}
