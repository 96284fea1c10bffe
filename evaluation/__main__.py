"""`python -m evaluation eval RECIPE` (the benchmark harness) and `audit RECIPE` (contamination)."""

import sys

from rich.console import Console

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
