"""HTML to text with trafilatura (precision-oriented main content) or resiliparse (fast)."""

import codecs
import re
from html import unescape

# imported here, not per call: the sandbox process forked per task inherits them ready to use
import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from trafilatura.deduplication import LRU_TEST
from trafilatura.utils import detect_encoding

from curation.extractors.base import Extractor, Rejected

# bytes that occur in text (tab, newlines, form feed, everything from space up); the rest are controls
_TEXT_BYTES = bytes([9, 10, 11, 12, 13, *range(32, 256)])
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)
# the encodings browsers decode (WHATWG Encoding Standard), by Python's codec name, and the subsets
# and supersets their labels map to; a page declaring anything else (utf-7, unicode_escape, a
# *_codec) is decoded as detected instead: those codecs rewrite the text (utf-7 smuggles markup)
WEB_CODECS = frozenset(
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "ascii", "iso8859-1", "cp866"]
    + [f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)]
    + [f"cp{n}" for n in range(1250, 1259)]
    + ["koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "cp874", "tis-620"]
    + ["gbk", "gb2312", "gb18030", "big5", "big5hkscs", "cp950"]
    + ["euc_jp", "iso2022_jp", "shift_jis", "cp932", "euc_kr", "cp949"]
)


def web_codec(label: str | None) -> str | None:
    """Python's codec for a declared charset, or None when unknown or not a web text encoding."""
    try:
        name = codecs.lookup(label).name if label else None
    except LookupError:
        return None
    return name if name in WEB_CODECS else None


def decode_text(payload: bytes, declared: str | None = None) -> tuple[str, str]:
    """(text, codec): the declared charset when it is a web encoding that decodes, else the first
    detected web encoding that does (trafilatura's detection), else UTF-8 with replacements."""
    for label in ([declared] if declared else []) + detect_encoding(payload):
        if (codec := web_codec(label)) is not None:
            try:
                return payload.decode(codec), codec
            except UnicodeDecodeError:
                continue
    return payload.decode("utf-8", errors="replace"), "utf-8"


def decode_html(payload: bytes) -> tuple[str, dict]:
    """The page's text and `charset` (plus `charset_declared` when the page's own was not used)."""
    if not payload.strip():
        raise Rejected("empty_file")
    head = payload[:4096]
    if b"\x00" in head or len(head.translate(None, _TEXT_BYTES)) > len(head) // 20:
        raise Rejected("binary")
    match = _META_CHARSET.search(head)
    declared = match.group(1).decode("ascii") if match else None
    text, codec = decode_text(payload, declared)
    if declared and web_codec(declared) != codec:
        return text, {"charset": codec, "charset_declared": declared}
    return text, {"charset": codec}


class HtmlExtractor(Extractor):
    """Main-content extraction; keeps the page title (and the URL the reader recorded)."""

    name = "🌐 HTML extractor"
    file_format = "html"

    def __init__(
        self,
        backend: str = "trafilatura",
        timeout: float = 30,
        exclusion_writer=None,
        max_text_chars: int = 10_000_000,
    ):
        super().__init__(timeout, exclusion_writer, max_text_chars)
        self.backend = backend

    def extract(self, payload: bytes) -> tuple[str, dict]:
        html, charset = decode_html(payload)
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
        return text.strip(), {"title": title or ""} | charset
