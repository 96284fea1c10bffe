"""Checkpoints with torch.distributed.checkpoint (sharded, any world size) and Hugging Face export.

`checkpoints/<stage>-<step>/` holds the DCP shards of model and optimizer, `rng-<rank>.pt`, and
`trainer.json` (stage, step, data cursors), written last: a folder without it is incomplete.
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


def checkpoint_dir(root: Path, stage: str, step: int) -> Path:
    return root / "checkpoints" / f"{stage}-{step:07d}"


def save(folder: Path, model, optimizer, trainer_state: dict, keep: int = 2) -> None:
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(folder))
    torch.save(
        {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        folder / f"rng-{dist.get_rank()}.pt",
    )
    dist.barrier()
    if dist.get_rank() == 0:
        (folder / "trainer.json").write_text(json.dumps(trainer_state, indent=2))
        complete = sorted(p for p in folder.parent.iterdir() if (p / "trainer.json").is_file())
        for old in complete[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def latest(root: Path) -> Path | None:
    folders = [p for p in (root / "checkpoints").glob("*") if (p / "trainer.json").is_file()]
    return max(
        folders, key=lambda p: json.loads((p / "trainer.json").read_text())["global_step"], default=None
    )


def load(folder: Path, model, optimizer=None) -> dict:
    """Model (and optimizer, when given) from `folder`; returns the trainer state."""
    if optimizer is None:
        state = {"model": get_model_state_dict(model)}
        dcp.load(state, checkpoint_id=str(folder))
        set_model_state_dict(model, state["model"])
    else:
        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        rng = folder / f"rng-{dist.get_rank()}.pt"
        if rng.is_file():
            saved = torch.load(rng, weights_only=False)
            torch.set_rng_state(saved["torch"])
            if saved["cuda"]:
                torch.cuda.set_rng_state_all(saved["cuda"])
    return json.loads((folder / "trainer.json").read_text())


def export_hf(model, tokenizer, folder: Path) -> None:
    """A folder `AutoModelForCausalLM.from_pretrained` loads: gathered full weights + tokenizer."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() == 0:
        from transformers import AutoModelForCausalLM

        plain = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        plain.load_state_dict(full)
        plain.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    dist.barrier()
