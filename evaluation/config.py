"""The recipe's `eval:` and `audit:` sections, validated before any work starts (errors name key and file)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from contracts.contamination import NearDuplicateSettings, NgramSettings
from contracts.items import TaskGlob
from contracts.layout import gguf_stem
from contracts.models import ModelRef, export_of
from contracts.recipe import (
    RecipeBase,
    RecipeError,
    SafeName,
    Strict,
    UnsafePathError,
    load_recipe,
    safe_name,
)


class EvalError(ValueError):
    """The recipe and the run disagree (found only once the models are known): a message, not a trace."""


GenerativeMetric = Literal["exact_match", "f1", "numeric", "rouge_l"]


class TaskSource(TaskGlob):
    shots: int = Field(0, ge=0)
    fewshot: str | None = None  # the separate file k-shot examples are drawn from
    sample: int | None = Field(None, ge=1)  # score N items drawn with eval.seed (file order kept)
    output_type: Literal["multiple_choice", "generate"] | None = None  # default: the file's kind
    chat: bool | None = None  # the prompt in the tokenizer's chat template; default: eval.chat_models
    # generate: greedy up to max_new_tokens, cut at the first stop sequence, scored by `metrics`
    max_new_tokens: int = Field(64, ge=1)
    stop: list[str] = ["\n"]
    metrics: list[GenerativeMetric] = ["exact_match", "f1"]
    tolerance: float = Field(0.01, ge=0)  # `numeric`: relative difference counted as equal


def model_label(source: str) -> str:
    """A model's name in results and reports: an export's stage (`<stage>-<selection>` for a
    selection run's, as the run's own exports are labelled), a `gguf:` file's stem, else the last
    part of its folder or hub id."""
    if export := export_of(source):
        selection, stage = export
        return f"{stage}-{selection}" if selection else stage
    return gguf_stem(source) or Path(source).name


class EvalConfig(Strict):
    tasks: list[TaskSource] = []
    reference_models: dict[SafeName, ModelRef] = {}  # label -> model reference, scored first (the original)
    models: list[ModelRef] = []  # model references (contracts/models.py); default: the run's stage exports
    baselines: list[str] = []  # every other model is compared with each (paired); default: the first
    chat_models: list[str] = []  # labels of (instruct) models prompted in their chat template
    batch_size: int = Field(8, ge=1)
    prefix: Literal["auto", "bos", "eos", "none"] = "auto"
    perplexity: list[Literal["domain", "replay"]] = ["domain", "replay"]  # validation splits: bits per byte
    perplexity_max_docs: int = Field(100, ge=1)
    perplexity_doc_chars: int | None = Field(None, ge=1)  # each document cut to its first N characters
    perplexity_window: int | None = Field(None, ge=1)  # tokens per forward; default: the model's, <= 2048
    seed: int = 0

    @field_validator("models")
    @classmethod
    def _one_label_each(cls, models: list[str], info: ValidationInfo) -> list[str]:
        """Results are keyed by label: two models with one label would overwrite each other."""
        seen = {label: f"reference model {label!r}" for label in info.data.get("reference_models", {})}
        for source in models:
            try:
                label = safe_name(model_label(source))
            except UnsafePathError as e:
                raise ValueError(f"{source!r}: its label {e}") from None
            if label in seen:
                raise ValueError(f"{seen[label]} and {source!r} would both be labelled {label!r}")
            seen[label] = repr(source)
        return models

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, baselines: list[str], info: ValidationInfo) -> list[str]:
        if len(set(baselines)) < len(baselines):
            raise ValueError(f"{baselines}: a baseline is named twice")
        models = info.data.get("models")
        if models:  # else the run's exports: checked when they are listed, before any model is loaded
            labels = [*info.data.get("reference_models", {}), *map(model_label, models)]
            if unknown := [b for b in baselines if b not in labels]:
                raise ValueError(f"{unknown} are not among the models ({', '.join(labels)})")
        return baselines


class AuditConfig(Strict):
    corpus: str | None = None  # a JSONL/Parquet folder; default: out/<name>/corpus/docs
    near_duplicates: NearDuplicateSettings | None = NearDuplicateSettings()  # null: n-grams only
    worst_items: int = Field(10, ge=1)  # shown with their matching passages in the report
    tasks: int = Field(4, ge=1)
    workers: int = Field(2, ge=1)


class DecontaminationNgrams(BaseModel):
    """The corpus stage's `decontaminate:` section as the audit reads it: what counts as overlap."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ngrams: NgramSettings = NgramSettings()


class RunConfig(RecipeBase):
    """The harness's and the audit's view of the recipe."""

    sections: ClassVar[tuple[str, ...]] = ("eval", "audit")

    eval: EvalConfig = EvalConfig()
    audit: AuditConfig = AuditConfig()
    decontaminate: DecontaminationNgrams | None = None  # its n-gram settings are the audit's

    def task_files(self) -> list[tuple[TaskSource, Path]]:
        return [(src, path) for src in self.eval.tasks for path in src.files()]


def load_eval_config(path: str | Path) -> RunConfig:
    """The harness's part of the recipe, with its task paths checked; RecipeError names key and file."""
    run = load_recipe(path, RunConfig)
    for i, src in enumerate(run.eval.tasks):
        if not src.optional and not src.files():
            raise RecipeError(f"{path}: eval.tasks.{i}.path: {src.path!r} matches no file")
        if src.shots and not (src.fewshot and Path(src.fewshot).is_file()):
            raise RecipeError(f"{path}: eval.tasks.{i}.fewshot: shots > 0 needs an existing fewshot file")
    return run
