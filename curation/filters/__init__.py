"""Filters keep or drop documents; every drop carries a reason (datatrove's BaseFilter).

The names below load their module on first use: every stage's recipe check reads `registry`, and
must not pay for spaCy and fastText, which the filters themselves load.
"""

from importlib import import_module

_MODULES = {
    "DEFAULT_SETTINGS": "heuristics",
    "HeuristicFilter": "heuristics",
    "heuristic_judges": "heuristics",
    "BundledFastTextLID": "language",
    "OfflineLanguageFilter": "language",
    "PassageFilter": "passages",
}
__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
