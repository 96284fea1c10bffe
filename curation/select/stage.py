"""`python -m curation select RECIPE`: reads `out/<name>/corpus/docs/`, writes `out/<name>/select/`.

Layout:
  select/grades/grades.jsonl         one line per sampled document: graded, ungraded (with the raw
                                     reply) or failed (with the error); replaced whole by each run
  select/grades/cache/<hash>.jsonl   grades, reused by every later run of the same grader (the
                                     hash names the model and settings, spelled out in <hash>.json)
  select/distilled/model.bin, metrics.json   the fastText model and its held-out agreement
  select/scores/llm_grade/<rank>.jsonl       {id, score}: every document's distilled grade
  select/scores/{ets,novelty,diversity}/     {id, score}: base-model scores of the domain training
                                     documents (the ones a budget chooses among)
  select/budgets/<selection>/docs/domain/train/    the domain training documents a budget kept
                                     (validation documents are never selected: every run is scored
                                     on the same held-out text)
  select/budgets/<selection>/tokens/domain/train/  their token shards, what `make train` reads
  select/budgets/<selection>/rejected/budget/      the documents left out (reason `budget`)
  select/budgets/<selection>/selection.json        budget, tokens and documents in and kept
  select/logs/                       datatrove's logs per step

`distilled/`, each `scores/<score>/` and each `budgets/<selection>/` is replaced whole when its step
finishes, with `_done.json` naming the step, task count and configuration that made it and the
files it holds (`curation.select.outputs`). Whatever the recipe no longer asks for is removed before
anything runs, so nothing a previous configuration made is read, reported or trained on.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from curation.config import CorpusRecipe
from curation.output.tokens import shard_writer
from curation.readers import docs_folder_reader
from curation.select.budget import BudgetSelector
from curation.select.distill import DistilledScorer, GradeDistiller
from curation.select.grading import LlmGrader, grader_health
from curation.select.model_scores import BaseModelScorer, FastTextTaskSimilarity, task_example_texts
from curation.select.outputs import partial_folder, publish, remove
from curation.writers import RejectedWriter


def _run(recipe: CorpusRecipe, steps: list, logs: str, tasks: int = 1, workers: int = 1) -> None:
    """One datatrove run over the steps; never skipped as "completed": every selection step
    recomputes from its inputs (the grade cache is what makes grading resumable)."""
    LocalPipelineExecutor(
        steps,
        tasks=tasks,
        workers=workers,
        logging_dir=str(select_dir(recipe) / "logs" / logs),
        skip_completed=False,
    ).run()


def select_dir(recipe: CorpusRecipe) -> Path:
    return Path(recipe.output_dir) / recipe.name / "select"


def remove_stale(recipe: CorpusRecipe) -> list[Path]:
    """Removes from `select/` what this recipe does not make (the grades, classifier, scores and
    selections of sections it no longer has; what killed steps left half written); returns them.
    The grade cache stays: its grades are keyed by everything that made them."""
    out, s = select_dir(recipe), recipe.select
    wanted = {"logs", "report.html", "grades", "grades/cache", "scores", "budgets"}
    wanted |= {"grades/grades.jsonl"} if s.grading else set()
    wanted |= {"distilled"} if s.distill else set()
    wanted |= {f"scores/{name}" for name in s.score_names()}
    wanted |= {f"budgets/{name}" for name in s.budgets}
    stale = [
        path
        for folder in (out, out / "grades", out / "scores", out / "budgets")
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.relative_to(out).as_posix() not in wanted
    ]
    for path in stale:
        remove(path)
    return stale


def made_by(step: str, config, tasks: int = 1) -> dict:
    return {"step": step, "tasks": tasks, "config": config.model_dump(mode="json")}


def run_grading(recipe: CorpusRecipe) -> dict:
    """Grade the sample; return counts by status and the histogram of rounded grades."""
    out = select_dir(recipe)
    grader = LlmGrader(str(out / "grades"), recipe.select.grading)
    _run(recipe, [docs_folder_reader(recipe.layout.docs), grader], "grading")
    grades = [json.loads(line) for line in (out / "grades" / "grades.jsonl").read_text().splitlines()]
    return {
        "sampled": len(grades),
        "status": dict(Counter(g["status"] for g in grades)),
        "from_cache": sum(g["cached"] for g in grades),
        "grades": dict(sorted(Counter(round(g["grade"]) for g in grades if g["grade"] is not None).items())),
        "health": grader_health(grades),
        "path": str(out / "grades" / "grades.jsonl"),
    }


def run_distill(recipe: CorpusRecipe) -> dict:
    """Train the classifier on the grades, score every document with it; return its metrics."""
    out, config = select_dir(recipe), recipe.select.distill
    docs = recipe.layout.docs
    partial = partial_folder(out / "distilled")
    distiller = GradeDistiller(str(out / "grades" / "grades.jsonl"), str(partial), config)
    _run(recipe, [docs_folder_reader(docs), distiller], "distill")
    publish(partial, out / "distilled", made_by("distill", config))
    partial = partial_folder(out / "scores" / "llm_grade")
    scorer = DistilledScorer(str(out / "distilled" / "model.bin"), str(partial), config.max_chars)
    tasks = recipe.executor.tasks
    _run(recipe, [docs_folder_reader(docs), scorer], "distilled_scores", tasks, recipe.executor.workers)
    publish(partial, out / "scores" / "llm_grade", made_by("distilled_scores", config, tasks))
    return json.loads((out / "distilled" / "metrics.json").read_text())


def run_selections(recipe: CorpusRecipe) -> dict[str, dict]:
    """Each budget keeps its domain training documents and tokenizes them; return selection.json's."""
    results = {}
    for name, config in recipe.select.budgets.items():
        folder = select_dir(recipe) / "budgets" / name
        out = partial_folder(folder)
        selector = BudgetSelector(
            config,
            {score: str(select_dir(recipe) / "scores" / score) for score in config.scores},
            str(recipe.layout.tokenizer_file),
            str(out / "selection.json"),
            RejectedWriter(str(out / "rejected" / "budget"), "budget"),
            label=name,
        )
        steps = [
            docs_folder_reader(recipe.layout.corpus_docs("domain", "train")),
            selector,
            JsonlWriter(str(out / "docs" / "domain" / "train"), output_filename="${rank}.jsonl.gz"),
            shard_writer(recipe, out / "tokens" / "domain" / "train", "domain_train"),
        ]
        _run(recipe, steps, f"budgets/{name}")
        publish(out, folder, made_by("budget", config))
        results[name] = json.loads((folder / "selection.json").read_text())
    return results


def run_model_scores(recipe: CorpusRecipe) -> dict:
    """ETS/ETA scores of the domain training documents; return how many and which."""
    config = recipe.select.scores
    texts = task_example_texts([path for examples in config.task_examples for path in examples.files()])
    out = select_dir(recipe) / "scores"
    partial = partial_folder(out / "model")  # one folder per score inside
    if config.fasttext:
        scorer = FastTextTaskSimilarity(config.fasttext, texts, str(partial))
    else:
        scorer = BaseModelScorer(config, texts, str(partial))
    domain_train = docs_folder_reader(recipe.layout.corpus_docs("domain", "train"))
    tasks = recipe.executor.tasks
    _run(recipe, [domain_train, scorer], "model_scores", tasks)  # one model in memory
    names = ["ets"] if config.fasttext else ["novelty", "diversity"] + (["ets"] if texts else [])
    for name in names:
        publish(partial / name, out / name, made_by("model_scores", config, tasks))
    if not texts:  # every task example file was optional and absent: no ets, old or new
        remove(out / "ets")
    remove(partial)
    return {"scores": names, "task_examples": len(texts), "model": config.model or config.fasttext}
