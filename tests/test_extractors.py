"""PDF and HTML extraction on real sample documents, and the reasons bad inputs are rejected."""

import re
from collections import Counter

import pytest
from conftest import SAMPLES

from curation.extractors import HtmlExtractor, PdfExtractor, Rejected
from curation.extractors.pdf import remove_running_lines


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


@pytest.mark.parametrize(
    "name, reason",
    [("truncated.pdf", "corrupt"), ("encrypted.pdf", "encrypted"), ("image-only.pdf", "image_only")],
)
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
    from datatrove.data import Document, Media

    docs = []
    for name in ("truncated.pdf", "encrypted.pdf", "image-only.pdf"):
        payload = (SAMPLES / "bad" / name).read_bytes()
        docs.append(
            Document(
                "",
                name,
                media=[Media(id=name, type=3, url=name, media_bytes=payload)],
                metadata={"format": "pdf"},
            )
        )
    good = economics_pdf("zoo")
    docs.append(
        Document(
            "",
            "good",
            media=[Media(id="g", type=3, url="g", media_bytes=good.read_bytes())],
            metadata={"format": "pdf"},
        )
    )
    docs.append(Document("plain text passes through", "txt", metadata={"format": "text"}))
    step = PdfExtractor(timeout=60)
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == ["good", "txt"]
    stats = step.stats.to_dict()["stats"]
    total = stats["total"] if isinstance(stats["total"], int) else stats["total"]["total"]
    assert total == 5
    assert stats["dropped_corrupt"] == stats["dropped_encrypted"] == stats["dropped_image_only"] == 1
