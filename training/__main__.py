"""`torchrun --nproc-per-node N -m training RECIPE`: continual pretraining on the corpus shards.

`python -m training model RECIPE` only converts the recipe's `gguf:` model (training does it too).
"""

import json
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from contracts.recipe import RecipeError
from training.config import load_train_config
from training.data import DataError
from training.model import TokenizerMismatch
from training.model_import import resolve_model


def summary(run) -> None:
    from training.curves import plot_curves

    metrics = run.out.metrics
    plot_curves(metrics, run.out.curves)
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    print(f"\ntraining `{run.name}`" + (f", selection `{run.selection}`" if run.selection else "") + " done")
    for stage in dict.fromkeys(r["stage"] for r in rows):
        evals = [r["val_loss"] for r in rows if r["stage"] == stage and "val_loss" in r]
        losses = [r for r in rows if r["stage"] == stage and "loss" in r]
        speed = sum(r["tokens_per_s"] for r in losses) / max(1, len(losses))
        first, last = evals[0], evals[-1]
        val = ", ".join(f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in last)
        print(f"  {stage}: {len(losses)} steps, {speed:,.0f} tokens/s; validation loss {val}")
    print(f"  metrics: {metrics}\n  curves:  {run.out.curves}")
    print(f"  models:  {run.out.exports}/<stage>/ (AutoModelForCausalLM.from_pretrained)")


def ready_selections(run) -> list[str]:
    """The recipe's selections whose token shards exist; the others are named, not guessed at."""
    ready = [s for s in run.train.selections if run.for_selection(s).train_tokens("domain").is_dir()]
    missing = [s for s in run.train.selections if s not in ready]
    if missing and int(os.environ.get("RANK", 0)) == 0:
        print(
            f"selections {', '.join(missing)} have no token shards yet: run `make select`, then "
            "`make train` again (the finished main run is not repeated)",
            file=sys.stderr,
        )
    return ready


def with_model_folder(run):
    """The run with a `gguf:` model replaced by its converted folder (rank 0 converts, once)."""
    if run.train.model is None:
        return run
    shared: list = [None]
    if int(os.environ.get("RANK", 0)) == 0:
        try:
            shared[0] = resolve_model(run.train.model, run.output_dir)
        except FileNotFoundError as e:  # every rank must learn of it, or the others wait forever
            shared[0] = e
    if dist.is_initialized():
        dist.broadcast_object_list(shared, src=0)
    if isinstance(shared[0], FileNotFoundError):
        raise shared[0]
    return run.model_copy(update={"train": run.train.model_copy(update={"model": shared[0]})})


def convert(path: str) -> int:
    """`python -m training model RECIPE`: the model folder training will start from."""
    run = load_train_config(path)
    if run.train.model is None:
        print(f"{path}: train.init builds a model from scratch: nothing to convert")
        return 0
    print(f"{run.train.model} -> {with_model_folder(run).train.model}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "model":
        try:
            return convert(argv[1])
        except (RecipeError, FileNotFoundError) as e:
            print(e, file=sys.stderr)
            return 2
    if len(argv) != 1:
        print(
            "usage: torchrun --nproc-per-node N -m training RECIPE | python -m training model RECIPE",
            file=sys.stderr,
        )
        return 2
    try:
        run = load_train_config(argv[0])
    except RecipeError as e:
        print(e, file=sys.stderr)
        return 2
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if "RANK" not in os.environ:  # plain `python -m training`: a world of one
        os.environ.update(
            RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29511"
        )
    dist.init_process_group(backend, timeout=timedelta(minutes=30))
    from training.trainer import Trainer, TrainingStopped

    try:
        run = with_model_folder(run)
    except FileNotFoundError as e:
        print(f"{argv[0]}: train.model: {e}", file=sys.stderr)
        dist.destroy_process_group()
        return 2
    ready = ready_selections(run)
    try:
        Trainer(run).train()
        for selection in ready:  # each from the main run's export, same steps
            Trainer(run.for_selection(selection)).train()
    except (DataError, TokenizerMismatch, TrainingStopped, ValueError) as e:
        if dist.get_rank() == 0:
            print(f"\n{argv[0]}: {e}", file=sys.stderr)
        return 1
    except torch.OutOfMemoryError:
        if dist.get_rank() == 0:
            print(
                f"\n{argv[0]}: out of memory: lower train.micro_batch (keeping global_batch), "
                "or set train.activation_checkpointing: true",
                file=sys.stderr,
            )
        return 1
    finally:
        dist.destroy_process_group()
    if int(os.environ.get("RANK", 0)) == 0:
        for each in [run] + [run.for_selection(s) for s in ready]:
            summary(each)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
