"""`make merge`: each merge of the recipe's `merge:` section written as a Hugging Face folder.

Inputs are resolved (stage exports, converted GGUF models, folders, hub ids) and checked against the
first model from the safetensors headers alone; then each output tensor is merged and written in
turn into `<folder>.partial`, renamed once complete with `export.json` last. An output whose merge
and inputs are unchanged is kept on rerun.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from contracts.layout import EXPORT_MARKER, RunLayout
from contracts.publish import fresh_partial, publish
from training.merge.config import Merge, MergeError, MergeRecipe
from training.merge.methods import merge_tensor
from training.merge.shards import DTYPES, Header, Weights, write_weights
from training.model_import import converted

MAX_SHARD_SIZE = 2 * 1024**3  # bytes per output safetensors file
OUTPUT_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
HUB_FILES = ["*.safetensors", "*.json", "tokenizer.model", "*.txt", "*.jinja"]  # weights, config, tokenizer


@dataclass(frozen=True)
class Source:
    """A model reference, the recipe key naming it, and the folder it resolved to."""

    key: str
    ref: str
    path: Path


def resolve(ref: str, key: str, layout: RunLayout) -> Source:
    """The folder `ref` names (`contracts.models`; a `gguf:` model converted once), or a hub snapshot."""
    try:
        model = converted(ref, layout)
    except (FileNotFoundError, ValueError) as e:
        raise MergeError(f"{key}: {e}") from None
    if model.kind != "hub":
        return Source(key, ref, Path(model.path_or_id))
    from huggingface_hub import snapshot_download

    try:
        return Source(key, ref, Path(snapshot_download(ref, allow_patterns=HUB_FILES)))
    except (OSError, ValueError) as e:
        raise MergeError(f"{key}: {ref}: not downloaded from the hub: {e}") from None


def embedding_names(folder: Path) -> set[str]:
    """The input and output embedding weights' names, from the architecture built without memory."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    embeddings = (model.get_input_embeddings(), model.get_output_embeddings())
    wanted = [m.weight for m in embeddings if m is not None]
    return {name for name, p in model.named_parameters(remove_duplicate=False) if any(p is w for w in wanted)}


class TensorMerger:
    """Each output tensor's merged value, from open readers of the models (and of the base model)."""

    def __init__(self, spec: Merge, models: list[Weights], base: Weights | None):
        self.spec, self.models, self.base = spec, models, base
        self.others = [*models[1:], *([base] if base else [])]
        self.embeddings = embedding_names(models[0].folder)
        self.skipped = self.embeddings if spec.skip_embeddings else set()
        self.shared_rows = self._shared_rows()

    def _shared_rows(self) -> dict[str, int]:
        """The rows every input has, for embeddings the first model extends (a larger vocabulary);
        any other difference from the first model is an error."""
        first, rows = self.models[0], {}
        for name in first:
            if first.dtype(name) not in DTYPES:
                raise MergeError(f"{first.key}: {name} is {first.dtype(name)}: only float weights merge")
            if name in self.skipped:
                continue
            shape = first.shape(name)
            for other in self.others:
                if name not in other:
                    raise MergeError(f"{other.key}: {other.folder} has no tensor {name}")
                theirs = other.shape(name)
                if theirs == shape:
                    continue
                if not (name in self.embeddings and theirs[1:] == shape[1:] and theirs[0] < shape[0]):
                    raise MergeError(f"{other.key}: {name} has shape {theirs}, {first.key} has {shape}")
                rows[name] = min(rows.get(name, shape[0]), theirs[0])
        return rows

    def header(self) -> Header:
        first, dtype = self.models[0], OUTPUT_DTYPES.get(self.spec.dtype)
        return {name: (dtype or first.dtype(name), first.shape(name)) for name in first}

    def tensor(self, name: str, weights: list[float]) -> torch.Tensor:
        first = self.models[0].get(name)
        if name in self.skipped:
            return first
        rows = self.shared_rows.get(name)

        def shared(t: torch.Tensor) -> torch.Tensor:
            return t if rows is None else t[:rows]

        tensors = [shared(first)] + [shared(m.get(name)) for m in self.models[1:]]
        base = shared(self.base.get(name)) if self.base else None
        merged = merge_tensor(self.spec, name, base, tensors, weights)
        return merged if rows is None else torch.cat([merged, first[rows:]])  # new rows: the first model's


def fingerprint(folder: Path) -> list:
    """A folder's files by name, size and modification time: a retrained input changes it."""
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()]


