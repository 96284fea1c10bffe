"""`select/report.html`: the grades, how far the distilled classifier agrees with the grader, and
what each selection kept, for people who would rather look than read JSON."""

from __future__ import annotations

import html
import json

from contracts.layout import RunLayout
from figures import figure_html, new_figure, page_html, table_html
from selection.grading import grader_health
from selection.outputs import DONE


def _grades(layout: RunLayout) -> str:
    path = layout.grades_file
    if not path.is_file():
        return ""
    grades = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    values = [g["grade"] for g in grades if g["grade"] is not None]
    counts = {s: sum(g["status"] == s for g in grades) for s in ("graded", "ungraded", "failed")}
    health = grader_health(grades)
    checks = []
    if health["grade_mass"] is not None:
        checks.append(f"mean probability on the grade digits {health['grade_mass']:.1%}")
    if health["parse_rate"] is not None:
        checks.append(
            f"{health['replies_parsed']} of {health['replies_checked']} free replies "
            f"({health['parse_rate']:.0%}) parse strictly as <code>Grade: N</code>"
        )
    free = [g for g in grades if g["status"] == "graded" and g.get("reply") is not None][:5]
    ungraded = [g for g in grades if g["status"] != "graded"][:5] + free
    rows = [
        [html.escape(g["id"]), g["status"], html.escape((g["reply"] or g["error"] or "")[:300])]
        for g in ungraded
    ]
    return (
        f"<h2>LLM grades</h2><p>{len(grades)} sampled: {counts['graded']} graded, {counts['ungraded']} "
        f"ungraded (the reply did not parse strictly), {counts['failed']} failed.</p>"
        + (f"<p>Grader health: {'; '.join(checks)}.</p>" if checks else "")
        + (_histogram(values) if values else "")
        + (table_html(["document", "status", "reply or error"], rows) if rows else "")
    )


def _histogram(grades: list[float]) -> str:
    fig, ax = new_figure()
    ax.hist(grades, bins=30, color="#4c72b0")
    ax.set_xlabel("grade (0-5)")
    ax.set_ylabel("documents")
    return figure_html(fig)


def _distilled(layout: RunLayout) -> str:
    path = layout.distilled / "metrics.json"
    if not path.is_file():
        return ""
    m = json.loads(path.read_text())
    verdict = "trusted" if m["trusted"] else f"NOT trusted: Spearman below {m['min_spearman']}"
    figure = ""
    if m["held_out"]:
        fig, ax = new_figure()
        ax.scatter([h["grade"] for h in m["held_out"]], [h["predicted"] for h in m["held_out"]], s=12)
        ax.set_xlabel("grader's grade (held out)")
        ax.set_ylabel("classifier's expected grade")
        figure = figure_html(fig)
    return (
        f"<h2>Distilled classifier</h2><p>Trained on {m['train_documents']} graded domain training "
        f"documents; on {m['held_out_documents']} held out: Spearman {m['spearman']} (its ranking within "
        f"the domain against the grader's), precision {m['precision']}, recall "
        f"{m['recall']}, F1 {m['f1']} at grade &ge; {m['threshold']} ({verdict}).</p>" + figure
    )


def _selections(layout: RunLayout) -> str:
    summaries = {
        done.parent.name: json.loads((done.parent / "selection.json").read_text())
        for done in sorted(layout.budgets.glob(f"*/{DONE}"))  # finished selections only
    }
    if not summaries:
        return ""
    rows = [
        [
            html.escape(name),
            s["method"],
            html.escape(
                ", ".join(f"{k} {w:g}" for k, w in s["scores"].items()) if s["method"] != "random" else "-"
            ),
            f"{s['kept_documents']} / {s['documents']}",
            f"{s['kept_tokens']:,} / {s['tokens']:,}",
            f"{s['budget_tokens']:,}",
        ]
        for name, s in summaries.items()
    ]
    return "<h2>Selections (domain training documents)</h2>" + table_html(
        ["selection", "method", "scores (weight)", "documents kept / all", "tokens kept / all", "budget"],
        rows,
    )


def render_select_report(layout: RunLayout) -> str:
    title = f"dacp data selection: {html.escape(layout.name)}"
    body = _grades(layout) + _distilled(layout) + _selections(layout)
    return page_html(title, f"<h1>{title}</h1>{body}")
