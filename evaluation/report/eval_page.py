"""eval/report.html: each model's bits per byte, task scores and training cost, the paired differences
and the wrong generations (written beside eval/results.json)."""

from __future__ import annotations

import json
from html import escape

from contracts.layout import RunLayout
from contracts.publish import write_atomic
from evaluation.metrics import headline
from evaluation.report.formatting import DPI, format_seconds, format_tokens, or_none
from figures import figure_html, new_figure, page_html, table_html


def write_eval(layout: RunLayout, results: dict) -> None:
    """`eval/results.json` (for re-analysis and the audit's clean subset) and `eval/report.html`."""
    write_atomic(layout.eval_results, json.dumps(results, indent=2, ensure_ascii=False))
    write_atomic(layout.eval_report, render_eval_report(results))


def _headline_plot(results: dict) -> str:
    tasks = list(results["tasks"])
    models = list(results["models"])
    fig, ax = new_figure(max(5, 1.6 * len(tasks) * len(models)), 3.8)
    width = 0.8 / max(1, len(models))
    for k, model in enumerate(models):
        scores = [entry["scores"][model][headline(entry)] for entry in map(results["tasks"].get, tasks)]
        means = [a["mean"] for a in scores]
        lows = [m - a["ci95"][0] for a, m in zip(scores, means)]
        highs = [a["ci95"][1] - m for a, m in zip(scores, means)]
        xs = [i + k * width for i in range(len(tasks))]
        ax.bar(xs, means, width, yerr=[lows, highs], capsize=3, label=model)
    ticks = [f"{t}\n{headline(results['tasks'][t])}" for t in tasks]
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(tasks))], ticks, rotation=20)
    ax.set(ylabel="score (95% bootstrap interval)", ylim=(0, 1))
    ax.legend()
    return figure_html(fig, DPI)


