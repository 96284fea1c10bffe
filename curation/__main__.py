"""`python -m curation run RECIPE` builds the corpus (the work is in `curation.pipeline`, the summaries
in `curation.report.console`); `tokenizers RECIPE` audits tokenizers on the built corpus; `validate
RECIPE` only checks the recipe."""

import argparse
import os
import sys
import time
import traceback
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contracts.recipe import RecipeError
from curation.config import load_corpus_recipe
from curation.report.console import corpus_summary, tokenizer_audit_summary


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


def print_all(console: Console, lines: list) -> None:
    for line in lines:
        console.print(line)


def audit_tokenizers(console: Console, recipe) -> int:
    from curation.report.tokenizer_audit import TokenizerAudit, audit_sources, write_audit

    layout = recipe.layout
    if not any(layout.docs.glob("*/*/*.jsonl.gz")):
        console.print(f"[red]no documents (*.jsonl.gz) in {layout.docs}: build the corpus (`run`)[/red]")
        return 1
    start = time.time()
    audit = TokenizerAudit(audit_sources(recipe)).run(layout)
    write_audit(audit, layout)
    print_all(console, tokenizer_audit_summary(audit))
    console.print(f"audit in {time.time() - start:.0f} s: {layout.tokenizer_audits}/ (audit.json, audit.png)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curation")
    parser.add_argument("command", choices=["run", "validate", "tokenizers"])
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
    if args.command == "tokenizers":
        return audit_tokenizers(console, recipe)
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
    print_all(console, corpus_summary(recipe.layout, time.time() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
