"""HeuristicJudge decides as datatrove's four filters chained do: same reason, same rewritten text."""

import gzip
import json
from functools import cache

import pytest
from conftest import KIT, SAMPLES
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.utils.text import split_into_words

from curation.extractors import HtmlExtractor, PdfExtractor
from curation.filters import signals
from curation.filters.heuristics import DEFAULT_SETTINGS
from curation.filters.signals import FILTER_ORDER, HeuristicJudge, _Split, _splitter

DATATROVE = {
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
}
# the first files (sorted) of each folder: every kind of page the sample has, ~0.5 MB of text
SAMPLE_PAGES = {
    "finance/gnucash/en": ("en", 16),
    "finance/gnucash/ja": ("ja", 12),
    "finance/eqonomize": ("en", 6),
    "general/python": ("en", 10),
    "general/postgresql": ("en", 14),
    "general/debian-handbook/en": ("en", 8),
    "general/debian-handbook/ja": ("ja", 8),
    "finance/economics": ("en", 4),  # PDFs
}


def stock(language: str) -> dict[str, dict]:
    return {name: {} for name in FILTER_ORDER}


def documentation(language: str) -> dict[str, dict]:
    """The project's settings for domain documents (as heuristic_judges merges them, no overrides)."""
    return {name: DEFAULT_SETTINGS["document"][language].get(name, {}) for name in FILTER_ORDER}


def web(language: str) -> dict[str, dict]:
    """The project's settings for web pages (stock for English; Japanese keeps lines without a period)."""
    return {name: DEFAULT_SETTINGS["web"][language].get(name, {}) for name in FILTER_ORDER}


SETTINGS = {"stock": stock, "documentation": documentation, "web": web}


def datatrove_chain(language: str, settings: dict[str, dict | None], text: str) -> tuple:
    """(reason, filter, final text, C4's line counters) from datatrove's own filters, in order."""
    doc = Document(text, "doc")
    line_stats = {}
    for name in FILTER_ORDER:
        if settings.get(name) is None:
            continue
        step = DATATROVE[name](**({"language": language} | settings[name]))
        result = step.filter(doc)  # C4 rewrites doc.text when it keeps the document
        if name == "c4":
            line_stats = {key: int(stat.total) for key, stat in step.stats.stats.items()}
        if result is not True:
            return result[1], name, doc.text, line_stats
    return None, None, doc.text, line_stats


def disagreements(docs: list[tuple[str, str, str]], settings_name: str) -> list[tuple]:
    judges = {}
    found = []
    for doc_id, language, text in docs:
        settings = SETTINGS[settings_name](language)
        judge = judges.setdefault(language, HeuristicJudge(language, settings))
        verdict = judge.judge(text)
        expected = datatrove_chain(language, settings, text)
        if (verdict.reason, verdict.filter, verdict.text, verdict.line_stats) != expected:
            found.append((doc_id, expected[0], verdict.reason))
    return found


@cache
def sample_docs() -> list[tuple[str, str, str]]:
    """(id, language, text) of real pages and PDFs of the embedded sample, extracted as the pipeline does."""
    docs = []
    for folder, (language, count) in SAMPLE_PAGES.items():
        for path in sorted(p for p in (SAMPLES / folder).iterdir() if p.suffix in (".html", ".pdf"))[:count]:
            extractor = PdfExtractor() if path.suffix == ".pdf" else HtmlExtractor()
            text, _ = extractor.extract(path.read_bytes())
            docs.append((f"{folder}/{path.name}", language, text))
    return docs


def kit_docs(kit) -> list[tuple[str, str, str]]:
    """Web pages, Wikipedia articles and redirect stubs, and earnings-call transcripts from the kit."""
    docs = []
    for name, count in (("cc-sample", 30), ("general-wiki", 100), ("finance-transcripts", 16)):
        with gzip.open(kit / "corpus" / f"{name}.jsonl.gz", "rt") as f:
            for _, line in zip(range(count), f):
                record = json.loads(line)
                docs.append((f"{name}/{record['id']}", "en", record["text"]))
    return docs


@pytest.mark.parametrize("settings_name", SETTINGS)
def test_agrees_with_datatrove_on_the_sample(settings_name):
    docs = sample_docs()
    assert len(docs) == sum(count for _, count in SAMPLE_PAGES.values())
    assert disagreements(docs, settings_name) == []


@pytest.mark.parametrize("settings_name", ["stock", "documentation"])  # English web settings are stock
def test_agrees_with_datatrove_on_the_kit(kit, settings_name):
    assert disagreements(kit_docs(kit), settings_name) == []


def test_words_are_datatrove_words():
    """The one split (line by line for English, Sudachi's surfaces for Japanese) is split_into_words."""
    docs = sample_docs() + (kit_docs(KIT) if (KIT / "corpus").is_dir() else [])
    for doc_id, language, text in docs:
        assert _Split(text, _splitter(language)).words == split_into_words(text, language), doc_id


