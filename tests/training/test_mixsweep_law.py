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

import numpy as np
import pytest

from training.mixsweep.law import Law, bootstrap, critical_ratio, fit_law, leave_one_out

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


def test_leave_one_out_on_noiseless_runs():
    tokens, share, domain, _ = sweep(5, 3, noise=0.0)
    predicted = leave_one_out(tokens, share, domain)
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
