"""What a finished training run shows: curves.png and the summary printed at the end of a run."""

from __future__ import annotations

import json
from pathlib import Path

from figures import new_figure, save_figure
from training.config import RunConfig


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(rows: list[dict], out: Path) -> None:
    """Training loss and per-corpus validation loss, with a dotted line where each stage starts."""
    fig, (ax_train, ax_val) = new_figure(12, 4.5, ncols=2)
    steps = [r for r in rows if "loss" in r]
    ax_train.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=1)
    ax_train.set(title="training loss", xlabel="step", ylabel="loss")
    evals = [r for r in rows if "val_loss" in r]
    for name in sorted({k for r in evals for k in r["val_loss"]}):
        points = [(r["step"], r["val_loss"][name]) for r in evals if name in r["val_loss"]]
        ax_val.plot(*zip(*points), marker=".", label=name)
    ax_val.set(title="validation loss per corpus", xlabel="step", ylabel="loss")
    ax_val.legend()
    starts = {}
    for r in rows:
        starts.setdefault(r["stage"], r["step"])
    for ax in (ax_train, ax_val):
        for stage, step in starts.items():
            ax.axvline(step, color="grey", ls=":", lw=1)
            ax.annotate(stage, (step, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8)
    save_figure(fig, out, dpi=110)


def stage_line(rows: list[dict], stage: str) -> str:
    """A stage's steps, mean speed and validation loss from its first evaluation to its last."""
    evals = [r["val_loss"] for r in rows if r["stage"] == stage and "val_loss" in r]
    losses = [r for r in rows if r["stage"] == stage and "loss" in r]
    speed = sum(r["tokens_per_s"] for r in losses) / max(1, len(losses))
    first, last = evals[0], evals[-1]
    val = ", ".join(f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in last)
    return f"  {stage}: {len(losses)} steps, {speed:,.0f} tokens/s; validation loss {val}"


def summarize(run: RunConfig) -> str:
    """Draws the run's curves.png; returns the summary to print."""
    out = run.out
    rows = read_metrics(out.metrics)
    plot_curves(rows, out.curves)
    selection = f", selection `{run.selection}`" if run.selection else ""
    lines = [f"\ntraining `{run.name}`{selection} done"]
    lines += [stage_line(rows, stage) for stage in dict.fromkeys(r["stage"] for r in rows)]
    lines += [f"  metrics: {out.metrics}", f"  curves:  {out.curves}"]
    lines.append(f"  models:  {out.exports}/<stage>/ (AutoModelForCausalLM.from_pretrained)")
    return "\n".join(lines)