def test_words_past_the_vocabulary_cap(monkeypatch):
    """Past _MAX_LEXEMES each split runs in a spaCy memory zone (as datatrove's): same words."""
    monkeypatch.setattr(signals, "_MAX_LEXEMES", 0)
    for doc_id, language, text in sample_docs()[:6]:
        assert _Split(text, _splitter(language)).words == split_into_words(text, language), doc_id


def test_japanese_without_a_tiling_uses_datatrove(monkeypatch):
    """Sudachi surfaces that do not cover their text exactly are not trusted: datatrove splits it."""

    class Dropping:
        def tokenize(self, text):
            return [Surface(text[1:])]

    class Surface(str):
        def surface(self):
            return str(self)

    splitter = signals._WordSplitter("ja")
    monkeypatch.setattr(splitter, "sudachi", Dropping())
    text = TARGETED["Japanese"]
    assert splitter.text(text) == split_into_words(text, "ja")


def test_c4_rewrite_keeps_the_words_of_kept_lines():
    """Words of C4's rewritten text taken from the first split equal a fresh split of it."""
    text = (
        "Accounts are grouped in a tree.[1] Each holds one currency.\n"
        "  Click here to enable JavaScript in your browser.  \n"
        "Short line\n"
        "The balance of a parent account includes its children [edit].\n"
        "Transactions move value between at least two accounts.\n"
        "A split records one side of a transaction.\n"
        "Reports read the ledger and never change it."
    )
    judge = HeuristicJudge("en", {"c4": {}, "fineweb": {}})
    split = _Split(text, judge.splitter)
    assert split.words  # the first split, as Gopher quality makes it
    reason, stats, kept = judge._c4(split)
    assert reason is None and kept.text != text and "JavaScript" not in kept.text and "[1]" not in kept.text
    assert kept.line_words is not None and kept.words == split_into_words(kept.text, "en")
    assert stats == {
        "line-total": 7,
        "line-kept": 5,
        "line-filter-javascript": 1,
        "line-filter-no_terminal_punc": 1,
    }


PROSE = (
    "The general ledger records every transaction of the business. Each entry names the accounts "
    "that it debits and credits, so that the books always balance. Accountants reconcile the "
    "ledger with the bank statements at the end of the month. Errors that are found are corrected "
    "with new entries rather than by changing the old ones. The trial balance then lists the total "
    "of each account, and the financial statements are prepared from it."
)
TARGETED = {
    "lorem ipsum": PROSE.replace("The trial balance", "Lorem ipsum dolor sit amet. The trial balance"),
    "curly bracket": PROSE.replace("The trial balance", "The rule {debit = credit} holds. The trial balance"),
    "one line": PROSE,
    "lines": PROSE.replace(". ", ".\n"),
    "empty-ish": " \n\n \t\n",
    "empty": "",
    "one word": "Ledger",
    "citations": PROSE.replace(". ", ".[1]\n").replace("Errors", "Errors[citation needed] [edit]"),
    "citation joins lorem ipsum": PROSE.replace(". ", ".\n").replace("Errors", "lorem[2] ipsum errors"),
    "Japanese": (
        "仕訳帳には、会社で発生したすべての取引を日付の順に漏れなく記録していきます。\n"
        "  各仕訳は、借方と貸方の勘定科目とその金額を示し、貸借は常に一致します。\n"
        "月末には、預金の残高を銀行から届いた明細書と照合して差異を確かめます。\n"
        "見つかった誤りは、元の仕訳を書き換えずに新しい仕訳を追加して訂正します。\n"
        "試算表は各勘定の合計を示し、財務諸表はその試算表をもとに作成されます。\n"
        "こうして作られた帳簿は、税務申告や経営判断の基礎として長く保存されます。"
    ),
}


@pytest.mark.parametrize("settings_name", SETTINGS)
def test_targeted_cases_agree(settings_name):
    docs = [(case, "ja" if case == "Japanese" else "en", text) for case, text in TARGETED.items()]
    assert disagreements(docs, settings_name) == []


def test_targeted_reasons():
    """The cases reach the rule they are about (else agreeing on them would prove little)."""
    en = HeuristicJudge("en", {"c4": {}})
    assert en.judge(TARGETED["lorem ipsum"]).reason == "lorem_ipsum"
    assert en.judge(TARGETED["curly bracket"]).reason == "curly_bracket"
    one_line = en.judge(TARGETED["one line"])  # fewer lines than min_num_sentences: sentences counted
    assert one_line.reason is None and one_line.text == TARGETED["one line"]
    assert en.judge(PROSE[: PROSE.index(" Accountants")]).reason == "too_few_sentences"
    assert en.judge(TARGETED["citation joins lorem ipsum"]).reason == "lorem_ipsum"
    kept = en.judge(TARGETED["lines"])
    assert kept.reason is None and kept.text == TARGETED["lines"]
    assert kept.line_stats == {"line-total": 5, "line-kept": 5}
    assert HeuristicJudge("en", {"fineweb": {}}).judge(TARGETED["empty-ish"]).reason == "empty"
    assert HeuristicJudge("en", {"gopher_repetition": {}}).judge("").reason == "empty"
    ja = HeuristicJudge("ja", documentation("ja")).judge(TARGETED["Japanese"])
    assert ja.reason is None and ja.text == TARGETED["Japanese"].replace("\n  ", "\n")  # C4 strips lines


