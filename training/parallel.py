"""The process group, and FSDP2: shard each decoder block, then the root; bf16 compute with fp32
reduction on GPU."""

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard


def init_process_group() -> None:
    """NCCL on GPU, gloo on CPU; a plain `python -m training` is a world of one."""
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if "RANK" not in os.environ:
        os.environ.update(
            RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29511"
        )
    dist.init_process_group(backend, timeout=timedelta(minutes=30))


def decoder_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated transformer blocks of a Hugging Face causal LM (`model.model.layers` and kin)."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) and module is not model:
            return list(module)
    raise ValueError(f"{type(model).__name__}: no list of decoder blocks found to shard")


def apply_fsdp(
    model: torch.nn.Module, device_type: str, world: int, bf16: bool, checkpointing: bool, compile: bool
) -> None:
    """In place, as torchtitan does: checkpointing and compilation per block, then sharding."""
    mesh = init_device_mesh(device_type, (world,))
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
    kwargs = {"mesh": mesh} | ({"mp_policy": policy} if policy else {})
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for block in decoder_blocks(model):
        if compile:  # per block, in place: parameter names (and so checkpoints) stay the same
            block.compile()
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)
