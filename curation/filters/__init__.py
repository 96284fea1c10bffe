"""Filters keep or drop documents; every drop carries a reason (datatrove's BaseFilter)."""

from curation.filters.heuristics import DEFAULT_SETTINGS, PerLanguageFilter, heuristic_filters
from curation.filters.language import BundledFastTextLID, OfflineLanguageFilter

__all__ = [
    "DEFAULT_SETTINGS",
    "BundledFastTextLID",
    "OfflineLanguageFilter",
    "PerLanguageFilter",
    "heuristic_filters",
]
