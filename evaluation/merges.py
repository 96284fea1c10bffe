"""`python -m evaluation merges RECIPE`: every merged model of `make merge` in bits per byte on the
domain and the general validation text, as `make eval` scores them: what an interpolation between the
original and the adapted model trades (domain gain against forgetting), as a Pareto front.

Reads only the merge folders (`out/<name>/merge/<merge>/`, or `<merge>/t<weight>/` for each weight of
an interpolation), complete once their `export.json` is written; writes `merge/pareto.json` and
`merge/report.html`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from contracts.layout import EXPORT_MARKER
from evaluation.config import RunConfig
from evaluation.harness import Progress, bpb_summary, corpus_bits, validation_sets
from evaluation.report import write_merges
from evaluation.scoring import LoglikelihoodScorer


def merged_models(root: Path) -> dict[str, dict]:
    """label -> {path, merge, weight}: complete merge folders, interpolations in weight order."""
    found = {}
    for marker in sorted(root.glob(f"*/{EXPORT_MARKER}")) + sorted(root.glob(f"*/t*/{EXPORT_MARKER}")):
        folder = marker.parent
        weight = float(folder.name[1:]) if folder.parent != root else None
        merge = folder.parent.name if weight is not None else folder.name
        label = merge if weight is None else f"{merge} t={weight:g}"
        found[label] = {"path": str(folder), "merge": merge, "weight": weight}
    return dict(sorted(found.items(), key=lambda kv: (kv[1]["merge"], kv[1]["weight"] or 0.0)))


def pareto_front(points: dict[str, tuple[float, float]]) -> set[str]:
    """The labels no other point beats on both axes (lower is better on both)."""
    return {
        a
        for a, (x, y) in points.items()
        if not any(u <= x and v <= y and (u, v) != (x, y) for b, (u, v) in points.items() if b != a)
    }


def score_merges(run: RunConfig, progress: Progress = None) -> dict:
    """pareto.json's content: each merged model's bits per byte per corpus with 95% intervals."""
    cfg = run.eval
    models = merged_models(run.layout.merges)
    if not models:
        raise FileNotFoundError(f"{run.layout.merges}: no merged model yet: run `python -m training merge`")
    texts = validation_sets(run)
    for label, entry in models.items():
        tokenizer = AutoTokenizer.from_pretrained(entry["path"])
        model = AutoModelForCausalLM.from_pretrained(entry["path"], dtype=torch.float32).eval()
        prefix_ids = LoglikelihoodScorer(model, tokenizer, cfg.batch_size, cfg.prefix).prefix_ids
        documents = corpus_bits(cfg, label, model, tokenizer, prefix_ids, texts, progress)
        entry["bits_per_byte"] = {c: bpb_summary(d) for c, d in documents.items()}
    if {"domain", "replay"} <= set(texts):
        front = pareto_front(
            {
                k: (m["bits_per_byte"]["domain"]["bpb"], m["bits_per_byte"]["replay"]["bpb"])
                for k, m in models.items()
            }
        )
        for label, entry in models.items():
            entry["pareto"] = label in front
    return {"models": models, "documents": {c: len(t) for c, t in texts.items()}}


def run_merge_scores(run: RunConfig, progress: Progress = None) -> dict:
    result = score_merges(run, progress)
    write_merges(run.layout, result)
    return result