def merge_hash(spec: Merge, weights: list[float], sources: list[Source]) -> str:
    """What an output was made from: a finished output with another hash is made again."""
    state = {
        "merge": spec.model_dump(mode="json", by_alias=True, exclude={"interpolate"}),  # weights say it
        "weights": weights,
        "inputs": [(str(s.path), fingerprint(s.path)) for s in sources],
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def is_done(folder: Path, digest: str) -> bool:
    try:
        return json.loads((folder / EXPORT_MARKER).read_text()).get("merge_hash") == digest
    except (OSError, ValueError):
        return False


def outputs(spec: Merge, folder: Path) -> list[tuple[list[float], Path]]:
    """(weights, folder) of each output: one, or one per interpolation weight t."""
    if spec.interpolate is None:
        return [(spec.weights, folder)]
    return [([1 - t, t], folder / f"t{t:g}") for t in spec.interpolate]


def write_config(source: Path, folder: Path, dtype: str | None) -> None:
    config = json.loads((source / "config.json").read_text())
    if dtype is not None:
        config["dtype"] = dtype
        if "torch_dtype" in config:
            config["torch_dtype"] = dtype
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    if (source / "generation_config.json").is_file():
        shutil.copy(source / "generation_config.json", folder)


def copy_tokenizer(source: Source, folder: Path) -> None:
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(source.path).save_pretrained(folder)
    except (OSError, ValueError) as e:
        raise MergeError(
            f"{source.key}: {source.path}: no tokenizer loads from it ({e}): name one with tokenizer_source"
        ) from None


@dataclass(frozen=True)
class Inputs:
    """A merge's resolved models, base model and tokenizer source."""

    models: list[Source]
    base: Source | None
    tokenizer: Source

    @classmethod
    def resolve(cls, name: str, spec: Merge, layout: RunLayout) -> Inputs:
        key = f"merge.{name}"
        models = [resolve(m.model, f"{key}.models[{i}].model", layout) for i, m in enumerate(spec.models)]
        base = resolve(spec.base_model, f"{key}.base_model", layout) if spec.base_model else None
        source = spec.tokenizer_source
        tokenizer = resolve(source, f"{key}.tokenizer_source", layout) if source else models[0]
        return cls(models, base, tokenizer)

    @property
    def all(self) -> list[Source]:
        return [*self.models, *([self.base] if self.base else []), self.tokenizer]


def write_merge(spec: Merge, inputs: Inputs, merger: TensorMerger, weights: list[float], out: Path) -> None:
    """One output folder, written beside its place and renamed into it once complete."""
    partial = fresh_partial(out)
    tensor = lambda name: merger.tensor(name, weights)  # noqa: E731
    write_weights(partial, merger.header(), tensor, MAX_SHARD_SIZE, f"merge {out.name}")
    write_config(inputs.models[0].path, partial, spec.dtype)
    copy_tokenizer(inputs.tokenizer, partial)
    marker = {
        "method": spec.merge_method,
        "models": [s.ref for s in inputs.models],
        "weights": weights,
        "base_model": spec.base_model,
        "tokenizer": inputs.tokenizer.ref,
        "merge_hash": merge_hash(spec, weights, inputs.all),
    }
    publish(partial, out, (EXPORT_MARKER, json.dumps(marker, indent=2)))


def run_merge(name: str, spec: Merge, layout: RunLayout) -> list[Path]:
    """Every output folder of one merge, written unless already complete for these inputs."""
    inputs = Inputs.resolve(name, spec, layout)
    folders = outputs(spec, layout.merge(name))
    todo = [(w, out) for w, out in folders if not is_done(out, merge_hash(spec, w, inputs.all))]
    if todo:
        with ExitStack() as stack:
            models = [stack.enter_context(Weights(s.path, s.key)) for s in inputs.models]
            base = stack.enter_context(Weights(inputs.base.path, inputs.base.key)) if inputs.base else None
            merger = TensorMerger(spec, models, base)
            for weights, out in todo:
                write_merge(spec, inputs, merger, weights, out)
    return [out for _, out in folders]


def run_merges(recipe: MergeRecipe) -> dict[str, list[Path]]:
    """Every merge of the recipe, in order: its name -> its output folders."""
    return {name: run_merge(name, spec, recipe.layout) for name, spec in recipe.merge.items()}


def summary(recipe: MergeRecipe, results: dict[str, list[Path]]) -> str:
    """One line per merge (method, models and weights, base), then its output folders."""
    lines = [f"{len(results)} merge(s) in {recipe.layout.merges}"]
    for name, folders in results.items():
        spec = recipe.merge[name]
        weighted = ", ".join(f"{m.model} ×{m.parameters.weight:g}" for m in spec.models)
        if spec.interpolate is not None:
            weighted = f"{spec.models[0].model} → {spec.models[1].model}, t = {spec.interpolate}"
        base = f" on {spec.base_model}" if spec.base_model else ""
        lines.append(f"  {name}: {spec.merge_method} of {weighted}{base}")
        lines += [f"    {folder}" for folder in folders]
    return "\n".join(lines)