NO_LINE_RULES = {
    "dup_line_frac": None,
    "dup_para_frac": None,
    "dup_line_char_frac": None,
    "dup_para_char_frac": None,
}


def test_top_n_gram_ties_go_to_the_first_seen():
    """Counter.most_common(1): of equally frequent 2-grams the first one counts, here the short one."""
    text = "a b a b longwordxx longwordyy longwordxx longwordyy"
    settings = {"gopher_repetition": NO_LINE_RULES | {"top_n_grams": ((2, 0.2),), "dup_n_grams": ()}}
    assert HeuristicJudge("en", settings).judge(text).reason is None  # 2 * len("a b") / 51
    assert datatrove_chain("en", settings, text)[0] is None
    swapped = "longwordxx longwordyy longwordxx longwordyy a b a b"
    assert HeuristicJudge("en", settings).judge(swapped).reason == "top_2_gram"
    assert datatrove_chain("en", settings, swapped)[0] == "top_2_gram"


def test_duplicate_n_grams_compare_joined_characters():
    """find_all_duplicate joins words with "": "abcdefghijklmnop qrs" repeats "abcdefgh ijklmnopqrs"."""
    text = "abcdefghijklmnop qrs tuv wxy zz and then abcdefgh ijklmnopqrs tuv wxy zz"
    settings = {"gopher_repetition": NO_LINE_RULES | {"top_n_grams": (), "dup_n_grams": ((5, 0.15),)}}
    assert datatrove_chain("en", settings, text)[0] == "duplicated_5_n_grams"
    assert HeuristicJudge("en", settings).judge(text).reason == "duplicated_5_n_grams"


OTHER_SETTINGS = {
    "sentences instead of lines": {"c4": {"split_paragraph": False}, "fineweb": {}, "gopher_repetition": {}},
    "loose lines": {
        "c4": {
            "remove_citations": False,
            "filter_no_terminal_punct": False,
            "min_words_per_line": 0,
            "max_word_length": 15,
            "min_num_sentences": -1,
        },
        "fineweb": {"line_punct_exclude_zero": True, "stop_chars": (".", "?!", "")},
        "gopher_repetition": {"top_n_grams": ((1, 0.05), (3, 0.1)), "dup_n_grams": ((2, 0.05), (4, 0.1))},
    },
    "strict lines": {
        "c4": {"max_word_length": -5, "filter_policy": False, "min_num_sentences": 12},
        "fineweb": {"stop_chars": ()},
    },
    "other quality rules": {
        "gopher_quality": {
            "min_doc_words": None,
            "max_doc_words": 500,
            "min_avg_word_length": None,
            "max_ellipsis_lines_ratio": None,
            "max_bullet_lines_ratio": 0.1,
            "max_non_alpha_words_ratio": None,
            "min_stop_words": 5,
            "stop_words": ["the", "a", "の"],
        },
        "gopher_repetition": {"dup_line_frac": None},
    },
}


def judged(language: str, settings: dict[str, dict | None], text: str) -> tuple:
    verdict = HeuristicJudge(language, settings).judge(text)
    return verdict.reason, verdict.filter, verdict.text, verdict.line_stats


def outcome(chain, *args) -> tuple | str:
    """The chain's outcome, or the ZeroDivisionError datatrove raises on a document without words
    when min_doc_words is off (the judge computes the same ratios, so it raises there too)."""
    try:
        return chain(*args)
    except ZeroDivisionError:
        return "ZeroDivisionError"


@pytest.mark.parametrize("variant", OTHER_SETTINGS)
def test_other_settings_agree(variant):
    """Non-default arguments reach the other branches (sentence mode, stop strings, switched-off rules)."""
    settings = OTHER_SETTINGS[variant]
    targeted = [(case, "ja" if case == "Japanese" else "en", text) for case, text in TARGETED.items()]
    found = []
    for doc_id, language, text in sample_docs()[::3] + targeted:
        if outcome(judged, language, settings, text) != outcome(datatrove_chain, language, settings, text):
            found.append(doc_id)
    assert found == []


def test_settings_name_one_language():
    with pytest.raises(ValueError, match="language"):
        HeuristicJudge("en", {"c4": {"language": "ja"}})
