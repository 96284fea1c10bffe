"""PDF and HTML extraction on real sample documents, and the reasons bad inputs are rejected."""

import bisect
import re
from collections import Counter

import pytest
from conftest import SAMPLES
from datatrove.data import Document, Media

from curation.extractors import HtmlExtractor, PdfExtractor, Rejected
from curation.extractors.pdf import join_pages, remove_running_lines


@pytest.fixture(scope="module")
def pdf():
    return PdfExtractor()


def economics_pdf(name_part: str):
    return next(p for p in sorted((SAMPLES / "finance" / "economics").glob("*.pdf")) if name_part in p.name)


def test_pdf_text_title_and_pages(pdf):
    path = SAMPLES / "finance" / "economics" / "zoo.pdf"
    text, meta = pdf.extract(path.read_bytes())
    assert meta["page_count"] > 3
    assert "zoo" in text.lower() and len(text) > 5000
    assert meta["title"]


def test_pdf_removes_running_headers_and_page_numbers(pdf):
    import pymupdf

    doc_path = sorted((SAMPLES / "finance" / "gnucash" / "pdf").glob("*.pdf"))[0]
    with pymupdf.open(doc_path) as doc:
        tops = Counter(page.get_text("blocks")[0][4].strip() for page in doc if page.get_text("blocks"))
        bottoms = [page.get_text("blocks")[-1][4].strip() for page in doc if page.get_text("blocks")]
    header, times = next((h, n) for h, n in tops.most_common() if not h.isdigit())
    assert times >= 5, "expected a running header in the GnuCash PDF"
    assert sum(b.isdigit() for b in bottoms) > 100, "expected page numbers at the page bottoms"
    text, _ = pdf.extract(doc_path.read_bytes())
    paragraphs = text.split("\n\n")
    assert paragraphs.count(header) <= 2, (header, paragraphs.count(header), times)
    assert sum(p.strip().isdigit() for p in paragraphs) < 10


def test_remove_running_lines_unit():
    pages = [
        [f"Chapter 2. Basics {i}", f"Body paragraph number {i}: {'x' * i}.", str(i)] for i in range(1, 7)
    ]
    cleaned = remove_running_lines(
        [[b.replace(f"Basics {i}", "Basics") for b in p] for i, p in enumerate(pages, 1)]
    )
    assert [blocks for blocks in cleaned] == [[f"Body paragraph number {i}: {'x' * i}."] for i in range(1, 7)]


def test_pdf_dehyphenation(pdf):
    text, _ = pdf.extract(economics_pdf("sandwich").read_bytes())
    # words split by a hyphen at a line or block end come back whole
    assert not re.search(r"[a-z]-\n+[a-z]", text)
    assert "Econometrica" in text


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]{4,}", text))


def _source_pages(path, text: str, starts: list[int]) -> list[int]:
    """The PDF page each page segment of the text came from: the next page holding 90% of its words.
    Pages passed over must have no text but running lines (words found on 3+ pages)."""
    import pymupdf

    with pymupdf.open(path) as doc:
        page_words = [_words(page.get_text(flags=pymupdf.TEXTFLAGS_BLOCKS)) for page in doc]
    running = {w for w, n in Counter(w for words in page_words for w in words).items() if n >= 3}
    bounds = [*starts, len(text)]
    found, k = [], 0
    for a, b in zip(bounds, bounds[1:]):
        words = _words(text[a:b])
        while len(words & page_words[k]) < 0.9 * len(words):
            assert len(page_words[k] - running) <= 3, f"page {k} has text but no segment"
            k += 1
        found.append(k)
        k += 1
    assert all(len(words - running) <= 3 for words in page_words[k:])
    return found


ECONOMICS_PDFS = sorted((SAMPLES / "finance" / "economics").glob("*.pdf"))


@pytest.mark.parametrize("path", ECONOMICS_PDFS, ids=lambda p: p.name)
def test_pdf_page_offsets_start_each_page(path):
    import pymupdf

    sources, plain = {}, None
    for tables in (False, True):
        text, meta = PdfExtractor(tables=tables).extract(path.read_bytes())
        starts = meta["pages"]
        assert starts[0] == 0 and starts == sorted(set(starts)) and len(starts) <= meta["page_count"]
        assert all(text[s - 2 : s] == "\n\n" and not text[s].isspace() for s in starts[1:])
        for s, e in meta["tables"]:  # whole blocks, one paragraph each
            assert text[s - 2 : s] in ("", "\n\n") and text[e : e + 2] in ("", "\n\n")
            assert "\n\n" not in text[s:e] and " | " in text[s:e]
        sources[tables] = _source_pages(path, text, starts)
        plain = plain or (text, starts)
    assert sources[True] == sources[False], "tables move no text across pages"
    # exact: without tables, each segment opens where a block of its page does (or after the first
    # word of one, when that word was hyphenated across the page break and went to the previous page)
    text, starts = plain
    flags = pymupdf.TEXTFLAGS_BLOCKS | pymupdf.TEXT_DEHYPHENATE
    with pymupdf.open(path) as doc:
        for s, k in zip(starts, sources[False]):
            head = " ".join(text[s:].split("\n\n", 1)[0].split())[:12]
            blocks = [" ".join(b[4].split()) for b in doc[k].get_text("blocks", flags=flags)]
            at = [(block.find(head), block) for block in blocks]
            assert any(i == 0 or (i > 0 and " " not in b[:i].strip()) for i, b in at), (k, head)


