"""The heuristic filters a recipe's `filters:` can switch and tune, named once, in the order they run.

Each is a datatrove BaseFilter class: its keyword arguments are what `filters: {kind: {language:
{name: {...} | true | false}}}` may set. The first four are datatrove's chain, which HeuristicJudge
decides from one word split per document (`signals.py`); a filter registered after them is asked
through its own `filter(doc)`, on the text the four leave. Adding one: docs/extending.md. This
module is light (no spaCy, no fastText): every stage's recipe check reads it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter


@dataclass(frozen=True)
class HeuristicFilterSpec:
    """A filter of the chain: its class, why it is there, and whether it runs where no recipe
    names it (a filter added later is off by default, so existing recipes keep their corpus)."""

    filter_class: type[BaseFilter]
    why: str
    default_on: bool = False

    @property
    def arguments(self) -> frozenset[str]:
        """Its keyword arguments: what `filters.<kind>.<language>.<name>` may set."""
        parameters = inspect.signature(self.filter_class.__init__).parameters
        return frozenset(parameters) - {"self", "exclusion_writer"}


HEURISTIC_FILTERS: dict[str, HeuristicFilterSpec] = {}  # name -> spec, in the order they run


def register_filter(name: str, spec: HeuristicFilterSpec) -> None:
    """Adds a filter after those registered; a name is registered once."""
    if name in HEURISTIC_FILTERS:
        raise ValueError(f"a heuristic filter named {name!r} is already registered")
    HEURISTIC_FILTERS[name] = spec


# datatrove's chain, in its order: on wherever a recipe does not switch one off
for _name, _class, _why in (
    ("gopher_quality", GopherQualityFilter, "Gopher's quality rules (Rae et al. 2021)"),
    ("c4", C4QualityFilter, "C4's line rules (Raffel et al. 2020)"),
    ("fineweb", FineWebQualityFilter, "FineWeb's line rules (Penedo et al. 2024)"),
    ("gopher_repetition", GopherRepetitionFilter, "Gopher's repetition rules (Rae et al. 2021)"),
):
    register_filter(_name, HeuristicFilterSpec(_class, _why, default_on=True))
DATATROVE_CHAIN = tuple(HEURISTIC_FILTERS)  # the four above: HeuristicJudge's own code decides them
