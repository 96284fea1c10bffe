"""Test-only fault injection, loaded by every Python process of a run when this folder is on PYTHONPATH.

`DACP_KILL_AT="module:Qualified.name:N[:when]"` wraps that function; on its Nth call in a process
the process writes `DACP_KILL_FLAG` and stops itself (SIGSTOP) right there, so that the test kills
the whole run at exactly that point (a window too short to hit by watching files). `when`:
  before   stop before the call (the default)
  after    stop after the call returned
  torn     for a `write_text`/`write_bytes`-like call: write half the data, then stop
`DACP_KILL_MATCH=text` counts only calls with a str or path argument containing `text`.
Production code has no fault hooks: the target is patched once its module is imported.
"""

import functools
import importlib.abc
import os
import signal
import sys


def _stop(point: str) -> None:
    with open(os.environ["DACP_KILL_FLAG"], "a") as flag:
        flag.write(f"{os.getpid()} {point}\n")
    os.kill(os.getpid(), signal.SIGSTOP)


def _wrap(function, point: str, nth: int, when: str, match: str):
    calls = 0

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        nonlocal calls
        texts = [str(a) for a in (*args, *kwargs.values()) if isinstance(a, str | os.PathLike)]
        if match and not any(match in t for t in texts):
            return function(*args, **kwargs)
        calls += 1
        if calls != nth:
            return function(*args, **kwargs)
        if when == "before":
            _stop(point)
        if when == "torn":
            path, data = args[0], args[1]
            with open(path, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data[: len(data) // 2])
            _stop(point)
        result = function(*args, **kwargs)
        _stop(point)
        return result

    return wrapper


def _patch(module, qualname: str, wrap) -> None:
    *owners, attr = qualname.split(".")
    owner = module
    for name in owners:
        owner = getattr(owner, name)
    setattr(owner, attr, wrap(getattr(owner, attr)))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches the target right after its module is executed, whoever imports it first."""

    def __init__(self, module: str, patch):
        self.module, self.patch = module, patch

    def find_spec(self, name, path, target=None):
        if name != self.module:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        execute, patch = spec.loader.exec_module, self.patch

        def exec_module(module):
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def _install(spec: str) -> None:
    module, qualname, nth, *rest = spec.split(":")
    when = rest[0] if rest else "before"
    if when not in ("before", "after", "torn"):
        raise ValueError(f"DACP_KILL_AT={spec}: `when` is before, after or torn")

    def patch(loaded) -> None:
        _patch(
            loaded, qualname, lambda f: _wrap(f, spec, int(nth), when, os.environ.get("DACP_KILL_MATCH", ""))
        )

    if module in sys.modules:
        patch(sys.modules[module])
    else:
        sys.meta_path.insert(0, _AfterImport(module, patch))


if os.environ.get("DACP_KILL_AT"):
    _install(os.environ["DACP_KILL_AT"])
