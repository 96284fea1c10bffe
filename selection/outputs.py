"""A selection step's output folder, replaced whole or not at all (`contracts.publish`).

`select/` outlives every run, so a step that wrote into its folder in place would leave the files
an earlier configuration made beside its own (shards of a larger task count, token shards of a
larger selection) for the next reader to pick up. A step writes into `<folder>.partial` instead;
`publish` marks it finished with `_done.json`, which records what made it and every file it holds,
and only then puts it in place of the old folder. Readers read the files `_done.json` lists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from contracts import publish as atomic

DONE = "_done.json"


def publish(partial: Path, folder: Path, made_by: dict) -> None:
    """Marks `partial` finished (`made_by`: the step, its task count and configuration) and puts it
    in place of `folder`."""
    files = sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*") if p.is_file())
    atomic.publish(partial, folder, (DONE, json.dumps({"made_by": made_by, "files": files}, indent=2)))


def finished_files(folder: Path) -> list[Path]:
    """The files a finished step wrote in `folder`; a ValueError when no step finished it."""
    done = folder / DONE
    if not done.is_file():
        raise ValueError(f"{folder}: no {DONE}, so no `make select` step finished it; run it again")
    return [folder / name for name in json.loads(done.read_text())["files"]]


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
