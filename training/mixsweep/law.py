"""The D-CPT law (Que et al. 2024) fitted Chinchilla's way, and the critical mixture ratio (Gu et al.
2024) it implies.

The full law is `L(N, D, r) = E + A/N^α + B·r^η/D^β + C/(r+ε)^γ`. A sweep trains one model size N, so
A/N^α is a constant that cannot be told apart from E: we fit `L(D, r) = E + B·r^η/D^β + C/(r+ε)^γ`
and E absorbs A/N^α. D is training tokens; r is the share of the training mixture whose validation
loss is modelled (the domain share for the domain loss, the general share for the general loss).
"""

from dataclasses import asdict, dataclass
from itertools import product

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

HUBER_DELTA = 1e-3  # Chinchilla's: below it residuals count squared, above it linearly (outliers)
STARTS_REFINED = 4  # grid points refined by L-BFGS-B; on the recovery test 3 always found the best


@dataclass(frozen=True)
class Law:
    """Fitted parameters of `L(D, r) = E + B·r^η/D^β + C/(r+ε)^γ`, all positive."""

    E: float
    B: float
    beta: float
    eta: float
    C: float
    gamma: float
    eps: float

    def predict(self, tokens, share) -> np.ndarray:
        """Loss after `tokens` training tokens at mixture share `share` (broadcast together)."""
        d, r = np.asarray(tokens, float), np.asarray(share, float)
        return self.E + self.B * r**self.eta / d**self.beta + self.C / (r + self.eps) ** self.gamma

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def _x(self, log_d_ref: float) -> np.ndarray:
        """The point of the optimiser's space: logs of the scales, exponents as they are, and B as
        B/D_ref^β, the D term's size at a budget inside the sweep, so that its bound and starting
        points are in units of the loss rather than of D^β at D = 1."""
        log_b_ref = np.log(self.B) - self.beta * log_d_ref
        return np.array(
            [np.log(self.E), log_b_ref, self.beta, self.eta, np.log(self.C), self.gamma, np.log(self.eps)]
        )

    @classmethod
    def _from_x(cls, x: np.ndarray, log_d_ref: float) -> "Law":
        log_e, log_b_ref, beta, eta, log_c, gamma, log_eps = (float(v) for v in x)
        b = float(np.exp(log_b_ref + beta * log_d_ref))
        return cls(float(np.exp(log_e)), b, beta, eta, float(np.exp(log_c)), gamma, float(np.exp(log_eps)))


def _bounds(loss: np.ndarray) -> list[tuple[float, float]]:
    """Box of the optimiser's space: E, and the D and r terms at the reference budget and share 1, are
    below the largest loss; exponents stay where language-model losses have them, so a few points
    cannot send them to infinity."""
    top = float(np.log(loss.max()))
    return [
        (np.log(1e-3), top),
        (-30.0, top),
        (1e-3, 2.0),
        (1e-3, 3.0),
        (-30.0, top),
        (1e-3, 3.0),
        (np.log(1e-4), 0.0),
    ]


def _log_predict(x: np.ndarray, log_d: np.ndarray, r: np.ndarray):
    """log L̂ and its Jacobian in x, for one point x (7,) or a stack of them (S, 7); `log_d` is
    measured from the reference budget."""
    log_e, log_b_ref, beta, eta, log_c, gamma, log_eps = (x[..., k, None] for k in range(7))
    positive = r > 0
    log_r = np.log(np.where(positive, r, 1.0))
    eps = np.exp(log_eps)
    log_r_eps = np.log(r + eps)
    terms = np.broadcast_arrays(
        log_e,
        np.where(positive, log_b_ref + eta * log_r - beta * log_d, -np.inf),  # r^η = 0 at r = 0
        log_c - gamma * log_r_eps,
    )
    log_l = np.logaddexp(np.logaddexp(terms[0], terms[1]), terms[2])
    w0, w1, w2 = (np.exp(t - log_l) for t in terms)  # each term's share of L̂
    jac = np.stack([w0, w1, -log_d * w1, log_r * w1, w2, -log_r_eps * w2, -gamma * eps / (r + eps) * w2], -1)
    return log_l, jac


