"""The recipe's `eval:` section, validated before any model is loaded (errors name key and file)."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import Field

from curation.recipe import RecipeError, Strict, validate_section


class TaskSource(Strict):
    path: str  # a JSONL file or a glob
    optional: bool = False  # e.g. ../shared/data/benchmarks: used when present, skipped when not
    shots: int = Field(0, ge=0)
    fewshot: str | None = None  # the separate file k-shot examples are drawn from


class EvalConfig(Strict):
    tasks: list[TaskSource] = []
    models: list[str] = []  # hub ids or folders; default: every stage export of the training run
    batch_size: int = Field(8, ge=1)
    prefix: Literal["auto", "bos", "eos", "none"] = "auto"
    perplexity: list[str] = ["domain", "replay"]  # corpora whose validation split gets bits per byte
    perplexity_max_docs: int = Field(100, ge=1)
    seed: int = 0


class RunConfig(Strict):
    name: str
    output_dir: str = "out"
    eval: EvalConfig = EvalConfig()

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def task_files(self) -> list[tuple[TaskSource, Path]]:
        return [
            (src, Path(p)) for src in self.eval.tasks for p in sorted(glob.glob(src.path, recursive=True))
        ]


def load_eval_config(path: str | Path) -> RunConfig:
    """The harness's part of the recipe, with its task paths checked; RecipeError names key and file."""
    run = validate_section(path, RunConfig, ("name", "output_dir", "eval"))
    for i, src in enumerate(run.eval.tasks):
        if not src.optional and not glob.glob(src.path, recursive=True):
            raise RecipeError(f"{path}: eval.tasks.{i}.path: {src.path!r} matches no file")
        if src.shots and not (src.fewshot and Path(src.fewshot).is_file()):
            raise RecipeError(f"{path}: eval.tasks.{i}.fewshot: shots > 0 needs an existing fewshot file")
    return run
