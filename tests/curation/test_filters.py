"""Language ID offline, and heuristic filters that keep real Japanese text."""

import pytest
from conftest import SAMPLES
from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter

from curation.extractors import HtmlExtractor
from curation.filters import HeuristicFilter, OfflineLanguageFilter, heuristic_judges
from curation.filters.heuristics import filter_settings


def japanese_pages(n: int = 6) -> list[Document]:
    """The first `n` long Japanese guide pages of data/samples (embedded: they must be there)."""
    pages = sorted((SAMPLES / "finance" / "gnucash" / "ja").glob("*.html"))
    docs = []
    for page in pages:
        text, _ = HtmlExtractor().extract(page.read_bytes())
        if len(text) > 1500:
            docs.append(Document(text, page.name, metadata={"language": "ja"}))
        if len(docs) == n:
            break
    assert len(docs) == n, f"{len(docs)} of {n} long Japanese pages found among {len(pages)} sample pages"
    return docs


def test_language_id_offline_labels_en_and_ja():
    lid = OfflineLanguageFilter(["en", "ja"])
    en = Document("Double-entry accounting records every transaction in two accounts.", "en")
    ja = japanese_pages(1)[0]
    ja.metadata.clear()
    de = Document("Die doppelte Buchführung erfasst jede Buchung auf zwei Konten.", "de")
    assert lid.filter(en) is True and en.metadata["language"] == "en"
    assert lid.filter(ja) is True and ja.metadata["language"] == "ja" and ja.metadata["language_score"] > 0.9
    assert lid.filter(de) == (False, "language")
    assert lid.filter(Document("   ", "blank")) == (False, "no_text")


def test_documentation_read_line_by_line_keeps_code_heavy_pages():
    """Python reference pages the whole-page score dropped (code and tables read as another language,
    or English below 0.65) are English when their lines vote; a web page is still judged whole."""
    names = ["python-library-colorsys.html", "python-library-debug.html", "python-library-text.html"]
    lid = OfflineLanguageFilter(["en", "ja"])
    for name in names:
        text, _ = HtmlExtractor().extract((SAMPLES / "general" / "python" / name).read_bytes())
        assert lid.filter(Document(text, name, metadata={"kind": "web"})) == (False, "language"), name
        doc = Document(text, name, metadata={"kind": "document"})
        assert lid.filter(doc) is True and doc.metadata["language"] == "en", (name, doc.metadata)
        assert doc.metadata["language_mix"]["en"] > 0.5


def test_mixed_japanese_page_keeps_its_main_language():
    ja = japanese_pages(1)[0]
    english = "To start GnuCash from a terminal, type the command below and press Enter."
    text = (
        ja.text + "\n" + "\n".join(["$ gnucash --help", "Usage: gnucash [options] [datafile]", english] * 3)
    )
    doc = Document(text, "mixed", metadata={"kind": "document"})
    assert OfflineLanguageFilter(["en", "ja"]).filter(doc) is True
    assert doc.metadata["language"] == "ja" and 0 < doc.metadata["language_mix"].get("en", 0) < 0.5


def test_stock_english_settings_destroy_japanese_ours_keep_it():
    """Japanese manual pages: the stock (English) Gopher rules reject most; the document settings
    keep all; the web settings fix the Japanese-specific rules (words, stop words, 。) and leave
    FineWeb's web-page line rules as they are."""
    docs = japanese_pages()
    stock = GopherQualityFilter(language="ja")
    assert sum(stock.filter(Document(d.text, d.id)) is True for d in docs) <= len(docs) // 2
    judges = {kind: heuristic_judges(kind, ["ja"], {})["ja"] for kind in ("web", "document")}
    assert all(judges["document"].judge(d.text).reason is None for d in docs)
    assert all(judges["web"].judge(d.text).filter in (None, "fineweb") for d in docs)


def test_routing_by_kind_and_language_and_reason():
    step = HeuristicFilter({kind: heuristic_judges(kind, ["en"], {}) for kind in ("web", "document")})
    short = Document("Too short.", "s", metadata={"language": "en", "kind": "web"})
    other = Document("Too short.", "o", metadata={"language": "fr", "kind": "web"})
    assert step.filter(short) == (False, "gopher_short_doc")
    assert step.filter(other) is True  # no judge for that language


def test_settings_per_kind_override_and_switch_off():
    assert filter_settings("web", "en", "gopher_quality", {}) == {"language": "en"}  # datatrove's stock
    assert filter_settings("document", "en", "gopher_quality", {})["max_doc_words"] is None  # a 10-K is long
    overrides = {"document": {"en": {"gopher_quality": {"min_doc_words": 7}, "c4": False}}}
    assert filter_settings("document", "en", "gopher_quality", overrides)["min_doc_words"] == 7
    assert filter_settings("web", "en", "gopher_quality", overrides) == {"language": "en"}
    assert filter_settings("document", "en", "c4", overrides) is None
    with pytest.raises(ValueError, match="filters.web.en.c4"):
        filter_settings("web", "en", "c4", {"web": {"en": {"c4": {"bogus": 1}}}})
