"""The merge formulas on one tensor (float32), as mergekit's generalized task arithmetic.

Task vectors delta_i = θ_i − θ_base are sparsified (TIES: top magnitudes; DARE: random), weighted,
optionally reduced to the entries agreeing with the elected sign, summed, optionally normalised by
the weights that contributed, scaled by λ and added back to the base.
"""

from __future__ import annotations

import hashlib

import torch

from training.merge.config import Merge


def magnitude_mask(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES's trim: the int(density·numel) entries of largest magnitude."""
    keep = torch.zeros(delta.numel(), dtype=torch.bool)
    keep[torch.topk(delta.abs().flatten(), int(density * delta.numel())).indices] = True
    return keep.view(delta.shape)


def dare_generator(seed: int, name: str, index: int) -> torch.Generator:
    """One stream per (seed, tensor, model): a mask never depends on which tensors came before it."""
    digest = hashlib.sha256(f"{seed}\0{name}\0{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def sparsified(delta: torch.Tensor, density: float, spec: Merge, name: str, index: int) -> torch.Tensor:
    if density >= 1 or spec.method.sparsify is None:
        return delta
    if spec.method.sparsify == "magnitude":
        return delta * magnitude_mask(delta, density)
    keep = torch.rand(delta.shape, generator=dare_generator(spec.seed, name, index)) < density
    # DARE's rescale (Yu et al. 2024): kept entries / density, so the delta is unchanged in
    # expectation; mergekit now rescales to the delta's L1 norm instead
    return delta * keep / density if spec.rescale else delta * keep


def merge_tensor(
    spec: Merge, name: str, base: torch.Tensor | None, tensors: list[torch.Tensor], weights: list[float]
) -> torch.Tensor:
    """The merged tensor `name` from the models' tensors (and the base's), all of one shape."""
    if spec.merge_method == "linear":
        mixed = sum(w * t for w, t in zip(weights, tensors))
        return mixed / sum(weights) if spec.normalize else mixed
    deltas = [sparsified(t - base, d, spec, name, i) for i, (t, d) in enumerate(zip(tensors, spec.densities))]
    w = torch.tensor(weights).view(-1, *[1] * base.dim())
    weighted = torch.stack(deltas).mul_(w)
    if spec.method.sign_consensus:  # TIES's election: the sign of the summed weighted deltas (0 → +)
        elected = torch.where(weighted.sum(0) >= 0, 1.0, -1.0)
        mask = weighted.sign() == elected
    else:
        mask = torch.ones_like(weighted, dtype=torch.bool)
    mixed = (weighted * mask).sum(0)
    if spec.normalize:
        divisor = (w * mask).sum(0)
        mixed = mixed / torch.where(divisor == 0, 1.0, divisor)
    return base + spec.parameters.lambda_ * mixed
