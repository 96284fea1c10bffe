"""Long documents judged by passages: real SEC filings that web heuristics threw away are kept."""

import gzip
import json

import pytest
from conftest import SAMPLES
from datatrove.data import Document

from curation.config import SOURCE_KINDS
from curation.extractors import PdfExtractor
from curation.filters import HeuristicFilter, OfflineLanguageFilter, PassageFilter, heuristic_judges
from curation.filters.passages import passage_spans
from curation.output import TrainValSplit

# filings the stock judgment (datatrove's filters on whole documents) dropped, with its reason
DROPPED_BEFORE = {
    "EBAY_2023Q1_EARNINGS.pdf": "duplicated_5_n_grams",
    "JOHNSON_JOHNSON_2023Q1_EARNINGS.pdf": "gopher_below_alpha_threshold",
    "BESTBUY_2017_10K.pdf": "language",  # a check-box cover page: the whole 10-K scored as Catalan
}


def steps(**passage_options):
    langs = ["en", "ja"]
    return [
        OfflineLanguageFilter(langs),
        PassageFilter(heuristic_judges("document", langs, {}, passages=True), **passage_options),
        HeuristicFilter({kind: heuristic_judges(kind, langs, {}) for kind in SOURCE_KINDS}),
    ]


def judged(docs: list[Document], chain: list) -> list[Document]:
    """The documents through `chain`, as copies (the steps edit text and metadata in place)."""
    data = iter([Document(d.text, d.id, metadata=dict(d.metadata)) for d in docs])
    for step in chain:
        data = step.run(data)
    return list(data)


def filing(kit, name: str) -> Document:
    text, meta = PdfExtractor().extract((kit / "corpus" / "sec-filings" / name).read_bytes())
    return Document(text, name, metadata=meta | {"kind": "document", "input": "sec"})


@pytest.fixture(scope="module")
def filings(kit):
    return {name: filing(kit, name) for name in DROPPED_BEFORE}


def test_filings_dropped_by_web_heuristics_are_kept_by_passages(filings):
    extracted = {name: len(doc.text) for name, doc in filings.items()}
    kept = {doc.id: doc for doc in judged(list(filings.values()), steps())}
    assert set(kept) == set(DROPPED_BEFORE)
    for name, doc in kept.items():
        info = doc.metadata["passages"]
        assert info["chars_in"] == extracted[name]
        assert len(doc.text) >= 0.8 * extracted[name], (name, info)
        assert doc.metadata["language"] == "en" and doc.metadata["language_mix"]["en"] > 0.9
        assert len(doc.metadata["passage_offsets"]) == info["kept"] <= info["total"]


def test_passage_cuts_are_counted_and_explained(filings):
    chain = steps()
    docs = judged(list(filings.values()), chain)
    stats = chain[1].stats.stats
    cut_passages = sum(doc.metadata["passages"]["total"] - doc.metadata["passages"]["kept"] for doc in docs)
    by_reason = {k: v.total for k, v in stats.items() if k.startswith("passages_cut_")}
    assert sum(by_reason.values()) == cut_passages
    chars = {k: v.total for k, v in stats.items() if k.startswith("chars_cut_")}
    assert sum(chars.values()) == sum(sum(d.metadata["passages"]["chars_cut"].values()) for d in docs)
    assert stats["total"].total == stats["forwarded"].total == len(DROPPED_BEFORE)


def test_split_emits_passage_documents_with_their_parent(filings):
    doc = filings["EBAY_2023Q1_EARNINGS.pdf"]
    whole = judged([doc], steps())[0]
    pieces = judged([doc], steps(split=True))
    assert len(pieces) == whole.metadata["passages"]["kept"] > 1
    assert {p.metadata["parent_id"] for p in pieces} == {doc.id}
    assert "\n\n".join(p.text for p in pieces) == whole.text


def test_cover_contents_and_signature_pages_are_cut_from_a_kept_filing(filings):
    """The 10-K's check-box cover page, its table of contents and its signature page are passages
    to cut, not reasons to drop the filing."""
    doc = filings["BESTBUY_2017_10K.pdf"]
    kept = judged([doc], steps())[0]
    before, after = " ".join(doc.text.split()), " ".join(kept.text.split())  # PDFs use no-break spaces
    cuts = (
        "/s/ Hubert Joly Chairman and Chief Executive Officer",
        "Exact name of registrant",
        "Risk Factors. | 7",
    )
    for cut in cuts:
        assert cut in before and cut not in after, cut
    assert "Comparable sales" in after and len(kept.text) >= 0.8 * len(doc.text)


