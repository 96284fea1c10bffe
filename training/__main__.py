"""`torchrun --nproc-per-node N -m training RECIPE`: continual pretraining on the corpus shards.

`python -m training model RECIPE` only converts the recipe's `gguf:` model (training does it too).
"""

import os
import sys
from collections.abc import Iterator

import torch
import torch.distributed as dist

from contracts.recipe import RecipeError
from training.config import RunConfig, load_train_config
from training.data import DataError
from training.model import TokenizerMismatch
from training.model_import import with_model_folder
from training.parallel import init_process_group
from training.report import summarize

USAGE = "usage: torchrun --nproc-per-node N -m training RECIPE | python -m training model RECIPE"


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


def train(path: str, run: RunConfig) -> int:
    """Trains the main run, then each selection run whose shards exist; the exit status."""
    from training.trainer import Trainer, TrainingStopped

    try:
        run = with_model_folder(run)
    except FileNotFoundError as e:
        print(f"{path}: train.model: {e}", file=sys.stderr)
        dist.destroy_process_group()
        return 2
    ready = run.ready_selections()
    if (missing := [s for s in run.train.selections if s not in ready]) and rank_zero():
        print(
            f"selections {', '.join(missing)} have no token shards yet: run `make select`, then "
            "`make train` again (the finished main run is not repeated)",
            file=sys.stderr,
        )
    try:
        for each in runs(run, ready):
            Trainer(each).train()
    except (DataError, TokenizerMismatch, TrainingStopped, ValueError) as e:
        if dist.get_rank() == 0:
            print(f"\n{path}: {e}", file=sys.stderr)
        return 1
    except torch.OutOfMemoryError:
        if dist.get_rank() == 0:
            print(
                f"\n{path}: out of memory: lower train.micro_batch (keeping global_batch), "
                "or set train.activation_checkpointing: true",
                file=sys.stderr,
            )
        return 1
    finally:
        dist.destroy_process_group()
    if rank_zero():
        for each in runs(run, ready):
            print(summarize(each))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "model":
        try:
            return convert(argv[1])
        except (RecipeError, FileNotFoundError) as e:
            print(e, file=sys.stderr)
            return 2
    if len(argv) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        run = load_train_config(argv[0])
    except RecipeError as e:
        print(e, file=sys.stderr)
        return 2
    init_process_group()
    return train(argv[0], run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