def test_join_pages_offsets_after_dehyphenation():
    pages = [["Growth in eco-"], ["nomics returns.", "Rates rose in-"], ["flation."], ["Last page"]]
    text, starts, tables = join_pages(pages)
    assert text == "Growth in economics\n\nreturns.\n\nRates rose inflation.\n\nLast page"
    assert [text[s:].split("\n\n")[0] for s in starts] == ["Growth in economics", "returns.", "Last page"]
    assert tables == []


def test_sec_balance_sheet_rows_in_reading_order(kit):
    """Apple's 2015 balance sheet: label and both years' figures on one line, rows in order."""
    path = kit / "corpus" / "sec-filings" / "APPLE_2015_10K.pdf"
    if not path.is_file():
        pytest.skip(f"{path.name} not in the kit")
    text, meta = PdfExtractor().extract(path.read_bytes())
    rows = [
        "Cash and cash equivalents | $21,120 | $13,844",
        "Inventories | 2,349 | 2,111",
        "Total current assets | 89,378 | 68,531",
        "Total assets | $290,479 | $231,839",
        "Total liabilities and shareholders’ equity | $290,479 | $231,839",
    ]
    first = text.index(f"\n{rows[0]}\n") + 1
    start, end = next((s, e) for s, e in meta["tables"] if s <= first < e)
    table = text[start:end]
    assert text[start - 2 : start] == text[end : end + 2] == "\n\n", "spans hold whole blocks"
    assert "\n\n" not in table, "a table is one paragraph, one row per line"
    lines = table.split("\n")
    at = [lines.index(row) for row in rows]  # each row whole on its line, inside the span
    assert at == sorted(at)
    assert len(meta["pages"]) == meta["page_count"] == 84
    assert bisect.bisect(meta["pages"], first) - 1 == 42  # its page (0-based)
    plain, _ = PdfExtractor(tables=False).extract(path.read_bytes())
    assert rows[0] not in plain  # without tables, the cells are scattered over blocks


BAD_PDFS = {"truncated.pdf": "damaged", "encrypted.pdf": "encrypted", "image-only.pdf": "image_only"}


@pytest.mark.parametrize("name, reason", BAD_PDFS.items())
def test_bad_pdfs_rejected_with_reason(pdf, name, reason):
    with pytest.raises(Rejected) as err:
        pdf.extract((SAMPLES / "bad" / name).read_bytes())
    assert err.value.reason == reason


def test_empty_pdf_payload(pdf):
    with pytest.raises(Rejected, match="empty_file"):
        pdf.extract(b"")


@pytest.mark.parametrize("backend", ["trafilatura", "resiliparse"])
def test_html_extraction_keeps_title(backend):
    page = sorted((SAMPLES / "finance" / "gnucash" / "en").glob("*.html"))[3]
    text, meta = HtmlExtractor(backend).extract(page.read_bytes())
    assert len(text) > 200 and meta["title"]
    assert "<div" not in text and "<p>" not in text


def test_html_text_does_not_depend_on_pages_seen_before():
    """trafilatura's deduplication remembers text across calls; a page must extract the same each time."""
    page = sorted((SAMPLES / "finance" / "gnucash" / "ja").glob("*.html"))[0].read_bytes()
    texts = {HtmlExtractor().extract(page)[0] for _ in range(4)}
    assert len(texts) == 1 and texts.pop().strip()


def test_html_shift_jis_is_decoded():
    text, _ = HtmlExtractor().extract((SAMPLES / "bad" / "shift_jis.html").read_bytes())
    assert "ホットプラグ" in text
    assert "\ufffd" not in text


@pytest.mark.parametrize("name, reason", [("binary.html", "binary"), ("empty.html", "empty_file")])
def test_bad_html_rejected_with_reason(name, reason):
    with pytest.raises(Rejected) as err:
        HtmlExtractor().extract((SAMPLES / "bad" / name).read_bytes())
    assert err.value.reason == reason


def test_extractor_step_records_reasons_and_keeps_accounting():
    """The step (sandboxed) rejects with reasons and counts in = kept + dropped."""
    docs = [pdf_doc(name, (SAMPLES / "bad" / name).read_bytes()) for name in BAD_PDFS]
    docs.append(pdf_doc("good", economics_pdf("zoo").read_bytes()))
    docs.append(Document("plain text passes through", "txt", metadata={"format": "text"}))
    step = PdfExtractor(timeout=60)
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == ["good", "txt"]
    stats = step.stats.to_dict()["stats"]
    total = stats["total"] if isinstance(stats["total"], int) else stats["total"]["total"]
    assert total == 5
    assert stats["dropped_damaged"] == stats["dropped_encrypted"] == stats["dropped_image_only"] == 1


