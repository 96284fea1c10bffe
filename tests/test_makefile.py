"""The Makefile as users type it: a line that names a goal twice runs every goal, in order."""

import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

# the command each goal runs, as `make -n` prints it (`-m training RECIPE` is `make train`)
MARKERS = {
    "model": "-m training model ",
    "corpus": "-m curation run ",
    "train": "-m training recipes/",
    "select": "-m selection run ",
    "eval": "-m evaluation eval ",
    "audit": "-m evaluation audit ",
}


def planned(*args: str) -> list[tuple[str, str]]:
    """(goal, recipe) for each stage command `make -n args` would run, in order (-n runs nothing)."""
    result = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return [
        (goal, line.split()[-1])
        for line in result.stdout.splitlines()
        for goal, marker in MARKERS.items()
        if marker in line
    ]


def test_a_goal_named_twice_runs_twice_in_order():
    plan = planned("model", "train", "select", "train", "eval", "RECIPE=recipes/finance-smollm2.yaml")
    assert plan == [
        (goal, "recipes/finance-smollm2.yaml") for goal in ("model", "train", "select", "train", "eval")
    ]


def test_demo_runs_every_stage_in_order_on_the_recipe_with_a_selection():
    stages = ["corpus", "train", "select", "train", "eval", "audit"]
    assert planned("demo") == [(goal, "recipes/default-select.yaml") for goal in stages]
    assert planned("demo", "RECIPE=recipes/finance-smollm2.yaml") == [
        (goal, "recipes/finance-smollm2.yaml") for goal in stages
    ]
    assert planned("corpus") == [("corpus", "recipes/default.yaml")]  # the other goals keep their default
