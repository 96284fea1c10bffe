"""The console summary at the end of `python -m selection run`: tables and lines for rich to print
(the HTML report is `selection.report.html`)."""

from __future__ import annotations

from rich.table import Table


def grading_summary(result: dict) -> list[Table | str]:
    out: list[Table | str] = []
    table = Table(title="LLM grades")
    for col in ("sampled", "graded", "ungraded", "failed", "from cache", "grades (rounded: count)"):
        table.add_column(col, justify="right")
    status = result["status"]
    table.add_row(
        str(result["sampled"]),
        *(str(status.get(k, 0)) for k in ("graded", "ungraded", "failed")),
        str(result["from_cache"]),
        ", ".join(f"{g}: {n}" for g, n in result["grades"].items()),
    )
    out.append(table)
    if status.get("failed"):
        out.append(f"[yellow]{status['failed']} failed (not cached): run again to retry them[/yellow]")
    health = result["health"]
    if health["grade_mass"] is not None:
        out.append(f"grader health: {health['grade_mass']:.1%} of the next-token probability on the digits")
    if health["parse_rate"] is not None:
        out.append(
            f"grader health: {health['replies_parsed']} of {health['replies_checked']} free replies "
            f"({health['parse_rate']:.0%}) parse strictly as `Grade: N`"
        )
    if health["grade_mass"] is not None and health["grade_mass"] < 0.5:
        out.append(
            f"[yellow]the local grader puts {health['grade_mass']:.1%} of its next-token probability on "
            "the grade digits: it does not follow the rubric's format, so its grades say little[/yellow]"
        )
    out.append(f"grades: {result['path']}")
    return out


def distilled_summary(metrics: dict) -> list[Table | str]:
    out: list[Table | str] = []
    f1 = "-" if metrics["f1"] is None else f"{metrics['f1']:.2f}"
    out.append(
        f"distilled classifier, {metrics['held_out_documents']} held-out domain training documents: "
        f"Spearman {metrics['spearman']} (ranking within the domain), "
        f"F1 {f1} at grade >= {metrics['threshold']}"
    )
    if not metrics["trusted"]:
        out.append(
            f"[yellow]its agreement with the grader is below {metrics['min_spearman']}: "
            "do not let it stand in for the grader (grade more documents or check the rubric)[/yellow]"
        )
    return out


def selections_summary(selections: dict[str, dict]) -> list[Table | str]:
    out: list[Table | str] = []
    table = Table(title="selections of the domain training documents (kept/all)")
    for col in ("selection", "method", "scores", "documents", "tokens", "budget"):  # kept/all
        table.add_column(col, justify="left" if col in ("selection", "method", "scores") else "right")
    for name, s in selections.items():
        scores = "-" if s["method"] == "random" else ", ".join(f"{k} {w:g}" for k, w in s["scores"].items())
        table.add_row(
            name,
            s["method"],
            scores,
            f"{s['kept_documents']}/{s['documents']}",
            f"{s['kept_tokens']:,}/{s['tokens']:,}",
            f"{s['budget_tokens']:,}",
        )
    out.append(table)
    return out
