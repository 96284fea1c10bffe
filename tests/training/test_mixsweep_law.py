"""The D-CPT fitter recovers known laws from a sweep's worth of noisy runs.

The truth is two laws (below) with losses of 2.8-4.4, sampled like a small sweep: 1e4 to 1e6
training tokens, domain shares 0.1 to 0.9, 0.3% lognormal noise. Every tolerance is set above the
worst error measured over 100 noise seeds (not only the seed used here), quoted beside it.

What such a sweep identifies: the D term (β, η and its size at the median budget, B/D_ref^β) and
every prediction inside the sweep. It does not identify E, C, γ and ε one by one: with D's effect
taken out they are four parameters of one curve in r measured at a handful of shares, and over the
100 seeds fits put E up to 26% and ε up to a factor of 7 away from the truth while predicting as well.
B at D = 1 follows β's error times log D_ref (about 11.5), so it is not asserted either.
"""

import json

import numpy as np
import pytest

from training.config import RunConfig
from training.mixsweep.fit import grid_warning, write_mixsweep
from training.mixsweep.law import Law, bootstrap, critical_ratio, fit_law, leave_one_run_out

DOMAIN = Law(E=2.0, B=20.0, beta=0.3, eta=0.2, C=0.5, gamma=0.6, eps=0.05)  # r = domain share
GENERAL = Law(E=2.4, B=12.0, beta=0.25, eta=0.3, C=0.1, gamma=0.8, eps=0.02)  # r = general share
START_LOSS, TOLERANCE = 2.9, 0.02  # the general loss before CPT, and the rise allowed (relative)
TOP, BEYOND = 1e6, 1e7  # the sweep's largest budget, and a target budget 10x past it
NOISE = 0.003


def sweep(shares: int, budgets: int, noise: float = NOISE, seed: int = 0):
    """tokens, domain share, domain loss, general loss of a shares x budgets grid of runs."""
    tokens, share = (
        a.ravel() for a in np.meshgrid(np.geomspace(1e4, TOP, budgets), np.linspace(0.1, 0.9, shares))
    )
    rng = np.random.default_rng(seed)
    domain = DOMAIN.predict(tokens, share) * np.exp(rng.normal(0, noise, tokens.size))
    general = GENERAL.predict(tokens, 1 - share) * np.exp(rng.normal(0, noise, tokens.size))
    return tokens, share, domain, general


def relative_error(fit: Law, truth: Law, tokens, share) -> float:
    return float(np.abs(fit.predict(tokens, share) / truth.predict(tokens, share) - 1).max())


# off-grid points inside the sweep: 7 budgets x 17 shares
DENSE_TOKENS, DENSE_SHARE = (
    a.ravel() for a in np.meshgrid(np.geomspace(1e4, TOP, 7), np.linspace(0.1, 0.9, 17))
)


@pytest.fixture(scope="module")
def user_sweep():
    """5 shares x 3 budgets, the grid a user would run, and its two fits."""
    tokens, share, domain, general = sweep(5, 3)
    return tokens, share, domain, general, fit_law(tokens, share, domain), fit_law(tokens, 1 - share, general)


def test_predictions_held_in_and_held_out(user_sweep):
    tokens, share, _, _, domain_fit, general_fit = user_sweep
    for fit, truth, held_in, dense in (
        (domain_fit, DOMAIN, share, DENSE_SHARE),
        (general_fit, GENERAL, 1 - share, 1 - DENSE_SHARE),
    ):
        assert relative_error(fit, truth, tokens, held_in) < 0.015  # worst of 100 seeds: 1.1%
        assert relative_error(fit, truth, DENSE_TOKENS, dense) < 0.02  # 1.1%
        assert relative_error(fit, truth, BEYOND, dense) < 0.03  # 1.7%


