"""What each exported model cost to train, read from the trainer's metrics.jsonl, and the
equal-compute comparison: a selection run against the full run's own curve at the same tokens.

A metrics row is one optimizer step (`tokens`: trained since its stage began, `seconds`: the step
alone) or an evaluation at a stage's start (`tokens` 0, `val_loss` only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl; none when the file is absent (a model trained elsewhere)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_order(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["stage"] for r in rows))


def stage_cost(rows: list[dict], stage: str) -> dict:
    """Tokens and wall seconds of the stage's optimizer steps (the trainer times each step alone:
    validation, checkpointing and export time are excluded)."""
    steps = [r for r in rows if r["stage"] == stage and "seconds" in r]
    return {
        "tokens": max((r["tokens"] for r in steps), default=0),
        "seconds": round(sum(r["seconds"] for r in steps), 2),
    }


def _tokens(rows: list[dict], stages: list[str]) -> int:
    return sum(stage_cost(rows, s)["tokens"] for s in stages)


def arm_cost(own: list[dict], stage: str, main: list[dict] | None = None) -> dict:
    """The stage's own tokens and seconds (what this arm trained beyond its start point) and the
    cumulative tokens since the run began. For a selection run, `main` is the main run's metrics:
    it started from the main run's export of the stage before its first stage."""
    cost = stage_cost(own, stage)
    stages = stage_order(own)
    earlier = _tokens(own, stages[: stages.index(stage)])
    if main is not None:
        main_stages = stage_order(main)
        if stages[0] in main_stages:
            earlier += _tokens(main, main_stages[: main_stages.index(stages[0])])
    return cost | {"cumulative_tokens": earlier + cost["tokens"]}


def val_loss_curve(rows: list[dict], stage: str) -> list[tuple[int, dict]]:
    """(tokens since the stage start, val_loss) at each of the stage's evaluations; its start is 0."""
    points = [(r["tokens"], r["val_loss"]) for r in rows if r["stage"] == stage and "val_loss" in r]
    return sorted(points, key=lambda p: p[0])


def _interpolate(curve: list[tuple[int, dict]], corpus: str, tokens: int) -> float | None:
    points = [(t, losses[corpus]) for t, losses in curve if corpus in losses]
    if not points or points[-1][0] < tokens:
        return None
    xs, ys = zip(*points)
    return round(float(np.interp(tokens, xs, ys)), 5)


def equal_compute(own: list[dict], main: list[dict], stage: str) -> dict:
    """A selection run's final validation loss beside the full run's on the same stage after as many
    tokens (linear between the full run's evaluations); null where the full run trained fewer."""
    tokens = stage_cost(own, stage)["tokens"]
    own_curve = val_loss_curve(own, stage)
    final = own_curve[-1][1] if own_curve else {}
    main_curve = val_loss_curve(main, stage)
    at = {c: _interpolate(main_curve, c, tokens) for c in final}
    return {
        "tokens": tokens,
        "selection_val_loss": final or None,
        "full_run_val_loss_at_tokens": at if at and None not in at.values() else None,
    }
