"""What `make mixsweep` concludes from its runs: both laws fitted, their held-out error, the critical
ratio at the target budget, and the chosen mixture (fit.json, which `mixture: auto` reads).

The domain law models the domain validation loss against the domain share; the general law the
replay validation loss against the replay share. The chosen domain share is the largest whose
predicted general loss at `target_tokens` stays within `tolerance` (relative) of its value at the
start: Gu et al.'s critical mixture ratio, read off the fitted D-CPT law.
"""

from __future__ import annotations

import json
import math

import numpy as np

from contracts.publish import write_atomic
from training.config import RunConfig
from training.mixsweep.law import Law, bootstrap, critical_ratio, fit_law, leave_one_out
from training.report import write_report


def held_out(tokens, share, loss) -> dict:
    """Leave-one-out: each run predicted by the fit of the others (relative error)."""
    predicted = leave_one_out(tokens, share, loss)
    error = np.abs(predicted - loss) / loss
    return {
        "mean_abs_rel_error": float(error.mean()),
        "max_abs_rel_error": float(error.max()),
        "predicted": [round(float(p), 5) for p in predicted],
    }


def law_entry(law: Law, intervals: dict, tokens, share, loss) -> dict:
    fitted = law.predict(tokens, share)
    return {
        "params": law.as_dict(),
        "intervals": intervals,
        "residuals": [round(float(r), 5) for r in loss - fitted],
        "held_out": held_out(tokens, share, loss),
    }


def target_tokens(run: RunConfig) -> int:
    """The budget the mixture is chosen for: the recipe's, else the swept stage's length."""
    _, stage = run.swept_stage()
    per_step = run.train.global_batch * run.train.seq_len
    return run.mixsweep.target_tokens or stage.length(run.train.global_batch, run.train.seq_len) * per_step


def fit_sweep(run: RunConfig, results: list[dict]) -> dict:
    """fit.json's content for the runs' results."""
    cfg = run.mixsweep
    tokens = np.array([r["tokens"] for r in results], float)
    share = np.array([r["domain_share"] for r in results], float)
    domain = np.array([r["loss"]["domain"] for r in results], float)
    general = np.array([r["loss"]["replay"] for r in results], float)
    start = float(np.mean([r["start_loss"]["replay"] for r in results]))
    target = target_tokens(run)
    laws = fit_law(tokens, share, domain), fit_law(tokens, 1 - share, general)
    between = float(share.min()), float(share.max())  # the law is not trusted beyond the swept shares
    spread = bootstrap(
        tokens,
        share,
        domain,
        general,
        start_loss=start,
        tolerance=cfg.tolerance,
        target_tokens=target,
        n=cfg.bootstrap,
        fits=laws,
        between=between,
    )
    chosen = critical_ratio(laws[1], start, cfg.tolerance, target, between)
    budgets = sorted({*tokens.tolist(), float(target)})
    return {
        "stage": run.swept_stage()[1].name,
        "runs": len(results),
        "note": "one model size: E includes A/N^alpha",
        "domain": law_entry(laws[0], spread.domain, tokens, share, domain),
        "general": law_entry(laws[1], spread.general, tokens, 1 - share, general),
        "bootstrap": {"resamples": spread.resamples, "skipped": spread.skipped, "no_ratio": spread.no_ratio},
        "start_general_loss": start,
        "tolerance": cfg.tolerance,
        "target_tokens": target,
        "shares_swept": list(between),
        "critical_ratio": chosen,
        "at_largest_share": chosen == between[1],  # every swept share qualifies: the true ratio may be higher
        "critical_ratio_interval": spread.critical_ratio,
        "critical_ratio_by_tokens": {
            str(int(t)): critical_ratio(laws[1], start, cfg.tolerance, t, between) for t in budgets
        },
        "mixture": None if chosen is None else mixture(chosen),
    }


def mixture(share: float) -> dict[str, float]:
    """The stage mixture for a domain share, rounded down to 0.001 so that it stays within tolerance
    (the trainer meets any share over a stage, within one sequence)."""
    domain = math.floor(share * 1000 + 1e-6) / 1000
    return {"domain": domain, "replay": round(1 - domain, 3)}


def snippet(run: RunConfig, fit: dict) -> str:
    """The recipe lines that fix the chosen mixture (what `mixture: auto` reads from fit.json)."""
    head = f"# make mixsweep ({run.layout.mixsweep_fit}): "
    if fit["mixture"] is None:
        return head + f"no domain share keeps the general loss within {fit['tolerance']:.1%} of its start\n"
    return (
        head + f"the largest domain share keeping the general loss within {fit['tolerance']:.1%} of its "
        f"start after {fit['target_tokens']:,} tokens\ntrain:\n  stages:\n    - name: {fit['stage']}\n"
        f"      mixture: {json.dumps(fit['mixture'])}\n"
    )


def write_mixsweep(run: RunConfig, results: list[dict]) -> str:
    """runs.jsonl, fit.json, mixture.yaml and report.html; returns the summary to print."""
    layout = run.layout
    write_atomic(layout.mixsweep_runs, "".join(json.dumps(r) + "\n" for r in results))
    fit = fit_sweep(run, results)
    write_atomic(layout.mixsweep_fit, json.dumps(fit, indent=2))
    write_atomic(layout.mixsweep_snippet, snippet(run, fit))
    write_report(layout.mixsweep_report, results, fit)
    ratio = fit["critical_ratio"]
    interval = fit["critical_ratio_interval"]
    lines = [
        f"\nmixture sweep `{run.name}` ({len(results)} runs of stage `{fit['stage']}`) fitted",
        *(
            f"  {name} law: held-out error mean {fit[name]['held_out']['mean_abs_rel_error']:.2%}, "
            f"max {fit[name]['held_out']['max_abs_rel_error']:.2%} (leave one run out)"
            for name in ("domain", "general")
        ),
        f"  critical domain share at {fit['target_tokens']:,} tokens (general loss within "
        f"{fit['tolerance']:.1%} of {fit['start_general_loss']:.3f}): "
        + ("none" if ratio is None else f"{ratio:.3f}")
        + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
        + (" (the largest share swept: every one qualifies)" if fit["at_largest_share"] else ""),
        f"  mixture: {fit['mixture']}  (`mixture: auto` reads {layout.mixsweep_fit}; snippet: "
        f"{layout.mixsweep_snippet})",
        f"  report:  {layout.mixsweep_report}",
    ]
    return "\n".join(lines)
