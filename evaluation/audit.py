"""`python -m evaluation audit RECIPE`: which benchmark items appear in the corpus, and where.

The benchmark index is small and lives in memory; the corpus streams through datatrove workers,
each writing its matches to `audit/matches/<rank>.jsonl`. The main process then scores every item
(input-only vs input+label match, coverage of the input, of its context and of its question with
its answer, longest run, clean/partial/dirty) and writes
`audit/contamination.json` and `audit/report.html`, with clean-subset scores when `make eval` ran.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader, ParquetReader

from contracts.contamination import (
    BenchmarkText,
    ContaminationIndex,
    NearDuplicateIndex,
    NearDuplicateSettings,
    NgramSettings,
    UnitText,
    load_benchmark_texts,
)
from contracts.recipe import remove_under
from evaluation.config import RunConfig
from evaluation.intervals import bootstrap_interval
from evaluation.metrics import headline
from evaluation.report import write_audit

CLEAN_BELOW, DIRTY_FROM = 0.2, 0.8  # Llama-2's buckets, by the share of item tokens covered
CONTEXT_CHARS = 160  # document text shown each side of a match
BATCH_CHARS = 1 << 20  # documents are scanned a batch at a time: per-call numpy overhead is paid once


class ContaminationScan(PipelineStep):
    """Finds benchmark n-gram runs and near-duplicate lines in every document; writes one JSON line
    per match."""

    type = "🔎 - AUDIT"
    name = "🔎 contamination scan"

    def __init__(
        self,
        output_folder: str,
        texts: list[BenchmarkText],
        ngrams: NgramSettings,
        near: NearDuplicateSettings | None,
    ):
        super().__init__()
        self.output_folder = Path(output_folder)
        self.exact = ContaminationIndex(texts, ngrams)
        self.near = NearDuplicateIndex(texts, near) if near else None

    def _record(self, doc, kind: str, item: int, start: int, end: int, **extra) -> dict:
        text = doc.text
        return {
            "kind": kind,
            "item": item,
            "doc": doc.id,
            "source": next(
                (doc.metadata[k] for k in ("url", "source", "file_path") if doc.metadata.get(k)), None
            ),
            "start": start,
            "end": end,
            "before": text[max(0, start - CONTEXT_CHARS) : start],
            "match": text[start:end],
            "after": text[end : end + CONTEXT_CHARS],
            **extra,
        }

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        self.output_folder.mkdir(parents=True, exist_ok=True)
        with open(self.output_folder / f"{rank:05d}.jsonl", "w", encoding="utf-8") as out:
            for batch in _batches(data or [], BATCH_CHARS):
                with self.track_time(unit="batch"):
                    units = UnitText(*(doc.text for doc in batch))
                    records = [
                        self._record(
                            batch[r.text],
                            "exact",
                            r.item,
                            r.start,
                            r.end,
                            item_span=[r.item_start, r.item_end],
                        )
                        for r in self.exact.find(units)
                    ]
                    if self.near:
                        records += [
                            self._record(batch[m.text], "near", m.item, m.start, m.end, jaccard=m.jaccard)
                            for m in self.near.find(units)
                        ]
                    for record in records:
                        self.stat_update(f"{record['kind']}_matches")
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
                for doc in batch:
                    self.stat_update("documents")
                    self.stat_update("bytes", value=len(doc.text.encode()))
                    yield doc


def _batches(docs, chars: int):
    """Consecutive documents, about `chars` characters at a time (one numpy pass each)."""
    batch, size = [], 0
    for doc in docs:
        batch.append(doc)
        size += len(doc.text)
        if size >= chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _bucket(input_coverage: float, qa_coverage: float) -> str:
    """Llama-2's buckets by the input's coverage, except that a question copied with its answer is
    `dirty` whatever share of a long context (a table, a passage) it covers."""
    if qa_coverage >= DIRTY_FROM or input_coverage >= DIRTY_FROM:
        return "dirty"
    return "clean" if input_coverage < CLEAN_BELOW else "partial"


def item_results(index: ContaminationIndex, matches: list[dict]) -> list[dict]:
    """Per item: input-only / input+label match, coverage of the input, of its context and of its
    question+answer, longest run, bucket, documents."""
    by_item: dict[int, list[dict]] = defaultdict(list)
    for m in matches:
        by_item[m["item"]].append(m)
    too_short = set(index.too_short)
    results = []
    for i, item in enumerate(index.items):
        exact = [m for m in by_item.get(i, []) if m["kind"] == "exact"]
        near = [m for m in by_item.get(i, []) if m["kind"] == "near"]
        covered = np.zeros(len(item.hashes), dtype=bool)  # input units, then label units
        for m in exact:
            covered[slice(*m["item_span"])] = True
        spans = [m["item_span"] for m in exact]
        coverage = float(covered[: item.n_input].mean()) if item.n_input else 0.0
        qa_coverage = float(covered[item.n_context :].mean())
        context = covered[: item.n_context]
        # longest (most similar) first; ties by document and offset, so the listed five do not
        # depend on which task read which file
        exact.sort(key=lambda m: (m["start"] - m["end"], m["doc"], m["start"]))
        near.sort(key=lambda m: (-m["jaccard"], m["doc"], m["start"]))
        results.append(
            {
                "id": item.text.id,
                "task": item.text.task,
                "lang": item.text.lang,
                "bucket": "too_short" if i in too_short else _bucket(coverage, qa_coverage),
                "coverage": round(coverage, 4),
                "context_coverage": round(float(context.mean()), 4) if item.n_context else None,
                "qa_coverage": round(qa_coverage, 4),
                "input_match": any(min(q1, item.n_input) - q0 >= item.n for q0, q1 in spans),
                "input_label_match": any(q0 < item.n_input < q1 for q0, q1 in spans),
                "longest_units": max((q1 - q0 for q0, q1 in spans), default=0),
                "n": item.n,
                "units": len(item.hashes),
                "documents": len({m["doc"] for m in exact}),
                "matches": exact[:5],
                "near_duplicates": near[:5],
                "near_duplicate_documents": len({m["doc"] for m in near}),
            }
        )
    return results


def task_summary(items: list[dict]) -> dict[str, dict]:
    summary: dict[str, dict] = {}
    for r in items:
        s = summary.setdefault(
            r["task"],
            {
                "items": 0,
                "clean": 0,
                "partial": 0,
                "dirty": 0,
                "too_short": 0,
                "input_match": 0,
                "input_label_match": 0,
                "near_duplicate": 0,
                "context_only": 0,
            },
        )
        s["items"] += 1
        s[r["bucket"]] += 1
        # a reading passage found in the corpus without its question: often public text, not a leak
        s["context_only"] += (r["context_coverage"] or 0) >= CLEAN_BELOW and r["qa_coverage"] < CLEAN_BELOW
        s["input_match"] += r["input_match"]
        s["input_label_match"] += r["input_label_match"]
        s["near_duplicate"] += bool(r["near_duplicates"])
    return summary


def clean_subset_scores(eval_results: dict, items: list[dict]) -> dict[str, dict]:
    """Each model's headline score (acc, or a generative task's first metric) on the task's clean
    items beside all items (only when `make eval` ran)."""
    clean = {r["id"] for r in items if r["bucket"] == "clean"}
    out = {}
    for task, entry in eval_results.get("tasks", {}).items():
        metric = headline(entry)
        for model, per_item in entry.get("items", {}).items():
            subset = [r[metric] for r in per_item if r["id"] in clean]
            full = [r[metric] for r in per_item]
            out.setdefault(task, {})[model] = {
                "metric": metric,
                "full": {"n": len(full), "mean": float(np.mean(full)), "ci95": bootstrap_interval(full)},
                "clean": {
                    "n": len(subset),
                    "mean": float(np.mean(subset)) if subset else None,
                    "ci95": bootstrap_interval(subset) if subset else None,
                },
            }
    return out


def corpus_reader(folder: Path) -> JsonlReader | ParquetReader:
    """The documents to scan: a corpus's docs/ as the corpus stage writes them (JSONL or Parquet)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus folder {folder} does not exist (run `make corpus` first)")
    if any(folder.rglob("*.parquet")):
        return ParquetReader(str(folder), glob_pattern="**/*.parquet", default_metadata={})
    return JsonlReader(str(folder), glob_pattern="**/*.jsonl*", default_metadata={})


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def scan_corpus(run: RunConfig, reader: PipelineStep, scan: ContaminationScan) -> dict:
    """Runs the scan over the corpus with datatrove's executor: documents, bytes, wall and CPU seconds
    (this process and its workers: the cost in cores)."""
    cfg, logs = run.audit, run.layout.audit_logs
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    LocalPipelineExecutor([reader, scan], tasks=cfg.tasks, workers=cfg.workers, logging_dir=str(logs)).run()
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    totals = {"documents": 0, "bytes": 0}
    for path in sorted((logs / "stats").glob("*.json")):
        for step in json.loads(path.read_text()):
            if "contamination scan" in step["name"]:
                for key in totals:
                    value = step["stats"].get(key, 0)
                    totals[key] += value.get("total", 0) if isinstance(value, dict) else value
    return totals | {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2)}


