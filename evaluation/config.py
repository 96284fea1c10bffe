"""The recipe's `eval:` and `audit:` sections, validated before any work starts (errors name key and file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from curation.decont.near_duplicates import NearDuplicateSettings
from curation.recipe import DecontaminateConfig, RecipeError, Strict, TaskGlob, validate_section


class EvalError(ValueError):
    """The recipe and the run disagree (found only once the models are known): a message, not a trace."""


class TaskSource(TaskGlob):
    shots: int = Field(0, ge=0)
    fewshot: str | None = None  # the separate file k-shot examples are drawn from
    sample: int | None = Field(None, ge=1)  # score N items drawn with eval.seed (file order kept)


class EvalConfig(Strict):
    tasks: list[TaskSource] = []
    models: list[str] = []  # hub ids or folders; default: every stage export of the training run
    reference_models: dict[str, str] = {}  # label -> hub id or folder, scored first (e.g. the original)
    baselines: list[str] = []  # every other model is compared with each (paired); default: the first
    batch_size: int = Field(8, ge=1)
    prefix: Literal["auto", "bos", "eos", "none"] = "auto"
    perplexity: list[str] = ["domain", "replay"]  # corpora whose validation split gets bits per byte
    perplexity_max_docs: int = Field(100, ge=1)
    perplexity_doc_chars: int | None = Field(None, ge=1)  # each document cut to its first N characters
    perplexity_window: int | None = Field(None, ge=1)  # tokens per forward; default: the model's, <= 2048
    seed: int = 0


class AuditConfig(Strict):
    corpus: str | None = None  # a JSONL/Parquet folder; default: out/<name>/corpus/docs
    near_duplicates: NearDuplicateSettings | None = NearDuplicateSettings()  # null: n-grams only
    worst_items: int = Field(10, ge=1)  # shown with their matching passages in the report
    tasks: int = Field(4, ge=1)
    workers: int = Field(2, ge=1)


class RunConfig(Strict):
    name: str
    output_dir: str = "out"
    eval: EvalConfig = EvalConfig()
    audit: AuditConfig = AuditConfig()
    decontaminate: DecontaminateConfig | None = None  # its n-gram settings are the audit's

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def task_files(self) -> list[tuple[TaskSource, Path]]:
        return [(src, path) for src in self.eval.tasks for path in src.files()]


def load_eval_config(path: str | Path) -> RunConfig:
    """The harness's part of the recipe, with its task paths checked; RecipeError names key and file."""
    run = validate_section(path, RunConfig, ("name", "output_dir", "eval", "audit", "decontaminate"))
    for i, src in enumerate(run.eval.tasks):
        if not src.optional and not src.files():
            raise RecipeError(f"{path}: eval.tasks.{i}.path: {src.path!r} matches no file")
        if src.shots and not (src.fewshot and Path(src.fewshot).is_file()):
            raise RecipeError(f"{path}: eval.tasks.{i}.fewshot: shots > 0 needs an existing fewshot file")
    return run
