"""Recipes: one YAML file describes a whole run, validated as a whole before any stage starts work.

Each stage owns its sections: its package declares a view of the recipe (a `RecipeBase` subclass)
as a `dacp.recipe` entry point in pyproject.toml. Whichever stage runs, every view is checked, so a
typo in `eval:` fails `make corpus` in seconds, not after an hour of work. Every error names the
key and the recipe file. Relative paths resolve against the directory the stage runs from.
"""

from __future__ import annotations

import re
import shutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from contracts.layout import RunLayout

VIEWS = "dacp.recipe"  # the entry-point group naming each stage's view of the recipe


class RecipeError(ValueError):
    """A recipe problem, phrased as `file: key: what is wrong`."""


class UnsafePathError(ValueError):
    """A name or path that would put a file outside the folder it belongs in."""


# one path component: starts with a letter or digit, so never `.`, `..`, a hidden file or an option
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def safe_name(name: object) -> str:
    """`name` unchanged when it can be a file or folder name; else UnsafePathError.

    Every name that becomes a path (recipe, stage, selection, corpus, task, model label) passes here,
    so data or a recipe can never write or delete outside its run folder.
    """
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        raise UnsafePathError(
            f"{name!r} is not a safe name: use letters, digits, '.', '_' or '-', starting with a letter"
            " or digit (at most 128 characters)"
        )
    return name


SafeName = Annotated[str, AfterValidator(safe_name)]  # a recipe field checked with `safe_name`


def path_under(root: str | Path, *parts: str | Path) -> Path:
    """`root/parts`, resolved, when it lies strictly inside `root` (resolved too); else UnsafePathError.

    An absolute part replaces `root` (pathlib's rule), so a full path can be checked the same way.
    """
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or not path.is_relative_to(base):
        raise UnsafePathError(f"{path} is not inside {base}")
    return path


def remove_under(root: str | Path, folder: str | Path) -> None:
    """Delete `folder` and its contents after checking it lies inside `root` (a run's out/<name>/).

    A missing folder is fine; any other failure raises, so callers never record a state they
    did not reach.
    """
    path = path_under(root, Path(folder).absolute())
    if path.exists():
        shutil.rmtree(path)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecipeBase(Strict):
    """What every stage's view shares: the run's name and where its files go.

    `sections` are the top-level keys the stage owns; a view is checked when the recipe has one of
    them (or when its own stage runs), so a corpus-only recipe needs no `train:` section. A view may
    also read another stage's section (its own field, typed loosely), and may carry fields no
    recipe sets (the trainer's `selection`).
    """

    sections: ClassVar[tuple[str, ...]] = ()

    name: SafeName
    output_dir: str = "out"

    @property
    def layout(self) -> RunLayout:
        return RunLayout(Path(self.output_dir), self.name)

    @property
    def run_dir(self) -> Path:
        """out/<name>/: everything this recipe writes, and the only place its runs may delete."""
        return self.layout.root


ViewT = TypeVar("ViewT", bound=RecipeBase)


def read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The recipe's mapping; `extends: other.yaml` (relative to this file) starts from that recipe,
    with this file's mappings merged in key by key and everything else replaced."""
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys (name, inputs, ...)")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    parent = (path.parent / str(base)).resolve()
    if parent in seen:
        raise RecipeError(f"{path}: extends: {base!r} extends itself")
    return _merged(read_recipe(parent, seen + (parent,)), raw)


def _merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merged(base[key], value) if both else value
    return out


def _error_lines(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        if loc[-1:] == ["[key]"]:  # a mapping's key: the message names it
            loc = loc[:-2]
        key = ".".join(loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}")
    return lines


def recipe_error(path: str | Path, problems: list[str]) -> RecipeError:
    """The one error format: a headline, then one `file: key: problem` line each."""
    return RecipeError("\n".join([f"{path}: invalid recipe"] + [f"  {path}: {p}" for p in problems]))


def stage_views() -> list[type[RecipeBase]]:
    """Every stage's view of the recipe, as its package declares it (pyproject.toml)."""
    return [ep.load() for ep in sorted(entry_points(group=VIEWS), key=lambda ep: ep.name)]


def load_recipe(path: str | Path, view: type[ViewT]) -> ViewT:
    """Validate the whole recipe (every stage's view) and return `view`, the one the caller reads;
    RecipeError lists every problem, each naming its key and the file."""
    path = Path(path)
    raw = read_recipe(path)
    views = [*{v: None for v in [view, *stage_views()]}]
    known = {*RecipeBase.model_fields, *(key for v in views for key in v.sections)}
    problems = [f"{key}: unknown key" for key in raw if key not in known]
    chosen = None
    for v in views:
        if v is not view and not any(key in raw for key in v.sections):
            continue
        try:
            checked = v.model_validate({key: raw[key] for key in v.model_fields if key in raw})
        except ValidationError as e:
            problems += [line for line in _error_lines(e) if line not in problems]
            continue
        chosen = checked if v is view else chosen
    if problems:
        raise recipe_error(path, problems)
    return chosen
