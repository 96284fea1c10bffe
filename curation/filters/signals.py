"""datatrove's four heuristic filters, decided from one word split per document.

datatrove's chain (Gopher quality, C4, FineWeb, Gopher repetition) splits a document into words
with spaCy twice (before and after C4's line edits) inside memory zones, which rebuild every
lexeme and keep no tokenization cache; it runs one spaCy call per kept line to count C4's
sentences, and builds every word n-gram as a string. HeuristicJudge reaches the same decisions,
reasons and C4 rewrite with:

- one split, on a private copy of datatrove's tokenizer for the language whose vocabulary and
  chunk cache persist (up to _MAX_LEXEMES words; past that, memory zones as datatrove);
- for spaCy's rule-based tokenizer (English), the split made line by line: it tokenizes each
  run of non-space characters on its own, and a line break is always a whitespace token that no
  special case spans, so a line has the same words alone as in the document. Short calls also
  fill the chunk cache, which spaCy stops filling within a call after its first special case.
  C4's rewritten text then takes the words of its kept lines; only a line that lost a citation
  is split again;
- for Japanese, Sudachi's surfaces directly (what spaCy's Japanese tokenizer makes its tokens
  of, minus the part-of-speech work), the rewritten text split again (Sudachi sees across lines);
- C4's sentences counted only when fewer lines are kept than sentences are needed (every kept
  line has at least one sentence);
- Gopher quality per distinct word, and n-grams as two 31-bit polynomial hashes of the characters
  datatrove's n-gram strings hold, the greedy duplicate scan run only when the n-grams seen before
  could add up to more than the threshold.
"""

from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import chain

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.utils.japanese_tokenizer import JapaneseTokenizer
from datatrove.utils.text import PUNCTUATION_SET, split_into_sentences
from datatrove.utils.word_tokenizers import (
    SpaCyTokenizer,
    chunk_text_on_bytes,
    load_tokenizer_assignments,
    strip_strings,
)
from spacy.tokenizer import Tokenizer

from curation.filters.registry import DATATROVE_CHAIN, HEURISTIC_FILTERS

FILTER_ORDER = DATATROVE_CHAIN  # the filters this module decides itself, in datatrove's order
# ~100 bytes a word, ~60 a cached chunk: the frequent ones are in long before these
_MAX_LEXEMES = 500_000
_MAX_CACHED_CHUNKS = 1_000_000
_JA_CHUNK_BYTES = 40_000  # SpaCyTokenizer._do_tokenize's pieces of Japanese text
# two primes below 2**31: products of residues fit in int64, and unlike hashes modulo 2**64,
# Thue-Morse-like strings do not collide
_MODULI = (2_147_483_647, 2_147_483_629)
_BASES = (1_000_003, 911_382_323)


@dataclass
class Verdict:
    """A document's outcome under the chain: why and by which filter it was dropped, or kept."""

    reason: str | None  # None: kept; else the reason datatrove's filter returns
    filter: str | None  # the registry name (curation.filters.registry) of the filter that dropped it
    text: str  # after C4's line edits when C4 kept the document, else the input
    line_stats: dict[str, int] = field(default_factory=dict)  # C4's per-line counters, summed


