"""Language ID offline, and heuristic filters that keep real Japanese text."""

import pytest
from conftest import SAMPLES
from datatrove.data import Document
from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter

from curation.extractors import HtmlExtractor
from curation.filters import OfflineLanguageFilter
from curation.filters.heuristics import PerLanguageFilter, filter_settings, heuristic_filters


def japanese_pages(n: int = 6) -> list[Document]:
    pages = sorted((SAMPLES / "finance" / "gnucash" / "ja").glob("*.html"))
    docs = []
    for page in pages:
        text, _ = HtmlExtractor().extract(page.read_bytes())
        if len(text) > 1500:
            docs.append(Document(text, page.name, metadata={"language": "ja"}))
        if len(docs) == n:
            break
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


def test_stock_english_settings_destroy_japanese_ours_keep_it():
    docs = japanese_pages()
    stock = [GopherQualityFilter(language="ja"), FineWebQualityFilter(language="ja")]
    stock_kept = sum(all(f.filter(Document(d.text, d.id)) is True for f in stock) for d in docs)
    ours = heuristic_filters(["ja"], {}, lambda name: None)
    ours_kept = sum(all(step.filter(d) is True for step in ours) for d in docs)
    assert stock_kept <= len(docs) // 2, "stock settings were expected to reject most Japanese pages"
    assert ours_kept == len(docs)


def test_per_language_routing_and_reason():
    step = PerLanguageFilter(
        "gopher_quality", {"en": GopherQualityFilter(**filter_settings("en", "gopher_quality", {}))}
    )
    short = Document("Too short.", "s", metadata={"language": "en"})
    other = Document("Too short.", "o", metadata={"language": "fr"})
    assert step.filter(short) == (False, "gopher_short_doc")
    assert step.filter(other) is True  # no filter configured for that language


def test_recipe_override_and_switch_off():
    assert (
        filter_settings("en", "gopher_quality", {"en": {"gopher_quality": {"min_doc_words": 7}}})[
            "min_doc_words"
        ]
        == 7
    )
    assert filter_settings("en", "c4", {"en": {"c4": False}}) is None
    with pytest.raises(ValueError, match="filters.en.c4"):
        filter_settings("en", "c4", {"en": {"c4": {"bogus": 1}}})
