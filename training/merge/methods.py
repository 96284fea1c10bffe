"""The merge methods: one registry (mergekit's), each method's formula on one tensor (float32).

The built-in methods are mergekit's generalized task arithmetic: task vectors delta_i = θ_i − θ_base
are sparsified (TIES: top magnitudes; DARE: random), weighted, optionally reduced to the entries
agreeing with the elected sign, summed, optionally normalised by the weights that contributed,
scaled by λ and added back to the base; `linear` weights the models themselves. Adding a method:
docs/extending.md.

The recipe's view (`config.py`) reads this registry and must cost no torch (every stage checks
every view), so each formula imports torch itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from training.merge.config import Merge

# (spec, tensor name, base tensor or None, the models' tensors, their weights) -> the merged tensor
Formula = Callable[["Merge", str, "torch.Tensor | None", "list[torch.Tensor]", "list[float]"], "torch.Tensor"]


@dataclass(frozen=True)
class MergeMethod:
    """A method: its formula, the parameters it reads (one it would ignore is refused instead),
    whether it takes deltas from a `base_model`, and the switches and defaults the generalized task
    arithmetic reads."""

    formula: Formula
    options: frozenset[str]
    base: bool = True  # deltas are taken from `base_model`; False: it weights the models themselves
    sparsify: Literal["magnitude", "random"] | None = None
    sign_consensus: bool = False
    normalize: bool = False  # the default of `parameters.normalize`
    rescale: bool = False  # the default of `parameters.rescale`
    paper: str = ""


MERGE_METHODS: dict[str, MergeMethod] = {}  # `merge_method` -> method


def register_merge_method(name: str, method: MergeMethod) -> None:
    """Adds a method a recipe's `merge_method` can name; a name is registered once."""
    if name in MERGE_METHODS:
        raise ValueError(f"a merge method named {name!r} is already registered")
    MERGE_METHODS[name] = method


def magnitude_mask(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES's trim: the int(density·numel) entries of largest magnitude."""
    import torch

    keep = torch.zeros(delta.numel(), dtype=torch.bool)
    keep[torch.topk(delta.abs().flatten(), int(density * delta.numel())).indices] = True
    return keep.view(delta.shape)


def dare_generator(seed: int, name: str, index: int) -> torch.Generator:
    """One stream per (seed, tensor, model): a mask never depends on which tensors came before it."""
    import torch

    digest = hashlib.sha256(f"{seed}\0{name}\0{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def sparsified(delta: torch.Tensor, density: float, spec: Merge, name: str, index: int) -> torch.Tensor:
    import torch

    if density >= 1 or spec.method.sparsify is None:
        return delta
    if spec.method.sparsify == "magnitude":
        return delta * magnitude_mask(delta, density)
    keep = torch.rand(delta.shape, generator=dare_generator(spec.seed, name, index)) < density
    # DARE's rescale (Yu et al. 2024): kept entries / density, so the delta is unchanged in
    # expectation; mergekit now rescales to the delta's L1 norm instead
    return delta * keep / density if spec.rescale else delta * keep


def linear(
    spec: Merge, name: str, base: torch.Tensor | None, tensors: list[torch.Tensor], weights: list[float]
) -> torch.Tensor:
    """Σ wᵢ·θᵢ, divided by Σ wᵢ with `normalize`."""
    mixed = sum(w * t for w, t in zip(weights, tensors))
    return mixed / sum(weights) if spec.normalize else mixed


def task_arithmetic(
    spec: Merge, name: str, base: torch.Tensor | None, tensors: list[torch.Tensor], weights: list[float]
) -> torch.Tensor:
    """base + λ·Σ wᵢ·δᵢ, each δᵢ sparsified and sign-elected as the method's switches say."""
    import torch

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


def merge_tensor(
    spec: Merge, name: str, base: torch.Tensor | None, tensors: list[torch.Tensor], weights: list[float]
) -> torch.Tensor:
    """The merged tensor `name` from the models' tensors (and the base's), all of one shape."""
    return spec.method.formula(spec, name, base, tensors, weights)


_TASK = frozenset({"weight", "normalize", "lambda"})
register_merge_method(
    "linear", MergeMethod(linear, frozenset({"weight", "normalize"}), base=False, normalize=True)
)
register_merge_method("task_arithmetic", MergeMethod(task_arithmetic, _TASK, paper="Ilharco et al. 2023"))
register_merge_method(
    "ties",
    MergeMethod(
        task_arithmetic,
        _TASK | {"density"},
        sparsify="magnitude",
        sign_consensus=True,
        normalize=True,
        paper="Yadav et al. 2023",
    ),
)
register_merge_method(
    "dare_ties",
    MergeMethod(
        task_arithmetic,
        _TASK | {"density", "rescale"},
        sparsify="random",
        sign_consensus=True,
        rescale=True,
        paper="Yu et al. 2024",
    ),
)
register_merge_method(
    "dare_linear",
    MergeMethod(
        task_arithmetic,
        _TASK | {"density", "rescale"},
        sparsify="random",
        rescale=True,
        paper="Yu et al. 2024",
    ),
)
# Chat Vector: θ_cpt + (θ_chat − θ_base), task arithmetic with weights 1 (embeddings: `skip_embeddings`)
register_merge_method(
    "chat_vector", MergeMethod(task_arithmetic, frozenset({"skip_embeddings"}), paper="Huang et al. 2024")
)
