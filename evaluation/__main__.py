"""`python -m evaluation eval RECIPE` (the benchmark harness) and `audit RECIPE` (contamination)."""

import sys

from rich.console import Console
from rich.table import Table

from contracts.items import TaskError
from contracts.recipe import RecipeError, UnsafePathError
from evaluation.config import EvalError, RunConfig, load_eval_config


def _task_table(run: RunConfig, results: dict) -> Table:
    wide = len(results["models"]) <= 3  # with more models the intervals stay in the report
    table = Table(title=f"evaluation `{run.name}` (acc{', 95% interval' if wide else ''})")
    table.add_column("task")
    for model in results["models"]:
        table.add_column(model, justify="right")
    for task, entry in results["tasks"].items():
        cells = [
            f"{s['acc']['mean']:.3f}"
            + (f" [{s['acc']['ci95'][0]:.2f}, {s['acc']['ci95'][1]:.2f}]" if wide else "")
            for s in entry["scores"].values()
        ]
        table.add_row(f"{task} ({entry['n']})", *cells)
    return table


def _models_table(results: dict) -> Table:
    """Per model: bits per byte with intervals and what its own training stage cost."""
    from evaluation.report import format_seconds, format_tokens

    bpb = results.get("perplexity_intervals", {})
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


def _acc_pairs_table(results: dict) -> Table | None:
    """Per pair, over the tasks: how often the difference in acc is beyond noise."""
    pairs = list(next(iter(results["tasks"].values()), {"paired": {}})["paired"])
    if not pairs:
        return None
    diffs = Table(title="paired differences in acc over the tasks (95% interval excludes 0)")
    for col in ("models", "better", "worse", "mean difference"):
        diffs.add_column(col, justify="left" if col == "models" else "right")
    for pair in pairs:
        per_task = [entry["paired"][pair]["acc"] for entry in results["tasks"].values()]
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


def _bpb_pairs_table(results: dict) -> Table | None:
    paired = results.get("perplexity_paired", {})
    pairs = list(dict.fromkeys(p for by_pair in paired.values() for p in by_pair))
    if not pairs:
        return None
    table = Table(title="paired differences in bits per byte (negative: lower, better; * beyond noise)")
    table.add_column("models")
    for corpus in paired:
        table.add_column(corpus, justify="right")
    for pair in pairs:
        cells = [_difference(by_pair.get(pair)) for by_pair in paired.values()]
        table.add_row(pair, *cells)
    return table


def _equal_compute_table(results: dict) -> Table | None:
    from evaluation.report import format_tokens

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


def print_eval(console: Console, run: RunConfig, results: dict) -> None:
    for row in results["rejected_items"]:
        console.print(
            f"left out: {row['file']}: item {row['id']}: {row['reason']}", style="yellow", markup=False
        )
    console.print(_task_table(run, results))
    console.print(_models_table(results))
    for table in (_acc_pairs_table(results), _bpb_pairs_table(results), _equal_compute_table(results)):
        if table is not None:
            console.print(table)
    console.print(f"report: {(run.run_dir / 'eval' / 'report.html').resolve()}")


def print_audit(console: Console, run: RunConfig, result: dict) -> None:
    table = Table(
        title=f"contamination audit `{run.name}`: {result['documents']} documents, "
        f"{result['bytes'] / 1e6:.1f} MB in {result['seconds']:.0f} s"
    )
    for column in ("task", "items", "clean", "partial", "dirty", "short", "+answer", "near"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, s in result["tasks"].items():
        table.add_row(
            task,
            *(
                str(s[k])
                for k in (
                    "items",
                    "clean",
                    "partial",
                    "dirty",
                    "too_short",
                    "input_label_match",
                    "near_duplicate",
                )
            ),
        )
    console.print(table)
    for task, by_model in result["clean_subset"].items():
        console.print(
            f"{task}: acc all / clean "
            + ", ".join(
                f"{m} {s['full']['acc']:.3f} / "
                + (f"{s['clean']['acc']:.3f} (n={s['clean']['n']})" if s["clean"]["n"] else "-")
                for m, s in by_model.items()
            )
        )
    console.print(f"report: {(run.run_dir / 'audit' / 'report.html').resolve()}")


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    if len(argv) != 2 or argv[0] not in ("eval", "audit"):
        console.print("usage: python -m evaluation eval|audit RECIPE")
        return 2
    command, recipe = argv
    try:
        run = load_eval_config(recipe)
    except RecipeError as e:
        console.print(f"[red]{e}[/red]", highlight=False, soft_wrap=True)
        return 2
    if command == "eval":
        from evaluation.harness import run_eval as work
    else:
        from evaluation.audit import run_audit as work
    with console.status(f"{command} `{run.name}`") as status:
        try:
            result = work(run, progress=lambda text: status.update(f"{command}: {text}"))
        except (TaskError, EvalError, UnsafePathError, FileNotFoundError) as e:
            console.print(f"[red]{recipe}: {e}[/red]", highlight=False, soft_wrap=True)
            return 1
    (print_eval if command == "eval" else print_audit)(console, run, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
