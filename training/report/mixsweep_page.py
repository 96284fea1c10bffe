"""mixsweep/report.html: loss against domain share per budget, measured points and fitted curves, the
chosen share; the fitted parameters with their bootstrap intervals and each law's held-out error."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from figures import figure_html, new_figure, page_html, table_html
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
                f"{r['loss']['domain']:.4f}",
                f"{fit['domain']['held_out']['predicted'][i]:.4f}",
                f"{r['loss']['replay']:.4f}",
                f"{fit['general']['held_out']['predicted'][i]:.4f}",
                f"{r['train_seconds']:.0f}",
            ]
        )
    headers = [
        "run",
        "domain share",
        "tokens",
        "steps",
        "domain loss",
        "held out",
        "general loss",
        "held out",
    ]
    return table_html([*headers, "s"], rows)


def _interval(interval: tuple[float, float] | None) -> str:
    return f" (bootstrap 95%: [{interval[0]:.3f}, {interval[1]:.3f}])" if interval else ""


def _edge(fit: dict) -> str:
    if not fit["at_largest_share"]:
        return ""
    return " — the largest share swept: every swept share qualifies, so the ratio may be higher"


def render_report(results: list[dict], fit: dict) -> str:
    ratio, interval = fit["critical_ratio"], fit["critical_ratio_interval"]
    chosen = "none (no share keeps the general loss within tolerance)" if ratio is None else f"{ratio:.3f}"
    held_out = "; ".join(
        f"{name}: mean {fit[name]['held_out']['mean_abs_rel_error']:.2%}, "
        f"max {fit[name]['held_out']['max_abs_rel_error']:.2%}"
        for name in ("domain", "general")
    )
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
<p><b>Chosen domain share: {chosen}</b>{_interval(interval)}{_edge(fit)}
at {fit["target_tokens"]:,} tokens: the largest whose predicted general loss stays within
{fit["tolerance"]:.1%} of its start ({fit["start_general_loss"]:.4f}).<br>
Held-out error (each run predicted by a fit of the others): {held_out}.</p>
{_plot(results, fit)}
<h2>Critical share by budget</h2>{by_tokens}
<h2>Runs</h2>{_runs_table(results, fit)}
<h2>Fitted parameters</h2>{_params_table(fit)}
<p><small>bootstrap: {fit["bootstrap"]["resamples"]} resamples of runs ({fit["bootstrap"]["skipped"]}
degenerate ones skipped; {fit["bootstrap"]["no_ratio"]} admitted no share)</small></p>"""
    return page_html(f"mixture sweep: {fit['stage']}", body)


def write_report(path: Path, results: list[dict], fit: dict) -> None:
    path.write_text(render_report(results, fit))
