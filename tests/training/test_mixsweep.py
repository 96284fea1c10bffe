"""`make mixsweep` on the real test corpus: `make train` trains up to a `mixture: auto` stage and
waits; the sweep's runs start from that export; the fit chooses a mixture that the next `make train`
trains with, resuming the finished stage rather than training it again."""

import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT, free_port
from test_training import ENV, TINY, metric_rows, torchrun, train_recipe

from training.config import load_train_config

# a loose tolerance: this tests the plumbing (the fitter's accuracy: test_mixsweep_law.py)
SWEEP = {
    "stage": "cpt",
    "domain_shares": [0.25, 0.5, 0.6, 0.75],  # 0.6 of 8 sequences: met over the run, not per step
    "tokens": [1024, 2048],
    "tolerance": 0.5,
    "bootstrap": 20,
}


def auto_stages() -> list[dict]:
    main, cpt = TINY["stages"]
    return [main, cpt | {"mixture": "auto"}]


def torchrun_mixsweep(recipe, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(free_port()), "-m", "training", "mixsweep", str(recipe)]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def swept(corpus_run):
    """train (stops at cpt), mixsweep, train again: the three results and the recipe."""
    recipe = train_recipe(corpus_run, "mixsweep-auto", stages=auto_stages())
    recipe.write_text(recipe.read_text() + "mixsweep: " + json.dumps(SWEEP) + "\n")
    first = torchrun(recipe)
    sweep = torchrun_mixsweep(recipe)
    second = torchrun(recipe)
    return {"recipe": recipe, "first": first, "sweep": sweep, "second": second}


def test_train_stops_before_an_auto_stage_until_the_sweep_is_fitted(swept):
    first = swept["first"]
    assert first.returncode == 0, first.stderr[-3000:]
    assert "`mixture: auto`" in first.stderr and "make mixsweep" in first.stderr
    run = load_train_config(swept["recipe"])
    assert {r["stage"] for r in metric_rows(run.out.root) if r["step"] < 12} == {"main"}


def test_the_sweep_trains_every_point_from_the_stage_start_and_fits(swept):
    result = swept["sweep"]
    assert result.returncode == 0, result.stderr[-3000:]
    run = load_train_config(swept["recipe"])
    rows = [json.loads(line) for line in run.layout.mixsweep_runs.read_text().splitlines()]
    assert sorted((r["share_asked"], r["tokens"]) for r in rows) == sorted(
        (s, t) for s in SWEEP["domain_shares"] for t in SWEEP["tokens"]
    )
    trained = {(r["share_asked"], r["tokens"]): r["domain_share"] for r in rows}
    assert trained[0.6, 1024] == 10 / 16 and trained[0.6, 2048] == 19 / 32  # the fit's shares: as trained
    assert trained[0.75, 2048] == 0.75
    assert {r["steps"] for r in rows} == {2, 4}  # 1024 and 2048 tokens of 8 x 64-token sequences
    starts = {json.dumps(r["start_loss"], sort_keys=True) for r in rows}
    assert len(starts) == 1  # every run starts from the main stage's export, on the same text
    for r in rows:  # each trained, and keeps only its result
        assert r["loss"]["domain"] != r["start_loss"]["domain"]
        assert not (run.layout.mixsweep_run(r["run"]).checkpoints).exists()  # the result is all it keeps
    fit = json.loads(run.layout.mixsweep_fit.read_text())
    assert fit["runs"] == 8 and set(fit["domain"]["params"]) == {"E", "B", "beta", "eta", "C", "gamma", "eps"}
    held_out = fit["domain"]["held_out"]
    assert (
        len(held_out["leave_one_run_out"]["predicted"])
        == len(held_out["leave_one_budget_out"]["predicted"])
        == 8
    )
    assert set(held_out["leave_one_budget_out"]["by_budget"]) == {"1024", "2048"}
    assert fit["auto"]["error"] < fit["auto"]["tolerance"] == SWEEP["tolerance"]  # what lets auto take it
    assert 0.25 <= fit["critical_ratio"] <= 0.75 and fit["shares_swept"] == [0.25, 0.75]
    assert fit["mixture"]["domain"] == math.floor(fit["critical_ratio"] * 1000) / 1000
    assert f"mixture: {json.dumps(fit['mixture'])}" in run.layout.mixsweep_snippet.read_text()
    assert "<img" in run.layout.mixsweep_report.read_text()
    assert "critical domain share" in result.stdout


def test_the_next_train_resumes_and_trains_the_fitted_mixture(swept):
    second = swept["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    run = load_train_config(swept["recipe"])
    fit = json.loads(run.layout.mixsweep_fit.read_text())
    assert f"stage `cpt`: mixture {fit['mixture']}" in second.stdout
    assert "resuming from" in second.stdout and "main-0000012" in second.stdout  # main is not redone
    assert (run.out.export("cpt") / "export.json").is_file()
    state = json.loads(next(run.out.checkpoints.glob("cpt-*/trainer.json")).read_text())
    assert set(state["data"]) == set(fit["mixture"])  # the corpora the fitted mixture names


def test_a_finished_sweep_is_not_trained_again(swept):
    run = load_train_config(swept["recipe"])
    results = sorted(run.layout.mixsweep.glob("runs/*/result.json"))
    before = [p.stat().st_mtime for p in results]
    again = torchrun_mixsweep(swept["recipe"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage cpt" not in again.stderr  # no progress bar: nothing trained
    assert [p.stat().st_mtime for p in results] == before


def test_a_sweep_run_is_the_swept_stage_shrunk_from_its_start(corpus_run):
    recipe = train_recipe(corpus_run, "mixsweep-config", stages=auto_stages())
    recipe.write_text(recipe.read_text() + "mixsweep: " + json.dumps(SWEEP) + "\n")
    run = load_train_config(recipe)
    sweep = run.for_sweep(0.75, 1024)
    (stage,) = sweep.train.stages
    assert stage.mixture == {"domain": 0.75, "replay": 0.25}
    assert stage.length(8, 64) == 2 and stage.schedule.warmup_steps == 1  # 2 of 8 steps: warm-up 2 -> 1
    assert sweep.train.model == str(run.layout.train.export("main")) and sweep.train.init is None
    assert sweep.out.root == run.layout.mixsweep / "runs" / "d0.75-t1024"
    assert sweep.train.eval_every == 2  # validated at its end (and its start) only


@pytest.mark.parametrize(
    "section, message",
    [
        ({"stage": "nope"}, "mixsweep.stage: `nope` is not a stage"),
        ({"domain_shares": [0.5, 0.625, 0.75], "tokens": [1, 2]}, "give at least 8 runs"),
        ({"domain_shares": [0.5, 0.625, 0.75, 1.0]}, "domain_shares must lie strictly between 0 and 1"),
        (
            {"domain_shares": [0.05, 0.4, 0.6, 0.8]},
            "[0.05] give one corpus no sequence in the shortest run (16 sequences of mixsweep.tokens 1024)",
        ),
    ],
)
def test_mixsweep_section_errors_name_the_key_and_file(corpus_run, section, message):
    recipe = train_recipe(corpus_run, "mixsweep-typo")
    recipe.write_text(recipe.read_text() + "mixsweep: " + json.dumps(SWEEP | section) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "training", "mixsweep", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert str(recipe) in result.stderr and message in result.stderr
