"""The grid of short runs behind `make mixsweep`: one training run per domain share x token budget.

Each is a normal run of the trainer (resumable, its checkpoints under `mixsweep/runs/<run>/`), not
exported: what it leaves is `result.json`, its validation losses at the start and the end. A run
whose result was written with the same settings, corpus and starting model is not trained again.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch.distributed as dist

from contracts.layout import EXPORT_MARKER
from contracts.publish import write_atomic
from contracts.recipe import remove_under
from training.config import RunConfig
from training.data import TokenShards, blend
from training.report import read_metrics
from training.trainer import Trainer

RESULT = "result.json"


def sweep_runs(run: RunConfig) -> list[tuple[float, int, RunConfig]]:
    """(domain share, token budget, run) for every point of the recipe's grid."""
    return [
        (share, tokens, run.for_sweep(share, tokens))
        for tokens in sorted(set(run.mixsweep.tokens))
        for share in sorted(set(run.mixsweep.domain_shares))
    ]


def run_key(run: RunConfig) -> str:
    """What a result depends on: the run's settings, its corpora, and the model it starts from (a
    retrained base export is another start)."""
    settings = run.train.model_dump(mode="json", exclude={"resume", "tensorboard", "wandb"})
    corpora = {n: TokenShards(run.train_tokens(n)).digest() for n in run.train.stages[0].corpora}
    marker = Path(run.train.model or "") / EXPORT_MARKER
    start = marker.read_text() if marker.is_file() else run.train.model
    return hashlib.sha256(json.dumps([settings, corpora, start], sort_keys=True).encode()).hexdigest()[:16]


def finished(run: RunConfig, key: str) -> dict | None:
    path = run.out.root / RESULT
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("key") == key else None


def result_row(run: RunConfig, share: float, key: str, seconds: float) -> dict:
    """The run's first and last validation losses, from its metrics.jsonl, and the domain share it
    trained (the share asked for, met within one sequence: what the law is fitted on)."""
    rows = read_metrics(run.out.metrics)
    evals = [r for r in rows if "val_loss" in r]
    steps = [r for r in rows if "loss" in r]
    sequences = len(steps) * run.train.global_batch
    trained = blend({"domain": share, "replay": 1 - share}, {"domain": 0, "replay": 0}, sequences)
    return {
        "run": run.sweep_run,
        "domain_share": trained["domain"] / sequences,
        "share_asked": share,
        "tokens": steps[-1]["tokens"],
        "steps": len(steps),
        "start_loss": evals[0]["val_loss"],
        "loss": evals[-1]["val_loss"],
        "train_seconds": round(sum(r["seconds"] for r in steps), 1),
        "seconds": round(seconds, 1),
        "key": key,
    }


def run_sweep(run: RunConfig) -> list[dict]:
    """Trains every grid point not done yet (all ranks together); every point's result."""
    index, stage = run.swept_stage()
    start = run.layout.train.export(run.train.stages[index - 1].name) if index else None
    if start and not (start / EXPORT_MARKER).is_file():
        raise FileNotFoundError(
            f"the swept stage `{stage.name}` starts from {start}, which is not exported yet: run "
            "`make train` first (it trains the stages before a `mixture: auto` stage, then waits)"
        )
    results = []
    for share, _, each in sweep_runs(run):
        key = run_key(each)
        result = finished(each, key)
        if result is None:
            if dist.get_rank() == 0 and (each.out.root / RESULT).is_file():  # stale: start afresh
                remove_under(run.run_dir, each.out.root)
            dist.barrier()
            began = time.perf_counter()
            Trainer(each, export=False).train()
            if dist.get_rank() == 0:
                result = result_row(each, share, key, time.perf_counter() - began)
                write_atomic(each.out.root / RESULT, json.dumps(result, indent=2))
                remove_under(run.run_dir, each.out.checkpoints)  # the result is all a sweep keeps
            dist.barrier()
            result = finished(each, key)
        results.append(result)
    return results