def _objective(x: np.ndarray, log_d: np.ndarray, r: np.ndarray, log_loss: np.ndarray):
    """Huber loss of log L̂ − log L in units of δ², so L-BFGS-B's tolerances (relative to max(|f|, 1))
    do not stop it early on objectives that are tiny in absolute terms."""
    log_l, jac = _log_predict(x, log_d, r)
    residual = log_l - log_loss
    value = huber(HUBER_DELTA, residual).sum(-1) / HUBER_DELTA**2
    slope = np.clip(residual, -HUBER_DELTA, HUBER_DELTA)[..., None]
    grad = (slope * jac).sum(-2) / HUBER_DELTA**2  # elementwise: BLAS threads cost more than 15 runs
    return value, grad


def _grid(share: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Starting points: E a fraction of the lowest loss, the rest split between the two terms at the
    median loss, reference budget and median share, over a few exponents each."""
    low, mid = loss.min(), np.median(loss)
    r_mid = np.median(share[share > 0]) if (share > 0).any() else 0.5
    starts = []
    for e_frac, split, beta, eta, gamma, eps in product(
        (0.2, 0.5, 0.8), (0.2, 0.5, 0.8), (0.1, 0.3, 0.6), (0.1, 0.5, 1.0), (0.1, 0.5, 1.0), (1e-3, 0.1)
    ):
        rest = mid - e_frac * low
        b_ref = split * rest / r_mid**eta
        c = (1 - split) * rest * (r_mid + eps) ** gamma
        starts.append(Law(e_frac * low, b_ref, beta, eta, c, gamma, eps)._x(0.0))
    lower, upper = np.array(_bounds(loss)).T
    return np.clip(np.array(starts), lower, upper)


def fit_law(tokens, share, loss, start: Law | None = None) -> Law:
    """Fit the law to runs (one value per run in each argument). Chinchilla's method: Huber loss on
    log L̂ − log L minimised by L-BFGS-B from the best points of a grid, keeping the best result.
    With `start` (a fit of nearly the same runs, as in the bootstrap) only that point is refined.
    Raises ValueError when no start gives a finite fit."""
    d, r, y = (np.asarray(v, float) for v in (tokens, share, loss))
    log_d_ref = float(np.median(np.log(d)))
    args = (np.log(d) - log_d_ref, r, np.log(y))
    bounds = _bounds(y)
    if start is None:
        grid = _grid(r, y)
        values = _objective(grid, *args)[0]
        starts = grid[np.argsort(np.where(np.isfinite(values), values, np.inf))[:STARTS_REFINED]]
    else:
        lower, upper = np.array(bounds).T
        starts = np.clip(start._x(log_d_ref), lower, upper)[None]
    best = None
    for x0 in starts:
        result = minimize(
            _objective, x0, args=args, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-10, "gtol": 1e-7},  # tighter changed no recovered number
        )  # fmt: skip
        if (
            np.isfinite(result.fun)
            and np.isfinite(result.x).all()
            and (best is None or result.fun < best.fun)
        ):
            best = result
    if best is None:
        raise ValueError("no start gave a finite fit")
    return Law._from_x(best.x, log_d_ref)


def held_out_predictions(tokens, share, loss, groups) -> np.ndarray:
    """Each run's loss predicted by a fit of the runs outside its group (`groups`: one label per run)."""
    d, r, y, g = (np.asarray(v, float) for v in (tokens, share, loss, groups))
    predicted = np.empty_like(y)
    for label in np.unique(g):
        out = g == label
        predicted[out] = fit_law(d[~out], r[~out], y[~out]).predict(d[out], r[out])
    return predicted


def leave_one_run_out(tokens, share, loss) -> np.ndarray:
    """Each run predicted by a fit of all the others: the error of interpolating inside the grid."""
    return held_out_predictions(tokens, share, loss, np.arange(len(loss)))


def leave_one_budget_out(tokens, share, loss) -> np.ndarray:
    """Each run predicted by a fit of the runs at the other budgets: at the largest budget, the error of
    extrapolating along the budget axis, which is what predicting a target budget past the grid does."""
    return held_out_predictions(tokens, share, loss, tokens)


def critical_ratio(
    general: Law,
    start_loss: float,
    tolerance: float,
    tokens: float,
    between: tuple[float, float] = (0.0, 1.0),
) -> float | None:
    """The critical mixture ratio: the largest domain share s (on a 1001-point grid of `between`,
    the swept shares' range: the law is not trusted beyond it) whose predicted general loss after
    `tokens`, at general share 1 − s, stays within `tolerance` of the starting general loss, relative:
    L ≤ start_loss·(1 + tolerance). "Stays": the end of the first stretch of such shares going up,
    so that a fit's dip near general share 0, where no sweep measures, does not pass for a ratio.
    None when no share qualifies."""
    shares = np.linspace(*between, 1001)
    within = general.predict(tokens, 1.0 - shares) <= start_loss * (1 + tolerance)
    if not within.any():
        return None
    first = int(np.argmax(within))
    over = np.flatnonzero(~within[first:])
    return float(shares[first + over[0] - 1]) if over.size else float(shares[-1])


@dataclass(frozen=True)
class Bootstrap:
    """Percentile intervals (2.5, 97.5) over resamples of runs, for both laws and the critical ratio.

    `skipped` resamples covered fewer than two budgets or two shares, or had no finite fit; they are
    left out. `no_ratio` resamples admitted no domain share; the ratio's interval is over the others,
    and is None when none had one."""

    domain: dict[str, tuple[float, float]]
    general: dict[str, tuple[float, float]]
    critical_ratio: tuple[float, float] | None
    resamples: int
    skipped: int
    no_ratio: int


def bootstrap(
    tokens, domain_share, domain_loss, general_loss, *, start_loss: float, tolerance: float,
    target_tokens: float, n: int = 200, seed: int = 0, fits: tuple[Law, Law] | None = None,
    between: tuple[float, float] = (0.0, 1.0),
) -> Bootstrap:  # fmt: skip
    """Resample runs with replacement `n` times; refit the domain law (r = domain share) and the
    general law (r = 1 − domain share) of the same resample, each refined from the full fit (`fits`,
    (domain, general), fitted here when not given), and take the critical ratio of its general law
    (see `critical_ratio`), so the ratio's interval carries both the data's and the fit's spread."""
    d, s, y_dom, y_gen = (np.asarray(v, float) for v in (tokens, domain_share, domain_loss, general_loss))
    domain_fit, general_fit = fits or (fit_law(d, s, y_dom), fit_law(d, 1 - s, y_gen))
    rng = np.random.default_rng(seed)
    laws, ratios, skipped = [], [], 0
    for _ in range(n):
        i = rng.integers(0, len(d), len(d))
        if len(np.unique(d[i])) < 2 or len(np.unique(s[i])) < 2:
            skipped += 1
            continue
        try:
            pair = (
                fit_law(d[i], s[i], y_dom[i], start=domain_fit),
                fit_law(d[i], 1 - s[i], y_gen[i], start=general_fit),
            )
        except ValueError:
            skipped += 1
            continue
        laws.append(pair)
        ratios.append(critical_ratio(pair[1], start_loss, tolerance, target_tokens, between))
    if not laws:
        raise ValueError("no resample could be fitted")

    def intervals(values: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
        return {
            k: tuple(float(v) for v in np.percentile([p[k] for p in values], [2.5, 97.5])) for k in values[0]
        }

    found = [x for x in ratios if x is not None]
    return Bootstrap(
        domain=intervals([dom.as_dict() for dom, _ in laws]),
        general=intervals([gen.as_dict() for _, gen in laws]),
        critical_ratio=tuple(float(v) for v in np.percentile(found, [2.5, 97.5])) if found else None,
        resamples=len(laws),
        skipped=skipped,
        no_ratio=len(ratios) - len(found),
    )
