"""The Makefile as users type it: a line that names a goal twice runs every goal, in order."""

import shutil
import subprocess

import pytest
from conftest import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_goal_named_twice_runs_twice_in_order():
    # -n prints the commands without running them; `-m training RECIPE` is `make train`
    result = subprocess.run(
        ["make", "-n", "model", "train", "select", "train", "eval", "RECIPE=recipes/finance-smollm2.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    order = [
        goal
        for line in result.stdout.splitlines()
        for goal, marker in (
            ("model", "-m training model"),
            ("train", "-m training recipes/"),
            ("select", "-m curation select"),
            ("eval", "-m evaluation eval"),
        )
        if marker in line
    ]
    assert order == ["model", "train", "select", "train", "eval"], result.stdout
