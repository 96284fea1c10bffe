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
from training.config import RunConfig, auto_refusal
from training.mixsweep.law import (
    Law,
    bootstrap,
    critical_ratio,
    fit_law,
    leave_one_budget_out,
    leave_one_run_out,
)
from training.report import write_report


def errors(loss: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = np.abs(predicted - loss) / loss
    return {"mean_abs_rel_error": float(error.mean()), "max_abs_rel_error": float(error.max())}


def held_out(tokens, share, loss) -> dict:
    """Relative errors of predictions by fits that did not see the run. Leaving one run out measures
    interpolation inside the grid; leaving one budget out, at the largest budget, extrapolation along
    the budget axis (what predicting `target_tokens` does)."""
    by_run = leave_one_run_out(tokens, share, loss)
    by_budget = leave_one_budget_out(tokens, share, loss)
    return {
        "leave_one_run_out": errors(loss, by_run) | {"predicted": [round(float(p), 5) for p in by_run]},
        "leave_one_budget_out": {
            "by_budget": {
                str(int(t)): errors(loss[tokens == t], by_budget[tokens == t]) for t in np.unique(tokens)
            },
            "largest_budget": int(tokens.max()),
            "predicted": [round(float(p), 5) for p in by_budget],
        },
    }


def law_entry(law: Law, intervals: dict, tokens, share, loss) -> dict:
    fitted = law.predict(tokens, share)
    return {
        "params": law.as_dict(),
        "intervals": intervals,
        "residuals": [round(float(r), 5) for r in loss - fitted],
        "held_out": held_out(tokens, share, loss),
    }


def auto_entry(chosen: float | None, general: dict, tolerance: float) -> dict:
    """What `mixture: auto` checks: the general law's worst error predicting the largest budget's runs
    from the other budgets (the closest stand-in for its error at `target_tokens`) against tolerance."""
    by_budget = general["held_out"]["leave_one_budget_out"]
    largest = by_budget["largest_budget"]
    return {
        "domain_share": chosen,
        "error": by_budget["by_budget"][str(largest)]["max_abs_rel_error"],
        "error_is": f"general law, max abs relative error at {largest:,} tokens fitted on the other budgets",
        "tolerance": tolerance,
    }


def grid_warning(chosen: float | None, between: tuple[float, float], asked: list[float]) -> dict | None:
    """None when the chosen share lies inside the swept shares (`between`); else the edge it is censored
    by, and the recipe's `domain_shares` (`asked`) with shares added beyond that edge."""
    low, high = between
    if chosen is not None and low < chosen < high:
        return None
    if chosen == high:
        edge, top = "largest", max(asked)
        added = [top + (1 - top) * k / 4 for k in (1, 2, 3)]
        why = (
            f"every swept share up to the largest ({high:.3f}) qualifies, so the critical share may be higher"
        )
    else:
        edge, bottom = ("smallest" if chosen == low else "none"), min(asked)
        added = [bottom * k / 4 for k in (1, 2, 3)]
        why = (
            f"only the smallest swept share ({low:.3f}) qualifies, so the critical share may be lower"
            if edge == "smallest"
            else "no swept share qualifies"
        )
    suggested = sorted({*asked, *(round(s, 3) for s in added)})
    return {
        "edge": edge,
        "suggested_domain_shares": suggested,
        "message": f"the chosen share is censored by the grid, not chosen: {why}. To bracket the crossover, "
        f"sweep `mixsweep: {{domain_shares: {suggested}}}` (or a finer grid around the edge); finished runs "
        "are not trained again",
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
    entries = (
        law_entry(laws[0], spread.domain, tokens, share, domain),
        law_entry(laws[1], spread.general, tokens, 1 - share, general),
    )
    return {
        "stage": run.swept_stage()[1].name,
        "runs": len(results),
        "note": "one model size: E includes A/N^alpha",
        "domain": entries[0],
        "general": entries[1],
        "bootstrap": {"resamples": spread.resamples, "skipped": spread.skipped, "no_ratio": spread.no_ratio},
        "start_general_loss": start,
        "tolerance": cfg.tolerance,
        "target_tokens": target,
        "shares_swept": list(between),
        "critical_ratio": chosen,
        "grid_warning": grid_warning(chosen, between, cfg.domain_shares),
        "critical_ratio_interval": spread.critical_ratio,
        "critical_ratio_by_tokens": {
            str(int(t)): critical_ratio(laws[1], start, cfg.tolerance, t, between) for t in budgets
        },
        "mixture": None if chosen is None else mixture(chosen),
        "auto": auto_entry(chosen, entries[1], cfg.tolerance),
    }


def mixture(share: float) -> dict[str, float]:
    """The stage mixture for a domain share, rounded down to 0.001 so that it stays within tolerance
    (the trainer meets any share over a stage, within one sequence)."""
    domain = math.floor(share * 1000 + 1e-6) / 1000
    return {"domain": domain, "replay": round(1 - domain, 3)}


def snippet(run: RunConfig, fit: dict) -> str:
    """The recipe lines that fix the chosen mixture, after comments saying why `mixture: auto` would
    not take it or that the grid censors it."""
    head = f"# make mixsweep ({run.layout.mixsweep_fit}): "
    edge = (fit["grid_warning"] or {}).get("message")
    if fit["mixture"] is None:
        why = f"no domain share keeps the general loss within {fit['tolerance']:.1%} of its start"
        return "".join(f"{line}\n" for line in (head + why, edge and f"# {edge}") if line)
    cautions = "".join(f"# {line}\n" for line in (auto_refusal(fit), edge) if line)
    return (
        head + f"the largest domain share keeping the general loss within {fit['tolerance']:.1%} of its "
        f"start after {fit['target_tokens']:,} tokens\n{cautions}"
        f"train:\n  stages:\n    - name: {fit['stage']}\n      mixture: {json.dumps(fit['mixture'])}\n"
    )


def summary(run: RunConfig, fit: dict) -> str:
    """What `make mixsweep` prints: both laws' held-out errors, the choice, and its warnings."""
    layout, ratio, interval = run.layout, fit["critical_ratio"], fit["critical_ratio_interval"]
    lines = [f"\nmixture sweep `{run.name}` ({fit['runs']} runs of stage `{fit['stage']}`) fitted"]
    for name in ("domain", "general"):
        by_run, by_budget = (
            fit[name]["held_out"]["leave_one_run_out"],
            fit[name]["held_out"]["leave_one_budget_out"],
        )
        largest = by_budget["by_budget"][str(by_budget["largest_budget"])]
        lines.append(
            f"  {name} law: held-out error, leave one run out: mean {by_run['mean_abs_rel_error']:.2%}, max "
            f"{by_run['max_abs_rel_error']:.2%}; leave the largest budget ({by_budget['largest_budget']:,} "
            f"tokens) out: mean {largest['mean_abs_rel_error']:.2%}, max {largest['max_abs_rel_error']:.2%}"
        )
    lines.append(
        f"  critical domain share at {fit['target_tokens']:,} tokens (general loss within "
        f"{fit['tolerance']:.1%} of {fit['start_general_loss']:.3f}): "
        + ("none" if ratio is None else f"{ratio:.3f}")
        + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
    )
    if fit["grid_warning"]:
        lines.append(f"  WARNING: {fit['grid_warning']['message']}")
    refusal = auto_refusal(fit)
    lines += [
        f"  mixture: {fit['mixture']}  (`mixture: auto` reads {layout.mixsweep_fit}; snippet: "
        f"{layout.mixsweep_snippet})",
        *([f"  WARNING: `mixture: auto` will refuse it: {refusal}"] if refusal and fit["mixture"] else []),
        f"  report:  {layout.mixsweep_report}",
    ]
    return "\n".join(lines)


def write_mixsweep(run: RunConfig, results: list[dict]) -> str:
    """runs.jsonl, fit.json, mixture.yaml and report.html; returns the summary to print."""
    layout = run.layout
    write_atomic(layout.mixsweep_runs, "".join(json.dumps(r) + "\n" for r in results))
    fit = fit_sweep(run, results)
    write_atomic(layout.mixsweep_fit, json.dumps(fit, indent=2))
    write_atomic(layout.mixsweep_snippet, snippet(run, fit))
    write_report(layout.mixsweep_report, results, fit)
    return summary(run, fit)
