"""Learning-rate schedules: linear warm-up from 0 at each stage start, then cosine, linear or WSD."""

import math


def learning_rate(
    step: int, total: int, kind: str, peak: float, final: float, warmup: int, decay_fraction: float
) -> float:
    """LR for optimizer step `step` (0-based) of a stage of `total` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if kind == "wsd":  # warm-up, stable at peak, then a linear decay over the last steps
        decay_start = total - max(1, int(total * decay_fraction))
        if step < decay_start:
            return peak
        progress = (step - decay_start) / max(1, total - 1 - decay_start)
    else:
        progress = (step - warmup) / max(1, total - 1 - warmup)
    progress = min(1.0, progress)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1 - progress
    return final + (peak - final) * shape
