"""Extractors turn raw bytes (PDF, HTML) into text, or reject the document with a reason."""

from curation.extractors.base import Extractor, Rejected
from curation.extractors.html import HtmlExtractor
from curation.extractors.pdf import PdfExtractor


def recipe_extractors(extract, rejected=lambda fmt: None) -> dict[str, Extractor]:
    """The extractors with a recipe's `extract` settings, by format; `rejected(fmt)` gives each its
    exclusion writer. Inputs and classifier seed files go through the same ones."""
    return {
        "pdf": PdfExtractor(
            extract.pdf_timeout_s,
            extract.pdf_min_chars_per_page,
            rejected("pdf"),
            max_pages=extract.max_pdf_pages,
            max_text_chars=extract.max_text_chars,
        ),
        "html": HtmlExtractor(
            extract.html_backend, extract.html_timeout_s, rejected("html"), extract.max_text_chars
        ),
    }


__all__ = ["Extractor", "HtmlExtractor", "PdfExtractor", "Rejected", "recipe_extractors"]
