"""`python -m evaluation eval RECIPE` (the benchmark harness) and `audit RECIPE` (contamination)."""

import sys

from rich.console import Console
from rich.table import Table

from curation.recipe import RecipeError
from evaluation.config import RunConfig, load_eval_config
from evaluation.tasks import TaskError


def print_eval(console: Console, run: RunConfig, results: dict) -> None:
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
    for corpus, by_model in results["perplexity_bits_per_byte"].items():
        table.add_row(f"bits/byte {corpus}", *(f"{v:.4f}" for v in by_model.values()))
    console.print(table)
    pairs = list(next(iter(results["tasks"].values()), {"paired": {}})["paired"])
    if pairs:  # per task in the report; here how often each difference is beyond noise
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
        console.print(diffs)
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
        except (TaskError, FileNotFoundError) as e:
            console.print(f"[red]{recipe}: {e}[/red]", highlight=False, soft_wrap=True)
            return 1
    (print_eval if command == "eval" else print_audit)(console, run, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
