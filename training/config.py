"""The recipe's `train:` section, validated before any work starts (errors name the key and file).

The recipe file and its error wording are shared by every stage (`contracts.recipe`); the corpus
itself reaches the trainer only through the files written under `out/<name>/corpus/`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.layout import TrainLayout
from contracts.models import ModelRef, export_ref, resolve_model
from contracts.recipe import RecipeBase, SafeName, Strict, load_recipe
from training.data import TokenShards


class Schedule(Strict):
    """Linear warm-up from zero (re-warming at every stage start), then the decay shape."""

    kind: Literal["cosine", "linear", "wsd"] = "cosine"
    peak_lr: float = Field(3e-4, gt=0)
    final_lr: float = Field(3e-5, ge=0)
    warmup_steps: int = Field(10, ge=0)
    decay_fraction: float = Field(0.2, gt=0, le=1)  # wsd: the share of steps spent decaying


SWEPT_CORPORA = ("domain", "replay")  # what `mixture: auto` and `mixsweep:` mix


class TrainStage(Strict):
    """One phase of training: what it reads (corpus -> weight) and for how long.

    `mixture: auto` mixes domain and replay in the ratio `make mixsweep` chose (its fit.json)."""

    name: SafeName
    mixture: dict[SafeName, float] | Literal["auto"] = Field(min_length=1)
    steps: int | None = Field(None, ge=1)
    tokens: int | None = Field(None, ge=1)
    schedule: Schedule = Schedule()

    @model_validator(mode="after")
    def _length(self) -> TrainStage:
        if (self.steps is None) == (self.tokens is None):
            raise ValueError("give exactly one of `steps` or `tokens`")
        if self.mixture != "auto" and any(w <= 0 for w in self.mixture.values()):
            raise ValueError("mixture weights must be positive")
        return self

    @property
    def corpora(self) -> tuple[str, ...]:
        return SWEPT_CORPORA if self.mixture == "auto" else tuple(self.mixture)

    def length(self, global_batch: int, seq_len: int) -> int:
        """The stage's optimizer steps (a `tokens` length rounds down to whole global batches)."""
        return self.steps or max(1, self.tokens // (global_batch * seq_len))


class MixsweepConfig(Strict):
    """`make mixsweep`: short runs of one stage over domain shares x token budgets, all from where the
    stage starts, fitted by the D-CPT law; the chosen share keeps the general (replay) validation loss
    within `tolerance` (relative) of its value at the start, at `target_tokens`."""

    stage: SafeName | None = None  # default: the last stage
    domain_shares: list[float] = Field(min_length=3)
    tokens: list[int] = Field(min_length=2)
    tolerance: float = Field(0.01, gt=0)
    target_tokens: int | None = Field(None, ge=1)  # default: the swept stage's length in tokens
    bootstrap: int = Field(200, ge=0)

    @model_validator(mode="after")
    def _grid(self) -> MixsweepConfig:
        if any(not 0 < s < 1 for s in self.domain_shares):
            raise ValueError(
                "domain_shares must lie strictly between 0 and 1: the D-CPT law's data term vanishes at "
                "share 0, so it cannot fit a run without domain or without replay text"
            )
        if any(t < 1 for t in self.tokens):
            raise ValueError("tokens must be positive")
        if len(set(self.domain_shares)) * len(set(self.tokens)) < 8:
            raise ValueError(
                "the D-CPT law has 7 parameters: give at least 8 runs (distinct shares x tokens)"
            )
        return self


class TrainConfig(Strict):
    model: ModelRef | None = None  # hub id, folder, gguf:..., hf/<stage>...: contracts/models.py
    init: dict[str, Any] | None = None  # LlamaConfig arguments for a model built from scratch
    seq_len: int = Field(256, ge=8)
    micro_batch: int = Field(8, ge=1)  # sequences per process per forward
    global_batch: int = Field(16, ge=1)  # sequences per optimizer step, all processes together
    stages: list[TrainStage] = Field(min_length=1)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = 0
    eval_every: int = Field(25, ge=1)
    eval_batches: int = Field(4, ge=1)  # micro-batches of each validation split per evaluation, all processes
    checkpoint_every: int = Field(100, ge=1)
    resume: Literal["auto", "never"] = "auto"
    # a model whose own tokenizer does not load is refused; `vocab_size` accepts it when its
    # vocabulary is at least the corpus tokenizer's (it is then trusted to be that tokenizer)
    tokenizer_check: Literal["strict", "vocab_size"] = "strict"
    activation_checkpointing: bool = False
    compile: bool = False
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    tensorboard: bool = False
    wandb: str | None = None  # project name
    # data-selection runs: for each selection (`select.budgets`), the `selection_stages` (default:
    # the last stage) again from the export of the stage before them (from `model` when they start
    # with the first stage), the domain corpus's training tokens replaced by the selection's;
    # validation stays the corpus's own
    selections: list[SafeName] = []
    selection_stages: list[str] | None = None
    # how long a selection stage runs: `steps` as in the main run (equal compute), or `one_pass`
    # over the selection's domain tokens with the stage's mixture around them (FinPythia's
    # accounting: a smaller selection costs less; compare it with the main run's curve there)
    selection_length: Literal["steps", "one_pass"] = "steps"

    @model_validator(mode="after")
    def _one_model(self) -> TrainConfig:
        if (self.model is None) == (self.init is None):
            raise ValueError("set exactly one of `model` (hub id or path) or `init` (a Llama config)")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> TrainConfig:
        """Stages and selections name folders (hf/<stage>, selections/<name>): one name, one folder."""
        for key, names in (("stages", [s.name for s in self.stages]), ("selections", self.selections)):
            if twice := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{key}: {twice} named more than once")
        return self

    @model_validator(mode="after")
    def _selection_stages(self) -> TrainConfig:
        names = [s.name for s in self.stages]
        chosen = self.selection_stages or names[-1:]
        if unknown := [n for n in chosen if n not in names]:
            raise ValueError(f"selection_stages: {unknown} are not stages ({', '.join(names)})")
        if self.selections and names.index(chosen[0]) == 0 and self.model is None:
            raise ValueError(
                "selection_stages must start after the first stage of a model built from scratch: "
                "they start from its export"
            )
        return self

    def selection_stage_names(self) -> list[str]:
        return self.selection_stages or [self.stages[-1].name]


class SelectBudgets(BaseModel):
    """The `select:` section as the trainer reads it: the names of the selections it can train."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    budgets: dict[str, Any] = {}


def auto_refusal(fit: dict) -> str | None:
    """Why `mixture: auto` does not take fit.json's chosen mixture, or None when it does: only while the
    general law predicts its largest budget from the others within `mixsweep.tolerance` (the rise it
    allows), the closest the sweep comes to checking the law at `target_tokens`."""
    auto = fit.get("auto")
    if auto is None:
        return "written before `mixture: auto` checked the law's error across budgets: rerun `make mixsweep`"
    if fit["mixture"] is None:
        return (
            "no domain share keeps the general loss within `mixsweep.tolerance`: raise it, or give the "
            "stage a mixture"
        )
    if auto["error"] < auto["tolerance"]:
        return None
    return (
        f"predicting the largest budget's runs from the other budgets, the general law errs by "
        f"{auto['error']:.2%}, not below `mixsweep.tolerance` {auto['tolerance']:.2%}, so its chosen share "
        f"{auto['domain_share']:.3f} is not trusted at `target_tokens`: sweep budgets nearer "
        "`target_tokens`, or give the stage a mixture"
    )


class RunConfig(RecipeBase):
    """The trainer's view of the recipe (and, for a selection or sweep run, which one)."""

    sections: ClassVar[tuple[str, ...]] = ("train", "mixsweep")

    train: TrainConfig
    mixsweep: MixsweepConfig | None = None
    select: SelectBudgets | None = None  # the selection stage's section: only its budget names
    selection: SafeName | None = None
    sweep_run: SafeName | None = None

    @model_validator(mode="after")
    def _selections_are_budgets(self) -> RunConfig:
        """A selection run trains what `make select` made for one of `select.budgets`."""
        budgets = self.select.budgets if self.select else {}
        if unknown := [s for s in self.train.selections if s not in budgets]:
            raise ValueError(
                f"train.selections: {unknown} are not in select.budgets "
                f"({', '.join(budgets) or 'the recipe has none'})"
            )
        return self

    @model_validator(mode="after")
    def _swept_stage(self) -> RunConfig:
        if not self.mixsweep:
            return self
        if self.mixsweep.stage not in (None, *(s.name for s in self.train.stages)):
            raise ValueError(f"mixsweep.stage: `{self.mixsweep.stage}` is not a stage of `train.stages`")
        # the shortest run must read both corpora, or its share is 0 or 1, where the law cannot be fitted
        batch = self.train.global_batch
        sequences = max(1, min(self.mixsweep.tokens) // (batch * self.train.seq_len)) * batch
        if lone := [s for s in self.mixsweep.domain_shares if min(s, 1 - s) * sequences < 1]:
            raise ValueError(
                f"mixsweep.domain_shares: {lone} give one corpus no sequence in the shortest run "
                f"({sequences} sequences of mixsweep.tokens {min(self.mixsweep.tokens)}): use shares "
                f"between 1/{sequences} and 1 - 1/{sequences}, or a longer run"
            )
        return self

    @property
    def out(self) -> TrainLayout:
        """This run's folder: the main run's, a selection's or a mixture-sweep run's."""
        if self.sweep_run:
            return self.layout.mixsweep_run(self.sweep_run)
        return self.layout.train_run(self.selection)

    def with_fitted_mixture(self) -> RunConfig:
        """`mixture: auto` replaced by the share in `make mixsweep`'s fit.json; left as is (the trainer
        stops before such a stage) while there is no fit. Refused (ValueError) when `auto_refusal` says
        why."""
        path = self.layout.mixsweep_fit
        if not any(s.mixture == "auto" for s in self.train.stages) or not path.is_file():
            return self
        fit = json.loads(path.read_text())
        if refusal := auto_refusal(fit):
            raise ValueError(f"{path}: `mixture: auto` refuses the fitted mixture: {refusal}")
        stages = [
            s.model_copy(update={"mixture": fit["mixture"]}) if s.mixture == "auto" else s
            for s in self.train.stages
        ]
        return self.model_copy(update={"train": self.train.model_copy(update={"stages": stages})})

    def train_tokens(self, corpus: str) -> Path:
        """A corpus's training shards: the selection's for `domain` in a selection run."""
        if self.selection and corpus == "domain":
            return self.layout.selection_tokens(self.selection)
        return self.layout.corpus_tokens(corpus, "train")

    def ready_selections(self) -> list[str]:
        """The recipe's selections whose token shards exist (the others wait for `make select`)."""
        return [s for s in self.train.selections if self.layout.selection_tokens(s).is_dir()]

    def for_selection(self, selection: str) -> RunConfig:
        """The selection run: the selection stages only, from the main run's export before them."""
        names = self.train.selection_stage_names()
        stages = [s for s in self.train.stages if s.name in names]
        start = self._starting_at(self.train.stages.index(stages[0]))
        run = self.model_copy(update={"selection": selection})
        if self.train.selection_length == "one_pass" and run.train_tokens("domain").is_dir():
            stages = [run._one_pass(s) for s in stages]
        train = self.train.model_copy(update=start | {"stages": stages, "selections": []})
        return run.model_copy(update={"train": train})

    def swept_stage(self) -> tuple[int, TrainStage]:
        """The stage `make mixsweep` varies, and its index."""
        name = self.mixsweep.stage or self.train.stages[-1].name
        return next((i, s) for i, s in enumerate(self.train.stages) if s.name == name)

    def for_sweep(self, share: float, tokens: int) -> RunConfig:
        """A mixsweep run: the swept stage alone, from where it starts in the main run, with this
        domain share and length; validated at its end only, and not exported."""
        index, stage = self.swept_stage()
        batch = (self.train.global_batch, self.train.seq_len)
        full, steps = stage.length(*batch), max(1, tokens // (batch[0] * batch[1]))
        # the stage's schedule shrunk or stretched to this length: warm-up keeps its share of the steps
        warmup = stage.schedule.warmup_steps and max(1, round(stage.schedule.warmup_steps * steps / full))
        stage = stage.model_copy(
            update={
                "mixture": dict(zip(SWEPT_CORPORA, (share, 1 - share))),
                "tokens": tokens,
                "steps": None,
                "schedule": stage.schedule.model_copy(update={"warmup_steps": warmup}),
            }
        )
        train = self.train.model_copy(
            update=self._starting_at(index) | {"stages": [stage], "selections": [], "eval_every": steps}
        )
        return self.model_copy(update={"train": train, "sweep_run": f"d{share:g}-t{tokens}"})

    def _starting_at(self, index: int) -> dict:
        """The `train` fields of a run that starts where stage `index` starts: the main run's export
        of the stage before it, else the recipe's model (or `init`)."""
        if index:
            start = export_ref(self.train.stages[index - 1].name)  # made by the main run, trained first
            return {"model": resolve_model(start, self.layout, check=False).path_or_id, "init": None}
        return {"model": self.train.model, "init": self.train.init}

    def _one_pass(self, stage: TrainStage) -> TrainStage:
        """The stage lasting as many steps as its domain share needs to read the selection once."""
        if "domain" not in stage.corpora:
            return stage
        windows = (len(TokenShards(self.train_tokens("domain"))) - 1) // self.train.seq_len
        per_step = self.train.global_batch * stage.mixture["domain"] / sum(stage.mixture.values())
        return stage.model_copy(update={"steps": max(1, math.ceil(windows / per_step)), "tokens": None})


def load_train_config(path: str | Path) -> RunConfig:
    """The trainer's part of the recipe (the whole recipe is checked); RecipeError names key and file."""
    return load_recipe(path, RunConfig)