def test_identifiable_parameters(user_sweep):
    tokens, *_, domain_fit, general_fit = user_sweep
    reference = np.exp(np.median(np.log(tokens)))
    for fit, truth in ((domain_fit, DOMAIN), (general_fit, GENERAL)):
        assert fit.beta == pytest.approx(truth.beta, rel=0.25)  # worst of 100 seeds: 15%
        assert fit.eta == pytest.approx(truth.eta, rel=0.3)  # 22%
        assert fit.B / reference**fit.beta == pytest.approx(truth.B / reference**truth.beta, rel=0.3)  # 21%


def test_critical_ratio_recovered(user_sweep):
    *_, general_fit = user_sweep
    for tokens, worst in ((TOP, 0.04), (BEYOND, 0.03)):  # worst absolute error of 100 seeds
        truth = critical_ratio(GENERAL, START_LOSS, TOLERANCE, tokens)
        assert 0.7 < truth < 0.9  # inside the sweep's shares, where the general loss has a slope
        assert critical_ratio(general_fit, START_LOSS, TOLERANCE, tokens) == pytest.approx(
            truth, abs=worst + 0.02
        )


def test_bootstrap_interval_contains_the_truth(user_sweep):
    tokens, share, domain, general, domain_fit, general_fit = user_sweep
    result = bootstrap(
        tokens, share, domain, general, start_loss=START_LOSS, tolerance=TOLERANCE, target_tokens=TOP,
        n=100, seed=0, fits=(domain_fit, general_fit),
    )  # fmt: skip
    assert (result.resamples, result.skipped, result.no_ratio) == (100, 0, 0)
    low, high = result.critical_ratio
    assert low <= critical_ratio(GENERAL, START_LOSS, TOLERANCE, TOP) <= high
    for intervals, truth in ((result.domain, DOMAIN), (result.general, GENERAL)):
        assert set(intervals) == set(truth.as_dict())
        for name in ("beta", "eta"):
            assert intervals[name][0] <= getattr(truth, name) <= intervals[name][1]


def test_minimum_grid():
    """4 shares x 2 budgets, the least the issue allows: 8 runs for 7 parameters. It still predicts
    its own runs and finds the critical ratio at a budget it measured (worst of 100 seeds: 0.07). Two
    budgets cannot fix β (fits run to its bounds), so it cannot interpolate between budgets (errors up
    to 14% at 1e5 tokens over the 100 seeds) nor extrapolate past them (7.5% at 10x): not asserted."""
    tokens, share, domain, general = sweep(4, 2)
    domain_fit, general_fit = fit_law(tokens, share, domain), fit_law(tokens, 1 - share, general)
    assert relative_error(domain_fit, DOMAIN, tokens, share) < 0.015  # worst of 100 seeds: 1.1%
    assert relative_error(general_fit, GENERAL, tokens, 1 - share) < 0.015  # 1.2%
    truth = critical_ratio(GENERAL, START_LOSS, TOLERANCE, TOP)
    assert critical_ratio(general_fit, START_LOSS, TOLERANCE, TOP) == pytest.approx(truth, abs=0.1)


def test_leave_one_run_out_on_noiseless_runs():
    tokens, share, domain, _ = sweep(5, 3, noise=0.0)
    predicted = leave_one_run_out(tokens, share, domain)
    assert predicted.shape == domain.shape
    np.testing.assert_allclose(predicted, domain, rtol=1e-4)  # each run from the 14 others


def test_critical_ratio_definition():
    """Against the closed form of a law without a D term: E + C/(r+ε)^γ = threshold."""
    law = Law(E=2.0, B=0.0, beta=0.3, eta=0.5, C=0.5, gamma=0.5, eps=0.01)
    threshold = 2.8 * 1.05
    general_share = (law.C / (threshold - law.E)) ** (1 / law.gamma) - law.eps
    assert critical_ratio(law, 2.8, 0.05, 1e6) == pytest.approx(1 - general_share, abs=1e-3)
    assert critical_ratio(law, 2.0, 0.05, 1e6) is None  # every share exceeds 2.1
    assert critical_ratio(law, 2.8, 10.0, 1e6) == 1.0


