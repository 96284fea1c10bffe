"""`python -m selection run RECIPE`: reads the corpus's documents, writes the run's `select/` folder.

What each output holds (its path is `recipe.layout`'s property of the same name):
  grades_file      one line per sampled domain training document (the ones a budget ranks): graded,
                   ungraded (with the raw reply) or failed (with the error); replaced whole by each run
  grade_cache      `<hash>.jsonl`: grades, reused by every later run of the same grader (the hash
                   names the model and settings, spelled out in `<hash>.json`)
  distilled        model.bin, metrics.json: the fastText model and its held-out agreement
  score(name)      {id, score}, written by the score methods of `selection.methods`: `llm_grade`,
                   every document's distilled grade; `ets`, `novelty`, `diversity`, base-model
                   scores of the domain training documents (the ones a budget chooses among)
  selection(name)  selection.json (budget, tokens and documents in and kept) and the domain
                   training documents the budget kept: their docs (selection_docs), token shards
                   (selection_tokens, what `make train` reads) and those left out (selection_rejected,
                   reason `budget`). Validation documents are never selected: every run is scored
                   on the same held-out text
  select_logs      datatrove's logs per step; select_report: the HTML report

`distilled`, each score and each selection is replaced whole when its step finishes, with
`_done.json` naming the step, task count and configuration that made it and the files it holds
(`selection.outputs`). Whatever the recipe no longer asks for is removed before anything
runs, so nothing a previous configuration made is read, reported or trained on.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from contracts.documents import docs_reader
from contracts.fasttext import FastTextSettings
from contracts.publish import fresh_partial, write_atomic
from contracts.rejected import RejectedWriter
from contracts.tokens import shard_writer
from selection.budget import BudgetSelector
from selection.config import GradingConfig, SelectRecipe
from selection.distill import GradeDistiller
from selection.grading import Grader, LlmGrader, OpenAiGrader, TransformersGrader, grader_health
from selection.methods import SCORE_METHODS, with_model
from selection.outputs import publish, remove
from selection.report.html import render_select_report


@dataclass(frozen=True)
class Selected:
    """What a select run made, for the console summary; None where the recipe has no such section."""

    grading: dict | None
    distilled: dict | None
    scores: dict[str, list[str]]  # score method -> the scores it wrote
    selections: dict[str, dict]


def run_select(
    recipe: SelectRecipe, on_removed: Callable[[list[str]], None] = lambda names: None
) -> Selected:
    """The stage: removes what the recipe no longer makes (named to `on_removed`, relative to
    `select/`, before anything runs), runs each section's steps, and writes the report."""
    layout, sections = recipe.layout, recipe.select
    if stale := remove_stale(recipe):
        on_removed([path.relative_to(layout.select).as_posix() for path in stale])
    selected = Selected(
        grading=run_grading(recipe) if sections.grading else None,
        distilled=run_distill(recipe) if sections.distill else None,
        scores=run_scores(recipe),
        selections=run_selections(recipe),
    )
    write_atomic(layout.select_report, render_select_report(layout))
    return selected


def _run(recipe: SelectRecipe, steps: list, logs: str, tasks: int = 1, workers: int = 1) -> None:
    """One datatrove run over the steps; never skipped as "completed": every selection step
    recomputes from its inputs (the grade cache is what makes grading resumable)."""
    LocalPipelineExecutor(
        steps,
        tasks=tasks,
        workers=workers,
        logging_dir=str(recipe.layout.select_logs / logs),
        skip_completed=False,
    ).run()


def remove_stale(recipe: SelectRecipe) -> list[Path]:
    """Removes from `select/` what this recipe does not make (the grades, classifier, scores and
    selections of sections it no longer has; what killed steps left half written); returns them.
    The grade cache stays: its grades are keyed by everything that made them."""
    layout, s = recipe.layout, recipe.select
    wanted = {layout.select_logs, layout.select_report, layout.grades, layout.grade_cache}
    wanted |= {layout.scores, layout.budgets}
    wanted |= {layout.grades_file} if s.grading else set()
    wanted |= {layout.distilled} if s.distill else set()
    wanted |= {layout.score(name) for name in s.score_names()}
    wanted |= {layout.selection(name) for name in s.budgets}
    stale = [
        path
        for folder in (layout.select, layout.grades, layout.scores, layout.budgets)
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path not in wanted
    ]
    for path in stale:
        remove(path)
    return stale


def made_by(step: str, config, tasks: int = 1) -> dict:
    return {"step": step, "tasks": tasks, "config": config.model_dump(mode="json")}


def make_grader(section: GradingConfig) -> Grader:
    """The grader the section names; its keys are the grader's arguments."""
    if section.http:
        return OpenAiGrader(**section.http.model_dump())
    return TransformersGrader(**section.local.model_dump())


