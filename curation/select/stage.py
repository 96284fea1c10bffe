"""`python -m curation select RECIPE`: reads `out/<name>/corpus/docs/`, writes `out/<name>/select/`.

Layout:
  select/grades/grades.jsonl         one line per sampled document: graded, ungraded (with the raw
                                     reply) or failed (with the error)
  select/grades/cache/<grader>.jsonl finished grades, reused by every later run with the same rubric
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
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from curation.output.tokens import shard_writer
from curation.readers import docs_folder_reader
from curation.recipe import Recipe
from curation.select.budget import BudgetSelector
from curation.select.distill import DistilledScorer, GradeDistiller
from curation.select.grading import LlmGrader, grader_health
from curation.select.model_scores import BaseModelScorer, FastTextTaskSimilarity, task_example_texts
from curation.writers import RejectedWriter


def _run(recipe: Recipe, steps: list, logs: str, tasks: int = 1, workers: int = 1) -> None:
    """One datatrove run over the steps; never skipped as "completed": every selection step
    recomputes from its inputs (the grade cache is what makes grading resumable)."""
    LocalPipelineExecutor(
        steps,
        tasks=tasks,
        workers=workers,
        logging_dir=str(select_dir(recipe) / "logs" / logs),
        skip_completed=False,
    ).run()


def select_dir(recipe: Recipe) -> Path:
    return Path(recipe.output_dir) / recipe.name / "select"


def run_grading(recipe: Recipe) -> dict:
    """Grade the sample; return counts by status and the histogram of rounded grades."""
    out = select_dir(recipe)
    grader = LlmGrader(str(out / "grades"), recipe.select.grading)
    _run(recipe, [docs_folder_reader(recipe.corpus_dir / "docs"), grader], "grading")
    grades = [json.loads(line) for line in (out / "grades" / "grades.jsonl").read_text().splitlines()]
    return {
        "sampled": len(grades),
        "status": dict(Counter(g["status"] for g in grades)),
        "from_cache": sum(g["cached"] for g in grades),
        "grades": dict(sorted(Counter(round(g["grade"]) for g in grades if g["grade"] is not None).items())),
        "health": grader_health(grades),
        "path": str(out / "grades" / "grades.jsonl"),
    }


def run_distill(recipe: Recipe) -> dict:
    """Train the classifier on the grades, score every document with it; return its metrics."""
    out, config = select_dir(recipe), recipe.select.distill
    docs = recipe.corpus_dir / "docs"
    distiller = GradeDistiller(str(out / "grades" / "grades.jsonl"), str(out / "distilled"), config)
    _run(recipe, [docs_folder_reader(docs), distiller], "distill")
    scorer = DistilledScorer(
        str(out / "distilled" / "model.bin"), str(out / "scores" / "llm_grade"), config.max_chars
    )
    _run(
        recipe,
        [docs_folder_reader(docs), scorer],
        "distilled_scores",
        recipe.executor.tasks,
        recipe.executor.workers,
    )
    return json.loads((out / "distilled" / "metrics.json").read_text())


def run_selections(recipe: Recipe) -> dict[str, dict]:
    """Each budget keeps its domain training documents and tokenizes them; return selection.json's."""
    results = {}
    for name, config in recipe.select.budgets.items():
        out = select_dir(recipe) / "budgets" / name
        selector = BudgetSelector(
            config,
            {score: str(select_dir(recipe) / "scores" / score) for score in config.scores},
            str(recipe.corpus_dir / "tokenizer" / "tokenizer.json"),
            str(out / "selection.json"),
            RejectedWriter(str(out / "rejected" / "budget"), "budget"),
            label=name,
        )
        steps = [
            docs_folder_reader(recipe.corpus_dir / "docs" / "domain" / "train"),
            selector,
            JsonlWriter(str(out / "docs" / "domain" / "train"), output_filename="${rank}.jsonl.gz"),
            shard_writer(recipe, out / "tokens" / "domain" / "train", "domain_train"),
        ]
        _run(recipe, steps, f"budgets/{name}")
        results[name] = json.loads((out / "selection.json").read_text())
    return results


def run_model_scores(recipe: Recipe) -> dict:
    """ETS/ETA scores of the domain training documents; return how many and which."""
    config = recipe.select.scores
    texts = task_example_texts([path for examples in config.task_examples for path in examples.files()])
    out = select_dir(recipe) / "scores"
    if config.fasttext:
        scorer = FastTextTaskSimilarity(config.fasttext, texts, str(out))
    else:
        scorer = BaseModelScorer(config, texts, str(out))
    domain_train = docs_folder_reader(recipe.corpus_dir / "docs" / "domain" / "train")
    _run(recipe, [domain_train, scorer], "model_scores", recipe.executor.tasks)  # one model in memory
    names = ["ets"] if config.fasttext else ["novelty", "diversity"] + (["ets"] if texts else [])
    return {"scores": names, "task_examples": len(texts), "model": config.model or config.fasttext}
