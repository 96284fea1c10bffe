"""`python -m curation run RECIPE` builds the corpus, `select RECIPE` selects from it (the work is in
`curation.pipeline` and `curation.select.stage`; here only the console summary); `validate RECIPE`
only checks the recipe."""

import argparse
import json
import os
import sys
import time
import traceback
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.recipe import RecipeError
from curation.config import load_corpus_recipe
from curation.report.html import funnel_steps
from curation.report.stats import EDIT_STATS


@contextmanager
def redirect_fd2(target):
    """Send file descriptor 2 (loguru's stderr sinks, worker processes) to `target`."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def summary(console: Console, recipe, seconds: float) -> None:
    stats = json.loads(recipe.layout.corpus_stats.read_text())
    table = Table(title=f"corpus `{recipe.name}` in {seconds:.0f} s", show_lines=False)
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
    console.print(table)
    inputs = Table(title="keep-rate per input", show_lines=False)
    for col in ("input", "kind", "kept", "characters kept", "top drop reasons"):
        inputs.add_column(col, justify="right" if col in ("kept", "characters kept") else "left")
    for name, row in stats.get("inputs", {}).items():
        top = ", ".join(f"{k} {v}" for k, v in list(row["dropped"].items())[:3])
        share = f"{row['chars_kept_share']:.0%}"
        inputs.add_row(name, row["kind"], f"{row['kept']}/{row['documents']}", share, top)
    console.print(inputs)
    read = sum(s["kept"] for s in stats["steps"] if s["kind"] == "reader" and s["stage"] == "extract")
    dropped = sum(sum(s["dropped"].values()) for s in stats["steps"])
    console.print(
        f"  read {read} documents: {read - dropped} kept, {dropped} dropped (each in rejected/<step>/)"
    )
    for corpus, splits in stats["tokens"].items():
        parts = ", ".join(
            f"{split}: {v['documents']} docs / {v['tokens']:,} tokens" for split, v in splits.items()
        )
        console.print(f"  [bold]{corpus}[/bold]  {parts}")
    for name, m in stats["classifiers"].items():
        if m.get("precision") is not None:
            console.print(
                f"  {name} classifier (held-out): precision {m['precision']:.2f}, recall {m['recall']:.2f}"
            )
    console.print(f"report: [link]{recipe.layout.corpus_report.resolve()}[/link]")


def select(console: Console, recipe) -> int:
    sections = recipe.select and [
        k for k in ("grading", "distill", "scores", "budgets") if getattr(recipe.select, k)
    ]
    if not sections:
        console.print(f"[red]{recipe.name}: the recipe's `select:` section asks for nothing[/red]")
        return 2
    from curation.select.stage import run_select

    def removed(names: list[str]) -> None:
        console.print(f"removed what the recipe no longer makes: {', '.join(names)}", soft_wrap=True)

    start = time.time()
    try:
        made = run_select(recipe, removed)
    except (ValueError, OSError) as e:  # a model that cannot grade, a corpus not built yet
        console.print(f"[red]selection failed: {e}[/red]", highlight=False)
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the grades received are cached; run again to go on[/yellow]")
        return 130
    console.print(
        f"[bold]select `{recipe.name}`[/bold] ({', '.join(sections)}) in {time.time() - start:.0f} s"
    )
    if made.grading:
        print_grading(console, made.grading)
    if made.distilled:
        print_distilled(console, made.distilled)
    if made.scores:
        console.print(
            f"base-model scores {', '.join(made.scores['scores'])} from {made.scores['model']} "
            f"({made.scores['task_examples']} task examples)"
        )
    if made.selections:
        print_selections(console, made.selections)
        console.print(f"selections: {recipe.layout.budgets}/<selection>/ (docs, tokens, rejected)")
    console.print(f"report: [link]{recipe.layout.select_report.resolve()}[/link]")
    return 0


def print_distilled(console: Console, metrics: dict) -> None:
    f1 = "-" if metrics["f1"] is None else f"{metrics['f1']:.2f}"
    console.print(
        f"distilled classifier, {metrics['held_out_documents']} held-out documents: "
        f"Spearman {metrics['spearman']}, F1 {f1} at grade >= {metrics['threshold']}"
    )
    if not metrics["trusted"]:
        console.print(
            f"[yellow]its agreement with the grader is below {metrics['min_spearman']}: "
            "do not let it stand in for the grader (grade more documents or check the rubric)[/yellow]"
        )


def print_selections(console: Console, selections: dict[str, dict]) -> None:
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
    console.print(table)


def print_grading(console: Console, result: dict) -> None:
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
    console.print(table)
    if status.get("failed"):
        console.print(f"[yellow]{status['failed']} failed (not cached): run again to retry them[/yellow]")
    health = result["health"]
    if health["grade_mass"] is not None:
        console.print(
            f"grader health: {health['grade_mass']:.1%} of the next-token probability on the digits"
        )
    if health["parse_rate"] is not None:
        console.print(
            f"grader health: {health['replies_parsed']} of {health['replies_checked']} free replies "
            f"({health['parse_rate']:.0%}) parse strictly as `Grade: N`"
        )
    if health["grade_mass"] is not None and health["grade_mass"] < 0.5:
        console.print(
            f"[yellow]the local grader puts {health['grade_mass']:.1%} of its next-token probability on "
            "the grade digits: it does not follow the rubric's format, so its grades say little[/yellow]"
        )
    console.print(f"grades: {result['path']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curation")
    parser.add_argument("command", choices=["run", "validate", "select"])
    parser.add_argument("recipe")
    args = parser.parse_args(argv)
    # the console keeps the real stderr; during the run, fd 2 (ours and the workers') goes to a log file
    console = Console(file=os.fdopen(os.dup(2), "w"), stderr=True)
    try:
        recipe = load_corpus_recipe(args.recipe)
    except RecipeError as e:
        console.print(f"[red]{e}[/red]", highlight=False, soft_wrap=True)
        return 2
    if args.command == "validate":
        console.print(f"{args.recipe}: ok")
        return 0
    if args.command == "select":
        return select(console, recipe)
    from curation.pipeline import CorpusPipeline

    pipeline = CorpusPipeline(recipe)
    log_path = recipe.layout.corpus_logs / "console.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"corpus `{recipe.name}`: {len(pipeline.stages)} stages; datatrove's log: {log_path}")
    start = time.time()
    with (
        open(log_path, "a") as log,
        redirect_fd2(log),
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        bar = progress.add_task("corpus", total=len(pipeline.stages))

        def on_stage(name: str) -> None:
            progress.update(
                bar, description=f"stage {name}", completed=[s.name for s in pipeline.stages].index(name)
            )

        try:
            notices = pipeline.run(on_stage)
        except Exception:
            traceback.print_exc()
            progress.stop()
            console.print(f"[red]the run failed; the end of {log_path}:[/red]")
            console.print("".join(log_path.read_text().splitlines(keepends=True)[-25:]), highlight=False)
            return 1
        progress.update(bar, completed=len(pipeline.stages), description="done")
    for notice in notices:
        console.print(f"[yellow]{notice}[/yellow]")
    if recipe.executor.type == "slurm":
        console.print(f"submitted to Slurm; the report will be at {recipe.layout.corpus_report}")
        return 0
    summary(console, recipe, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