def test_paragraph_passages_for_text_without_pages():
    """Transcripts and manuals have no pages: runs of paragraphs up to the target size."""
    text = "\n\n".join(f"Paragraph {i} " + "word " * 100 for i in range(40))
    spans = passage_spans(text, None, 3000)
    assert len(spans) > 1 and all(b - a <= 3000 for a, b in spans)
    assert "\n\n".join(text[a:b] for a, b in spans) == text


def test_web_pages_are_judged_whole_with_web_settings(kit):
    """Junk from a crawl is still dropped: the web kind keeps datatrove's stock judgment."""
    with gzip.open(kit / "corpus" / "cc-sample.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    docs = [Document(r["text"], r["id"], metadata={"kind": "web"}) for r in rows]
    kept = {d.id for d in judged(docs, steps())}
    # a booking calendar, a keyword landing page, a list of truncated headlines
    junk = ["eeme.ucd.ie/mrbs", "convertvideotomp4.com", "cempaka-tourist.blogspot.com/2017/07/aborigines"]
    for page in junk:
        assert not any(page in doc_id for doc_id in kept), page
    assert 0.4 * len(rows) < len(kept) < len(rows)


def test_japanese_manual_pages_are_not_harmed():
    """Japanese GnuCash pages (with English menu names and commands) stay Japanese and stay in."""
    from curation.extractors import HtmlExtractor

    pages = sorted((SAMPLES / "finance" / "gnucash" / "ja").glob("*.html"))[:12]
    docs = []
    for page in pages:
        text, _ = HtmlExtractor().extract(page.read_bytes())
        docs.append(Document(text, page.name, metadata={"kind": "document"}))
    kept = judged(docs, steps())
    assert len(kept) >= 11
    assert all(d.metadata["language"] == "ja" for d in kept)


def test_contents_lines_are_titles_with_page_numbers_not_rows_of_figures():
    from curation.filters.passages import _is_contents_line

    contents = ["Item 1A. | Risk Factors. | 7", "PART II | 22", "Risk Factors ........ 17"]
    figures = ["California | 118 | 18 | 28", "Total assets | $290,479 | $231,839", "2023 | 2022 | 12"]
    assert all(map(_is_contents_line, contents)) and not any(map(_is_contents_line, figures))


def test_keep_rate_counts_passage_documents_with_their_parent(tmp_path):
    """With `passages.split`, a filing leaves as many documents; the report still counts one filing."""
    from curation.report.stats import input_keep_rates

    def write(folder, docs):
        folder.mkdir(parents=True)
        with gzip.open(folder / "0.jsonl.gz", "wt") as f:
            f.writelines(json.dumps(d) + "\n" for d in docs)

    meta = {"input": "sec", "kind": "document", "parent_id": "f.pdf", "passages": {"chars_in": 1000}}
    write(
        tmp_path / "docs" / "domain" / "train",
        [{"id": f"f.pdf#{k}", "text": "x" * 300, "metadata": meta} for k in range(3)],
    )
    near = meta | {"rejected_reason": "near_duplicate"}
    write(tmp_path / "rejected" / "minhash_dedup", [{"id": "f.pdf#3", "text": "x" * 100, "metadata": near}])
    cut = {"input": "sec", "parent_id": "f.pdf", "rejected_reason": "table_of_contents"}
    write(tmp_path / "rejected" / "passages_cut", [{"id": "f.pdf#4", "text": "y" * 50, "metadata": cut}])
    row = input_keep_rates(tmp_path / "docs", tmp_path / "rejected")["sec"]
    assert (row["documents"], row["kept"], row["dropped"]) == (1, 1, {})
    assert (row["chars_extracted"], row["chars_kept"], row["kept_80pct"]) == (1000, 900, 1)


def test_passages_of_one_document_share_their_split():
    """Passage-documents carry their parent's digest and the train/val split hashes it, so sibling
    passages never sit on both sides; a document judged whole is still hashed by its text."""
    pdf = SAMPLES / "finance" / "economics" / "dynare-guide.pdf"
    text, meta = PdfExtractor().extract(pdf.read_bytes())
    doc = Document(text, pdf.name, metadata=meta | {"kind": "document"})
    pieces = judged([doc], steps(split=True))
    assert len(pieces) >= 5 and len({p.metadata["parent_digest"] for p in pieces}) == 1
    sides = [
        {p.metadata["split"] for p in TrainValSplit(0.5, seed).run(judged(pieces, []))} for seed in range(8)
    ]
    assert all(len(side) == 1 for side in sides), sides
    assert {side.pop() for side in sides} == {"train", "val"}  # the seed still decides which side
    whole = judged([doc], steps())
    assert "parent_digest" not in whole[0].metadata
