"""The tokenizer audit: how many tokens each tokenizer spends on each corpus and language.

An English-centric tokenizer spends several tokens per Japanese character, so Japanese training and
evaluation cost more and a context holds less text: measured here before choosing a tokenizer or
extending one. Written to `corpus/tokenizers/audit.json` and `audit.png` by `python -m curation
tokenizers RECIPE` and by the corpus report.
"""

from __future__ import annotations

import importlib.util
import json
import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from pathlib import Path

from contracts.layout import RunLayout
from contracts.models import resolve_model
from curation.config import CorpusRecipe
from curation.report.stats import records
from figures import new_figure, save_figure

MAX_DOCS = 200  # documents sampled per corpus x language
MAX_CHARS = 200_000  # characters sampled per corpus x language
DOC_CHARS = 10_000  # characters read of one document, so one long filing is not the whole sample
TOP_WORDS = 10

WORDS = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]+"  # kanji
    r"|[\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]+"  # katakana (with ー and half-width forms)
    r"|[\u3040-\u309f]+"  # hiragana
    r"|[^\W\d_\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f々〆]+"
)
"""Words as the audit counts them. Scripts written with spaces give runs of letters (digits and
punctuation are not words). Japanese has no spaces, so a run of one script (kanji, katakana or
hiragana) is a word: 日本銀行は → 日本銀行, は. Applied to every document, whatever its language."""


def audit_sources(recipe: CorpusRecipe) -> dict[str, str]:
    """The tokenizers a recipe audits, by label: the corpus's, the model's when it has its own (the
    folder or hub id its reference names: `contracts.models`), and `tokenizer.audit`'s. A model not
    there yet (not converted, not trained) is reported as not found by the audit, not fatal."""
    layout = recipe.layout
    sources = {"corpus": str(layout.tokenizer)}
    model = recipe.train.model if recipe.train else None
    if model:
        sources["model"] = resolve_model(model, layout, check=False).path_or_id
    for source in recipe.tokenizer.audit:
        path = Path(source)
        name = path.stem if path.suffix in (".json", ".model") else path.name
        name = path.parent.name if name == "tokenizer" else name  # x/tokenizer.json: x
        label, i = name, 1
        while label in sources:  # two listed `gpt2` folders: gpt2, gpt2-2
            i += 1
            label = f"{name}-{i}"
        sources[label] = source
    return sources


def load_tokenizer(source: str):
    """A fast (Rust-backed) transformers tokenizer from a folder, a tokenizer.json, GPT-2's vocab.json
    and merges.txt, or a SentencePiece .model. Local files only: the audit runs offline (a hub id is
    reported as not found)."""
    from transformers import AutoTokenizer, GPT2Tokenizer, PreTrainedTokenizerFast, TokenizersBackend

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if path.suffix == ".model":
        if importlib.util.find_spec("sentencepiece") is None:
            raise ModuleNotFoundError("reading a SentencePiece .model needs `sentencepiece`: not installed")
        tokenizer = TokenizersBackend(**TokenizersBackend.convert_to_native_format(vocab_file=str(path)))
    elif path.suffix == ".json":
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path))
    elif (path / "vocab.json").is_file() and not (path / "tokenizer_config.json").is_file():
        tokenizer = GPT2Tokenizer.from_pretrained(str(path))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise TypeError(f"{type(tokenizer).__name__} is not backed by the `tokenizers` library")
    return tokenizer


def sample_texts(docs: Path, max_docs: int, max_chars: int, doc_chars: int) -> dict[tuple[str, str], list]:
    """Texts per (corpus, language) of `docs/<corpus>/<split>/`, read in file order (train, then
    val) up to the caps: the same sample for every tokenizer. The language is the documents'
    `language` metadata (curation.filters.language)."""
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    chars: Counter = Counter()
    for folder in sorted(p for p in docs.glob("*/*") if p.is_dir()):
        corpus = folder.parent.name
        for doc in records(folder):
            key = (corpus, doc["metadata"].get("language", "?"))
            room = min(doc_chars, max_chars - chars[key])
            if room <= 0 or len(texts[key]) >= max_docs or not doc["text"]:
                continue
            texts[key].append(doc["text"][:room])
            chars[key] += len(texts[key][-1])
    return dict(sorted(texts.items()))