class _WordSplitter:
    """datatrove's split_into_words for one language, on a private tokenizer of the same kind."""

    def __init__(self, language: str):
        factories = load_tokenizer_assignments()  # what datatrove's load_word_tokenizer builds from
        if language not in factories:
            raise ValueError(f"datatrove has no word tokenizer for {language!r}")
        self.tokenizer = factories[language]()
        self.nlp = self.tokenizer.tokenizer if isinstance(self.tokenizer, SpaCyTokenizer) else None
        inner = self.nlp.tokenizer if self.nlp is not None else None
        self.rules = inner if isinstance(inner, Tokenizer) else None
        self.sudachi = inner.tokenizer if isinstance(inner, JapaneseTokenizer) else None
        if self.rules is not None:
            self.rules.max_cache_size = _MAX_CACHED_CHUNKS

    @property
    def by_line(self) -> bool:
        """Whether words are split line by line (see the module docstring)."""
        return self.rules is not None

    def lines(self, lines: list[str]) -> list[list[str]]:
        """Each line's words (by_line tokenizers): SpaCyTokenizer.word_tokenize, line by line."""
        zone = self.nlp.memory_zone() if len(self.nlp.vocab) > _MAX_LEXEMES else nullcontext()
        with zone:
            return [
                strip_strings([token.text for token in self.rules(line)]) if line.strip() else []
                for line in lines
            ]

    def text(self, text: str) -> list[str]:
        """A whole text's words (tokenizers that are not by_line)."""
        if self.sudachi is None:
            return self.tokenizer.word_tokenize(text)
        surfaces = []
        for piece in chunk_text_on_bytes(text, _JA_CHUNK_BYTES):
            morphemes = [morpheme.surface() for morpheme in self.sudachi.tokenize(piece)]
            # spaCy's tokens are these surfaces when they tile the text (else it aligns or fails)
            if "".join(morphemes) != piece:
                return self.tokenizer.word_tokenize(text)
            surfaces += morphemes
        return strip_strings(surfaces)


@cache
def _splitter(language: str) -> _WordSplitter:
    """One per language and process, shared by judges (its vocabulary and cache are the memory)."""
    return _WordSplitter(language)


