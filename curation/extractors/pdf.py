"""PDF to text with pymupdf: reading order, de-hyphenation, running headers/footers removed."""

import re
from collections import Counter

import pymupdf  # at import time, so the sandbox process forked per task inherits it

from curation.extractors.base import Extractor, Rejected

_DIGITS = re.compile(r"\d+")
# a word hyphenated across blocks or pages (the dehyphenate flag only joins lines within a block)
_SPLIT_WORD = re.compile(r"(\w)-\n\n([a-z])")
_PAGE_NUMBER = re.compile(r"^(page\s*)?[\divxlc]+(\s*(/|of)\s*\d+)?$", re.IGNORECASE)


def _signature(block: str) -> str:
    """Headers/footers repeat with a changing page number: compare them with digits masked."""
    return _DIGITS.sub("#", " ".join(block.split())).lower()


def _page_blocks(page, flags: int) -> list[str]:
    blocks = page.get_text("blocks", flags=flags)
    texts = []
    for block in blocks:
        if block[6] != 0:  # image block
            continue
        # lines inside a block belong to one paragraph; the dehyphenate flag already joined split words
        text = " ".join(line.strip() for line in block[4].splitlines() if line.strip())
        if text:
            texts.append(text)
    return texts


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


class PdfExtractor(Extractor):
    """Rejects corrupt, encrypted, empty and image-only PDFs with that reason."""

    name = "📕 PDF extractor"
    file_format = "pdf"

    def __init__(self, timeout: float = 60, min_chars_per_page: int = 20, exclusion_writer=None):
        super().__init__(timeout, exclusion_writer)
        self.min_chars_per_page = min_chars_per_page

    def extract(self, payload: bytes) -> tuple[str, dict]:
        if not payload:
            raise Rejected("empty_file")
        try:
            doc = pymupdf.open(stream=payload, filetype="pdf")
        except Exception:
            raise Rejected("corrupt") from None
        with doc:
            if doc.needs_pass or doc.is_encrypted:
                raise Rejected("encrypted")
            if doc.page_count == 0:
                raise Rejected("corrupt" if doc.is_repaired else "empty")
            flags = pymupdf.TEXTFLAGS_BLOCKS | pymupdf.TEXT_DEHYPHENATE
            try:
                pages = [_page_blocks(page, flags) for page in doc]
            except Exception:
                raise Rejected("corrupt") from None
            text = "\n\n".join("\n\n".join(blocks) for blocks in remove_running_lines(pages) if blocks)
            text = _SPLIT_WORD.sub(r"\1\2", text.strip())
            if len(text) < self.min_chars_per_page * doc.page_count:
                if doc.is_repaired:  # pymupdf rebuilt a broken file (e.g. truncated)
                    raise Rejected("corrupt")
                # listing images costs as much as extracting text: only for documents without text
                raise Rejected("image_only" if any(page.get_images() for page in doc) else "no_text")
            return text, {"title": (doc.metadata or {}).get("title") or "", "page_count": doc.page_count}
