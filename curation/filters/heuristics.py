"""datatrove's Gopher, C4 and FineWeb heuristics, configured per language.

The stock settings assume English (space-separated words, `.` ending sentences) and reject
ordinary Japanese; DEFAULT_SETTINGS carries per-language corrections, and the recipe can
override any argument of the underlying datatrove filter per language.
"""

import inspect

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter

FILTER_CLASSES: dict[str, type[BaseFilter]] = {
    "gopher_repetition": GopherRepetitionFilter,
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
}

JA_STOP_WORDS = ["の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "れ", "さ", "も", "な"]

# Domain documents (manuals, filings, standards) are not web pages: code, tables and repeated
# "Note"/"Warning" lines are normal, and datatrove's word split counts punctuation as words.
# The web-tuned defaults dropped 44% of the embedded sample; these keep the prose and still
# drop boilerplate, binary junk and near-empty pages.
DOCUMENTATION_C4 = {
    "filter_no_terminal_punct": False,
    "min_words_per_line": -1,
    "min_num_sentences": 3,
    "filter_curly_bracket": False,
}
DOCUMENTATION_FINEWEB = {"line_punct_thr": 0.05, "short_line_thr": 0.8, "char_duplicates_ratio": 0.1}
DEFAULT_SETTINGS: dict[str, dict[str, dict]] = {
    "en": {
        "gopher_quality": {"max_non_alpha_words_ratio": 0.6},
        "c4": DOCUMENTATION_C4,
        "fineweb": DOCUMENTATION_FINEWEB,
    },
    "ja": {
        "gopher_quality": {
            "min_avg_word_length": 1,
            "max_avg_word_length": 8,
            "stop_words": JA_STOP_WORDS,
            "max_symbol_word_ratio": 0.3,
            "max_non_alpha_words_ratio": 0.5,
        },
        "c4": DOCUMENTATION_C4,
        "fineweb": DOCUMENTATION_FINEWEB,
        # Sudachi morphemes are 1-2 characters: an English 5-gram is roughly a Japanese 10-gram
        "gopher_repetition": {
            "top_n_grams": ((4, 0.3), (6, 0.25), (8, 0.2)),
            "dup_n_grams": ((10, 0.3), (12, 0.28), (14, 0.26), (16, 0.24), (18, 0.22), (20, 0.2)),
        },
    },
}


def filter_settings(language: str, name: str, overrides: dict) -> dict | None:
    """Merged keyword arguments for one filter and language, or None when it is switched off."""
    override = overrides.get(language, {}).get(name, {})
    if override is False:
        return None
    settings = DEFAULT_SETTINGS.get(language, {}).get(name, {}) | (
        override if isinstance(override, dict) else {}
    )
    allowed = set(inspect.signature(FILTER_CLASSES[name].__init__).parameters) - {"self", "exclusion_writer"}
    if unknown := set(settings) - allowed:
        raise ValueError(
            f"filters.{language}.{name}: unknown argument(s) {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return {"language": language} | settings


class PerLanguageFilter(BaseFilter):
    """One datatrove filter, instantiated per language and chosen by the document's `language`."""

    def __init__(self, name: str, by_language: dict[str, BaseFilter], exclusion_writer=None):
        self.name = name  # before super().__init__, which names the step's stats
        super().__init__(exclusion_writer)
        self.by_language = by_language

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        inner = self.by_language.get(doc.metadata.get("language"))
        if inner is None:
            return True
        result = inner.filter(doc)
        if result is False:
            return False, self.name
        return result


def heuristic_filters(languages: list[str], overrides: dict, exclusion_writer_for) -> list[BaseFilter]:
    """The four heuristic steps in cost order (cheap checks first), each routed per language."""
    steps = []
    for name in ("gopher_quality", "c4", "fineweb", "gopher_repetition"):
        by_language = {}
        for lang in languages:
            settings = filter_settings(lang, name, overrides)
            if settings is not None:
                by_language[lang] = FILTER_CLASSES[name](**settings)
        if by_language:
            steps.append(PerLanguageFilter(name, by_language, exclusion_writer_for(name)))
    return steps
