"""HTML to text with trafilatura (precision-oriented main content) or resiliparse (fast)."""

import re

from curation.extractors.base import Extractor, Rejected

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def decode_html(payload: bytes) -> str:
    """Decode with the page's declared charset when it works, else trafilatura's detection."""
    from trafilatura.utils import decode_file

    if not payload.strip():
        raise Rejected("empty_file")
    head = payload[:4096]
    if b"\x00" in head or sum(b < 9 or 13 < b < 32 for b in head) > len(head) // 20:
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
            from resiliparse.extract.html2text import extract_plain_text
            from resiliparse.parse.html import HTMLTree

            tree = HTMLTree.parse(html)
            text = extract_plain_text(tree, main_content=True)
            title = tree.title
        else:
            import trafilatura

            result = trafilatura.bare_extraction(
                html, favor_precision=True, include_comments=False, deduplicate=True, with_metadata=True
            )
            text = (result or {}).get("text") or ""
            title = (result or {}).get("title")
        if not text.strip():
            raise Rejected("no_text")
        return text.strip(), {"title": title or ""}