class _Split:
    """A text and its words, split on first use (line by line for by_line tokenizers)."""

    def __init__(self, text: str, splitter: _WordSplitter, line_words: list[list[str]] | None = None):
        self.text = text
        self.splitter = splitter
        self.line_words = line_words  # by_line: the words of each line (given, or of `lines`)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def words(self) -> list[str]:
        if not self.splitter.by_line:
            return self.splitter.text(self.text)
        if self.line_words is None:
            self.line_words = self.splitter.lines(self.lines)
        return list(chain.from_iterable(self.line_words))


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _duplicates(items: list[str]) -> tuple[int, int]:
    """datatrove's find_duplicates: repeated items and their characters, first occurrences aside."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


def _powers(modulus: int, base: int, count: int) -> np.ndarray:
    """base**0 .. base**(count-1) modulo modulus, by doubling."""
    powers = np.ones(1, dtype=np.int64)
    while len(powers) < count:
        powers = np.concatenate((powers, powers * pow(base, len(powers), modulus) % modulus))
    return powers[:count]


class _Grams:
    """A text's word n-grams as 62-bit hashes of the strings datatrove builds for them.

    get_n_grams joins words with " ", find_all_duplicate with "" (so "ab"+"c" equals "a"+"bc"):
    each is a span of one joined string, hashed from that string's prefix sums.
    """

    def __init__(self, words: list[str]):
        self.words = words
        self.ends = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)), out=self.ends[1:])
        self.prefixes: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}

    def _spans(self, n: int, sep: str) -> tuple[np.ndarray, np.ndarray]:
        """Hash and length of each n-gram string (sep-joined), in order."""
        if sep not in self.prefixes:
            codes = _codes(sep.join(self.words)).astype(np.int64)
            tables = []
            for modulus, base in zip(_MODULI, _BASES):
                powers = _powers(modulus, base, len(codes) + 1)
                prefix = np.zeros(len(codes) + 1, dtype=np.int64)
                np.cumsum(codes * powers[:-1] % modulus, out=prefix[1:])
                tables.append((modulus, prefix % modulus, powers))
            self.prefixes[sep] = tables
        count = max(len(self.words) - n + 1, 0)
        first = np.arange(count)
        starts = self.ends[:count] + len(sep) * first
        stops = self.ends[n : n + count] + len(sep) * (first + n - 1)
        keys = np.zeros(count, dtype=np.int64)
        for modulus, prefix, powers in self.prefixes[sep]:
            # sum of c[t] * base**(t - start + len): the same for the same characters anywhere
            shifted = (prefix[stops] - prefix[starts]) % modulus * powers[len(prefix) - 1 - starts] % modulus
            keys = keys << 32 | shifted
        return keys, stops - starts

    def top_duplicate(self, n: int) -> int | None:
        """datatrove's find_top_duplicate(get_n_grams(words, n)), None without n-grams.

        Counter.most_common(1) returns the first inserted of the most frequent.
        """
        keys, lengths = self._spans(n, " ")
        if not len(keys):
            return None
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        most = counts.max()
        return int(lengths[first[counts == most].min()]) * int(most)

    def repeats_over(self, n: int, frac: float, length: int) -> bool:
        """find_all_duplicate(words, n) / length > frac.

        The greedy scan counts only n-grams seen before, so their total bounds it: scan only
        when that bound is over.
        """
        keys, lengths = self._spans(n, "")
        _, first, ids = np.unique(keys, return_index=True, return_inverse=True)
        if int(lengths[first[ids] != np.arange(len(ids))].sum()) / length <= frac:
            return False
        ids, lengths = ids.tolist(), lengths.tolist()
        seen, repeated, i = set(), 0, 0
        while i < len(ids):
            if ids[i] in seen:
                repeated += lengths[i]
                i += n
            else:
                seen.add(ids[i])
                i += 1
        return repeated / length > frac


class HeuristicJudge:
    """One language's settings for the registered filters; judges a text from one shared split.

    datatrove's four are decided here from that split; any filter registered after them is asked
    through its own `filter(doc)`, in registry order, on the text they leave.
    """

    def __init__(self, language: str, settings: dict[str, dict | None]):
        """settings: filter name -> datatrove keyword arguments (their `language`, if given, must be
        this one); a missing name or None switches that filter off."""
        self.language = language
        filters = {}
        for name, spec in HEURISTIC_FILTERS.items():
            if settings.get(name) is None:
                continue
            kwargs = ({"language": language} if "language" in spec.arguments else {}) | settings[name]
            if kwargs.get("language", language) != language:
                raise ValueError(f"{name}: language {kwargs['language']!r} in the settings of {language!r}")
            filters[name] = spec.filter_class(**kwargs)
        self.quality: GopherQualityFilter | None = filters.get("gopher_quality")
        self.c4: C4QualityFilter | None = filters.get("c4")
        self.fineweb: FineWebQualityFilter | None = filters.get("fineweb")
        self.repetition: GopherRepetitionFilter | None = filters.get("gopher_repetition")
        self.added: dict[str, BaseFilter] = {n: f for n, f in filters.items() if n not in FILTER_ORDER}
        stop_chars = self.fineweb.stop_chars if self.fineweb is not None else ()
        # a set lookup of the last character instead of ~170 endswith tests per line
        self.stop_set = frozenset(stop_chars) if all(len(c) == 1 for c in stop_chars) else None

    @cached_property
    def splitter(self) -> _WordSplitter:
        return _splitter(self.language)

    def judge(self, text: str) -> Verdict:
        split = _Split(text, self.splitter)
        if self.quality is not None and (reason := self._quality(split)):
            return Verdict(reason, "gopher_quality", text)
        line_stats = {}
        if self.c4 is not None:
            reason, line_stats, kept = self._c4(split)
            if reason:
                return Verdict(reason, "c4", text, line_stats)
            split = kept
        if self.fineweb is not None and (reason := self._fineweb(split)):
            return Verdict(reason, "fineweb", split.text, line_stats)
        if self.repetition is not None and (reason := self._repetition(split)):
            return Verdict(reason, "gopher_repetition", split.text, line_stats)
        for name, added in self.added.items():
            kept, reason = get_filter_result(added.filter(Document(split.text, "")))
            if not kept:
                return Verdict(reason or name, name, split.text, line_stats)
        return Verdict(None, None, split.text, line_stats)

    def _quality(self, split: _Split) -> str | None:
        """GopherQualityFilter.filter, counting per distinct word."""
        q, text, words = self.quality, split.text, split.words
        n_words = len(words)
        counts = Counter(words)
        non_symbol = {word: count for word, count in counts.items() if not PUNCTUATION_SET.issuperset(word)}
        n_non_symbol = sum(non_symbol.values())
        if q.min_doc_words and n_non_symbol < q.min_doc_words:
            return "gopher_short_doc"
        if q.max_doc_words and n_non_symbol > q.max_doc_words:
            return "gopher_long_doc"
        # np.mean of the lengths: an exact float sum divided once (nan when there are none)
        chars = sum(len(word) * count for word, count in non_symbol.items())
        avg_word_length = chars / n_non_symbol if n_non_symbol else float("nan")
        if q.min_avg_word_length and avg_word_length < q.min_avg_word_length:
            return "gopher_below_avg_threshold"
        if q.max_avg_word_length and avg_word_length > q.max_avg_word_length:
            return "gopher_above_avg_threshold"
        if q.max_symbol_word_ratio and text.count("#") / n_words > q.max_symbol_word_ratio:
            return "gopher_too_many_hashes"
        if (
            q.max_symbol_word_ratio
            and (text.count("...") + text.count("…")) / n_words > q.max_symbol_word_ratio
        ):
            return "gopher_too_many_ellipsis"
        lines = split.lines
        if (
            q.max_bullet_lines_ratio
            and sum(line.lstrip().startswith(("•", "-")) for line in lines) / len(lines)
            > q.max_bullet_lines_ratio
        ):
            return "gopher_too_many_bullets"
        if (
            q.max_ellipsis_lines_ratio
            and sum(line.rstrip().endswith(("...", "…")) for line in lines) / len(lines)
            > q.max_ellipsis_lines_ratio
        ):
            return "gopher_too_many_end_ellipsis"
        if q.max_non_alpha_words_ratio:
            alpha = sum(count for word, count in counts.items() if any(map(str.isalpha, word)))
            if alpha / n_words < q.max_non_alpha_words_ratio:
                return "gopher_below_alpha_threshold"
        if q.min_stop_words and len(q.stop_words.intersection(counts)) < q.min_stop_words:
            return "gopher_enough_stop_words"
        return None

    def _c4(self, split: _Split) -> tuple[str | None, dict[str, int], _Split]:
        """C4QualityFilter.filter: (reason, line counters, the kept text and its words)."""
        c4, text = self.c4, split.text
        by_line = c4.split_paragraph
        lines = split.lines if by_line else split_into_sentences(text, c4.language)
        reason, stats, kept = self._c4_lines(text, lines)
        if reason:
            return reason, stats, split
        if len(kept) < c4.min_num_sentences and (
            not by_line
            or sum(len(split_into_sentences(line, c4.language)) for _, line, _ in kept) < c4.min_num_sentences
        ):
            return "too_few_sentences", stats, split
        new_text = ("\n" if by_line else " ").join(line for _, line, _ in kept).strip()
        if new_text == text:
            return None, stats, split
        if not by_line or split.line_words is None:
            return None, stats, _Split(new_text, self.splitter)
        line_words = [
            self.splitter.lines([line])[0] if cut else split.line_words[index] for index, line, cut in kept
        ]
        return None, stats, _Split(new_text, self.splitter, line_words)

    def _c4_lines(
        self, text: str, lines: list[str]
    ) -> tuple[str | None, dict[str, int], list[tuple[int, str, bool]]]:
        """C4's line rules: (the reason the whole document goes, line counters, the kept lines as
        (line index, kept line, whether a citation was cut)).

        A rule that cannot fire anywhere in the text (no "{", no long word...) is not tried per
        line; citation removal can join words, so with citations the word rules are all tried.
        """
        c4 = self.c4
        lower = text.lower()
        cited = c4.remove_citations and CITATION_REGEX.search(text) is not None
        long_words = c4.max_word_length != -1 and max(map(len, text.split()), default=0) > c4.max_word_length
        lorem = c4.filter_lorem_ipsum and (cited or "lorem ipsum" in lower)
        javascript = c4.filter_javascript and (cited or "javascript" in lower)
        curly = c4.filter_curly_bracket and "{" in text
        policy = c4.filter_policy and (cited or any(p in lower for p in POLICY_SUBSTRINGS))
        need_words = long_words or c4.min_words_per_line > 0
        dropped = Counter()
        kept: list[tuple[int, str, bool]] = []
        reason = None
        for index, line in enumerate(lines):
            line = line.strip()
            words = line.split() if need_words else ()
            if long_words and any(len(word) > c4.max_word_length for word in words):
                dropped["line-filter-too_long_word"] += 1
                continue
            cut = False
            if cited:
                uncited = CITATION_REGEX.sub("", line)
                line, cut = uncited, len(uncited) != len(line)
            if c4.filter_no_terminal_punct and (
                not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)
            ):
                dropped["line-filter-no_terminal_punc"] += 1
                continue
            if len(words) < c4.min_words_per_line:
                dropped["line-filter-too_few_words"] += 1
                continue
            line_l = line.lower() if lorem or javascript or policy else ""
            if lorem and "lorem ipsum" in line_l:
                reason = "lorem_ipsum"
                break
            if javascript and "javascript" in line_l:
                dropped["line-filter-javascript"] += 1
                continue
            if curly and "{" in line:
                reason = "curly_bracket"
                break
            if policy and any(p in line_l for p in POLICY_SUBSTRINGS):
                dropped["line-filter-policy"] += 1
                continue
            kept.append((index, line, cut))
        n_total = index + 1 if reason else len(lines)
        stats = {"line-total": n_total} if n_total else {}
        if kept:
            stats["line-kept"] = len(kept)
        stats |= dropped
        return reason, stats, kept

    def _fineweb(self, split: _Split) -> str | None:
        """FineWebQualityFilter.filter."""
        fw, text = self.fineweb, split.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return "empty"
        if self.stop_set is not None:
            ratio = sum(line[-1] in self.stop_set for line in lines) / len(lines)
        else:
            ratio = sum(line.endswith(fw.stop_chars) for line in lines) / len(lines)
        if ratio < fw.line_punct_thr and not (ratio == 0 and fw.line_punct_exclude_zero):
            return "line_punct_ratio"
        if sum(len(line) <= fw.short_line_length for line in lines) / len(lines) > fw.short_line_threshold:
            return "short_line_ratio"
        if _duplicates(lines)[1] / (len(text) - text.count("\n")) > fw.char_duplicates_ratio:
            return "char_dup_ratio"
        if text.count("\n") / len(split.words) > fw.new_line_ratio:
            return "list_ratio"
        return None

    def _repetition(self, split: _Split) -> str | None:
        """GopherRepetitionFilter.filter, with n-grams hashed."""
        rep, text = self.repetition, split.text
        if not text:
            return "empty"
        paragraphs = rep.paragraph_exp.split(text.strip())
        repeats, chars = _duplicates(paragraphs)
        if rep.dup_para_frac and repeats / len(paragraphs) > rep.dup_para_frac:
            return "dup_para_frac"
        if rep.dup_para_char_frac and chars / len(text) > rep.dup_para_char_frac:
            return "dup_para_char_frac"
        lines = rep._line_splitter.split(text)
        repeats, chars = _duplicates(lines)
        if rep.dup_line_frac and repeats / len(lines) > rep.dup_line_frac:
            return "dup_line_frac"
        if rep.dup_line_char_frac and chars / len(text) > rep.dup_line_char_frac:
            return "dup_line_char_frac"
        grams = _Grams(split.words)
        for n, frac in rep.top_n_grams:
            top = grams.top_duplicate(n)
            if top is not None and top / len(text) > frac:
                return f"top_{n}_gram"
        for n, frac in rep.dup_n_grams:
            if grams.repeats_over(n, frac, len(text)):
                return f"duplicated_{n}_n_grams"
        return None
