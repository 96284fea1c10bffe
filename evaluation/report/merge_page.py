"""merge/report.html: each merged model's domain against general bits per byte, with the Pareto front
(written beside merge/pareto.json)."""

from __future__ import annotations

import json
from html import escape

from contracts.layout import RunLayout
from contracts.publish import write_atomic
from figures import figure_html, new_figure, page_html, table_html


def write_merges(layout: RunLayout, result: dict) -> None:
    """`merge/pareto.json` and `merge/report.html`."""
    write_atomic(layout.merge_pareto, json.dumps(result, indent=2))
    write_atomic(layout.merge_report, render_merge_report(result))


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
