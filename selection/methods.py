"""Score methods: the ways of scoring documents that `select.budgets.<name>.scores` can weigh.

One registry, as mergekit's for merge methods: each method names its `select:` section (present:
the method runs; its keys: the method's settings), why it is there, the scores it writes, and the
datatrove step that writes them, `<folder>/<score>/<rank>.jsonl` rows of {id, score}.
`selection.run` runs the step over the documents and publishes each score folder as
`select/scores/<score>/` (`selection.outputs.publish`), where budgets read it. Adding one:
docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, Field, model_validator

from contracts.items import TaskGlob
from contracts.layout import RunLayout
from contracts.models import ModelRef, resolve_model
from contracts.recipe import Strict
from selection.distill import DistilledScorer
from selection.model_scores import BaseModelScorer, FastTextTaskSimilarity, task_example_texts

if TYPE_CHECKING:
    from selection.config import SelectRecipe


@dataclass(frozen=True)
class ScoreMethod:
    """A way to score documents: its section and settings, what it writes, and the step that does."""

    section: str  # its key under `select:`
    settings: type[BaseModel]  # that section's keys
    why: str  # the paper, or what it measures
    scores: tuple[str, ...]  # every score it can write (a budget weighs them by these names)
    # (settings, recipe, folder) -> a step that reads documents and writes folder/<score>/<rank>.jsonl
    step: Callable[[Any, SelectRecipe, Path], PipelineStep]
    writes: Callable[[Any], Iterable[str]] | None = None  # the scores these settings make; None: all
    prepare: Callable[[Any, SelectRecipe], Any] | None = None  # runs first; returns the settings recorded
    documents: Literal["domain_train", "all"] = "domain_train"  # the documents it scores
    parallel: bool = True  # False: tasks run one at a time (one model in memory)

    def made(self, settings: Any) -> tuple[str, ...]:
        return tuple(self.writes(settings)) if self.writes else self.scores


SCORE_METHODS: dict[str, ScoreMethod] = {}  # name (its step's, in logs and _done.json) -> method


def register_score_method(name: str, method: ScoreMethod) -> None:
    """Adds a method after those registered (they run in this order); its name, section and
    scores must be its own."""
    for other, taken in SCORE_METHODS.items():
        if clash := {name, method.section, *method.scores} & {other, taken.section, *taken.scores}:
            raise ValueError(f"score method {name!r}: {sorted(clash)} already belong to {other!r}")
    SCORE_METHODS[name] = method


def with_model(section, key: str, layout: RunLayout):
    """`section` with its `model` reference resolved to the folder or hub id it names: what a
    grader's cache identity and `_done.json` record. A model not there yet names `key`."""
    try:
        model = resolve_model(section.model, layout).path_or_id
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{key}: {e}") from None
    return section.model_copy(update={"model": model})


class DistillConfig(Strict):
    """A fastText model learns the grades and scores every document (FineWeb-Edu's classifier)."""

    threshold: float = Field(3.0, ge=0, le=5)  # grades at or above count as useful (F1 is measured here)
    labels: Literal["grades", "terciles"] = "grades"  # terciles: thirds of the grader's ranking
    held_out: float = Field(0.2, gt=0, lt=1)
    min_spearman: float = Field(0.5, ge=-1, le=1)  # lower held-out agreement is reported as untrusted
    epochs: int = Field(25, ge=1)
    word_ngrams: int = Field(2, ge=1)
    hash_buckets: int = Field(100_000, ge=1000)
    lr: float = Field(0.5, gt=0)
    max_chars: int = Field(4000, ge=100)
    seed: int = 0


def distilled_grade(settings: DistillConfig, recipe: SelectRecipe, folder: Path) -> PipelineStep:
    """The classifier `make select` trained on the grades (`select/distilled/`) scores every document."""
    model = recipe.layout.distilled / "model.bin"
    return DistilledScorer(str(model), str(folder / "llm_grade"), settings.max_chars)


class ModelScoresConfig(Strict):
    """FinPythia's ETS (task similarity) and ETA (novelty, diversity) scores from the base model."""

    model: ModelRef | None = None  # the base model: hf/base (this recipe's export), a folder or hub id
    fasttext: str | None = None  # no base model at hand: a fastText .bin gives `ets` alone
    task_examples: list[TaskGlob] = []  # unlabelled task text (task rows or {text} rows); none: no ets
    max_tokens: int = Field(512, ge=16)  # every score reads a document's first max_tokens tokens
    batch_size: int = Field(8, ge=1)
    device: str = "cpu"

    @model_validator(mode="after")
    def _one_model(self) -> ModelScoresConfig:
        if (self.model is None) == (self.fasttext is None):
            raise ValueError(
                "give exactly one of `model` (a base model) or `fasttext` (a .bin, for ets only)"
            )
        if self.fasttext and not self.task_examples:
            raise ValueError("`fasttext` only gives task similarity: it needs `task_examples`")
        return self


def base_model_scores(settings: ModelScoresConfig, recipe: SelectRecipe, folder: Path) -> PipelineStep:
    """ETS, novelty and diversity from one forward pass per document; ETS alone from fastText.
    Without task examples (every file optional and absent) no `ets` is written."""
    texts = task_example_texts([path for examples in settings.task_examples for path in examples.files()])
    c = settings
    if c.fasttext:
        return FastTextTaskSimilarity(c.fasttext, texts, str(folder))
    return BaseModelScorer(c.model, texts, str(folder), c.max_tokens, c.batch_size, c.device)


def base_model_writes(settings: ModelScoresConfig) -> list[str]:
    return (["ets"] if settings.task_examples else []) + (["novelty", "diversity"] if settings.model else [])


register_score_method(
    "distilled_scores",
    ScoreMethod(
        section="distill",
        settings=DistillConfig,
        why="FineWeb-Edu (Penedo et al. 2024): an LLM's grades of a sample, learnt by fastText",
        scores=("llm_grade",),
        step=distilled_grade,
        documents="all",
    ),
)
register_score_method(
    "model_scores",
    ScoreMethod(
        section="scores",
        settings=ModelScoresConfig,
        why="FinPythia (Xie et al. 2023): task similarity (ETS), novelty and diversity (ETA)",
        scores=("ets", "novelty", "diversity"),
        step=base_model_scores,
        writes=base_model_writes,
        prepare=lambda c, recipe: with_model(c, "select.scores.model", recipe.layout) if c.model else c,
        parallel=False,
    ),
)
