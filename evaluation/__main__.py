"""`python -m evaluation eval RECIPE`: the benchmark harness (`audit` comes with issue #4's second half)."""

import sys

from rich.console import Console
from rich.table import Table

from curation.recipe import RecipeError
from evaluation.config import load_eval_config
from evaluation.tasks import TaskError


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    if len(argv) != 2 or argv[0] != "eval":
        console.print("usage: python -m evaluation eval RECIPE")
        return 2
    try:
        run = load_eval_config(argv[1])
    except RecipeError as e:
        console.print(f"[red]{e}[/red]", highlight=False, soft_wrap=True)
        return 2
    from evaluation.harness import run_eval

    with console.status("evaluating") as status:
        try:
            results = run_eval(run, progress=lambda text: status.update(f"evaluating {text}"))
        except (TaskError, FileNotFoundError) as e:
            console.print(f"[red]{argv[1]}: {e}[/red]", highlight=False, soft_wrap=True)
            return 1
    table = Table(title=f"evaluation `{run.name}` (acc, 95% interval)")
    table.add_column("task")
    for model in results["models"]:
        table.add_column(model, justify="right")
    for pair in next(iter(results["tasks"].values()), {"paired": {}})["paired"]:
        table.add_column(pair, justify="right")
    for task, entry in results["tasks"].items():
        cells = [
            f"{s['acc']['mean']:.3f} [{s['acc']['ci95'][0]:.2f}, {s['acc']['ci95'][1]:.2f}]"
            for s in entry["scores"].values()
        ]
        cells += [
            f"{d['acc']['mean']:+.3f}{' *' if d['acc']['significant'] else ''}"
            for d in entry["paired"].values()
        ]
        table.add_row(f"{task} ({entry['n']})", *cells)
    for corpus, by_model in results["perplexity_bits_per_byte"].items():
        table.add_row(f"bits/byte {corpus}", *(f"{v:.4f}" for v in by_model.values()))
    console.print(table)
    console.print("* the paired interval excludes 0")
    console.print(f"report: {(run.run_dir / 'eval' / 'report.html').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
