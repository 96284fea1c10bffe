"""The recipe's `merge:` section, in mergekit's shape: output name -> one merge of existing models.

Validated with the rest of the recipe before any tensor is read, so a typo fails in seconds and the
error names the key. Pure data: importing it costs no torch (every stage checks every view).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from contracts.models import ModelRef
from contracts.recipe import RecipeBase, SafeName, Strict
from training.merge.methods import MERGE_METHODS, MergeMethod


class MergeError(ValueError):
    """A merge that cannot be done as the recipe says; the message names the recipe key."""


class ModelParameters(Strict):
    weight: float = 1.0
    density: float = Field(1.0, gt=0, le=1)  # the share of delta entries kept (ties, dare_*)


class InputModel(Strict):
    model: ModelRef  # hf/<stage>, selections/<selection>/hf/<stage>, gguf:..., a folder, or a hub id
    parameters: ModelParameters = ModelParameters()


class MethodParameters(Strict):
    normalize: bool | None = None  # None: the method's default
    lambda_: float = Field(1.0, alias="lambda")  # scales the mixed delta
    rescale: bool | None = None  # dare_*: kept entries divided by density
    skip_embeddings: bool = True  # chat_vector: embeddings and lm_head taken from the first model


class Merge(Strict):
    """One output: the first model gives its config, shapes and (by default) tokenizer."""

    merge_method: str  # a name in training/merge/methods.py's MERGE_METHODS
    base_model: ModelRef | None = None
    models: list[InputModel] = Field(min_length=1)
    parameters: MethodParameters = MethodParameters()
    dtype: Literal["float32", "bfloat16", "float16"] | None = None  # None: each tensor's, as first model
    tokenizer_source: ModelRef | None = None  # None: the first model's tokenizer
    seed: int = Field(0, ge=0)  # DARE's random masks
    interpolate: list[float] | None = Field(None, min_length=1)  # linear of two: (1−t)·first + t·second

    @field_validator("merge_method")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in MERGE_METHODS:
            *names, last = map(repr, MERGE_METHODS)
            raise ValueError(f"Input should be {', '.join(names)} or {last}")
        return name

    @property
    def method(self) -> MergeMethod:
        return MERGE_METHODS[self.merge_method]

    @property
    def normalize(self) -> bool:
        given = self.parameters.normalize
        return self.method.normalize if given is None else given

    @property
    def rescale(self) -> bool:
        given = self.parameters.rescale
        return self.method.rescale if given is None else given

    @property
    def skip_embeddings(self) -> bool:
        return "skip_embeddings" in self.method.options and self.parameters.skip_embeddings

    @property
    def weights(self) -> list[float]:
        return [m.parameters.weight for m in self.models]

    @property
    def densities(self) -> list[float]:
        return [m.parameters.density for m in self.models]

    @model_validator(mode="after")
    def _shape(self) -> Merge:
        linear = self.merge_method == "linear"
        if not self.method.base and self.base_model is not None:
            raise ValueError(
                f"base_model: a {self.merge_method} merge has none (it weights the models themselves)"
            )
        if self.method.base and self.base_model is None:
            raise ValueError(f"base_model: {self.merge_method} needs one (deltas are taken from it)")
        if self.merge_method == "chat_vector" and len(self.models) != 2:
            raise ValueError("models: chat_vector takes two: the continually pretrained, then the chat model")
        if self.interpolate is not None and not (linear and len(self.models) == 2):
            raise ValueError("interpolate: only for a linear merge of exactly two models")
        if self.interpolate is not None and len(set(self.interpolate)) < len(self.interpolate):
            raise ValueError("interpolate: a weight is named more than once")
        return self

    @model_validator(mode="after")
    def _options(self) -> Merge:
        """A parameter the method would ignore is a mistake in the recipe, not a silent no-op."""
        options = self.method.options - ({"weight"} if self.interpolate is not None else set())
        given = [f"parameters.{p}" for p in self.parameters.model_dump(by_alias=True, exclude_unset=True)]
        for i, m in enumerate(self.models):
            given += [f"models[{i}].parameters.{p}" for p in m.parameters.model_dump(exclude_unset=True)]
        for key in given:
            if key.rsplit(".", 1)[1] not in options:
                reads = ", ".join(sorted(options)) or "nothing"
                raise ValueError(f"{key}: not read by {self.merge_method} (it reads {reads})")
        if self.merge_method == "linear" and self.normalize and sum(self.weights) == 0:
            raise ValueError("models: the weights sum to 0, and normalize divides by their sum")
        return self


class MergeRecipe(RecipeBase):
    """`make merge`'s view of the recipe."""

    sections: ClassVar[tuple[str, ...]] = ("merge",)

    merge: dict[SafeName, Merge] = Field(min_length=1)
