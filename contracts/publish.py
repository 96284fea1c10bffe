"""Publishing an output atomically, the one way every stage does it.

An output is written beside its place, under `<name>.partial`, synced to disk, marked finished by a
marker file written last (`export.json`, `_done.json`, `trainer.json`), and only then renamed into
place. A kill at any moment leaves the old output or the new one, never a folder that looks finished
and is not; a later run removes what a killed one left under the `.partial` name. Single files
(`fit.json`, `results.json`, a stage's fingerprint) are replaced the same way by `write_atomic`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PARTIAL = ".partial"


def partial_dir(path: Path) -> Path:
    """Where `path`'s next version is written until it is published."""
    return path.with_name(path.name + PARTIAL)


def fresh_partial(folder: Path) -> Path:
    """An empty `<folder>.partial` (what a killed run left there is removed)."""
    partial = partial_dir(folder)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """`path` holds its old text or the new one whenever the process is killed, never a torn mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_dir(path)
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync(path.parent)


def publish(partial: Path, folder: Path, marker: tuple[str, str] | None = None) -> None:
    """The fully written `partial` folder takes the place of `folder`: `marker` (name, text) is
    written last, every file is synced to disk, then the old folder goes and the new one is renamed in."""
    if marker is not None:
        (partial / marker[0]).write_text(marker[1], encoding="utf-8")
    for path in partial.rglob("*"):
        if path.is_file():
            _fsync(path)
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(folder)
    _fsync(folder.parent)
