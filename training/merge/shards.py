"""Safetensors folders read and written one tensor at a time, so a merge holds one tensor per model.

A written shard's header is planned from the tensors' shapes and dtypes before any data, then each
tensor's bytes are appended as it is computed: no shard is ever assembled in memory.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm import tqdm

from training.merge.config import MergeError

INDEX = "model.safetensors.index.json"
DTYPES = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


class Weights:
    """A model folder's tensors by name, across its shards (through the index when sharded)."""

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = folder, key
        index = folder / INDEX
        if index.is_file():
            files = sorted({folder / f for f in json.loads(index.read_text())["weight_map"].values()})
        else:
            files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise MergeError(f"{key}: {folder} holds no *.safetensors (save it with save_pretrained)")
        self._open = ExitStack()
        self._where = {}
        for path in files:
            handle = self._open.enter_context(safe_open(path, framework="pt"))
            self._where |= dict.fromkeys(handle.keys(), handle)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._where))

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def shape(self, name: str) -> list[int]:
        return self._where[name].get_slice(name).get_shape()

    def dtype(self, name: str) -> str:
        return self._where[name].get_slice(name).get_dtype()

    def get(self, name: str) -> torch.Tensor:
        return self._where[name].get_tensor(name).float()

    def __enter__(self) -> Weights:
        return self

    def __exit__(self, *exc) -> None:
        self._open.close()


Header = dict[str, tuple[str, list[int]]]  # tensor name -> (safetensors dtype, shape)


def nbytes(dtype: str, shape: list[int]) -> int:
    return math.prod(shape) * DTYPES[dtype].itemsize


def plan_shards(header: Header, max_shard_size: int) -> list[list[str]]:
    """Tensors in order, cut into shards of at most `max_shard_size` bytes (a larger tensor alone)."""
    shards, size = [[]], 0
    for name, (dtype, shape) in header.items():
        n = nbytes(dtype, shape)
        if shards[-1] and size + n > max_shard_size:
            shards, size = shards + [[]], 0
        shards[-1].append(name)
        size += n
    return shards


def _write_shard(path: Path, header: Header, tensor: Callable[[str], torch.Tensor], progress: tqdm) -> None:
    entries, offset = {}, 0
    for name, (dtype, shape) in header.items():
        end = offset + nbytes(dtype, shape)
        entries[name], offset = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}, end
    text = json.dumps({"__metadata__": {"format": "pt"}, **entries}).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name, (dtype, shape) in header.items():
            data = tensor(name).to(DTYPES[dtype]).contiguous().reshape(-1).view(torch.uint8)
            assert data.numel() == nbytes(dtype, shape), f"{name}: not the planned size"
            f.write(data.numpy().tobytes())
            progress.update()


def write_weights(
    folder: Path, header: Header, tensor: Callable[[str], torch.Tensor], max_shard_size: int, desc: str
) -> None:
    """`model.safetensors`, or numbered shards and their index, holding `tensor(name)` for each name."""
    shards = plan_shards(header, max_shard_size)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    )
    with tqdm(total=len(header), desc=desc, unit="tensor") as progress:
        for file, shard in zip(names, shards):
            _write_shard(folder / file, {n: header[n] for n in shard}, tensor, progress)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(nbytes(*header[n]) for n in header)},
            "weight_map": {n: file for file, shard in zip(names, shards) for n in shard},
        }
        (folder / INDEX).write_text(json.dumps(index, indent=2))
