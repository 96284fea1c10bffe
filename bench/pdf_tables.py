"""PDF table extraction on real SEC filings: speed, and the cheap table detector against find_tables.

Over ../shared/data/corpus/sec-filings/*.pdf (or the first `--files`): pages per second of the PDF
extractor without and with tables; pages passing the cheap detector (lines of figures in the text
blocks) and pages where the row builder found a table; the share of characters in tables. On a
sample of pages (`--sample` per filing, seeded), pymupdf's `find_tables()` is the reference:
precision and recall of the cheap detector, of the row builder and of a ruling-lines detector
(horizontal segments from `get_drawings()`), and the speed find_tables would give if it ran on
every candidate page. Writes bench/results/pdf_tables.json; skips when the kit is absent.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import pymupdf

from curation.extractors.pdf import PdfExtractor, has_table_evidence, page_tables

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FILINGS = ROOT.parent / "shared" / "data" / "corpus" / "sec-filings"
FLAGS = pymupdf.TEXTFLAGS_BLOCKS | pymupdf.TEXT_DEHYPHENATE
MIN_RULES = 10  # horizontal segments on a page for the ruling-lines detector


def extraction_speed(payloads: dict[str, bytes], tables: bool) -> tuple[dict, dict]:
    """Pages per second of the extractor (best of two passes: the machine is shared) and its output."""
    extractor = PdfExtractor(tables=tables)
    best, outputs = float("inf"), {}
    for _ in range(2):
        start = time.perf_counter()
        outputs = {name: extractor.extract(payload) for name, payload in payloads.items()}
        best = min(best, time.perf_counter() - start)
    pages = sum(meta["page_count"] for _, meta in outputs.values())
    return {"seconds": round(best, 2), "pages_per_s": round(pages / best, 1)}, outputs


def ruling_lines(page) -> bool:
    """The detector the brief suggested first: many horizontal rules or thin rectangles."""
    rules = 0
    for path in page.get_drawings():
        for item in path["items"]:
            if item[0] == "l" and abs(item[1].y - item[2].y) < 1:
                rules += 1
            elif item[0] == "re" and item[1].height < 3 and item[1].width > 10:
                rules += 1
    return rules >= MIN_RULES


def page_detections(page) -> dict:
    textpage = page.get_textpage(flags=FLAGS)
    blocks = [b for b in page.get_text("blocks", textpage=textpage) if b[6] == 0]
    candidate = has_table_evidence(blocks)
    built = candidate and bool(page_tables(page.get_text("words", textpage=textpage)))
    return {"candidate": candidate, "row_builder": built}


def find_tables_reference(page) -> tuple[bool, float]:
    start = time.perf_counter()
    found = bool(page.find_tables().tables)
    return found, time.perf_counter() - start


def precision_recall(rows: list[dict], detector: str) -> dict:
    tp = sum(r[detector] and r["find_tables"] for r in rows)
    predicted = sum(r[detector] for r in rows)
    actual = sum(r["find_tables"] for r in rows)
    return {
        "pages_detected": predicted,
        "precision": round(tp / predicted, 3) if predicted else None,
        "recall": round(tp / actual, 3) if actual else None,
    }


def detector_study(payloads: dict[str, bytes], per_file: int) -> dict:
    """Every page through the cheap detectors; a seeded sample of pages also through find_tables."""
    rng = random.Random(0)
    pages = candidates = built = 0
    sample: list[dict] = []
    for name, payload in payloads.items():
        with pymupdf.open(stream=payload, filetype="pdf") as doc:
            chosen = set(rng.sample(range(doc.page_count), min(per_file, doc.page_count)))
            for page in doc:
                found = page_detections(page)
                pages += 1
                candidates += found["candidate"]
                built += found["row_builder"]
                if page.number in chosen:
                    reference, seconds = find_tables_reference(page)
                    sample.append(
                        found
                        | {"file": name, "page": page.number, "ruling_lines": ruling_lines(page)}
                        | {"find_tables": reference, "find_tables_s": seconds}
                    )
    return {"pages": pages, "candidates": candidates, "row_builder": built, "sample": sample}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=None, help="first N filings (default: all)")
    parser.add_argument("--sample", type=int, default=6, help="pages per filing checked with find_tables")
    args = parser.parse_args()
    paths = sorted(FILINGS.glob("*.pdf"))[: args.files]
    if not paths:
        print(f"skipped: no SEC filings at {FILINGS}")
        return
    payloads = {p.name: p.read_bytes() for p in paths}
    print(f"{len(paths)} filings: extraction without and with tables ...", flush=True)
    plain, _ = extraction_speed(payloads, tables=False)
    tabled, outputs = extraction_speed(payloads, tables=True)
    print("detectors, and find_tables on the sample ...", flush=True)
    study = detector_study(payloads, args.sample)
    sample = study["sample"]
    find_s = sum(r["find_tables_s"] for r in sample) / len(sample)
    candidate_share = study["candidates"] / study["pages"]
    chars = sum(len(text) for text, _ in outputs.values())
    table_chars = sum(e - s for _, meta in outputs.values() for s, e in meta["tables"])
    result = {
        "filings": len(paths),
        "pages": study["pages"],
        "pages_per_s_without_tables": plain["pages_per_s"],
        "pages_per_s_with_tables": tabled["pages_per_s"],
        "seconds_without_tables": plain["seconds"],
        "seconds_with_tables": tabled["seconds"],
        "candidate_pages": study["candidates"],
        "candidate_share": round(candidate_share, 3),
        "pages_with_rebuilt_tables": study["row_builder"],
        "tables": sum(len(meta["tables"]) for _, meta in outputs.values()),
        "table_char_share": round(table_chars / chars, 3),
        "sample_pages": len(sample),
        "sample_pages_find_tables_found": sum(r["find_tables"] for r in sample),
        "find_tables_pages_per_s": round(1 / find_s, 2),
        # what the extractor would run at with find_tables on every candidate page
        "projected_pages_per_s_find_tables_on_candidates": round(
            study["pages"] / (plain["seconds"] + study["candidates"] * find_s), 1
        ),
        "vs_find_tables": {
            detector: precision_recall(sample, detector)
            for detector in ("candidate", "row_builder", "ruling_lines")
        },
        "disagreements": [
            {k: r[k] for k in ("file", "page", "candidate", "row_builder", "find_tables")}
            for r in sample
            if r["candidate"] != r["find_tables"]
        ],
        "machine": {"processor": platform.processor() or platform.machine(), "pymupdf": pymupdf.VersionBind},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pdf_tables.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "disagreements"}, indent=2))
    print(f"wrote {RESULTS / 'pdf_tables.json'}")


if __name__ == "__main__":
    main()
