"""Model references: how a recipe names a model, resolved in one place for every stage.

Wherever a recipe names a model (`train.model`, `select.grading.local.model`, `select.scores.model`,
a merge's `models`, `base_model` and `tokenizer_source`, `eval.models`, `eval.reference_models`),
it writes one of:

    hf/<stage>                          this recipe's main-run export of a stage
                                        (out/<name>/train/hf/<stage>/), complete once its
                                        `export.json` (EXPORT_MARKER) is written: `make train`
    selections/<selection>/hf/<stage>   a selection run's export of a stage
                                        (out/<name>/train/selections/<selection>/hf/<stage>/)
    gguf:<path>                         a GGUF file, or `gguf:<package>/<file>` one inside an
    gguf:<package>/<file>               installed package: the folder out/models/<file stem>/ it is
                                        converted into (by `make model` or `make train`; training
                                        converts, every other stage only reads the folder)
    a folder                            an existing path, used as it is (`out/x/train/hf/cpt` too)
    a hub id                            `owner/name` or `name`, used as it is

The syntax is checked with the recipe (`ModelRef`, so a typo fails naming its key); whether the
model exists only when a stage resolves it, since earlier stages make the exports it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator

from contracts.layout import CONVERSION_MARKER, EXPORT_MARKER, GGUF_PREFIX, RunLayout, TrainLayout, gguf_stem
from contracts.recipe import UnsafePathError, safe_name

ModelKind = Literal["export", "gguf", "folder", "hub"]


class ModelNotFound(FileNotFoundError):
    """A reference whose model is not there (yet): the message names it, its folder and what to run."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference as written, and the folder or hub id it names (what from_pretrained reads)."""

    ref: str
    path_or_id: str
    kind: ModelKind


def export_of(ref: str) -> tuple[str | None, str] | None:
    """(selection or None, stage) for an `hf/<stage>` or `selections/<selection>/hf/<stage>`
    reference; None for any other. A malformed one of these forms is a ValueError."""
    if not ref.startswith(("hf/", "selections/")):
        return None
    try:
        match ref.split("/"):
            case ["hf", stage]:
                return None, safe_name(stage)
            case ["selections", selection, "hf", stage]:
                return safe_name(selection), safe_name(stage)
    except UnsafePathError as e:
        raise ValueError(f"{ref!r}: {e}") from None
    raise ValueError(
        f"{ref!r}: a stage export is `hf/<stage>` or `selections/<selection>/hf/<stage>` "
        "(another folder: write it as `./hf/...`)"
    )


def check_model_ref(ref: str) -> str:
    """`ref` unchanged when it is a well-formed model reference; else ValueError (a recipe error)."""
    if not ref.strip():
        raise ValueError("an empty model reference")
    if (stem := gguf_stem(ref)) is not None:
        if not stem:
            raise ValueError(f"{ref!r}: `gguf:` needs a file, `gguf:<path>` or `gguf:<package>/<file>`")
        return ref
    export_of(ref)
    return ref


ModelRef = Annotated[str, AfterValidator(check_model_ref)]  # a recipe field naming a model


def export_ref(stage: str, selection: str | None = None) -> str:
    """The reference to a stage's export of the main run, or of a selection's run."""
    return f"selections/{selection}/hf/{stage}" if selection else f"hf/{stage}"


def resolve_model(ref: str, layout: RunLayout, check: bool = True) -> ResolvedModel:
    """The folder or hub id `ref` names (see the module docstring). `check`: an export that is
    missing or incomplete, a `gguf:` model not converted yet, or a missing path that is no hub id
    raises ModelNotFound; without it only the syntax is checked (ValueError)."""
    check_model_ref(ref)
    if (export := export_of(ref)) is not None:
        folder = layout.train_run(export[0]).export(export[1])
        if check and not (folder / EXPORT_MARKER).is_file():
            raise ModelNotFound(
                f"{ref}: {folder} is no complete export (no {EXPORT_MARKER}): run `make train` first"
            )
        return ResolvedModel(ref, str(folder), "export")
    if ref.startswith(GGUF_PREFIX):
        folder = layout.converted_model(ref)
        if check and not (folder / CONVERSION_MARKER).is_file():
            raise ModelNotFound(
                f"{ref}: not converted yet ({folder} has no {CONVERSION_MARKER}): run `make model` first"
            )
        return ResolvedModel(ref, str(folder), "gguf")
    if Path(ref).exists():
        return ResolvedModel(ref, ref, "folder")
    if check and (ref.startswith((".", "/", "~")) or ref.count("/") > 1):
        hint = ": run `make train` first" if TrainLayout.of_export(Path(ref)) else ""
        raise ModelNotFound(f"{ref}: no such folder (and not a hub id `owner/name`){hint}")
    return ResolvedModel(ref, ref, "hub")
