"""One HTML page for people: the score table with intervals, paired differences, and a plot."""

from __future__ import annotations

import base64
import io
from html import escape

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _plot(results: dict) -> str:
    tasks = list(results["tasks"])
    models = list(results["models"])
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(tasks) * len(models)), 3.8))
    width = 0.8 / max(1, len(models))
    for k, model in enumerate(models):
        means = [results["tasks"][t]["scores"][model]["acc"]["mean"] for t in tasks]
        lows = [m - results["tasks"][t]["scores"][model]["acc"]["ci95"][0] for t, m in zip(tasks, means)]
        highs = [results["tasks"][t]["scores"][model]["acc"]["ci95"][1] - m for t, m in zip(tasks, means)]
        xs = [i + k * width for i in range(len(tasks))]
        ax.bar(xs, means, width, yerr=[lows, highs], capsize=3, label=model)
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(tasks))], tasks, rotation=20)
    ax.set(ylabel="acc (95% bootstrap interval)", ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def render_eval_report(results: dict) -> str:
    rows = []
    for task, entry in results["tasks"].items():
        for model, scores in entry["scores"].items():
            cells = "".join(
                f"<td>{s['mean']:.3f} <small>[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]</small></td>"
                for s in scores.values()
            )
            rows.append(
                f"<tr><td>{escape(task)}</td><td>{entry['n']}</td><td>{escape(model)}</td>{cells}</tr>"
            )
    paired = []
    for task, entry in results["tasks"].items():
        for pair, metrics in entry["paired"].items():
            d = metrics["acc"]
            verdict = (
                "better beyond noise"
                if d["significant"] and d["mean"] > 0
                else ("worse beyond noise" if d["significant"] else "within noise")
            )
            paired.append(
                f"<tr><td>{escape(task)}</td><td>{escape(pair)}</td><td>{d['mean']:+.3f}</td>"
                f"<td>[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]</td><td>{verdict}</td></tr>"
            )
    ppl = "".join(
        f"<tr><td>{escape(corpus)}</td>" + "".join(f"<td>{v:.4f}</td>" for v in by_model.values()) + "</tr>"
        for corpus, by_model in results["perplexity_bits_per_byte"].items()
    )
    models = "".join(f"<th>{escape(m)}</th>" for m in results["models"])
    plot = f'<img src="data:image/png;base64,{_plot(results)}">' if results["tasks"] else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}small{{color:#666}}</style></head><body>
<h1>Evaluation</h1>
<p>Multiple choice by log-likelihood; 95% bootstrap intervals over items. Prefix policy per model:
{escape(str(results["prefix"]))}.</p>
<table><tr><th>task</th><th>items</th><th>model</th><th>acc</th><th>acc_norm</th><th>acc_bytes</th></tr>
{"".join(rows)}</table>
<h2>Paired differences (acc, same items)</h2>
<table><tr><th>task</th><th>models</th><th>mean</th><th>95% interval</th><th>verdict</th></tr>
{"".join(paired)}</table>
<h2>Bits per byte on the validation splits (lower is better; fair across tokenizers)</h2>
<table><tr><th>corpus</th>{models}</tr>{ppl}</table>
{plot}
</body></html>"""
