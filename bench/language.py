"""Language ID accuracy on English and Japanese paragraphs: whole-text scoring against line votes.

Writes bench/results/language.json. Paragraphs come from real documents whose language is known:
the embedded sample's English and Japanese manuals (GnuCash, Debian handbook, Python docs) and,
when present, the kit's earnings calls and Wikipedia. A paragraph counts as Japanese when most of
its letters are kana or kanji, as English when its source is English; shorter ones are skipped.
  python bench/language.py
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

from datatrove.data import Document

from curation.extractors import HtmlExtractor
from curation.filters import OfflineLanguageFilter

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
KIT = Path(os.environ.get("SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results"
MIN_CHARS = 150
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
LETTERS = re.compile(r"[^\W\d_]")


def html_paragraphs(folder: Path, limit: int) -> list[str]:
    out = []
    for page in sorted(folder.glob("*.html"))[:limit]:
        text, _ = HtmlExtractor().extract(page.read_bytes())
        out += [p for p in text.split("\n") if len(p) >= MIN_CHARS]
    return out


def kit_paragraphs(name: str, limit: int) -> list[str]:
    path = KIT / "corpus" / name
    if not path.is_file():
        return []
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            out += [p for p in json.loads(line)["text"].split("\n") if len(p) >= MIN_CHARS]
            if len(out) >= limit:
                break
    return out[:limit]


def labelled() -> dict[str, list[str]]:
    english = (
        html_paragraphs(SAMPLES / "finance" / "gnucash" / "en", 60)
        + html_paragraphs(SAMPLES / "general" / "debian-handbook" / "en", 40)
        + html_paragraphs(SAMPLES / "general" / "python", 60)
        + kit_paragraphs("finance-transcripts.jsonl.gz", 1000)
        + kit_paragraphs("general-wiki.jsonl.gz", 1000)
    )
    japanese = html_paragraphs(SAMPLES / "finance" / "gnucash" / "ja", 60) + html_paragraphs(
        SAMPLES / "general" / "debian-handbook" / "ja", 60
    )

    def mostly_japanese(p: str) -> bool:
        return len(JAPANESE.findall(p)) > 0.5 * len(LETTERS.findall(p))

    return {
        "en": [p for p in english if not JAPANESE.search(p)],
        "ja": [p for p in japanese if mostly_japanese(p)],
    }


def accuracy(lid: OfflineLanguageFilter, paragraphs: dict[str, list[str]], kind: str) -> dict:
    out = {}
    for truth, texts in paragraphs.items():
        predicted = Counter()
        start = time.perf_counter()
        for text in texts:
            doc = Document(text, "p", metadata={"kind": kind})
            kept = lid.filter(doc) is True
            predicted[doc.metadata.get("language") if kept else "dropped"] += 1
        seconds = time.perf_counter() - start
        out[truth] = {
            "paragraphs": len(texts),
            "accuracy": round(predicted[truth] / max(1, len(texts)), 4),
            "predicted": dict(predicted.most_common()),
            "paragraphs_per_s": round(len(texts) / seconds, 1),
        }
    return out


def main() -> None:
    paragraphs = labelled()
    lid = OfflineLanguageFilter(["en", "ja"])
    result = {
        "min_chars": MIN_CHARS,
        "kit_present": (KIT / "MANIFEST.sha256").is_file(),
        "web_whole_text": accuracy(lid, paragraphs, "web"),
        "document_line_votes": accuracy(lid, paragraphs, "document"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "language.json").write_text(json.dumps(result, indent=2))
    print(
        json.dumps(
            {
                k: {lang: v["accuracy"] for lang, v in r.items()}
                for k, r in result.items()
                if isinstance(r, dict)
            }
        )
    )
    print(f"wrote {RESULTS / 'language.json'}")


if __name__ == "__main__":
    main()
