"""`python -m evaluation eval RECIPE` (the benchmark harness), `audit RECIPE` (contamination) and
`merges RECIPE` (bits per byte of `make merge`'s models)."""

import sys

from rich.console import Console
from rich.table import Table

from contracts.items import TaskError
from contracts.recipe import RecipeError, UnsafePathError
from evaluation.config import EvalError, RunConfig, load_eval_config
from evaluation.report import audit_table, clean_subset_lines, eval_tables


def print_eval(console: Console, run: RunConfig, results: dict) -> None:
    for row in results["rejected_items"]:
        console.print(
            f"left out: {row['file']}: item {row['id']}: {row['reason']}", style="yellow", markup=False
        )
    for table in eval_tables(run.name, results):
        console.print(table)
    console.print(f"report: {run.layout.eval_report.resolve()}")


def print_audit(console: Console, run: RunConfig, result: dict) -> None:
    console.print(audit_table(run.name, result))
    for line in clean_subset_lines(result):
        console.print(line)
    console.print(f"report: {run.layout.audit_report.resolve()}")


def print_merges(console: Console, run: RunConfig, result: dict) -> None:
    table = Table(title=f"merged models of `{run.name}`: bits per byte (lower is better)")
    corpora = list(result["documents"])
    for header in ["model", *corpora, "Pareto front"]:
        table.add_column(header)
    for label, m in result["models"].items():
        scores = [f"{m['bits_per_byte'][c]['bpb']:.4f}" for c in corpora]
        table.add_row(label, *scores, "yes" if m.get("pareto") else "")
    console.print(table)
    console.print(f"report: {run.layout.merge_report.resolve()}")


COMMANDS = {"eval": print_eval, "audit": print_audit, "merges": print_merges}


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    if len(argv) != 2 or argv[0] not in COMMANDS:
        console.print("usage: python -m evaluation eval|audit|merges RECIPE")
        return 2
    command, recipe = argv
    try:
        run = load_eval_config(recipe)
    except RecipeError as e:
        console.print(f"[red]{e}[/red]", highlight=False, soft_wrap=True)
        return 2
    if command == "eval":
        from evaluation.harness import run_eval as work
    elif command == "audit":
        from evaluation.audit import run_audit as work
    else:
        from evaluation.merges import run_merge_scores as work
    with console.status(f"{command} `{run.name}`") as status:
        try:
            result = work(run, progress=lambda text: status.update(f"{command}: {text}"))
        except (TaskError, EvalError, UnsafePathError, FileNotFoundError) as e:
            console.print(f"[red]{recipe}: {e}[/red]", highlight=False, soft_wrap=True)
            return 1
    COMMANDS[command](console, run, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
