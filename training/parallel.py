"""FSDP2: shard each decoder block, then the root; bf16 compute with fp32 reduction on GPU."""

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard


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
