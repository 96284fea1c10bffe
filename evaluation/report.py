"""One HTML page for people: the score table with intervals, paired differences, and a plot."""

from __future__ import annotations

import base64
import io
import json
from html import escape

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


_STYLE = """<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}small{color:#666}
mark{background:#ffd54f}.passage{max-width:46em;white-space:pre-wrap}</style>"""


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
    return _png(fig)


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
{_STYLE}</head><body>
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


BUCKETS = ("clean", "partial", "dirty", "too_short")
_NONE = "<tr><td colspan=2>none</td></tr>"


def _bucket_plot(tasks: dict) -> str:
    names = list(tasks)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.2))
    left = np.zeros(len(names))
    for bucket, colour in zip(BUCKETS, ("#66bb6a", "#ffa726", "#ef5350", "#bdbdbd")):
        share = np.array([tasks[t][bucket] / tasks[t]["items"] for t in names])
        ax.barh(names, share, left=left, color=colour, label=bucket)
        left += share
    ax.set(xlabel="share of items", xlim=(0, 1))
    ax.legend(ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _png(fig)


def _passage(m: dict) -> str:
    where = escape(str(m["source"] or m["doc"]))
    return (
        f'<div class="passage"><small>{where} [{m["start"]}:{m["end"]}]</small>\n'
        f"…{escape(m['before'])}<mark>{escape(m['match'])}</mark>{escape(m['after'])}…</div>"
    )


def render_audit_report(result: dict, worst: int) -> str:
    tasks = result["tasks"]
    rows = "".join(
        f"<tr><td>{escape(t)}</td><td>{s['items']}</td>"
        + "".join(f"<td>{s[b]} <small>({s[b] / s['items']:.0%})</small></td>" for b in BUCKETS)
        + f"<td>{s['input_match']}</td><td>{s['input_label_match']}</td><td>{s['near_duplicate']}</td></tr>"
        for t, s in tasks.items()
    )
    matched = sorted(
        (r for r in result["items"] if r["matches"]),
        key=lambda r: (r["coverage"], r["longest_units"]),
        reverse=True,
    )
    worst_rows = "".join(
        f"<tr><td>{escape(r['id'])}<br><small>{r['bucket']}, coverage {r['coverage']:.0%}, longest "
        f"{r['longest_units']} units, {r['documents']} document(s)"
        f"{', with its answer' if r['input_label_match'] else ''}</small></td>"
        f"<td>{_passage(r['matches'][0])}</td></tr>"
        for r in matched[:worst]
    )
    near = sorted(
        (r for r in result["items"] if r["near_duplicates"]),
        key=lambda r: r["near_duplicates"][0]["jaccard"],
        reverse=True,
    )
    near_rows = "".join(
        f"<tr><td>{escape(r['id'])}<br><small>Jaccard {r['near_duplicates'][0]['jaccard']:.2f}, "
        f"{r['bucket']} by n-grams</small></td><td>{_passage(r['near_duplicates'][0])}</td></tr>"
        for r in near[:worst]
    )
    clean_rows = "".join(
        f"<tr><td>{escape(t)}</td><td>{escape(m)}</td>"
        f"<td>{s['full']['acc']:.3f} <small>(n={s['full']['n']})</small></td>"
        + (
            f"<td>{s['clean']['acc']:.3f} <small>[{s['clean']['ci95'][0]:.3f}, {s['clean']['ci95'][1]:.3f}] "
            f"(n={s['clean']['n']})</small></td>"
            if s["clean"]["n"]
            else "<td><small>no clean items</small></td>"
        )
        + "</tr>"
        for t, by_model in result["clean_subset"].items()
        for m, s in by_model.items()
    )
    clean_section = (
        f"<h2>Scores on the clean subset</h2><table><tr><th>task</th><th>model</th><th>acc, all items</th>"
        f"<th>acc, clean items</th></tr>{clean_rows}</table>"
        if clean_rows
        else "<p><small>Run <code>make eval</code> to see each model's score on the clean subset.</small></p>"
    )
    method = result["method"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>contamination audit</title>
{_STYLE}</head><body>
<h1>Contamination audit</h1>
<p>{result["documents"]} documents ({result["bytes"] / 1e6:.1f} MB) from
<code>{escape(result["corpus"])}</code> in {result["seconds"]:.1f} s.
Text: {escape(method["normalisation"])}; matched fields: {escape(method["fields"])};
units: {escape(method["units"])}; n-grams: <code>{escape(json.dumps(method["ngrams"]))}</code>;
buckets by the share of the input covered: clean &lt; 20%, dirty &ge; 80%.</p>
<table><tr><th>task</th><th>items</th><th>clean</th><th>partial</th><th>dirty</th><th>too short</th>
<th>input matched</th><th>input + answer matched</th><th>near-duplicate</th></tr>{rows}</table>
{f'<img src="data:image/png;base64,{_bucket_plot(tasks)}">' if tasks else ""}
{clean_section}
<h2>Most contaminated items</h2>
<table><tr><th>item</th><th>longest matching passage (highlighted)</th></tr>
{worst_rows or _NONE}</table>
<h2>Near-duplicates (MinHashLSH, reported apart from n-gram matches)</h2>
<p><small>{escape(json.dumps(method["near_duplicates"]))}</small></p>
<table><tr><th>item</th><th>resembling passage</th></tr>{near_rows or _NONE}</table>
</body></html>"""
