"""Turns datatrove's per-task stats into the corpus funnel: per step, in = kept + dropped by reason."""

from __future__ import annotations

import gzip
import json
import re
import struct
from collections import Counter, defaultdict
from pathlib import Path

from datatrove.utils.stats import PipelineStats

from contracts.layout import RunLayout
from curation.transforms import EXERCISE_TYPES

# what a step did to documents it kept (the Decontaminate step's cuts)
EDIT_STATS = {
    "contaminated": "documents matched",
    "spans_removed": "spans cut",
    "chars_removed": "characters cut",
    "passages_cut": "passages cut",
    "passage_chars_cut": "passage characters cut",
}
EXERCISE_EXAMPLES, EXERCISE_EXAMPLE_CHARS = 3, 600


_LEADING_SYMBOLS = re.compile(r"^[^\w(]+")  # datatrove's emoji prefixes


def _value(metric) -> float:
    return metric.get("total", 0) if isinstance(metric, dict) else metric or 0


def stage_stats(logs: Path) -> PipelineStats | None:
    files = sorted((logs / "stats").glob("*.json"))
    if not files:
        return None
    return sum((PipelineStats.from_json(json.loads(f.read_text())) for f in files), start=PipelineStats())


def step_rows(stage: str, stats: PipelineStats, default_reasons: dict[str, str] | None = None) -> list[dict]:
    """One row per document-counting step of a stage (readers, filters, dedup filters, writers).

    `kept` is counted, never derived from `in - dropped`: what a filter forwarded, else what the next
    step (or the writer) received. So a step that loses a document without a reason breaks the
    identity in = kept + dropped, and the report shows it. Drops a step counts without a reason take
    its rejected writer's default one (`default_reasons`, by datatrove step), else `unspecified`.
    """
    default_reasons = default_reasons or {}
    rows = []
    for data in json.loads(stats.to_json()):
        step_type, _, name = data["name"].rpartition(": ")
        name = _LEADING_SYMBOLS.sub("", name)
        kind = "reader" if "READER" in step_type else "writer" if "WRITER" in step_type else "step"
        counts = {k: _value(v) for k, v in data.get("stats", {}).items()}
        if "total" not in counts and "documents" not in counts:
            continue
        if "documents" in counts and "total" not in counts:  # a reader
            n_docs = int(counts["documents"])
            rows.append(
                {
                    "stage": stage,
                    "step": name,
                    "kind": kind,
                    "in": n_docs,
                    "kept": n_docs,
                    "dropped": {},
                    "time_s": _time(data),
                    "chars_kept": int(counts.get("doc_len", 0)),
                }
            )
            continue
        dropped = {k.removeprefix("dropped_"): int(v) for k, v in counts.items() if k.startswith("dropped_")}
        # the passage filter's cuts: passages_cut_<reason> and chars_cut_<reason>
        counts["passages_cut"] = sum(v for k, v in counts.items() if k.startswith("passages_cut_"))
        counts["passage_chars_cut"] = sum(v for k, v in counts.items() if k.startswith("chars_cut_"))
        unexplained = int(counts.get("dropped", 0)) - sum(dropped.values())
        if unexplained > 0:
            reason = default_reasons.get(data["name"], "unspecified")
            dropped[reason] = dropped.get(reason, 0) + unexplained
        rows.append(
            {
                "stage": stage,
                "step": name,
                "kind": kind,
                "in": int(counts["total"]),
                "kept": int(counts["forwarded"]) if "forwarded" in counts else None,
                "dropped": dropped,
                "time_s": _time(data),
                "chars_kept": int(counts.get("doc_len", 0)),
                "edits": {k: int(counts[k]) for k in EDIT_STATS if counts.get(k)},
                **_passage_cuts(counts),
                **({"input_bytes": int(counts["input_bytes"])} if "input_bytes" in counts else {}),
            }
        )
    for row, after in zip(rows, rows[1:] + [None]):
        if row["kept"] is None:
            # the last step of a stage without a writer (dedup signatures) only reads: it keeps all
            row["kept"] = after["in"] if after else row["in"] - sum(row["dropped"].values())
    return rows


def _passage_cuts(counts: dict) -> dict:
    """The passage filter's `passages_cut_<reason>` and `chars_cut_<reason>`, per reason."""
    cuts = {
        k.removeprefix("chars_cut_"): {
            "passages": int(counts.get("passages_cut_" + k.removeprefix("chars_cut_"), 0)),
            "chars": int(v),
        }
        for k, v in counts.items()
        if k.startswith("chars_cut_")
    }
    return {"passage_cuts": cuts} if cuts else {}


def _time(data: dict) -> float:
    t = data.get("time_stats", 0)
    return round(float(t.get("total", 0) if isinstance(t, dict) else t), 3)


def token_counts(tokens: Path) -> dict:
    """Tokens and documents per corpus/split, read from the shards' index files."""
    out: dict = {}
    for folder in sorted(p for p in tokens.glob("*/*") if p.is_dir()):
        n_tokens = n_docs = 0
        dtype_bytes = 2
        for index in folder.glob("*.ds.index"):
            ends = index.read_bytes()
            n = len(ends) // 8
            n_docs += n
            if n:
                n_tokens += struct.unpack("<Q", ends[-8:])[0]
        for meta in folder.glob("*.ds.metadata"):
            # datatrove writes "<tokenizer>|<bytes per token>", then the token count
            dtype_bytes = int(meta.read_text().splitlines()[0].rsplit("|", 1)[-1])
        out.setdefault(folder.parent.name, {})[folder.name] = {
            "tokens": n_tokens,
            "documents": n_docs,
            "token_bytes": dtype_bytes,
        }
    return out