def run_grading(recipe: SelectRecipe) -> dict:
    """Grade the sample; return counts by status and the histogram of rounded grades."""
    layout, c = recipe.layout, recipe.select.grading
    if c.local:
        c = c.model_copy(update={"local": with_model(c.local, "select.grading.local.model", layout)})
    grader = LlmGrader(
        str(layout.grades_file),
        str(layout.grade_cache),
        make_grader(c),
        sample=c.sample,
        stratify=c.stratify,
        domain=c.domain,
        rubric=c.rubric,
        max_chars=c.max_chars,
        seed=c.seed,
    )
    # the documents a budget ranks: the grades (and the classifier's agreement) measure ranking within
    # the domain, not domain against replay, which the router already decided
    _run(recipe, [docs_reader(layout.corpus_docs("domain", "train")), grader], "grading")
    grades = [json.loads(line) for line in layout.grades_file.read_text().splitlines()]
    return {
        "sampled": len(grades),
        "status": dict(Counter(g["status"] for g in grades)),
        "from_cache": sum(g["cached"] for g in grades),
        "grades": dict(sorted(Counter(round(g["grade"]) for g in grades if g["grade"] is not None).items())),
        "health": grader_health(grades),
        "path": str(layout.grades_file),
    }


def run_distill(recipe: SelectRecipe) -> dict:
    """Train the classifier on the grades; return its metrics. Its scores (`llm_grade`) are the
    `distilled_scores` method's."""
    layout, c = recipe.layout, recipe.select.distill
    partial = fresh_partial(layout.distilled)
    distiller = GradeDistiller(
        str(layout.grades_file),
        str(partial),
        FastTextSettings.of(c),
        c.threshold,
        c.labels,
        c.held_out,
        c.min_spearman,
    )
    _run(recipe, [docs_reader(layout.corpus_docs("domain", "train")), distiller], "distill")
    publish(partial, layout.distilled, made_by("distill", c))
    return json.loads((layout.distilled / "metrics.json").read_text())


def run_scores(recipe: SelectRecipe) -> dict[str, list[str]]:
    """Each score method the `select:` section switches on, in registry order: the scores it wrote."""
    methods = recipe.select.methods()
    return {name: run_score_method(recipe, name, settings) for name, settings in methods.items()}


def run_score_method(recipe: SelectRecipe, name: str, settings) -> list[str]:
    """The method's step over its documents, then each score folder it wrote published in place of
    the old one; a score it could make but did not write this time (no task examples) is removed."""
    layout, method = recipe.layout, SCORE_METHODS[name]
    settings = method.prepare(settings, recipe) if method.prepare else settings
    partial = fresh_partial(layout.score(name))  # one folder per score inside
    documents = layout.docs if method.documents == "all" else layout.corpus_docs("domain", "train")
    tasks = recipe.executor.tasks
    workers = recipe.executor.workers if method.parallel else 1
    _run(recipe, [docs_reader(documents), method.step(settings, recipe, partial)], name, tasks, workers)
    written = [score for score in method.made(settings) if (partial / score).is_dir()]
    for score in method.made(settings):
        if score in written:
            publish(partial / score, layout.score(score), made_by(name, settings, tasks))
        else:
            remove(layout.score(score))
    remove(partial)
    return written


def run_selections(recipe: SelectRecipe) -> dict[str, dict]:
    """Each budget keeps its domain training documents and tokenizes them; return selection.json's."""
    layout, results = recipe.layout, {}
    for name, budget in recipe.select.budgets.items():
        # `<name>.partial`: written as a selection of its own, published as `name` once finished
        draft = fresh_partial(layout.selection(name)).name
        selector = BudgetSelector(
            {score: str(layout.score(score)) for score in budget.scores},
            str(layout.tokenizer_file),
            str(layout.selection(draft) / "selection.json"),
            **budget.model_dump(),
            exclusion_writer=RejectedWriter(str(layout.selection_rejected(draft) / "budget"), "budget"),
            label=name,
        )
        steps = [
            docs_reader(layout.corpus_docs("domain", "train")),
            selector,
            JsonlWriter(str(layout.selection_docs(draft)), output_filename="${rank}.jsonl.gz"),
            shard_writer(
                layout.selection_tokens(draft),
                "domain_train",
                layout.tokenizer_file,
                recipe.tokenizer.eos_token,
                recipe.output.max_tokens_per_shard,
                recipe.output.seed,
            ),
        ]
        _run(recipe, steps, f"budgets/{name}")
        publish(layout.selection(draft), layout.selection(name), made_by("budget", budget))
        results[name] = json.loads((layout.selection(name) / "selection.json").read_text())
    return results
