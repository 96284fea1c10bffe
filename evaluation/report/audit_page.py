"""audit/report.html: each task's items by bucket, the clean-subset scores and the most contaminated
items with their passages (written beside audit/contamination.json)."""

from __future__ import annotations

import json
from html import escape

import numpy as np

from contracts.layout import RunLayout
from contracts.publish import write_atomic
from evaluation.report.formatting import DPI, or_none
from figures import figure_html, new_figure, page_html, table_html

BUCKETS = ("clean", "partial", "dirty", "too_short")


def write_audit(layout: RunLayout, result: dict, worst: int) -> None:
    """`audit/contamination.json` and `audit/report.html` with the `worst` items' passages."""
    write_atomic(layout.audit_result, json.dumps(result, indent=2, ensure_ascii=False))
    write_atomic(layout.audit_report, render_audit_report(result, worst))


def _bucket_plot(tasks: dict) -> str:
    names = list(tasks)
    fig, ax = new_figure(7, 0.5 * len(names) + 1.2)
    left = np.zeros(len(names))
    for bucket, colour in zip(BUCKETS, ("#66bb6a", "#ffa726", "#ef5350", "#bdbdbd")):
        share = np.array([tasks[t][bucket] / tasks[t]["items"] for t in names])
        ax.barh(names, share, left=left, color=colour, label=bucket)
        left += share
    ax.set(xlabel="share of items", xlim=(0, 1))
    ax.legend(ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure_html(fig, DPI)


def _passage(m: dict) -> str:
    where = escape(str(m["source"] or m["doc"]))
    return (
        f'<div class="passage"><small>{where} [{m["start"]}:{m["end"]}]</small>\n'
        f"…{escape(m['before'])}<mark>{escape(m['match'])}</mark>{escape(m['after'])}…</div>"
    )


def _buckets_html(tasks: dict) -> str:
    headers = ["task", "items", "clean", "partial", "dirty", "too short"]
    headers += ["input matched", "input + answer matched", "near-duplicate", "context only"]
    rows = [
        [
            escape(t),
            s["items"],
            *(f"{s[b]} <small>({s[b] / s['items']:.0%})</small>" for b in BUCKETS),
            s["input_match"],
            s["input_label_match"],
            s["near_duplicate"],
            s["context_only"],
        ]
        for t, s in tasks.items()
    ]
    return table_html(headers, rows)


def _worst_html(items: list[dict], worst: int) -> str:
    """The items with the most of their input in the corpus, each with its longest matching passage."""
    matched = sorted(
        (r for r in items if r["matches"]), key=lambda r: (r["coverage"], r["longest_units"]), reverse=True
    )
    rows = [
        [
            f"{escape(r['id'])}<br><small>{r['bucket']}, coverage {r['coverage']:.0%}, longest "
            f"{r['longest_units']} units, {r['documents']} document(s)"
            f"{', with its answer' if r['input_label_match'] else ''}"
            f", question + answer {r['qa_coverage']:.0%}</small>",
            _passage(r["matches"][0]),
        ]
        for r in matched[:worst]
    ]
    return table_html(["item", "longest matching passage (highlighted)"], or_none(rows))


def _near_html(items: list[dict], worst: int) -> str:
    near = sorted(
        (r for r in items if r["near_duplicates"]),
        key=lambda r: r["near_duplicates"][0]["jaccard"],
        reverse=True,
    )
    rows = [
        [
            f"{escape(r['id'])}<br><small>Jaccard {r['near_duplicates'][0]['jaccard']:.2f}, "
            f"{r['bucket']} by n-grams</small>",
            _passage(r["near_duplicates"][0]),
        ]
        for r in near[:worst]
    ]
    return table_html(["item", "resembling passage"], or_none(rows))


def _clean_subset_html(clean_subset: dict) -> str:
    rows = [
        [
            escape(t),
            escape(m),
            s["metric"],
            f"{s['full']['mean']:.3f} <small>(n={s['full']['n']})</small>",
            f"{s['clean']['mean']:.3f} <small>[{s['clean']['ci95'][0]:.3f}, {s['clean']['ci95'][1]:.3f}] "
            f"(n={s['clean']['n']})</small>"
            if s["clean"]["n"]
            else "<small>no clean items</small>",
        ]
        for t, by_model in clean_subset.items()
        for m, s in by_model.items()
    ]
    if not rows:
        return (
            "<p><small>Run <code>make eval</code> to see each model's score on the clean subset.</small></p>"
        )
    return "<h2>Scores on the clean subset</h2>" + table_html(
        ["task", "model", "metric", "all items", "clean items"], rows
    )


def render_audit_report(result: dict, worst: int) -> str:
    method = result["method"]
    return page_html(
        "contamination audit",
        f"""<h1>Contamination audit</h1>
<p>{result["documents"]} documents ({result["bytes"] / 1e6:.1f} MB) from
<code>{escape(result["corpus"])}</code> in {result["seconds"]:.1f} s.
Text: {escape(method["normalisation"])}; matched fields: {escape(method["fields"])};
units: {escape(method["units"])}; n-grams: <code>{escape(json.dumps(method["ngrams"]))}</code>;
buckets by the share of the input covered: clean &lt; 20%, dirty &ge; 80%, and dirty too
when the question is found with its answer (however little of a long context is covered).</p>
{_buckets_html(result["tasks"])}
{_bucket_plot(result["tasks"]) if result["tasks"] else ""}
{_clean_subset_html(result["clean_subset"])}
<h2>Most contaminated items</h2>
{_worst_html(result["items"], worst)}
<h2>Near-duplicates (MinHashLSH, reported apart from n-gram matches)</h2>
<p><small>{escape(json.dumps(method["near_duplicates"]))}</small></p>
{_near_html(result["items"], worst)}""",
    )
