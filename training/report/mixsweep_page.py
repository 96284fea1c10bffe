"""mixsweep/report.html: loss against domain share per budget, measured points and fitted curves, the
chosen share; the fitted parameters with their bootstrap intervals and each law's held-out error."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from figures import figure_html, new_figure, page_html, table_html
from training.config import auto_refusal
from training.mixsweep.law import Law


def _plot(results: list[dict], fit: dict) -> str:
    fig, axes = new_figure(12, 4.5, ncols=2)
    shares = np.linspace(0.01, 0.99, 197)  # at share 0 (and so at 1 for the other law) a term vanishes
    budgets = sorted({r["tokens"] for r in results})
    target = fit["target_tokens"]
    colours = dict(zip([*budgets, target], [f"C{i}" for i in range(len(budgets) + 1)]))
    for ax, name, corpus, share_of in (
        (axes[0], "domain", "domain", lambda s: s),
        (axes[1], "general", "replay", lambda s: 1 - s),
    ):
        law = Law(**fit[name]["params"])
        for tokens in dict.fromkeys([*budgets, target]):
            measured = [r for r in results if r["tokens"] == tokens]
            if measured:
                ax.plot(
                    [r["domain_share"] for r in measured],
                    [r["loss"][corpus] for r in measured],
                    "o",
                    color=colours[tokens],
                    label=f"{tokens:,} tokens",
                )
            ax.plot(
                shares,
                law.predict(tokens, share_of(shares)),
                "-" if measured else "--",
                color=colours[tokens],
                lw=1,
                label=None if measured else f"{tokens:,} tokens (target)",
            )
        ax.set(title=f"{name} validation loss ({corpus})", xlabel="domain share", ylabel="loss")
    limit = fit["start_general_loss"] * (1 + fit["tolerance"])
    axes[1].axhline(limit, color="grey", ls=":", lw=1, label=f"start + {fit['tolerance']:.1%}")
    if fit["critical_ratio"] is not None:
        for ax in axes:
            ax.axvline(fit["critical_ratio"], color="black", ls="--", lw=1)
        axes[1].annotate(
            f"chosen {fit['critical_ratio']:.3f}",
            (fit["critical_ratio"], 1),
            xycoords=("data", "axes fraction"),
            va="top",
            ha="right",
            fontsize=8,
        )
    for ax in axes:
        ax.legend(fontsize=8)
    return figure_html(fig)


def _params_table(fit: dict) -> str:
    rows = []
    for name in ("domain", "general"):
        entry = fit[name]
        for key, value in entry["params"].items():
            low, high = entry["intervals"].get(key, (float("nan"), float("nan")))
            rows.append([name, key, f"{value:.4g}", f"[{low:.4g}, {high:.4g}]"])
    return table_html(["law", "parameter", "fitted", "bootstrap 95% interval"], rows)


def _runs_table(results: list[dict], fit: dict) -> str:
    rows = []
    for i, r in enumerate(results):
        rows.append(
            [
                escape(r["run"]),
                f"{r['domain_share']:g}",
                f"{r['tokens']:,}",
                str(r["steps"]),
                *(
                    f"{value:.4f}"
                    for name, corpus in (("domain", "domain"), ("general", "replay"))
                    for value in (
                        r["loss"][corpus],
                        fit[name]["held_out"]["leave_one_run_out"]["predicted"][i],
                        fit[name]["held_out"]["leave_one_budget_out"]["predicted"][i],
                    )
                ),
                f"{r['train_seconds']:.0f}",
            ]
        )
    headers = [
        "run",
        "domain share",
        "tokens",
        "steps",
        "domain loss",
        "run held out",
        "budget held out",
        "general loss",
        "run held out",
        "budget held out",
    ]
    return table_html([*headers, "s"], rows)


def _interval(interval: tuple[float, float] | None) -> str:
    return f" (bootstrap 95%: [{interval[0]:.3f}, {interval[1]:.3f}])" if interval else ""


def _held_out_table(fit: dict) -> str:
    """Both laws' errors: each run left out (interpolation), then each budget left out (extrapolation
    along the budget axis at the largest one)."""
    rows = []
    for name in ("domain", "general"):
        by_run, by_budget = (fit[name]["held_out"][k] for k in ("leave_one_run_out", "leave_one_budget_out"))
        rows.append([name, "each run", *_errors(by_run)])
        for tokens, errors in by_budget["by_budget"].items():
            largest = " (the largest)" if int(tokens) == by_budget["largest_budget"] else ""
            rows.append([name, f"the {int(tokens):,}-token runs{largest}", *_errors(errors)])
    return table_html(["law", "left out", "mean abs relative error", "max abs relative error"], rows)


def _errors(entry: dict) -> list[str]:
    return [f"{entry['mean_abs_rel_error']:.2%}", f"{entry['max_abs_rel_error']:.2%}"]


def _warnings(fit: dict) -> str:
    auto = fit["auto"]
    refusal = auto_refusal(fit)
    verdict = (
        f"<b>`mixture: auto` refuses it</b>: {escape(refusal)}" if refusal else "`mixture: auto` takes it"
    )
    lines = [
        f"{verdict} (general law's error at the largest budget, fitted on the others: {auto['error']:.2%}; "
        f"tolerance {auto['tolerance']:.2%})"
    ]
    if fit["grid_warning"]:
        lines.append(f"<b>Warning</b>: {escape(fit['grid_warning']['message'])}")
    return "".join(f"<p>{line}</p>" for line in lines)


def render_report(results: list[dict], fit: dict) -> str:
    ratio, interval = fit["critical_ratio"], fit["critical_ratio_interval"]
    chosen = "none (no share keeps the general loss within tolerance)" if ratio is None else f"{ratio:.3f}"
    by_tokens = table_html(
        ["tokens", "critical domain share"],
        [
            [f"{int(t):,}", "–" if r is None else f"{r:.3f}"]
            for t, r in fit["critical_ratio_by_tokens"].items()
        ],
    )
    body = f"""<h1>Mixture sweep: stage <code>{escape(fit["stage"])}</code></h1>
<p>D-CPT law <code>L(D, r) = E + B·r^η/D^β + C/(r+ε)^γ</code> fitted (Huber loss on log loss, L-BFGS-B
from a grid of starts) to {fit["runs"]} runs; one model size, so E includes A/N^α. The domain law's r
is the domain share, the general law's the replay share.</p>
<p><b>Chosen domain share: {chosen}</b>{_interval(interval)}
at {fit["target_tokens"]:,} tokens: the largest whose predicted general loss stays within
{fit["tolerance"]:.1%} of its start ({fit["start_general_loss"]:.4f}).</p>
{_warnings(fit)}
{_plot(results, fit)}
<h2>Held-out error</h2>
<p>Each run predicted by a fit that did not see it: leaving one run out measures interpolation inside
the grid; leaving a budget's runs out, at the largest budget, extrapolation along the budget axis, which
is what predicting the target budget does.</p>{_held_out_table(fit)}
<h2>Critical share by budget</h2>{by_tokens}
<h2>Runs</h2>{_runs_table(results, fit)}
<h2>Fitted parameters</h2>{_params_table(fit)}
<p><small>bootstrap: {fit["bootstrap"]["resamples"]} resamples of runs ({fit["bootstrap"]["skipped"]}
degenerate ones skipped; {fit["bootstrap"]["no_ratio"]} admitted no share)</small></p>"""
    return page_html(f"mixture sweep: {fit['stage']}", body)


def write_report(path: Path, results: list[dict], fit: dict) -> None:
    path.write_text(render_report(results, fit))
