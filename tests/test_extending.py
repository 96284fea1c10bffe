"""docs/extending.md's worked examples run: each section's python blocks, in order, in a namespace of
their own (with `tmp_path`), from the project root. The registries they add to are restored after."""

import re

import pytest
from conftest import ROOT

from curation.filters.registry import HEURISTIC_FILTERS
from selection.methods import SCORE_METHODS
from training.merge.methods import MERGE_METHODS

GUIDE = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def sections() -> dict[str, str]:
    """Each `## ` heading of the guide -> the python code of its blocks, in order."""
    parts = re.split(r"^## (.+)$", GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {title: "\n".join(BLOCK.findall(body)) for title, body in zip(parts[1::2], parts[2::2])}


@pytest.fixture
def registries():
    """Whatever an example registers is gone after it: other tests see the registries as shipped."""
    saved = [(registry, dict(registry)) for registry in (HEURISTIC_FILTERS, SCORE_METHODS, MERGE_METHODS)]
    yield
    for registry, entries in saved:
        registry.clear()
        registry.update(entries)


def test_every_section_has_an_example():
    assert len(sections()) == 4 and all(sections().values()), list(sections())


@pytest.mark.parametrize("title", sections())
def test_the_example_runs(title, tmp_path, monkeypatch, registries):
    monkeypatch.chdir(ROOT)
    code = compile(sections()[title], f"{GUIDE.name}: {title}", "exec")
    exec(code, {"__name__": "extending_example", "tmp_path": tmp_path})
