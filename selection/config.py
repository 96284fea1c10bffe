"""The selection stage's view of the recipe: its `select:` section, and what it shares with the corpus
stage (the executor's task counts, how token shards are cut and the EOS token between documents)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from contracts.executor import ExecutorConfig
from contracts.models import ModelRef
from contracts.recipe import RecipeBase, SafeName, Strict, load_recipe, recipe_error
from contracts.tokens import EOS_TOKEN, ShardSettings
from selection.methods import SCORE_METHODS, DistillConfig, ModelScoresConfig


class LocalGraderConfig(Strict):
    """A local Hugging Face causal LM as grader (a folder, or a hub id in real recipes)."""

    model: ModelRef  # hf/<stage>, gguf:..., a folder or a hub id (contracts/models.py)
    batch_size: int = Field(8, ge=1)
    device: str = "cpu"
    max_tokens: int = Field(2048, ge=64)  # prompt length cap (also capped by the model's context)
    # grader health: for the first N documents, also a free greedy reply of `reply_tokens` tokens,
    # kept in grades.jsonl; the select report gives the share that parses strictly as `Grade: N`
    check_replies: int = Field(0, ge=0)
    reply_tokens: int = Field(48, ge=1)


class HttpGraderConfig(Strict):
    """An OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp server, Ollama)."""

    base_url: str  # e.g. http://localhost:8000/v1
    model: str
    api_key_env: str | None = None  # the environment variable holding the key, never the key
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60, gt=0)
    retries: int = Field(4, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    max_wait_s: float = Field(60, gt=0)  # the longest wait before a retry, a server's Retry-After included
    max_tokens: int = Field(256, ge=8)


class GradingConfig(Strict):
    """LLM grades for a stratified sample (FineWeb-Edu's recipe): the labels a classifier learns."""

    sample: int = Field(500, ge=1)
    stratify: list[str] = ["corpus", "language"]  # document metadata keys
    domain: str = "finance"  # what the built-in rubric calls useful
    rubric: str | None = None  # a text file replacing the built-in rubric; `{domain}` is filled in
    max_chars: int = Field(4000, ge=200)  # documents are truncated to this before grading
    seed: int = 0
    local: LocalGraderConfig | None = None
    http: HttpGraderConfig | None = None

    @model_validator(mode="after")
    def _one_grader(self) -> GradingConfig:
        if (self.local is None) == (self.http is None):
            raise ValueError("give exactly one grader: `local` (a model folder) or `http` (a server)")
        return self


class BudgetConfig(Strict):
    """Keep the best (or a score-weighted sample) of the domain training documents up to a budget."""

    tokens: float = Field(0.1, gt=0)  # up to 1: a share of the competing documents' tokens; above: a count
    scores: dict[str, float] = {"llm_grade": 1.0}  # scorer -> weight, over rank-normalised scores
    method: Literal["top", "sample", "random"] = "top"  # random: a uniform control, scores unused
    seed: int = 0

    @field_validator("scores")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(w < 0 for w in value.values()) or not sum(value.values()):
            raise ValueError("give at least one score with a positive weight (weights are >= 0)")
        return value


class SelectConfig(Strict):
    """Data selection (`python -m selection run`): grades, scores, and the selections they make.

    Besides the keys below, the section of every score method registered after the built-in two
    (`selection.methods`), checked by that method's settings.
    """

    model_config = ConfigDict(extra="allow", frozen=True)  # the added methods' sections, checked below

    grading: GradingConfig | None = None
    distill: DistillConfig | None = None  # the `distilled_scores` method (llm_grade)
    scores: ModelScoresConfig | None = None  # the `model_scores` method (ets, novelty, diversity)
    budgets: dict[SafeName, BudgetConfig] = {}  # selection name -> budget; each one a training corpus

    @model_validator(mode="after")
    def _distil_needs_grades(self) -> SelectConfig:
        if self.distill is not None and self.grading is None:
            raise ValueError("`distill` learns from `grading`: add a `grading:` section")
        return self

    @model_validator(mode="after")
    def _method_sections(self) -> SelectConfig:
        """Each key beyond the fields must be an added method's section; it becomes its settings."""
        added = {
            m.section: (m.settings | None, None)
            for m in SCORE_METHODS.values()
            if m.section not in type(self).model_fields
        }
        sections = create_model("ScoreMethodSections", __config__=ConfigDict(extra="forbid"), **added)
        checked = sections.model_validate(self.__pydantic_extra__)
        self.__pydantic_extra__.update({key: getattr(checked, key) for key in checked.model_fields_set})
        return self

    def methods(self) -> dict[str, BaseModel]:
        """The score methods this section switches on, in registry order: name -> settings."""
        return {
            name: settings
            for name, method in SCORE_METHODS.items()
            if (settings := getattr(self, method.section, None)) is not None
        }

    def score_names(self) -> set[str]:
        """The scores this section makes: the only ones a budget may weigh."""
        made = [SCORE_METHODS[name].made(settings) for name, settings in self.methods().items()]
        return {score for scores in made for score in scores}

    @model_validator(mode="after")
    def _budgets_weigh_made_scores(self) -> SelectConfig:
        made = self.score_names()
        makers = "; ".join(f"{', '.join(m.scores)}: `{m.section}`" for m in SCORE_METHODS.values())
        for name, budget in self.budgets.items():
            for score in budget.scores if budget.method != "random" else ():
                if score not in made:
                    raise ValueError(f"budgets.{name}.scores.{score}: no section makes this score ({makers})")
        return self


class TokenizerEos(BaseModel):
    """The `tokenizer:` section as selection reads it: the token between documents in its shards."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    eos_token: str = EOS_TOKEN


class SelectRecipe(RecipeBase):
    """The selection stage's view: its `select:` section, and the corpus sections it shares."""

    sections: ClassVar[tuple[str, ...]] = ("select",)

    select: SelectConfig | None = None
    executor: ExecutorConfig = ExecutorConfig()
    output: ShardSettings = ShardSettings()
    tokenizer: TokenizerEos = TokenizerEos()


def _check_paths(path: Path, recipe: SelectRecipe) -> None:
    problems = []
    grading = recipe.select.grading
    if grading and grading.rubric and not Path(grading.rubric).is_file():
        problems.append(f"select.grading.rubric: {grading.rubric!r} is not a file")
    scores = recipe.select.scores
    for j, examples in enumerate(scores.task_examples if scores else []):
        if not examples.optional and not examples.files():
            problems.append(f"select.scores.task_examples.{j}.path: {examples.path!r} matches no file")
    if problems:
        raise recipe_error(path, problems)


def load_select_recipe(path: str | Path, check_paths: bool = True) -> SelectRecipe:
    """The selection view (the whole recipe is checked); RecipeError names the key and the file."""
    recipe = load_recipe(path, SelectRecipe)
    if check_paths and recipe.select:
        _check_paths(Path(path), recipe)
    return recipe
