"""95% bootstrap intervals for a model's score and for the paired difference between two models."""

from __future__ import annotations

import numpy as np


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    """Row k: the indices of bootstrap resample k; one seed gives every model the same resamples."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _verdict(point: float, low: float, high: float) -> dict:
    """A difference and its interval; "significant" means the interval excludes 0."""
    return {"mean": float(point), "ci95": [low, high], "significant": bool(low > 0 or high < 0)}


def bootstrap_interval(
    values, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item values."""
    values = np.asarray(values, dtype=float)
    return _percentiles(values[_resamples(len(values), resamples, seed)].mean(axis=1), level)


def paired_difference(a, b, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of b - a over the same items, with its interval: "better" means the interval excludes 0."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    low, high = bootstrap_interval(diff, resamples, seed)
    return _verdict(diff.mean(), low, high)


def _ratios(num, den, rows: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return num[rows].sum(axis=1) / den[rows].sum(axis=1)


def ratio_interval(
    num, den, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of sum(num) / sum(den), resampling whole units (documents).

    A ratio of sums, not a mean of ratios: long documents weigh by their length, as in the total.
    """
    return _percentiles(_ratios(num, den, _resamples(len(num), resamples, seed)), level)


def paired_ratio_difference(num_a, den_a, num_b, den_b, resamples: int = 2000, seed: int = 0) -> dict:
    """sum(num_b)/sum(den_b) - sum(num_a)/sum(den_a) over the same units, each resample shared by both
    models (so what the documents have in common cancels), with its interval and verdict."""
    rows = _resamples(len(num_a), resamples, seed)
    diffs = _ratios(num_b, den_b, rows) - _ratios(num_a, den_a, rows)
    point = np.sum(num_b) / np.sum(den_b) - np.sum(num_a) / np.sum(den_a)
    return _verdict(point, *_percentiles(diffs, 0.95))