def test_critical_ratio_ignores_a_dip_at_general_share_zero():
    """This law's general loss is 3.0 at general share 0 but above 3.15 just beside it: s = 1 must not
    count as within a tolerance the shares below it left."""
    law = Law(E=2.0, B=1.0, beta=0.0, eta=0.2, C=0.02, gamma=1.0, eps=0.02)
    assert law.predict(1e6, 0.0) == pytest.approx(3.0)
    ratio = critical_ratio(law, 3.0, 0.0, 1e6)
    assert 0.9 < ratio < 1.0
    assert law.predict(1e6, 1 - ratio) <= 3.0 < law.predict(1e6, 1 - ratio - 0.001)


def test_degenerate_resamples_are_counted():
    """On 2 x 2 runs one resample in eight draws a single budget: skipped and counted, no crash."""
    tokens, share, domain, general = sweep(2, 2)
    result = bootstrap(
        tokens,
        share,
        domain,
        general,
        start_loss=START_LOSS,
        tolerance=TOLERANCE,
        target_tokens=TOP,
        n=30,
        seed=0,
    )
    assert result.skipped > 0
    assert result.resamples + result.skipped == 30


def test_edge_warning_fires_when_the_grid_does_not_bracket_the_crossover(user_sweep):
    """The true critical share at TOP is 0.7-0.9: shares up to 0.5 all qualify, so the choice is the
    grid's edge; shares up to 0.9 bracket it."""
    tokens, share, _, general = sweep(4, 3)
    low = share <= 0.5 + 1e-9
    short = fit_law(tokens[low], 1 - share[low], general[low])
    asked = [0.1, 0.233, 0.367, 0.5]
    chosen = critical_ratio(short, START_LOSS, TOLERANCE, TOP, (0.1, 0.5))
    warning = grid_warning(chosen, (0.1, 0.5), asked)
    assert warning["edge"] == "largest" and chosen == 0.5
    assert warning["suggested_domain_shares"] == [*asked, 0.625, 0.75, 0.875]  # between the edge and 1
    assert "domain_shares: [0.1, 0.233, 0.367, 0.5, 0.625, 0.75, 0.875]" in warning["message"]
    bracketed = critical_ratio(user_sweep[-1], START_LOSS, TOLERANCE, TOP, (0.1, 0.9))
    assert grid_warning(bracketed, (0.1, 0.9), [0.1, 0.3, 0.5, 0.7, 0.9]) is None
    assert critical_ratio(short, 2.5, TOLERANCE, TOP, (0.1, 0.5)) is None  # below every share's loss
    none = grid_warning(None, (0.1, 0.5), asked)
    assert none["edge"] == "none" and none["suggested_domain_shares"][:3] == [0.025, 0.05, 0.075]


# fit.json as `make mixsweep` writes it from synthetic runs, and what `mixture: auto` takes from it
STEEP = 200.0, 0.6  # a second, steeper D term in the general loss: the one-power-law fit is misspecified


def synthetic_fit(
    root, shares: int, budgets: int, noise: float, steep: float = 0.0
) -> tuple[RunConfig, dict]:
    """A recipe with a `mixture: auto` stage, and fit.json written for a sweep of the known laws."""
    tokens, share = (
        a.ravel() for a in np.meshgrid(np.geomspace(1e4, TOP, budgets), np.linspace(0.1, 0.9, shares))
    )
    rng = np.random.default_rng(0)
    domain = DOMAIN.predict(tokens, share) * np.exp(rng.normal(0, noise, tokens.size))
    general = GENERAL.predict(tokens, 1 - share) + steep * (1 - share) ** 0.3 / tokens ** STEEP[1]
    general *= np.exp(rng.normal(0, noise, tokens.size))
    run = RunConfig(
        name="synthetic",
        output_dir=str(root),
        train={"init": {}, "stages": [{"name": "cpt", "mixture": "auto", "steps": 10}]},
        mixsweep={
            "domain_shares": sorted({round(float(s), 3) for s in share}),
            "tokens": sorted({int(t) for t in tokens}),
            "tolerance": TOLERANCE,
            "target_tokens": int(TOP),
            "bootstrap": 3,
        },
    )
    results = [
        {
            "run": f"d{s:.3f}-t{int(t)}", "domain_share": s, "tokens": int(t), "steps": 1,
            "loss": {"domain": d, "replay": g}, "start_loss": {"replay": START_LOSS}, "train_seconds": 0,
        }
        for t, s, d, g in zip(tokens, share, domain, general)
    ]  # fmt: skip
    summary = write_mixsweep(run, results)
    return run, json.loads(run.layout.mixsweep_fit.read_text()) | {"summary": summary}


