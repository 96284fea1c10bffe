"""Heuristic filters benchmark: HeuristicJudge against datatrove's four filters chained.

Writes bench/results/filters.json: per settings (datatrove's stock defaults, the project's
web and documentation settings) and language, documents, MB, seconds, docs/s and MB/s of both, the speed
ratio, the agreement rate and every disagreement. Not a test: numbers depend on the machine; read
the ratios. Extracted texts are cached under out/bench-cache/.
  python bench/filters.py [--transcripts N] [--sec-filings N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from collections import Counter, defaultdict
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from curation.extractors import HtmlExtractor, PdfExtractor, Rejected
from curation.filters import signals
from curation.filters.heuristics import DEFAULT_SETTINGS
from curation.filters.signals import FILTER_ORDER, HeuristicJudge

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
KIT = Path(os.environ.get("SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "out" / "bench-cache"
DATATROVE = {
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
}
SETTINGS = {
    "stock": lambda language: {name: {} for name in FILTER_ORDER},
    "web": lambda language: {name: DEFAULT_SETTINGS["web"][language].get(name, {}) for name in FILTER_ORDER},
    "documentation": lambda language: {
        name: DEFAULT_SETTINGS["document"][language].get(name, {}) for name in FILTER_ORDER
    },
}

Doc = tuple[str, str, str, str]  # source, id, language, text


def cached(name: str, make) -> list[Doc]:
    """Extracted documents, from out/bench-cache/<name>.jsonl.gz when a previous run left them."""
    path = CACHE / f"{name}.jsonl.gz"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            for doc in make():
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with gzip.open(path, "rt") as f:
        return [tuple(json.loads(line)) for line in f]


def extracted(source: str, base: Path, paths: list[Path]):
    """(source, id, language, text) of each file its extractor accepts (Japanese by folder name)."""
    html, pdf = HtmlExtractor(), PdfExtractor(timeout=600)
    for path in paths:
        try:
            text, _ = (pdf if path.suffix == ".pdf" else html).extract(path.read_bytes())
        except Rejected:
            continue
        doc_id = path.relative_to(base)
        yield source, str(doc_id), "ja" if "ja" in doc_id.parts else "en", text


def sample_docs() -> list[Doc]:
    """Every HTML page and PDF of the embedded sample but the deliberately bad files."""
    paths = sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.suffix in (".html", ".pdf") and p.relative_to(SAMPLES).parts[0] in ("finance", "general")
    )
    return cached("sample", lambda: extracted("sample", SAMPLES, paths))


def kit_docs(transcripts: int, sec_filings: int) -> list[Doc]:
    """cc-sample, the Wikipedia pages (redirect stubs included), transcripts and SEC filings."""
    corpus = KIT / "corpus"
    if not corpus.is_dir():
        return []
    docs = []
    for name, count in (("cc-sample", None), ("general-wiki", None), ("finance-transcripts", transcripts)):
        with gzip.open(corpus / f"{name}.jsonl.gz", "rt") as f:
            for i, line in enumerate(f):
                if count is not None and i == count:
                    break
                record = json.loads(line)
                docs.append((name, record["id"], "en", record["text"]))
    pdfs = sorted((corpus / "sec-filings").glob("*.pdf"))[:sec_filings]
    return docs + cached(f"sec-filings-{sec_filings}", lambda: extracted("sec-filings", corpus, pdfs))


def datatrove_chain(filters: list, doc_id: str, text: str) -> tuple[str | None, str]:
    """(reason, final text): C4 rewrites doc.text when it keeps the document."""
    doc = Document(text, doc_id)
    for step in filters:
        result = step.filter(doc)
        if result is not True:
            return result[1], doc.text
    return None, doc.text


def why(expected: tuple[str | None, str], verdict: signals.Verdict) -> str:
    if expected[0] != verdict.reason:
        return "different reason"
    return "same reason, different text after C4"


def run(docs: list[Doc], settings_name: str) -> dict:
    """Both sides on every document, each language's tokenizers loaded first (not timed) and ours
    with an empty vocabulary and chunk cache (no head start from the previous settings)."""
    out = {}
    for language in sorted({doc[2] for doc in docs}):
        group = [doc for doc in docs if doc[2] == language]
        signals._splitter.cache_clear()
        settings = SETTINGS[settings_name](language)
        filters = [DATATROVE[name](**({"language": language} | settings[name])) for name in FILTER_ORDER]
        judge = HeuristicJudge(language, settings)
        datatrove_chain(filters, "warm-up", "Loads the tokenizer.")
        judge.judge("Loads the tokenizer.")
        seconds = defaultdict(lambda: [0.0, 0.0])
        sizes = Counter()
        counts = Counter()
        reasons = Counter()
        disagreements = []
        for source, doc_id, _, text in group:
            start = time.perf_counter()
            expected = datatrove_chain(filters, doc_id, text)
            middle = time.perf_counter()
            verdict = judge.judge(text)
            end = time.perf_counter()
            for key in (source, "all"):
                seconds[key][0] += middle - start
                seconds[key][1] += end - middle
                sizes[key] += len(text.encode())
                counts[key] += 1
            reasons[verdict.reason or "kept"] += 1
            if expected != (verdict.reason, verdict.text):
                disagreements.append(
                    {
                        "id": f"{source}/{doc_id}",
                        "datatrove": expected[0],
                        "ours": verdict.reason,
                        "why": why(expected, verdict),
                    }
                )
        out[language] = summary(counts["all"], sizes["all"], *seconds.pop("all")) | {
            "agreement": round(1 - len(disagreements) / len(group), 4),
            "disagreements": disagreements,
            "reasons": dict(reasons.most_common()),
            "sources": {key: summary(counts[key], sizes[key], *pair) for key, pair in seconds.items()},
        }
    return out


def summary(documents: int, size: int, datatrove_s: float, ours_s: float) -> dict:
    mb = size / 1e6
    return {
        "documents": documents,
        "MB": round(mb, 3),
        "datatrove": {
            "seconds": round(datatrove_s, 2),
            "docs_per_s": round(documents / datatrove_s, 1),
            "MB_per_s": round(mb / datatrove_s, 3),
        },
        "HeuristicJudge": {
            "seconds": round(ours_s, 2),
            "docs_per_s": round(documents / ours_s, 1),
            "MB_per_s": round(mb / ours_s, 3),
        },
        "speed_ratio": round(datatrove_s / ours_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transcripts", type=int, default=150, help="first N earnings-call transcripts")
    parser.add_argument("--sec-filings", type=int, default=5, help="first N SEC filing PDFs")
    args = parser.parse_args()
    print("extracting (or reading out/bench-cache/) ...", flush=True)
    docs = sample_docs() + kit_docs(args.transcripts, args.sec_filings)
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "documents": dict(Counter(source for source, *_ in docs)),
    }
    for settings_name in SETTINGS:
        print(f"{settings_name} settings ...", flush=True)
        result[settings_name] = run(docs, settings_name)
        for language, row in result[settings_name].items():
            print(
                f"  {language}: {row['documents']} docs {row['MB']} MB, datatrove "
                f"{row['datatrove']['seconds']}s, ours {row['HeuristicJudge']['seconds']}s "
                f"(x{row['speed_ratio']}), agreement {row['agreement']}",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "filters.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