def read_matches(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def audit_method(ngrams: NgramSettings, near: NearDuplicateSettings | None) -> dict:
    """How items were matched, stated in the result so it can be read without the recipe."""
    return {
        "normalisation": "NFKC, lower case, punctuation and whitespace ignored",
        "fields": "context + question (input), then the correct choice (label)",
        "units": "words for space-delimited languages, characters for " + ", ".join(ngrams.char_languages),
        "ngrams": ngrams.model_dump(),
        "buckets": {
            "clean": f"coverage < {CLEAN_BELOW}",
            "dirty": f"coverage >= {DIRTY_FROM}, or question + answer coverage >= {DIRTY_FROM}",
        },
        "near_duplicates": near.model_dump() if near else None,
    }


def run_audit(run: RunConfig, progress=None) -> dict:
    """Scan the corpus for the benchmark items, score each item, then write contamination.json and
    report.html (with clean-subset scores where `make eval` ran)."""
    cfg, layout = run.audit, run.layout
    files = [path for _, path in run.task_files()]
    if not files:
        raise FileNotFoundError("no benchmark task files: the recipe's eval.tasks match nothing")
    texts = load_benchmark_texts(files)
    ngrams = run.decontaminate.ngrams if run.decontaminate else NgramSettings()
    corpus = Path(cfg.corpus) if cfg.corpus else layout.docs
    reader = corpus_reader(corpus)
    remove_under(layout.root, layout.audit)
    scan = ContaminationScan(str(layout.audit_matches), texts, ngrams, cfg.near_duplicates)
    if progress:
        progress(f"scanning {corpus} with {cfg.workers} workers")
    scanned = scan_corpus(run, reader, scan)
    items = item_results(scan.exact, read_matches(layout.audit_matches))
    for r in items:
        for m in r["matches"] + r["near_duplicates"]:
            del m["item"]
    scored = layout.eval_results
    result = {
        "corpus": str(corpus),
        **scanned,
        "method": audit_method(ngrams, cfg.near_duplicates),
        "tasks": task_summary(items),
        "clean_subset": clean_subset_scores(json.loads(scored.read_text()), items)
        if scored.is_file()
        else {},
        "items": items,
    }
    write_audit(layout, result, cfg.worst_items)
    return result