def records(folder: Path):
    """The documents of a stage's JSONL output, one at a time."""
    for path in sorted(folder.rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                yield json.loads(line)


def input_keep_rates(docs: Path, rejected: Path) -> dict:
    """Per input: documents kept and dropped (by reason) over the whole run, and characters kept.

    Passage-documents (`passages.split`) count with their parent: a document is kept when any of
    its passages is. A document's extracted characters are its length before passages were cut
    (`passages.chars_in`); `kept_80pct` counts documents that kept at least 80% of theirs.
    """
    parents: dict = defaultdict(
        lambda: {"kind": None, "extracted": 0, "kept": 0, "whole": False, "reasons": Counter()}
    )

    def record(doc: dict, reason: str | None) -> None:
        meta = doc["metadata"]
        row = parents[(meta.get("input", "?"), meta.get("parent_id", doc["id"]))]
        row["kind"] = row["kind"] or meta.get("kind")
        extracted = meta.get("passages", {}).get("chars_in", len(doc.get("text", "")))
        row["extracted"] = max(row["extracted"], extracted)
        if reason is None:
            row["kept"] += meta.get("exercises_start", len(doc["text"]))  # not appended exercises
            row["whole"] = True
        else:
            row["reasons"][reason] += 1

    for doc in records(docs):
        if "exercise" not in doc["metadata"]:  # an exercise document (`transform`) was never extracted
            record(doc, None)
    for step in sorted(p for p in rejected.glob("*") if p.is_dir() and p.name != "passages_cut"):
        for doc in records(step):
            record(doc, doc["metadata"].get("rejected_reason", "?"))
    rows: dict = defaultdict(lambda: {"kind": None, "documents": 0, "kept": 0, "dropped": Counter()})
    totals: dict = defaultdict(lambda: [0, 0, 0])  # chars extracted, chars kept, documents keeping 80%
    for (name, _), doc in parents.items():
        row, total = rows[name], totals[name]
        row["kind"] = row["kind"] or doc["kind"]
        row["documents"] += 1
        if doc["whole"]:
            row["kept"] += 1
        else:
            row["dropped"][doc["reasons"].most_common(1)[0][0]] += 1
        total[0] += doc["extracted"]
        total[1] += doc["kept"]
        total[2] += bool(doc["extracted"]) and doc["kept"] >= 0.8 * doc["extracted"]
    return {
        name: {
            "kind": row["kind"],
            "documents": row["documents"],
            "kept": row["kept"],
            "dropped": dict(row["dropped"].most_common()),
            "chars_extracted": totals[name][0],
            "chars_kept": totals[name][1],
            "chars_kept_share": round(totals[name][1] / totals[name][0], 4) if totals[name][0] else 0.0,
            "kept_80pct": totals[name][2],
        }
        for name, row in sorted(rows.items())
    }


def exercise_counts(stats: PipelineStats) -> dict | None:
    """The `transform` step's counts (None without one): documents read, those given exercises, and
    exercises per type."""
    for data in json.loads(stats.to_json()):
        if "TRANSFORM" in data["name"].rpartition(": ")[0]:
            counts = {k: int(_value(v)) for k, v in data.get("stats", {}).items()}
            return {
                "documents": counts.get("transformed", 0),
                "with_exercises": counts.get("with_exercises", 0),
                "per_type": {kind: counts.get(f"exercises_{kind}", 0) for kind in EXERCISE_TYPES},
            }
    return None


def exercise_examples(docs: Path) -> list[dict]:
    """The first exercise blocks (appended, or exercise documents), truncated; at most two of a
    language while the corpus may hold another."""
    examples: list[dict] = []
    per_language: Counter = Counter()
    for doc in records(docs):
        meta, language = doc["metadata"], doc["metadata"].get("language", "?")
        if "exercise" in meta:
            text = doc["text"]
        elif "exercises_start" in meta:
            text = doc["text"][meta["exercises_start"] :].strip()
        else:
            continue
        if per_language[language] < EXERCISE_EXAMPLES - 1:
            per_language[language] += 1
            examples.append({"id": doc["id"], "language": language, "text": text[:EXERCISE_EXAMPLE_CHARS]})
        if len(examples) == EXERCISE_EXAMPLES:
            break
    return examples


def collect(layout: RunLayout, stage_names: list[str], default_reasons: dict[str, str] | None = None) -> dict:
    steps, exercises = [], None
    for stage in stage_names:
        stats = stage_stats(layout.corpus_logs / stage)
        if stats is not None:
            steps += step_rows(stage, stats, default_reasons)
            exercises = exercises or exercise_counts(stats)
    classifiers = {p.stem: json.loads(p.read_text()) for p in sorted(layout.classifiers.glob("*.json"))}
    walls = {name: layout.corpus_logs / name / "wall_seconds" for name in stage_names}
    return {
        "recipe": layout.name,
        "stage_seconds": {name: float(p.read_text()) for name, p in walls.items() if p.is_file()},
        "steps": steps,
        "tokens": token_counts(layout.tokens),
        "classifiers": classifiers,
        "inputs": input_keep_rates(layout.docs, layout.rejected),
        **(
            {"exercises": exercises | {"examples": exercise_examples(layout.corpus_docs("domain", "train"))}}
            if exercises
            else {}
        ),
    }
