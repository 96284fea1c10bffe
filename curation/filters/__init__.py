"""Filters keep or drop documents; every drop carries a reason (datatrove's BaseFilter)."""

from curation.filters.heuristics import DEFAULT_SETTINGS, HeuristicFilter, heuristic_judges
from curation.filters.language import BundledFastTextLID, OfflineLanguageFilter
from curation.filters.passages import PassageFilter

__all__ = [
    "DEFAULT_SETTINGS",
    "BundledFastTextLID",
    "HeuristicFilter",
    "OfflineLanguageFilter",
    "PassageFilter",
    "heuristic_judges",
]
