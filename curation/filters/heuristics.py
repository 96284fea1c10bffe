"""datatrove's Gopher, C4 and FineWeb heuristics, with settings per source kind and language.

The stock settings were tuned on English web pages: they reject ordinary Japanese, and domain
documents (manuals, filings, standards) where code, tables and repeated "Note" lines are normal.
DEFAULT_SETTINGS holds datatrove keyword arguments per kind and language; the recipe's
`filters: {kind: {language: {filter: {...} | false}}}` overrides any of them, and switches on a
filter registered off by default (`curation.filters.registry`).
"""

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from curation.filters.registry import HEURISTIC_FILTERS
from curation.filters.signals import HeuristicJudge

JA_STOP_WORDS = ["の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "れ", "さ", "も", "な"]
JA_GOPHER_QUALITY = {
    "min_avg_word_length": 1,
    "max_avg_word_length": 8,
    "stop_words": JA_STOP_WORDS,
    "max_symbol_word_ratio": 0.3,
    "max_non_alpha_words_ratio": 0.5,
}
# Sudachi morphemes are 1-2 characters: an English 5-gram is roughly a Japanese 10-gram
JA_GOPHER_REPETITION = {
    "top_n_grams": ((4, 0.3), (6, 0.25), (8, 0.2)),
    "dup_n_grams": ((10, 0.3), (12, 0.28), (14, 0.26), (16, 0.24), (18, 0.22), (20, 0.2)),
}
# Japanese lines end in 。 and have no spaces: C4's line rules would drop every line
JA_WEB_C4 = {"filter_no_terminal_punct": False, "min_words_per_line": -1}

# Domain documents are not web pages: code, tables and repeated "Note"/"Warning" lines are normal,
# and datatrove's word split counts punctuation as words. The web-tuned settings dropped 44% of
# the embedded sample; these keep the prose and still drop boilerplate, binary junk and
# near-empty pages. A 10-K runs past 100,000 words, so documents have no upper length.
DOCUMENTATION_C4 = {
    "filter_no_terminal_punct": False,
    "min_words_per_line": -1,
    "min_num_sentences": 3,
    "filter_curly_bracket": False,
}
# A document's lines are the extractor's layout (PDF blocks, a page's inline code pulled onto lines
# of its own), not sentences: the share of lines ending in punctuation says nothing there.
DOCUMENTATION_FINEWEB = {"line_punct_thr": 0, "short_line_thr": 0.8, "char_duplicates_ratio": 0.1}
# Legal and reference prose repeats its phrases ("the Participant's PEP Guarantee under this
# section shall be reduced so that the total value of the benefit payable..."): at Gopher's web
# thresholds (duplicate 5-grams over 15% of the text) a quarter of the filings' plan and note
# pages were cut. Twice the web fractions still cut pages that are mostly one repeated phrase.
DOCUMENTATION_REPETITION = {
    "top_n_grams": ((2, 0.4), (3, 0.36), (4, 0.32)),
    "dup_n_grams": ((5, 0.3), (6, 0.28), (7, 0.26), (8, 0.24), (9, 0.22), (10, 0.2)),
}

DEFAULT_SETTINGS: dict[str, dict[str, dict[str, dict]]] = {
    "web": {
        "en": {},
        "ja": {
            "gopher_quality": JA_GOPHER_QUALITY,
            "c4": JA_WEB_C4,
            "gopher_repetition": JA_GOPHER_REPETITION,
        },
    },
    "document": {
        "en": {
            "gopher_quality": {"max_non_alpha_words_ratio": 0.6, "max_doc_words": None},
            "c4": DOCUMENTATION_C4,
            "fineweb": DOCUMENTATION_FINEWEB,
            "gopher_repetition": DOCUMENTATION_REPETITION,
        },
        "ja": {
            "gopher_quality": JA_GOPHER_QUALITY | {"max_doc_words": None},
            "c4": DOCUMENTATION_C4,
            "fineweb": DOCUMENTATION_FINEWEB,
            "gopher_repetition": JA_GOPHER_REPETITION,
        },
    },
}
# A passage is a page or a few paragraphs of a long document: the whole-document size rules
# (at least 50 words, 3 sentences) would cut its short closing page.
PASSAGE_LIMITS = {"gopher_quality": {"min_doc_words": 20}, "c4": {"min_num_sentences": 1}}


def filter_settings(kind: str, language: str, name: str, overrides: dict) -> dict | None:
    """Merged keyword arguments for one filter, kind and language, or None when it is switched off
    (by `false`, or by default for a filter the registry has off until a recipe names it)."""
    spec = HEURISTIC_FILTERS[name]
    override = overrides.get(kind, {}).get(language, {}).get(name)
    if override is False or (override is None and not spec.default_on):
        return None
    settings = DEFAULT_SETTINGS.get(kind, {}).get(language, {}).get(name, {}) | (
        override if isinstance(override, dict) else {}
    )
    if unknown := set(settings) - spec.arguments:
        raise ValueError(
            f"filters.{kind}.{language}.{name}: unknown argument(s) {sorted(unknown)}; "
            f"known: {sorted(spec.arguments)}"
        )
    return ({"language": language} if "language" in spec.arguments else {}) | settings


def heuristic_judges(
    kind: str, languages: list[str], overrides: dict, passages: bool = False
) -> dict[str, HeuristicJudge]:
    """One judge per language; `passages` relaxes the whole-document size rules (PASSAGE_LIMITS)."""
    judges = {}
    for language in languages:
        settings = {}
        for name in HEURISTIC_FILTERS:
            merged = filter_settings(kind, language, name, overrides)
            if merged is not None and passages and name in PASSAGE_LIMITS:
                merged = merged | PASSAGE_LIMITS[name]
            settings[name] = merged
        judges[language] = HeuristicJudge(language, settings)
    return judges


class HeuristicFilter(BaseFilter):
    """Gopher quality, C4, FineWeb and Gopher repetition on whole documents, from one split each,
    then any filter registered after them (`curation.filters.registry`).

    Decides as datatrove's four filters in that order would with the same settings (C4's line
    edits included), with the settings of the document's kind and language. Documents already
    judged passage by passage (metadata `passages`) pass.
    """

    name = "🥇 Heuristics"

    def __init__(self, judges: dict[str, dict[str, HeuristicJudge]], exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.judges = judges  # kind -> language -> judge

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if "passages" in doc.metadata:
            return True
        judge = self.judges.get(doc.metadata.get("kind", "web"), {}).get(doc.metadata.get("language"))
        if judge is None:
            return True
        verdict = judge.judge(doc.text)
        for key, value in verdict.line_stats.items():
            self.stat_update(key, value=value)
        if verdict.reason is not None:
            return False, verdict.reason
        doc.text = verdict.text
        return True
