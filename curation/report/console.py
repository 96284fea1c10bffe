"""The console summaries at the end of `python -m curation run` and `select`: tables and lines for
rich to print (the HTML reports are `curation.report.html` and `curation.report.select`)."""

from __future__ import annotations

import json

from rich import box
from rich.table import Table

from contracts.layout import RunLayout
from curation.report.html import funnel_steps
from curation.report.stats import EDIT_STATS


def corpus_summary(layout: RunLayout, seconds: float) -> list[Table | str]:
    out: list[Table | str] = []
    stats = json.loads(layout.corpus_stats.read_text())
    table = Table(title=f"corpus `{layout.name}` in {seconds:.0f} s", show_lines=False)
    for col in ("step", "in", "kept", "dropped (top reasons)"):
        table.add_column(col, justify="right" if col in ("in", "kept") else "left")
    for s in funnel_steps(stats):
        if s["kind"] != "step" or not (s["dropped"] or s.get("edits")):
            continue
        top = ", ".join(
            [f"{k} {v}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:3]]
            + [f"{EDIT_STATS[k]} {v}" for k, v in s.get("edits", {}).items()]
        )
        table.add_row(s["step"], str(s["in"]), str(s["kept"]), top)
    out.append(table)
    inputs = Table(title="keep-rate per input", show_lines=False)
    for col in ("input", "kind", "kept", "characters kept", "top drop reasons"):
        inputs.add_column(col, justify="right" if col in ("kept", "characters kept") else "left")
    for name, row in stats.get("inputs", {}).items():
        top = ", ".join(f"{k} {v}" for k, v in list(row["dropped"].items())[:3])
        share = f"{row['chars_kept_share']:.0%}"
        inputs.add_row(name, row["kind"], f"{row['kept']}/{row['documents']}", share, top)
    out.append(inputs)
    read = sum(s["kept"] for s in stats["steps"] if s["kind"] == "reader" and s["stage"] == "extract")
    dropped = sum(sum(s["dropped"].values()) for s in stats["steps"])
    out.append(
        f"  read {read} documents: {read - dropped} kept, {dropped} dropped (each in rejected/<step>/)"
    )
    for corpus, splits in stats["tokens"].items():
        parts = ", ".join(
            f"{split}: {v['documents']} docs / {v['tokens']:,} tokens" for split, v in splits.items()
        )
        out.append(f"  [bold]{corpus}[/bold]  {parts}")
    for name, m in stats["classifiers"].items():
        if m.get("precision") is not None:
            out.append(
                f"  {name} classifier (held-out): precision {m['precision']:.2f}, recall {m['recall']:.2f}"
            )
    out.append(f"report: [link]{layout.corpus_report.resolve()}[/link]")
    return out


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
        f"distilled classifier, {metrics['held_out_documents']} held-out documents: "
        f"Spearman {metrics['spearman']}, F1 {f1} at grade >= {metrics['threshold']}"
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


def tokenizer_audit_summary(audit: dict) -> list[Table | str]:
    """The fertility table: per corpus x language x tokenizer, and why a tokenizer was not audited."""
    table = Table(title=f"tokenizer audit `{audit['recipe']}`", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("corpus", "lang", "tokenizer", "tok/ch", "tok/B", "fallbk", "split"):
        table.add_column(col, justify="right" if col.startswith(("tok/", "fall", "split")) else "left")
    # to fit 80 columns: all the words are in audit.json and the report
    table.add_column("top words:tokens", no_wrap=True, overflow="ellipsis", max_width=16)
    for r in audit["rows"]:
        table.add_row(
            r["corpus"],
            r["language"],
            r["tokenizer"],
            f"{r['tokens_per_char']:.3f}",
            f"{r['tokens_per_byte']:.3f}",
            f"{r['byte_fallback_share']:.1%}",
            f"{r['multi_token_word_share']:.0%}",
            " ".join(f"{w['word']}:{w['tokens']:g}" for w in r["multi_token_words"][:3]),
        )
    out: list[Table | str] = [table]
    for label, t in audit["tokenizers"].items():
        if "error" in t:
            out.append(f"[yellow]{label} not audited: {t['error']}[/yellow]")
    return out
