"""Extractors turn raw bytes (PDF, HTML) into text, or reject the document with a reason."""

from curation.extractors.base import Extractor, Rejected
from curation.extractors.html import HtmlExtractor
from curation.extractors.pdf import PdfExtractor

__all__ = ["Extractor", "HtmlExtractor", "PdfExtractor", "Rejected"]