class TokenizerAudit:
    """Per tokenizer and corpus x language: tokens per character and per UTF-8 byte, the share of
    byte-fallback tokens (tokens that are not whole characters: a byte-level BPE's partial UTF-8
    sequences, SentencePiece's `<0xNN>` pieces), of unknown tokens, of words split into several
    tokens, and the most frequent such words. A tokenizer that does not load is reported, not fatal."""

    def __init__(
        self,
        sources: dict[str, str],
        max_docs: int = MAX_DOCS,
        max_chars: int = MAX_CHARS,
        doc_chars: int = DOC_CHARS,
        top_words: int = TOP_WORDS,
    ):
        self.sources = sources
        self.max_docs = max_docs
        self.max_chars = max_chars
        self.doc_chars = doc_chars
        self.top_words = top_words

    def run(self, layout: RunLayout) -> dict:
        groups = sample_texts(layout.docs, self.max_docs, self.max_chars, self.doc_chars)
        tokenizers: dict[str, dict] = {}
        rows = []
        for label, source in self.sources.items():
            try:
                tokenizer = load_tokenizer(source)
            except Exception as e:  # any loader failure is a finding of the audit
                tokenizers[label] = {"source": source, "error": f"{type(e).__name__}: {e}".splitlines()[0]}
                continue
            tokenizers[label] = {"source": source, "vocab_size": len(tokenizer)}
            for (corpus, language), texts in groups.items():
                rows.append(
                    {"corpus": corpus, "language": language, "tokenizer": label}
                    | self.measure(tokenizer, texts)
                )
        sample = {"max_docs": self.max_docs, "max_chars": self.max_chars, "doc_chars": self.doc_chars}
        return {"recipe": layout.name, "sample": sample, "tokenizers": tokenizers, "rows": rows}

    def measure(self, tokenizer, texts: list[str]) -> dict:
        backend = tokenizer.backend_tokenizer
        whole: dict[int, bool] = {}  # token id -> decodes alone to whole characters (no U+FFFD)
        tokens = fallback = unknown = words = split_words = 0
        split: Counter = Counter()
        pieces: Counter = Counter()
        for text, encoding in zip(texts, backend.encode_batch(texts, add_special_tokens=False)):
            ids = encoding.ids
            tokens += len(ids)
            unknown += ids.count(tokenizer.unk_token_id) if tokenizer.unk_token_id is not None else 0
            for i in ids:
                if i not in whole:
                    whole[i] = "\ufffd" not in backend.decode([i], skip_special_tokens=False)
                fallback += not whole[i]
            starts = [start for start, _ in encoding.offsets]
            ends = [end for _, end in encoding.offsets]
            for word in WORDS.finditer(text):
                # the tokens overlapping the word: from the first ending after its start to the last
                # starting before its end (a token spanning two words counts for both)
                n = bisect_left(starts, word.end()) - bisect_right(ends, word.start())
                words += 1
                if n > 1:
                    split_words += 1
                    split[word.group()] += 1
                    pieces[word.group()] += n
        chars = sum(map(len, texts))
        n_bytes = sum(len(t.encode()) for t in texts)
        return {
            "documents": len(texts),
            "chars": chars,
            "bytes": n_bytes,
            "tokens": tokens,
            "tokens_per_char": round(tokens / max(1, chars), 4),
            "tokens_per_byte": round(tokens / max(1, n_bytes), 4),
            "byte_fallback_share": round(fallback / max(1, tokens), 4),
            "unknown_share": round(unknown / max(1, tokens), 4),
            "multi_token_word_share": round(split_words / max(1, words), 4),
            "multi_token_words": [
                {"word": w, "count": n, "tokens": round(pieces[w] / n, 1)}
                for w, n in split.most_common(self.top_words)
            ],
        }


def fertility_figure(audit: dict):
    """Tokens per character, one bar per tokenizer, grouped by corpus x language."""
    groups = sorted({(r["corpus"], r["language"]) for r in audit["rows"]})
    labels = list(dict.fromkeys(r["tokenizer"] for r in audit["rows"]))
    value = {(r["corpus"], r["language"], r["tokenizer"]): r["tokens_per_char"] for r in audit["rows"]}
    fig, ax = new_figure(max(6.0, 1.2 * len(groups) * max(1, len(labels)) ** 0.5 + 2), 3.4)
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, [value.get((*g, label), 0) for g in groups], width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(groups)), [f"{c}/{lang}" for c, lang in groups])
    ax.set_ylabel("tokens per character")
    ax.set_title(f"tokenizer fertility: {audit['recipe']}")
    if labels:
        ax.legend(fontsize=8)
    return fig


def write_audit(audit: dict, layout: RunLayout) -> None:
    layout.tokenizer_audits.mkdir(parents=True, exist_ok=True)
    layout.tokenizer_audit.write_text(json.dumps(audit, indent=2, ensure_ascii=False))
    save_figure(fertility_figure(audit), layout.tokenizer_audit_plot)
