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


_NO_PAIRS = "<tr><td colspan=5>none</td></tr>"
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


def format_tokens(n: int) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_seconds(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 7200 else f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


def _ci(interval: list[float], digits: int = 3) -> str:
    return f"<small>[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]</small>"


def _verdict(d: dict, lower_is_better: bool = False) -> str:
    if not d["significant"]:
        return "within noise"
    better = (d["mean"] < 0) if lower_is_better else (d["mean"] > 0)
    return "<b>better beyond noise</b>" if better else "<b>worse beyond noise</b>"


def _cost_cells(cost: dict | None) -> str:
    if cost is None:
        return "<td>?</td><td>?</td>"
    return (
        f"<td>{format_tokens(cost['tokens'])} <small>({format_tokens(cost['cumulative_tokens'])} "
        f"in all)</small></td><td>{format_seconds(cost['seconds'])}</td>"
    )


def _arms_table(results: dict) -> str:
    """One row per model: bits per byte per corpus, acc per task, and what its training cost."""
    bpb = results.get("perplexity_intervals", {})
    tasks = results["tasks"]
    head = "".join(f"<th>{escape(c)} bits/byte</th>" for c in bpb) + "".join(
        f"<th>{escape(t)} acc <small>(n={e['n']})</small></th>" for t, e in tasks.items()
    )
    rows = []
    for model in results["models"]:
        cells = "".join(
            f"<td>{by[model]['bpb']:.4f} {_ci(by[model]['ci95'], 4)}</td>" if model in by else "<td>-</td>"
            for by in bpb.values()
        ) + "".join(
            f"<td>{e['scores'][model]['acc']['mean']:.3f} {_ci(e['scores'][model]['acc']['ci95'])}</td>"
            for e in tasks.values()
        )
        cost = _cost_cells(results.get("cost", {}).get(model))
        rows.append(f"<tr><td>{escape(model)}</td>{cells}{cost}</tr>")
    return (
        f"<table><tr><th>model</th>{head}<th>tokens trained <small>(own stage)</small></th>"
        f"<th>training time</th></tr>{''.join(rows)}</table>"
    )


def _bpb_pairs_table(results: dict) -> str:
    rows = "".join(
        f"<tr><td>{escape(corpus)}</td><td>{escape(pair)}</td><td>{d['mean']:+.4f}</td>"
        f"<td>[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]</td>"
        f"<td>{_verdict(d, lower_is_better=True)}</td></tr>"
        for corpus, by_pair in results.get("perplexity_paired", {}).items()
        for pair, d in by_pair.items()
    )
    return (
        "<table><tr><th>corpus</th><th>models</th><th>difference</th><th>95% interval</th><th>verdict</th>"
        f"</tr>{rows or _NO_PAIRS}</table>"
    )


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _equal_compute_table(results: dict) -> str:
    rows, width = [], 1
    for model, e in results.get("equal_compute", {}).items():
        own, full = e["selection_val_loss"] or {}, e["full_run_val_loss_at_tokens"]
        cells = (
            "".join(f"<td>{escape(c)}: {_loss(v)} vs {_loss(full[c])}</td>" for c, v in own.items())
            if full
            else "<td>the full run trained fewer tokens on this stage: no comparison</td>"
        )
        rows.append(f"<tr><td>{escape(model)}</td><td>{format_tokens(e['tokens'])}</td>{cells}</tr>")
        width = max(width, len(own))
    return (
        f"<table><tr><th>selection model</th><th>tokens</th><th colspan={width}>validation loss: "
        f"selection vs full run at the same tokens</th></tr>{''.join(rows)}</table>"
    )


def _tradeoff_plot(results: dict) -> str:
    """Domain against general (replay) bits per byte: down and left is better on both."""
    domain, replay = (results["perplexity_intervals"][c] for c in ("domain", "replay"))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for model in (m for m in results["models"] if m in domain and m in replay):
        x, y = replay[model], domain[model]
        xerr = [[x["bpb"] - x["ci95"][0]], [x["ci95"][1] - x["bpb"]]]
        yerr = [[y["bpb"] - y["ci95"][0]], [y["ci95"][1] - y["bpb"]]]
        ax.errorbar(x["bpb"], y["bpb"], xerr=xerr, yerr=yerr, fmt="o", capsize=3, elinewidth=1, label=model)
        ax.annotate(model, (x["bpb"], y["bpb"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set(xlabel="replay (general) bits per byte", ylabel="domain bits per byte")
    ax.legend(fontsize=8)
    ax.set_title("lower is better on both axes (95% intervals over documents)", fontsize=9)
    return _png(fig)


def _task_rows(results: dict) -> str:
    rows = []
    for task, entry in results["tasks"].items():
        for model, scores in entry["scores"].items():
            cells = "".join(f"<td>{s['mean']:.3f} {_ci(s['ci95'])}</td>" for s in scores.values())
            rows.append(
                f"<tr><td>{escape(task)}</td><td>{entry['n']}</td><td>{escape(model)}</td>{cells}</tr>"
            )
    return "".join(rows)


def _acc_pair_rows(results: dict) -> str:
    return "".join(
        f"<tr><td>{escape(task)}</td><td>{escape(pair)}</td><td>{m['acc']['mean']:+.3f}</td>"
        f"<td>[{m['acc']['ci95'][0]:+.3f}, {m['acc']['ci95'][1]:+.3f}]</td><td>{_verdict(m['acc'])}</td></tr>"
        for task, entry in results["tasks"].items()
        for pair, m in entry["paired"].items()
    )


def render_eval_report(results: dict) -> str:
    plot = f'<img src="data:image/png;base64,{_plot(results)}">' if results["tasks"] else ""
    has_both = {"domain", "replay"} <= set(results.get("perplexity_intervals", {}))
    tradeoff = f'<img src="data:image/png;base64,{_tradeoff_plot(results)}">' if has_both else ""
    equal = (
        "<h2>Equal compute: validation loss after the same tokens (lower is better)</h2>"
        "<p>Each selection run's final validation loss beside the full run's on the same stage after as "
        "many tokens (linear between its evaluations).</p>" + _equal_compute_table(results)
        if results.get("equal_compute")
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>evaluation</title>
{_STYLE}</head><body>
<h1>Evaluation</h1>
<p>Multiple choice by log-likelihood; 95% bootstrap intervals over items. Bits per byte on the
validation splits: lower is better, fair across tokenizers; 95% intervals resample documents (ratio of
summed bits to summed bytes). Tokens and time: the model's own training stage from the trainer's
metrics (optimizer steps only, validation excluded); reference models trained nothing here.
Prefix policy per model:
{escape(str(results["prefix"]))}.</p>
{_arms_table(results)}
{tradeoff}
<h2>Paired differences in bits per byte (same documents; lower is better)</h2>
{_bpb_pairs_table(results)}
{equal}
<h2>Scores per task</h2>
<table><tr><th>task</th><th>items</th><th>model</th><th>acc</th><th>acc_norm</th><th>acc_bytes</th></tr>
{_task_rows(results)}</table>
<h2>Paired differences (acc, same items)</h2>
<table><tr><th>task</th><th>models</th><th>mean</th><th>95% interval</th><th>verdict</th></tr>
{_acc_pair_rows(results)}</table>
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
