"""The console summaries at the end of `python -m curation run` and `tokenizers`: tables and lines for
rich to print (the HTML report is `curation.report.html`)."""

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
