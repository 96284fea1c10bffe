"""The end-of-run picture: training loss and per-corpus validation loss, stage by stage."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(metrics: Path, out: Path) -> None:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(12, 4.5))
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
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
