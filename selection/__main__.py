"""`python -m selection run RECIPE` grades, scores and selects from the built corpus (the work is in
`selection.run`, the summaries in `selection.report.console`); `validate RECIPE` only checks the
recipe."""

import sys
import time

from rich.console import Console

from contracts.recipe import RecipeError
from selection.config import SelectRecipe, load_select_recipe
from selection.methods import SCORE_METHODS
from selection.report.console import distilled_summary, grading_summary, selections_summary


def select(console: Console, recipe: SelectRecipe) -> int:
    sections = recipe.select and [
        *(["grading"] if recipe.select.grading else []),
        *(SCORE_METHODS[name].section for name in recipe.select.methods()),
        *(["budgets"] if recipe.select.budgets else []),
    ]
    if not sections:
        console.print(f"[red]{recipe.name}: the recipe's `select:` section asks for nothing[/red]")
        return 2
    from selection.run import run_select

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
    lines = [
        *(grading_summary(made.grading) if made.grading else []),
        *(distilled_summary(made.distilled) if made.distilled else []),
    ]
    if made.scores:
        lines.append("scores " + "; ".join(f"{', '.join(s)} ({name})" for name, s in made.scores.items()))
    if made.selections:
        lines += selections_summary(made.selections)
        lines.append(f"selections: {recipe.layout.budgets}/<selection>/ (docs, tokens, rejected)")
    lines.append(f"report: [link]{recipe.layout.select_report.resolve()}[/link]")
    for line in lines:
        console.print(line)
    return 0


def main(argv: list[str]) -> int:
    console = Console(stderr=True)
    if len(argv) != 2 or argv[0] not in ("run", "validate"):
        console.print("usage: python -m selection run|validate RECIPE")
        return 2
    try:
        recipe = load_select_recipe(argv[1])
    except RecipeError as e:
        console.print(f"[red]{e}[/red]", highlight=False, soft_wrap=True)
        return 2
    if argv[0] == "validate":
        console.print(f"{argv[1]}: ok")
        return 0
    return select(console, recipe)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