def _tradeoff_plot(results: dict) -> str:
    """Domain against general (replay) bits per byte: down and left is better on both."""
    domain, replay = (results["perplexity_intervals"][c] for c in ("domain", "replay"))
    fig, ax = new_figure(6, 4.5)
    for model in (m for m in results["models"] if m in domain and m in replay):
        x, y = replay[model], domain[model]
        xerr = [[x["bpb"] - x["ci95"][0]], [x["ci95"][1] - x["bpb"]]]
        yerr = [[y["bpb"] - y["ci95"][0]], [y["ci95"][1] - y["bpb"]]]
        ax.errorbar(x["bpb"], y["bpb"], xerr=xerr, yerr=yerr, fmt="o", capsize=3, elinewidth=1, label=model)
        ax.annotate(model, (x["bpb"], y["bpb"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set(xlabel="replay (general) bits per byte", ylabel="domain bits per byte")
    ax.legend(fontsize=8)
    ax.set_title("lower is better on both axes (95% intervals over documents)", fontsize=9)
    return figure_html(fig, DPI)


def _ci(interval: list[float], digits: int = 3) -> str:
    return f"<small>[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]</small>"


def _score(s: dict) -> str:
    return f"{s['mean']:.3f} {_ci(s['ci95'])}"


def _verdict(d: dict, lower_is_better: bool = False) -> str:
    if not d["significant"]:
        return "within noise"
    better = (d["mean"] < 0) if lower_is_better else (d["mean"] > 0)
    return "<b>better beyond noise</b>" if better else "<b>worse beyond noise</b>"


def _cost_cells(cost: dict | None) -> list[str]:
    if cost is None:
        return ["?", "?"]
    return [
        f"{format_tokens(cost['tokens'])} <small>({format_tokens(cost['cumulative_tokens'])} in all)</small>",
        format_seconds(cost["seconds"]),
    ]


def _models_html(results: dict) -> str:
    """One row per model: bits per byte per corpus, each task's headline score, its training cost."""
    bpb = results.get("perplexity_intervals", {})
    tasks = results["tasks"]
    headers = [
        "model",
        *(f"{c} bits/byte" for c in bpb),
        *(f"{t} {headline(e)} (n={e['n']})" for t, e in tasks.items()),
        "tokens trained (own stage)",
        "training time",
    ]
    rows = [
        [
            escape(model),
            *(
                f"{by[model]['bpb']:.4f} {_ci(by[model]['ci95'], 4)}" if model in by else "-"
                for by in bpb.values()
            ),
            *(_score(e["scores"][model][headline(e)]) for e in tasks.values()),
            *_cost_cells(results.get("cost", {}).get(model)),
        ]
        for model in results["models"]
    ]
    return table_html(headers, rows)


def _pairs_html(first: str, pairs: list[tuple[str, str, dict]], digits: int, lower_is_better: bool) -> str:
    """Paired differences, one row each: (group, pair, {mean, ci95, significant})."""
    rows = [
        [
            escape(group),
            escape(pair),
            f"{d['mean']:+.{digits}f}",
            f"[{d['ci95'][0]:+.{digits}f}, {d['ci95'][1]:+.{digits}f}]",
            _verdict(d, lower_is_better),
        ]
        for group, pair, d in pairs
    ]
    return table_html([first, "models", "difference", "95% interval", "verdict"], or_none(rows))


def _bpb_pairs_html(results: dict) -> str:
    pairs = [
        (corpus, pair, d)
        for corpus, by_pair in results.get("perplexity_paired", {}).items()
        for pair, d in by_pair.items()
    ]
    return _pairs_html("corpus", pairs, 4, lower_is_better=True)


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _equal_compute_html(results: dict) -> str:
    rows = []
    for model, e in results.get("equal_compute", {}).items():
        own, full = e["selection_val_loss"] or {}, e["full_run_val_loss_at_tokens"]
        losses = (
            "<br>".join(f"{escape(c)}: {_loss(v)} vs {_loss(full[c])}" for c, v in own.items())
            if full
            else "the full run trained fewer tokens on this stage: no comparison"
        )
        rows.append([escape(model), format_tokens(e["tokens"]), losses])
    headers = ["selection model", "tokens", "validation loss: selection vs full run at the same tokens"]
    return table_html(headers, rows)


def _task_scores_html(results: dict) -> str:
    """One table per set of metrics (multiple choice, each kind of generative task)."""
    groups: dict[tuple[str, ...], list[list]] = {}
    for task, entry in results["tasks"].items():
        for model, scores in entry["scores"].items():
            chat = " <small>(chat)</small>" if entry["chat"][model] else ""
            row = [escape(task), entry["n"], escape(model) + chat, *map(_score, scores.values())]
            groups.setdefault(tuple(entry["metrics"]), []).append(row)
    return "".join(table_html(["task", "items", "model", *metrics], rows) for metrics, rows in groups.items())


def _headline_pairs_html(results: dict) -> str:
    pairs = [
        (f"{task} ({headline(entry)})", pair, m[headline(entry)])
        for task, entry in results["tasks"].items()
        for pair, m in entry["paired"].items()
    ]
    return _pairs_html("task", pairs, 3, lower_is_better=False)


def _generated(text: str) -> str:
    return f"<code>{escape(text)}</code>" if text.strip() else "<small>(empty)</small>"


def _wrong_generations_html(results: dict, shown: int = 5) -> str:
    """Per generative task and model, the first items whose headline metric is not 1."""
    rows = [
        [
            f"{escape(task)}<br><small>{escape(model)}</small>",
            f"{escape(r['id'])}<br><small>{escape(r['question'][:300])}</small>",
            escape(r["gold"]),
            _generated(r["prediction"]),
            ", ".join(f"{m} {r[m]:.2f}" for m in entry["metrics"]),
        ]
        for task, entry in results["tasks"].items()
        if entry["output_type"] == "generate"
        for model, per_item in entry["items"].items()
        for r in [r for r in per_item if r[headline(entry)] < 1][:shown]
    ]
    if not rows:
        return ""
    return "<h2>Wrong generations (first five per task and model)</h2>" + table_html(
        ["task, model", "item", "gold", "generated", "scores"], rows
    )


def render_eval_report(results: dict) -> str:
    has_both = {"domain", "replay"} <= set(results.get("perplexity_intervals", {}))
    equal = (
        "<h2>Equal compute: validation loss after the same tokens (lower is better)</h2>"
        "<p>Each selection run's final validation loss beside the full run's on the same stage after as "
        "many tokens (linear between its evaluations).</p>" + _equal_compute_html(results)
        if results.get("equal_compute")
        else ""
    )
    return page_html(
        "evaluation",
        f"""<h1>Evaluation</h1>
<p>Multiple choice by log-likelihood; generative tasks by greedy decoding (scored by exact match,
TAT-QA's numeracy-aware F1, numeric match or ROUGE-L); 95% bootstrap intervals over items.
Bits per byte on the validation splits: lower is better, fair across tokenizers; 95% intervals
resample documents (ratio of summed bits to summed bytes). Tokens and time: the model's own training
stage from the trainer's metrics (optimizer steps only, validation excluded);
reference models trained nothing here. Prefix policy per model:
{escape(str(results["prefix"]))}.</p>
{_models_html(results)}
{_tradeoff_plot(results) if has_both else ""}
<h2>Paired differences in bits per byte (same documents; lower is better)</h2>
{_bpb_pairs_html(results)}
{equal}
<h2>Scores per task</h2>
{_task_scores_html(results)}
<h2>Paired differences (headline score, same items)</h2>
{_headline_pairs_html(results)}
{_headline_plot(results) if results["tasks"] else ""}
{_wrong_generations_html(results)}""",
    )
