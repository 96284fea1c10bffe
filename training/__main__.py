"""`torchrun --nproc-per-node N -m training RECIPE`: continual pretraining on the corpus shards.

`torchrun ... -m training mixsweep RECIPE` runs the recipe's mixture sweep and fits the law;
`python -m training model RECIPE` only converts the recipe's `gguf:` model (training does it too);
`python -m training merge RECIPE` writes the recipe's merged models.
"""

import os
import sys
from collections.abc import Iterator

# before numpy loads: OpenBLAS threads spinning beside torch's made the mixsweep fit (hundreds of tiny
# L-BFGS-B problems) 12x slower (7.6 min against 39 s); training does no BLAS work in numpy
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch
import torch.distributed as dist

from contracts.recipe import RecipeError
from training.config import RunConfig, load_train_config
from training.data import DataError
from training.model import TokenizerMismatch
from training.model_import import with_model_folder
from training.parallel import init_process_group
from training.report import summarize

# what a run can meet that the recipe or the data can fix: said in one line, exit status 1
RUN_ERRORS = (DataError, TokenizerMismatch, FileNotFoundError, ValueError)

USAGE = (
    "usage: torchrun --nproc-per-node N -m training [mixsweep] RECIPE | python -m training model RECIPE"
    " | python -m training merge RECIPE"
)


def rank_zero() -> bool:
    return int(os.environ.get("RANK", 0)) == 0


def runs(run: RunConfig, ready: list[str]) -> Iterator[RunConfig]:
    """The main run, then each ready selection's run (from the main run's export)."""
    yield run
    for selection in ready:
        yield run.for_selection(selection)


def convert(path: str) -> int:
    """`python -m training model RECIPE`: the model folder training will start from."""
    run = load_train_config(path)
    if run.train.model is None:
        print(f"{path}: train.init builds a model from scratch: nothing to convert")
        return 0
    print(f"{run.train.model} -> {with_model_folder(run).train.model}")
    return 0


def model_folder(run: RunConfig) -> RunConfig:
    """The run starting from a local folder (a `gguf:` model converted once); errors name the key."""
    try:
        return with_model_folder(run)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"train.model: {e}") from e


def distributed(path: str, work) -> int:
    """`work()` in a process group; the errors a user can act on become one line and status 1."""
    from training.trainer import TrainingStopped

    init_process_group()
    try:
        return work()
    except (*RUN_ERRORS, TrainingStopped) as e:
        if rank_zero():
            print(f"\n{path}: {e}", file=sys.stderr)
        return 1
    except torch.OutOfMemoryError:
        if rank_zero():
            print(
                f"\n{path}: out of memory: lower train.micro_batch (keeping global_batch), "
                "or set train.activation_checkpointing: true",
                file=sys.stderr,
            )
        return 1
    finally:
        dist.destroy_process_group()


def train(run: RunConfig) -> int:
    """Trains the main run, then each selection run whose shards exist; the exit status."""
    from training.trainer import MixtureNotFitted, Trainer

    fitted = model_folder(run).with_fitted_mixture()
    for stage, before in zip(fitted.train.stages, run.train.stages):
        if before.mixture == "auto" and rank_zero():
            print(f"stage `{stage.name}`: mixture {stage.mixture} from {run.layout.mixsweep_fit}", flush=True)
    run = fitted
    ready = run.ready_selections()
    if (missing := [s for s in run.train.selections if s not in ready]) and rank_zero():
        print(
            f"selections {', '.join(missing)} have no token shards yet: run `make select`, then "
            "`make train` again (the finished main run is not repeated)",
            file=sys.stderr,
        )
    trained = []
    try:
        for each in runs(run, ready):
            Trainer(each).train()
            trained.append(each)
    except MixtureNotFitted as e:  # like a selection without shards: the next make target fills it in
        if rank_zero():
            print(f"\n{e}", file=sys.stderr)
        trained += [run] if run.out.metrics.is_file() else []
    if rank_zero():
        for each in trained:
            print(summarize(each))
    return 0


def mixsweep(run: RunConfig) -> int:
    """The recipe's grid of short runs, then (rank 0) the fitted law, the chosen mixture and report."""
    from training.mixsweep.fit import write_mixsweep
    from training.mixsweep.sweep import run_sweep

    results = run_sweep(model_folder(run))
    if rank_zero():
        print(write_mixsweep(run, results))
    return 0


def merge(path: str) -> int:
    """`python -m training merge RECIPE`: every merge of the recipe's `merge:` section."""
    from contracts.recipe import load_recipe
    from training.merge.config import MergeRecipe
    from training.merge.merger import run_merges, summary

    recipe = load_recipe(path, MergeRecipe)
    try:
        results = run_merges(recipe)
    except ValueError as e:  # MergeError: names the key
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    print(summary(recipe, results))
    return 0


def main(argv: list[str]) -> int:
    command, path = (argv[0], argv[1]) if len(argv) == 2 else ("train", argv[0] if argv else "")
    if command not in ("train", "mixsweep", "model", "merge") or len(argv) not in (1, 2):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        if command == "model":
            return convert(path)
        if command == "merge":
            return merge(path)
        run = load_train_config(path)
    except (RecipeError, *RUN_ERRORS) as e:
        print(f"{path}: {e}" if not isinstance(e, RecipeError) else e, file=sys.stderr)
        return 2
    if command == "mixsweep":
        if run.mixsweep is None:
            print(f"{path}: mixsweep: the recipe has no `mixsweep:` section", file=sys.stderr)
            return 2
        return distributed(path, lambda: mixsweep(run))
    return distributed(path, lambda: train(run))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
