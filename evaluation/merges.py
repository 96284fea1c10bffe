"""`python -m evaluation merges RECIPE`: every merged model of `make merge` in bits per byte on the
domain and the general validation text, as `make eval` scores them: what an interpolation between the
original and the adapted model trades (domain gain against forgetting), as a Pareto front.

Reads only the merge folders (`out/<name>/merge/<merge>/`, or `<merge>/t<weight>/` for each weight of
an interpolation), complete once their `export.json` is written; writes `merge/pareto.json` and
`merge/report.html`.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from contracts.layout import EXPORT_MARKER
from evaluation.config import RunConfig
from evaluation.harness import Progress, bpb_summary, corpus_bits, validation_sets
from evaluation.scoring import LoglikelihoodScorer
from figures import figure_html, new_figure, page_html, table_html


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


def _plot(models: dict) -> str:
    fig, ax = new_figure(7, 5)
    for i, merge in enumerate(dict.fromkeys(m["merge"] for m in models.values())):
        points = [(k, m) for k, m in models.items() if m["merge"] == merge]
        xs = [m["bits_per_byte"]["domain"]["bpb"] for _, m in points]
        ys = [m["bits_per_byte"]["replay"]["bpb"] for _, m in points]
        ax.plot(xs, ys, "-o" if len(points) > 1 else "s", color=f"C{i}", label=merge)
        for (label, m), x, y in zip(points, xs, ys):
            ax.annotate(
                f"t={m['weight']:g}" if m["weight"] is not None else label, (x, y), fontsize=8,
                xytext=(4, 4), textcoords="offset points",
            )  # fmt: skip
    ax.set(xlabel="domain bits per byte (lower is better)", ylabel="general bits per byte (lower is better)")
    ax.legend(fontsize=8)
    return figure_html(fig)


def render_merge_report(result: dict) -> str:
    models = result["models"]
    rows = []
    for label, m in models.items():
        cells = [escape(label)]
        for corpus in ("domain", "replay"):
            s = m["bits_per_byte"].get(corpus)
            cells.append("–" if s is None else f"{s['bpb']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]")
        cells.append("yes" if m.get("pareto") else "")
        rows.append(cells)
    plot = _plot(models) if all("replay" in m["bits_per_byte"] for m in models.values()) else ""
    body = f"""<h1>Merged models: domain against general</h1>
<p>Bits per byte on the first {", ".join(f"{n} {c}" for c, n in result["documents"].items())} validation
documents (the texts <code>make eval</code> scores). An interpolation <code>t</code> is (1 − t)·first
model + t·second model. On the Pareto front: no other model here is lower on both.</p>
{plot}
{table_html(["model", "domain bpb [95%]", "general bpb [95%]", "Pareto front"], rows)}"""
    return page_html("merged models", body)


def run_merge_scores(run: RunConfig, progress: Progress = None) -> dict:
    result = score_merges(run, progress)
    run.layout.merge_pareto.write_text(json.dumps(result, indent=2))
    run.layout.merge_report.write_text(render_merge_report(result))
    return result
