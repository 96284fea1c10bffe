"""What `make eval` scores: each task file's items (sampled, asked as multiple choice or
generatively), their prompts, the metrics, and the same tasks as lm-evaluation-harness YAML."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from contracts.items import GenItem, Item, McItem, as_generative, kind, language_template, load_items
from contracts.recipe import UnsafePathError, path_under, safe_name
from evaluation.config import EvalError, RunConfig, TaskSource
from evaluation.lm_eval_export import lm_eval_yaml
from evaluation.prompts import PromptFor, fewshot_templates

MC_METRICS = ("acc", "acc_norm", "acc_bytes")


def sample_items(items: list[Item], n: int | None, seed: int) -> list[Item]:
    """N items drawn with the seed, in file order: every model is scored on the same ones."""
    if n is None or n >= len(items):
        return items
    chosen = np.random.default_rng(seed).choice(len(items), size=n, replace=False)
    return [items[i] for i in sorted(chosen)]


class TaskRun(NamedTuple):
    """A task as scored: its file and recipe entry, its (sampled) items, each item's prompt, how
    many items the file has (those with a usable task name), and how it is scored."""

    path: Path
    source: TaskSource
    items: list[Item]
    template_for: PromptFor
    file_items: int
    output_type: str

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics scored, the headline first (reports and the clean subset use it)."""
        return MC_METRICS if self.output_type == "multiple_choice" else tuple(self.source.metrics)


def as_output_type(items: list[Item], output_type: str, path: Path) -> list[Item]:
    """Items as the task is scored: multiple-choice items may be asked generatively, not the reverse."""
    if output_type == "generate":
        return [as_generative(i) if isinstance(i, McItem) else i for i in items]
    if any(isinstance(i, GenItem) for i in items):
        raise EvalError(f"eval.tasks.output_type: {path} holds generative items (no choices)")
    return items


def load_tasks(run: RunConfig) -> tuple[dict[str, TaskRun], list[dict]]:
    """Each task file's items (a seeded sample where `sample` is set) and templates, and the items
    left out because their `task` cannot be a file name (each with its file and reason).

    A task's name names its lm-evaluation-harness YAML, so two files with one task are an error.
    """
    tasks: dict[str, TaskRun] = {}
    rejected = []
    for src, path in run.task_files():
        every = []
        for item in load_items(path):
            try:
                safe_name(item.task)
            except UnsafePathError as e:
                rejected.append({"file": str(path), "id": item.id, "reason": f"task {e}"})
                continue
            every.append(item)
        if not every:
            continue
        output_type = src.output_type or kind(every[0])
        items = as_output_type(sample_items(every, src.sample, run.eval.seed), output_type, path)
        name = items[0].task
        if name in tasks:
            raise EvalError(f"task {name!r} is in two files: {tasks[name].path} and {path}")
        template_for = language_template
        if src.shots:
            pool = as_output_type(load_items(Path(src.fewshot)), output_type, Path(src.fewshot))
            shot_templates = fewshot_templates(items, pool, src.shots, run.eval.seed)
            template_for = lambda item, t=shot_templates: t[item.id]  # noqa: E731
        tasks[name] = TaskRun(path, src, items, template_for, len(every), output_type)
    return tasks, rejected


def write_lm_eval_tasks(tasks: dict[str, TaskRun], folder: Path) -> None:
    """The lm-evaluation-harness YAML of each task (it reads the whole file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, task in tasks.items():
        generate = (task.source.max_new_tokens, task.source.stop) if task.output_type == "generate" else None
        path_under(folder, f"{name}.yaml").write_text(
            lm_eval_yaml(name, task.path, language_template(task.items[0]), generate)
        )
