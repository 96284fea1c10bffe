"""Checkpoints with torch.distributed.checkpoint (sharded, any world size) and Hugging Face export.

`checkpoints/<stage>-<step>/` holds the DCP shards of model and optimizer, `rng-<rank>.pt`, and
`trainer.json` (stage index, step, data cursors). `hf/<stage>/` holds the exported model and
`export.json`, written last. Both are written under a `.partial` name and renamed once complete, so a
kill at any moment leaves no folder that looks finished; a later run removes the partial ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)

from contracts.layout import EXPORT_MARKER
from contracts.publish import PARTIAL, fresh_partial, partial_dir, publish


def checkpoint_dir(checkpoints: Path, stage: str, step: int) -> Path:
    """`<stage>-<step>` in the run's checkpoint folder (`TrainLayout.checkpoints`)."""
    return checkpoints / f"{stage}-{step:07d}"


def trainer_state(folder: Path) -> dict | None:
    """A checkpoint's trainer state; None for a folder that a kill left incomplete."""
    if folder.name.endswith(PARTIAL):
        return None
    try:
        return json.loads((folder / "trainer.json").read_text())
    except (OSError, ValueError):
        return None


def _complete(checkpoints: Path) -> list[Path]:
    """Complete checkpoints, oldest first by their place in the run (stage index, then step): stage
    names need not sort in run order (`main` then `anneal`)."""
    states = {p: trainer_state(p) for p in checkpoints.iterdir()} if checkpoints.is_dir() else {}
    done = [p for p, state in states.items() if state is not None]
    return sorted(done, key=lambda p: (states[p]["stage"], states[p]["step"]))


def save(folder: Path, model, optimizer, state: dict, keep: int = 2) -> None:
    """All ranks write into `<folder>.partial`; rank 0 renames it complete, then prunes to `keep`."""
    partial = partial_dir(folder)
    if dist.get_rank() == 0:
        shutil.rmtree(partial, ignore_errors=True)  # an earlier attempt's files must not mix in
    dist.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(partial))
    torch.save(
        {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        partial / f"rng-{dist.get_rank()}.pt",
    )
    dist.barrier()
    if dist.get_rank() == 0:
        publish(partial, folder, ("trainer.json", json.dumps(state, indent=2)))
        for old in _complete(folder.parent)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def latest(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint, chosen by rank 0 for every rank; it removes incomplete ones."""
    found: list[Path | None] = [None]
    if dist.get_rank() == 0:
        for folder in checkpoints.iterdir() if checkpoints.is_dir() else []:
            if trainer_state(folder) is None:
                shutil.rmtree(folder, ignore_errors=True)
        found = _complete(checkpoints)[-1:] or [None]
    dist.broadcast_object_list(found, src=0)
    return found[0]


def load(folder: Path, model, optimizer=None) -> None:
    """Model (and optimizer and this rank's RNG, when an optimizer is given) from `folder`."""
    if optimizer is None:
        state = {"model": get_model_state_dict(model)}
        dcp.load(state, checkpoint_id=str(folder))
        set_model_state_dict(model, state["model"])
        return
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    rng = folder / f"rng-{dist.get_rank()}.pt"
    if rng.is_file():
        saved = torch.load(rng, weights_only=True)
        torch.set_rng_state(saved["torch"])
        if saved["cuda"]:
            torch.cuda.set_rng_state_all(saved["cuda"])


def export_hf(model, tokenizer, folder: Path, state: dict) -> None:
    """A folder `AutoModelForCausalLM.from_pretrained` loads: gathered full weights + tokenizer, then
    `export.json` (the trainer state exported); it appears under its name only complete."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() == 0:
        from transformers import AutoModelForCausalLM

        partial = fresh_partial(folder)
        plain = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        plain.load_state_dict(full)
        plain.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        marker = {k: v for k, v in state.items() if k != "data"}
        publish(partial, folder, (EXPORT_MARKER, json.dumps(marker, indent=2)))
    dist.barrier()


def exported(folder: Path, state: dict) -> bool:
    """Whether `folder` is a complete export of the weights at trainer state `state`."""
    try:
        marker = json.loads((folder / EXPORT_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all(marker.get(k) == state.get(k) for k in ("config", "global_step"))
