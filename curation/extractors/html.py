"""HTML to text with trafilatura (precision-oriented main content) or resiliparse (fast)."""

import re
from html import unescape

# imported here, not per call: the sandbox process forked per task inherits them ready to use
import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from trafilatura.deduplication import LRU_TEST
from trafilatura.utils import decode_file

from curation.extractors.base import Extractor, Rejected

# bytes that occur in text (tab, newlines, form feed, everything from space up); the rest are controls
_TEXT_BYTES = bytes([9, 10, 11, 12, 13, *range(32, 256)])
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def decode_html(payload: bytes) -> str:
    """Decode with the page's declared charset when it works, else trafilatura's detection."""
    if not payload.strip():
        raise Rejected("empty_file")
    head = payload[:4096]
    if b"\x00" in head or len(head.translate(None, _TEXT_BYTES)) > len(head) // 20:
        raise Rejected("binary")
    if match := _META_CHARSET.search(head):
        try:
            return payload.decode(match.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_file(payload)


class HtmlExtractor(Extractor):
    """Main-content extraction; keeps the page title (and the URL the reader recorded)."""

    name = "🌐 HTML extractor"
    file_format = "html"

    def __init__(self, backend: str = "trafilatura", timeout: float = 30, exclusion_writer=None):
        super().__init__(timeout, exclusion_writer)
        self.backend = backend

    def extract(self, payload: bytes) -> tuple[str, dict]:
        html = decode_html(payload)
        if self.backend == "resiliparse":
            tree = HTMLTree.parse(html)
            text = extract_plain_text(tree, main_content=True)
            title = tree.title
        else:
            # datatrove's settings; trafilatura's metadata extraction would double the time for a title.
            # `deduplicate` counts text in a process-wide cache: cleared per page, it drops what
            # repeats within the page, and the output no longer depends on the pages the worker
            # saw before (the third extraction of one page used to come back empty)
            LRU_TEST.clear()
            text = (
                trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)
                or ""
            )
            match = _TITLE.search(html)
            title = unescape(" ".join(match.group(1).split())) if match else ""
        if not text.strip():
            raise Rejected("no_text")
        return text.strip(), {"title": title or ""}
