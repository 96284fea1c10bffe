"""The console summaries `python -m evaluation` prints after `eval` and `audit`."""

from __future__ import annotations

from rich.table import Table

from evaluation.metrics import headline
from evaluation.report.formatting import format_seconds, format_tokens


def _task_console(name: str, results: dict) -> Table:
    wide = len(results["models"]) <= 3  # with more models the intervals stay in the report
    table = Table(title=f"evaluation `{name}` (headline score{', 95% interval' if wide else ''})")
    table.add_column("task")
    for model in results["models"]:
        table.add_column(model, justify="right")
    for task, entry in results["tasks"].items():
        metric = headline(entry)
        cells = [
            f"{s[metric]['mean']:.3f}"
            + (f" [{s[metric]['ci95'][0]:.2f}, {s[metric]['ci95'][1]:.2f}]" if wide else "")
            for s in entry["scores"].values()
        ]
        table.add_row(f"{task} ({entry['n']}, {metric})", *cells)
    return table


def _models_console(results: dict) -> Table | None:
    """Per model: bits per byte with intervals and what its own training stage cost (none when
    there is neither: no validation split scored, no model trained here)."""
    bpb = results.get("perplexity_intervals", {})
    if not bpb and not any(results.get("cost", {}).values()):
        return None
    table = Table(title="bits per byte (95% interval over documents; lower is better) and training cost")
    for column in ("model", *(f"{c} bits/byte" for c in bpb), "tokens", "time"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in results["models"]:
        cells = [
            f"{by[model]['bpb']:.4f} [{by[model]['ci95'][0]:.4f}, {by[model]['ci95'][1]:.4f}]"
            if model in by
            else "-"
            for by in bpb.values()
        ]
        cost = results.get("cost", {}).get(model)
        spent = [format_tokens(cost["tokens"]), format_seconds(cost["seconds"])] if cost else ["?", "?"]
        table.add_row(model, *cells, *spent)
    return table


def _headline_pairs_console(results: dict) -> Table | None:
    """Per pair, over the tasks: how often the difference in headline score is beyond noise."""
    pairs = list(next(iter(results["tasks"].values()), {"paired": {}})["paired"])
    if not pairs:
        return None
    diffs = Table(title="paired differences in headline score over the tasks (95% interval excludes 0)")
    for col in ("models", "better", "worse", "mean difference"):
        diffs.add_column(col, justify="left" if col == "models" else "right")
    for pair in pairs:
        per_task = [entry["paired"][pair][headline(entry)] for entry in results["tasks"].values()]
        diffs.add_row(
            pair,
            str(sum(d["significant"] and d["mean"] > 0 for d in per_task)),
            str(sum(d["significant"] and d["mean"] < 0 for d in per_task)),
            f"{sum(d['mean'] for d in per_task) / len(per_task):+.3f}",
        )
    return diffs


def _difference(d: dict | None) -> str:
    if d is None:
        return "-"
    mark = " *" if d["significant"] else "  "
    return f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]{mark}"


def _bpb_pairs_console(results: dict) -> Table | None:
    paired = results.get("perplexity_paired", {})
    pairs = list(dict.fromkeys(p for by_pair in paired.values() for p in by_pair))
    if not pairs:
        return None
    table = Table(title="paired differences in bits per byte (negative: lower, better; * beyond noise)")
    table.add_column("models")
    for corpus in paired:
        table.add_column(corpus, justify="right")
    for pair in pairs:
        table.add_row(pair, *(_difference(by_pair.get(pair)) for by_pair in paired.values()))
    return table


def _equal_compute_console(results: dict) -> Table | None:
    rows = results.get("equal_compute", {})
    if not rows:
        return None
    table = Table(title="equal compute: validation loss, selection vs the full run at the same tokens")
    for column in ("model", "tokens", "selection", "full run"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model, e in rows.items():
        own, full = e["selection_val_loss"] or {}, e["full_run_val_loss_at_tokens"]
        table.add_row(
            model,
            format_tokens(e["tokens"]),
            ", ".join(f"{c} {v:.4f}" for c, v in own.items()),
            ", ".join(f"{c} {full[c]:.4f}" for c in own) if full else "full run trained fewer tokens",
        )
    return table


def eval_tables(name: str, results: dict) -> list[Table]:
    """The console summary of `eval`: scores per task, bits per byte and cost, then the pairs."""
    tables = [
        _task_console(name, results),
        _models_console(results),
        _headline_pairs_console(results),
        _bpb_pairs_console(results),
        _equal_compute_console(results),
    ]
    return [t for t in tables if t is not None]


def audit_table(name: str, result: dict) -> Table:
    """The console summary of `audit`: each task's items by bucket."""
    table = Table(
        title=f"contamination audit `{name}`: {result['documents']} documents, "
        f"{result['bytes'] / 1e6:.1f} MB in {result['seconds']:.0f} s"
    )
    columns = ("task", "items", "clean", "partial", "dirty", "short", "+answer", "near", "context only")
    for column in columns:
        table.add_column(column, justify="left" if column == "task" else "right")
    keys = ("items", "clean", "partial", "dirty", "too_short", "input_label_match", "near_duplicate")
    keys += ("context_only",)
    for task, s in result["tasks"].items():
        table.add_row(task, *(str(s[k]) for k in keys))
    return table


def clean_subset_lines(result: dict) -> list[str]:
    """Per task: each model's headline score on all items and on the clean ones."""
    return [
        f"{task}: {next(iter(by_model.values()))['metric']} all / clean "
        + ", ".join(
            f"{m} {s['full']['mean']:.3f} / "
            + (f"{s['clean']['mean']:.3f} (n={s['clean']['n']})" if s["clean"]["n"] else "-")
            for m, s in by_model.items()
        )
        for task, by_model in result["clean_subset"].items()
    ]