@pytest.fixture(scope="module")
def trusted(tmp_path_factory):
    """The law as generated, 4 shares x 4 budgets at 0.1% noise: the largest budget predicted well."""
    return synthetic_fit(tmp_path_factory.mktemp("trusted"), 4, 4, 0.001)


@pytest.fixture(scope="module")
def misspecified(tmp_path_factory):
    """4 shares x 3 budgets whose general loss has a second, steeper D term that fades with budget."""
    return synthetic_fit(tmp_path_factory.mktemp("misspecified"), 4, 3, NOISE, steep=STEEP[0])


def test_leave_one_budget_out_exposes_a_misspecified_budget_axis(misspecified):
    """Inside the grid the wrong law interpolates within 1.9%; the largest budget, predicted from the
    two below it, is off by 4.0-9.3%, 2.2-11x the leave-one-run-out error (worst run, 5 noise seeds)."""
    _, fit = misspecified
    held_out = fit["general"]["held_out"]
    by_run, by_budget = held_out["leave_one_run_out"], held_out["leave_one_budget_out"]
    assert by_budget["largest_budget"] == TOP and set(by_budget["by_budget"]) == {
        "10000",
        "100000",
        "1000000",
    }
    largest = by_budget["by_budget"]["1000000"]["max_abs_rel_error"]
    assert by_run["max_abs_rel_error"] < 0.02
    assert largest > 0.03 and largest > 2 * by_run["max_abs_rel_error"]
    assert fit["auto"]["error"] == largest and len(by_budget["predicted"]) == fit["runs"] == 12


def test_mixture_auto_refuses_a_law_that_misses_the_largest_budget(misspecified):
    run, fit = misspecified
    assert fit["mixture"] is not None and fit["auto"]["tolerance"] == TOLERANCE
    with pytest.raises(ValueError) as refused:
        run.with_fitted_mixture()
    message = str(refused.value)
    assert str(run.layout.mixsweep_fit) in message
    assert f"{fit['auto']['error']:.2%}" in message and f"`mixsweep.tolerance` {TOLERANCE:.2%}" in message
    assert "`mixture: auto` will refuse it" in fit["summary"]
    assert "refuses it" in run.layout.mixsweep_report.read_text()


def test_mixture_auto_takes_a_law_that_predicts_the_largest_budget(trusted):
    run, fit = trusted
    assert fit["auto"]["error"] < TOLERANCE and fit["grid_warning"] is None
    assert fit["auto"]["domain_share"] == fit["critical_ratio"]
    (stage,) = run.with_fitted_mixture().train.stages
    assert stage.mixture == fit["mixture"]
    assert (
        "WARNING" not in fit["summary"]
        and "leave the largest budget (1,000,000 tokens) out" in fit["summary"]
    )
    assert "takes it" in run.layout.mixsweep_report.read_text()


def test_mixture_auto_refuses_a_fit_json_written_before_the_check(trusted):
    run, fit = trusted
    old = {k: v for k, v in fit.items() if k not in ("auto", "summary")}
    run.layout.mixsweep_fit.write_text(json.dumps(old))
    try:
        with pytest.raises(ValueError, match="rerun `make mixsweep`"):
            run.with_fitted_mixture()
    finally:
        run.layout.mixsweep_fit.write_text(json.dumps({k: v for k, v in fit.items() if k != "summary"}))
