"""95% bootstrap intervals for a model's score and for the paired difference between two models."""

from __future__ import annotations

import numpy as np


def bootstrap_interval(
    values, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item values."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference(a, b, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of b - a over the same items, with its interval: "better" means the interval excludes 0."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    low, high = bootstrap_interval(diff, resamples, seed)
    return {"mean": float(diff.mean()), "ci95": [low, high], "significant": bool(low > 0 or high < 0)}