def pdf_doc(name: str, payload: bytes) -> Document:
    return Document(
        "", name, media=[Media(id=name, type=3, url=name, media_bytes=payload)], metadata={"format": "pdf"}
    )


def rejected_docs(folder) -> dict[str, dict]:
    import gzip
    import json

    docs = {}
    for path in sorted(folder.rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            docs |= {d["id"]: d["metadata"] for d in map(json.loads, f)}
    return docs


ZOO = SAMPLES / "finance" / "economics" / "zoo.pdf"


def test_not_a_pdf_and_page_and_text_limits_have_their_own_reasons():
    zoo = ZOO.read_bytes()  # 30 pages, 55,657 characters
    cases = [
        (PdfExtractor(), b"<html>not a pdf</html>", "not_a_pdf", "no %PDF- header"),
        (PdfExtractor(max_pages=29), zoo, "too_many_pages", "30 pages, limit 29"),
        (PdfExtractor(max_text_chars=20_000), zoo, "text_too_long", "over 20,000 characters by page"),
    ]
    for extractor, payload, reason, message in cases:
        with pytest.raises(Rejected) as err:
            extractor.extract(payload)
        assert err.value.reason == reason and message in err.value.cause["message"]
    assert PdfExtractor(max_pages=30, max_text_chars=60_000).extract(zoo)[1]["page_count"] == 30


def test_library_failure_is_an_error_with_its_cause_not_a_plausible_reason(monkeypatch, tmp_path):
    """A pymupdf regression (here: flags it cannot take) rejects as `error_<type>`, naming pymupdf."""
    import pymupdf

    from contracts.rejected import RejectedWriter

    monkeypatch.setattr(pymupdf, "TEXT_DEHYPHENATE", 1 << 70)
    step = PdfExtractor(exclusion_writer=RejectedWriter(str(tmp_path), "pdf"))
    assert list(step.run(iter([pdf_doc("zoo", ZOO.read_bytes())]))) == []
    meta = rejected_docs(tmp_path)["zoo"]
    assert meta["rejected_reason"] == "error_OverflowError"
    cause = meta["rejected_cause"]
    assert cause["type"] == "OverflowError" and cause["module"].startswith("pymupdf")
    assert "page_get_textpage" in cause["message"] and "OverflowError" in cause["traceback"].splitlines()[-1]


def test_time_limit_is_per_document_and_isolates_the_slow_one(tmp_path):
    """One document slower than the limit among fifteen quick ones: it alone is rejected, as
    `timeout`, although the whole batch would have fitted in sixteen times the limit."""
    from hostile_inputs import big_text_pdf

    slow = big_text_pdf(tmp_path, text_mb=20).read_bytes()  # about 10 s of extraction here
    quick = [p.read_bytes() for p in ECONOMICS_PDFS + ECONOMICS_PDFS][:15]  # about 0.1 s each
    docs = [pdf_doc("slow", slow)] + [pdf_doc(f"quick{i}", payload) for i, payload in enumerate(quick)]
    step = PdfExtractor(timeout=2, max_text_chars=10**9)
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == [f"quick{i}" for i in range(15)]
    assert docs[0].metadata["rejected_cause"]["message"].startswith("no result within 2 s")
    assert step.stats.to_dict()["stats"]["dropped_timeout"] == 1


class _Crashing(PdfExtractor):
    """Kills its own sandbox process on one payload, as the kernel's OOM killer would."""

    def extract(self, payload: bytes) -> tuple[str, dict]:
        if payload == b"%PDF-boom":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().extract(payload)


def test_a_crash_is_rejected_with_the_signal_and_the_next_document_goes_on():
    docs = [pdf_doc("boom", b"%PDF-boom"), pdf_doc("zoo", ZOO.read_bytes())]
    step = _Crashing()
    assert [d.id for d in step.run(iter(docs))] == ["zoo"]
    assert step.stats.to_dict()["stats"]["dropped_crashed"] == 1
    assert "killed by SIGKILL" in docs[0].metadata["rejected_cause"]["message"]


@pytest.mark.parametrize("declared", ["utf-7", "unicode_escape", "raw_unicode_escape", "x-no-such-codec"])
def test_html_declaring_an_unsafe_codec_is_decoded_as_detected(declared):
    from hostile_inputs import UTF7_MARKUP

    body = f"<p>{UTF7_MARKUP} ledger \\u0041 entries balance. " + "Debits equal credits. " * 20 + "</p>"
    page = f'<html><head><meta charset="{declared}"></head><body>{body}</body></html>'.encode()
    text, meta = HtmlExtractor().extract(page)
    assert UTF7_MARKUP in text and "\\u0041" in text and "<script>" not in text
    assert meta == {"title": "", "charset": "utf-8", "charset_declared": declared}
