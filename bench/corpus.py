"""Corpus-stage benchmark: our steps against the bare library calls they wrap, and scaling.

Writes bench/results/corpus.json. Not a test: numbers depend on the machine; read the ratios.
  python bench/corpus.py [--skip-scaling]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from datatrove.data import Document, Media

from curation.config import load_corpus_recipe

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
KIT = Path(os.environ.get("SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results"


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def raw_docs(payloads: dict[str, bytes], fmt: str) -> list[Document]:
    """Documents as the readers make them, from bytes already in memory (as the bare calls get them)."""
    return [
        Document(
            "", name, media=[Media(id=name, type=3, url=name, media_bytes=data)], metadata={"format": fmt}
        )
        for name, data in payloads.items()
    ]


def rate(n: float, seconds: float) -> float:
    return round(n / seconds, 2) if seconds else 0.0


def bench_pdf() -> dict:
    import pymupdf

    from curation.extractors import PdfExtractor

    paths = sorted((SAMPLES / "finance").rglob("*.pdf"))
    pages = sum(pymupdf.open(p).page_count for p in paths)
    mb = sum(p.stat().st_size for p in paths) / 1e6

    payloads = {str(p): p.read_bytes() for p in paths}

    def bare():
        for payload in payloads.values():
            with pymupdf.open(stream=payload, filetype="pdf") as doc:
                for page in doc:
                    page.get_text()

    step = PdfExtractor(timeout=600)
    ours = timed(lambda: list(step.run(iter(raw_docs(payloads, "pdf")))), repeat=3)
    bare_s = timed(bare, repeat=3)
    return {
        "documents": len(paths),
        "pages": pages,
        "MB": round(mb, 2),
        "bare_get_text": {
            "seconds": round(bare_s, 3),
            "pages_per_s": rate(pages, bare_s),
            "docs_per_s": rate(len(paths), bare_s),
        },
        "PdfExtractor_step": {
            "seconds": round(ours, 3),
            "pages_per_s": rate(pages, ours),
            "docs_per_s": rate(len(paths), ours),
            "MB_per_s": rate(mb, ours),
        },
        "overhead_ratio": round(ours / bare_s, 2),
    }


def bench_html() -> dict:
    """Every sample page: a step's fixed cost (its sandbox process) is paid once per task, so a
    small set would overstate it against a fast extractor."""
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    from curation.extractors import HtmlExtractor

    paths = sorted(p for p in SAMPLES.glob("*/**/*.html") if "bad" not in p.relative_to(SAMPLES).parts)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    payloads = {str(p): p.read_bytes() for p in paths}
    bare_t = timed(
        lambda: [
            trafilatura.extract(
                data.decode("utf-8", errors="replace"),
                favor_precision=True,
                include_comments=False,
                deduplicate=True,
            )
            for data in payloads.values()
        ],
        repeat=2,
    )
    bare_r = timed(
        lambda: [
            extract_plain_text(data.decode("utf-8", errors="replace"), main_content=True)
            for data in payloads.values()
        ],
        repeat=3,
    )
    out = {
        "documents": len(paths),
        "MB": round(mb, 2),
        "bare_trafilatura_extract": {"seconds": round(bare_t, 3), "docs_per_s": rate(len(paths), bare_t)},
        "bare_resiliparse_extract": {"seconds": round(bare_r, 3), "docs_per_s": rate(len(paths), bare_r)},
    }
    for backend, bare in (("trafilatura", bare_t), ("resiliparse", bare_r)):
        step = HtmlExtractor(backend, timeout=600)
        ours = timed(
            lambda step=step: list(step.run(iter(raw_docs(payloads, "html")))),
            repeat=2 if bare is bare_t else 3,
        )
        out[f"HtmlExtractor_step_{backend}"] = {
            "seconds": round(ours, 3),
            "docs_per_s": rate(len(paths), ours),
            "MB_per_s": rate(mb, ours),
            "overhead_ratio": round(ours / bare, 2),
        }
    return out


def _busy_loop(_=None) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i * i
    return time.perf_counter() - start


def cpu_scaling_ceiling() -> dict:
    """What 2 processes give over 1 on this machine for pure CPU work: the ceiling for 2 workers
    (shared or virtual cores often give well under 2x)."""
    import multiprocessing

    one = min(_busy_loop() for _ in range(2))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        two = min(max(pool.map(_busy_loop, [0, 1])) for _ in range(2))
    return {
        "one_process_s": round(one, 2),
        "two_processes_s": round(two, 2),
        "ceiling": round(2 * one / two, 2),
    }


def kept_texts(limit: int = 400) -> list[str]:
    texts = []
    for path in sorted((ROOT / "out" / "bench-1w" / "corpus" / "docs").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts[:limit]


def bench_minhash(texts: list[str]) -> dict:
    import numpy as np
    from datasketch import MinHash
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    from curation.dedup import FastMinhashSignature

    ours = FastMinhashSignature(tempfile.mkdtemp(), MinhashConfig(), 5, ["ja"])
    stock = MinhashDedupSignature(tempfile.mkdtemp(), MinhashConfig())
    n = len(texts)
    ours_s = timed(lambda: [ours.get_signature(ours.get_shingles(t)) for t in texts])
    stock_s = (
        timed(lambda: [stock.get_signature(stock.get_shingles(t)) for t in texts[:100]]) * n / min(n, 100)
    )

    def datasketch():
        for t in texts:
            words = t.lower().split()
            m = MinHash(num_perm=112)
            m.update_batch([" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))])

    ds_s = timed(datasketch)
    return {
        "documents": n,
        "mean_chars": int(np.mean([len(t) for t in texts])),
        "FastMinhashSignature_docs_per_s": rate(n, ours_s),
        "datatrove_MinhashDedupSignature_docs_per_s": rate(n, stock_s),
        "datasketch_docs_per_s": rate(n, ds_s),
    }


def bench_tokenizer(texts: list[str]) -> dict:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(ROOT / "out" / "bench-1w" / "corpus" / "tokenizer" / "tokenizer.json"))
    seconds = timed(lambda: tok.encode_batch(texts))
    n_tokens = sum(len(e.ids) for e in tok.encode_batch(texts))
    return {"tokens": n_tokens, "tokens_per_s": rate(n_tokens, seconds)}


def run_pipeline(recipe_path: Path, name: str, workers: int, overrides: dict | None = None) -> dict:
    recipe = yaml.safe_load(recipe_path.read_text())
    recipe["name"] = name
    recipe["executor"] = {"type": "local", "tasks": 4, "workers": workers}
    recipe.update(overrides or {})
    shutil.rmtree(ROOT / "out" / name, ignore_errors=True)
    path = Path(tempfile.mkdtemp()) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    input_mb = (
        sum(
            p.stat().st_size
            for src in load_corpus_recipe(path).inputs
            for p in (Path(src.path).glob(src.glob) if src.glob else [Path(src.path)])
            if p.is_file()
        )
        / 1e6
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "curation", "run", str(path)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    stats = json.loads((ROOT / "out" / name / "corpus" / "stats.json").read_text())
    read = sum(s["kept"] for s in stats["steps"] if s["kind"] == "reader" and s["stage"] == "extract")
    return {
        "workers": workers,
        "seconds": round(seconds, 1),
        "documents_read": read,
        "input_MB": round(input_mb, 2),
        "docs_per_s": rate(read, seconds),
        "MB_per_s": rate(input_mb, seconds),
        "stage_seconds": stats["stage_seconds"],
        "steps": step_rates(stats["steps"]),
    }


def step_rates(rows: list[dict]) -> list[dict]:
    """Documents/s and MB/s per step. Extractors count the raw bytes they extracted; text steps the
    characters of the text entering them (what the step before kept), in millions (~MB for English)."""
    out, carried, stage = [], 0, None
    for row in rows:
        if row["stage"] != stage:
            carried, stage = 0, row["stage"]
        if row["kind"] == "reader":
            carried += row["chars_kept"]
            continue
        if row["kind"] != "step":
            continue
        mb = row.get("input_bytes", carried) / 1e6
        out.append(
            {
                "stage": row["stage"],
                "step": row["step"],
                "docs": row["in"],
                "MB": round(mb, 3),
                "seconds": row["time_s"],
                "docs_per_s": rate(row["in"], row["time_s"]),
                "MB_per_s": rate(mb, row["time_s"]),
            }
        )
        carried = row["chars_kept"] or carried
    return out


def kit_recipe() -> Path | None:
    if not (KIT / "MANIFEST.sha256").is_file():
        return None
    corpus = KIT / "corpus"
    recipe = {
        "name": "kit",
        "inputs": [
            {"name": "filings", "path": str(corpus / "pdf"), "glob": "*.pdf"},
            {"name": "sec-filings", "path": str(corpus / "sec-filings"), "glob": "*.pdf"},
            {"name": "crawl", "path": str(corpus / "warc"), "glob": "*.warc.gz", "kind": "web"},
            {
                "name": "transcripts",
                "path": str(corpus / "finance-transcripts.jsonl.gz"),
                "kind": "document",
            },
            {"name": "wiki", "path": str(corpus / "general-wiki.jsonl.gz"), "kind": "web"},
            {"name": "cc", "path": str(corpus / "cc-sample.jsonl.gz"), "kind": "web"},
        ],
        "languages": {"keep": ["en"]},
        "classifiers": {
            "domain": {
                "positive": [str(corpus / "finance-transcripts.jsonl.gz")],
                "negative": [str(corpus / "general-wiki.jsonl.gz")],
            }
        },
        "tokenizer": {"train": {"vocab_size": 8192, "corpus": "replay"}},
    }
    path = Path(tempfile.mkdtemp()) / "kit.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def bench_stock_warc() -> dict | None:
    """datatrove's own web pipeline (WARC -> Trafilatura -> Gopher filters) against our extract
    stage (WARC -> HtmlExtractor -> language ID -> passages -> all four heuristics) on the kit's
    WARCs: the ratio says what our stricter, sandboxed and fully accounted extraction costs."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import WarcReader

    warc = KIT / "corpus" / "warc"
    if not warc.is_dir():
        return None
    files = sorted(warc.glob("*.warc.gz"))
    mb = sum(p.stat().st_size for p in files) / 1e6
    logs = Path(tempfile.mkdtemp())
    stock = LocalPipelineExecutor(
        [
            WarcReader(str(warc), glob_pattern="*.warc.gz"),
            Trafilatura(favour_precision=True, timeout=30),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
        ],
        tasks=1,
        logging_dir=str(logs),
    )
    start = time.perf_counter()
    stock.run()
    stock_s = time.perf_counter() - start
    path = Path(tempfile.mkdtemp()) / "warc.yaml"
    recipe = yaml.safe_load(kit_recipe().read_text())
    recipe["inputs"] = [{"name": "crawl", "path": str(warc), "glob": "*.warc.gz", "kind": "web"}]
    path.write_text(yaml.safe_dump(recipe))
    ours = run_pipeline(path, "bench-warc", 1, {"dedup": {"exact": False, "minhash": None}})
    ours_s = ours["stage_seconds"]["extract"]
    return {
        "MB": round(mb, 3),
        "stock_datatrove_seconds": round(stock_s, 2),
        "ours_extract_stage_seconds": round(ours_s, 2),
        "ours_documents_read": ours["documents_read"],
        "stock_over_ours": round(stock_s / ours_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--skip-scaling", action="store_true", help="one end-to-end run instead of 1 vs 2 workers"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        }
    }
    result["machine"]["cpu_scaling_ceiling"] = cpu_scaling_ceiling()
    print("end to end, 1 worker ...", flush=True)
    one = run_pipeline(ROOT / "recipes" / "default.yaml", "bench-1w", 1)
    result["end_to_end_sample"] = {"1_worker": one}
    if not args.skip_scaling:
        print("end to end, 2 workers ...", flush=True)
        two = run_pipeline(ROOT / "recipes" / "default.yaml", "bench-2w", 2)
        result["end_to_end_sample"]["2_workers"] = two
        result["end_to_end_sample"]["speedup_2_vs_1"] = round(one["seconds"] / two["seconds"], 2)
    print("PDF, HTML, MinHash, tokenizer ...", flush=True)
    result["pdf"] = bench_pdf()
    result["html"] = bench_html()
    texts = kept_texts()
    result["minhash"] = bench_minhash(texts)
    result["tokenizer"] = bench_tokenizer(texts)
    if path := kit_recipe():
        print("end to end on ../shared/data/corpus, 1 and 2 workers ...", flush=True)
        kit_one = run_pipeline(path, "bench-kit-1w", 1)
        kit_two = run_pipeline(path, "bench-kit-2w", 2)
        result["end_to_end_shared_kit"] = {
            "1_worker": kit_one,
            "2_workers": kit_two,
            "speedup_2_vs_1": round(kit_one["seconds"] / kit_two["seconds"], 2),
        }
        print("stock datatrove WARC pipeline ...", flush=True)
        result["stock_datatrove_warc"] = bench_stock_warc()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "corpus.json").write_text(json.dumps(result, indent=2))
    summary = {
        "pdf_overhead": result["pdf"]["overhead_ratio"],
        "html_overhead_trafilatura": result["html"]["HtmlExtractor_step_trafilatura"]["overhead_ratio"],
        "html_overhead_resiliparse": result["html"]["HtmlExtractor_step_resiliparse"]["overhead_ratio"],
        "minhash_docs_per_s": result["minhash"]["FastMinhashSignature_docs_per_s"],
        "speedup_2_vs_1": result["end_to_end_sample"].get("speedup_2_vs_1"),
        "machine_ceiling_2_vs_1": result["machine"]["cpu_scaling_ceiling"]["ceiling"],
    }
    print(json.dumps(summary, indent=2))
    print(f"wrote {RESULTS / 'corpus.json'}")


if __name__ == "__main__":
    main()
