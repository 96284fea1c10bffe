"""What people read: the HTML pages of `eval` and `audit` (written beside their JSON results) and the
console summaries the entry point prints."""

from __future__ import annotations

import json
from html import escape

import numpy as np
from rich.table import Table

from contracts.layout import RunLayout
from figures import figure_html, new_figure, page_html, table_html

BUCKETS = ("clean", "partial", "dirty", "too_short")
DPI = 100


def write_eval(layout: RunLayout, results: dict) -> None:
    """`eval/results.json` (for re-analysis and the audit's clean subset) and `eval/report.html`."""
    layout.eval_results.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    layout.eval_report.write_text(render_eval_report(results))


def write_audit(layout: RunLayout, result: dict, worst: int) -> None:
    """`audit/contamination.json` and `audit/report.html` with the `worst` items' passages."""
    layout.audit_result.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    layout.audit_report.write_text(render_audit_report(result, worst))


def format_tokens(n: int) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_seconds(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 7200 else f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


def _or_none(rows: list[list]) -> list[list]:
    return rows or [["none"]]


# the evaluation page


def headline(entry: dict) -> str:
    """A task's headline metric: acc for multiple choice, the first configured for generation
    (results written before generative tasks have no `metrics`: acc)."""
    return entry.get("metrics", ["acc"])[0]


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
    return table_html([first, "models", "difference", "95% interval", "verdict"], _or_none(rows))


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


# the audit page


def _bucket_plot(tasks: dict) -> str:
    names = list(tasks)
    fig, ax = new_figure(7, 0.5 * len(names) + 1.2)
    left = np.zeros(len(names))
    for bucket, colour in zip(BUCKETS, ("#66bb6a", "#ffa726", "#ef5350", "#bdbdbd")):
        share = np.array([tasks[t][bucket] / tasks[t]["items"] for t in names])
        ax.barh(names, share, left=left, color=colour, label=bucket)
        left += share
    ax.set(xlabel="share of items", xlim=(0, 1))
    ax.legend(ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure_html(fig, DPI)


def _passage(m: dict) -> str:
    where = escape(str(m["source"] or m["doc"]))
    return (
        f'<div class="passage"><small>{where} [{m["start"]}:{m["end"]}]</small>\n'
        f"…{escape(m['before'])}<mark>{escape(m['match'])}</mark>{escape(m['after'])}…</div>"
    )


def _buckets_html(tasks: dict) -> str:
    headers = ["task", "items", "clean", "partial", "dirty", "too short"]
    headers += ["input matched", "input + answer matched", "near-duplicate", "context only"]
    rows = [
        [
            escape(t),
            s["items"],
            *(f"{s[b]} <small>({s[b] / s['items']:.0%})</small>" for b in BUCKETS),
            s["input_match"],
            s["input_label_match"],
            s["near_duplicate"],
            s["context_only"],
        ]
        for t, s in tasks.items()
    ]
    return table_html(headers, rows)


def _worst_html(items: list[dict], worst: int) -> str:
    """The items with the most of their input in the corpus, each with its longest matching passage."""
    matched = sorted(
        (r for r in items if r["matches"]), key=lambda r: (r["coverage"], r["longest_units"]), reverse=True
    )
    rows = [
        [
            f"{escape(r['id'])}<br><small>{r['bucket']}, coverage {r['coverage']:.0%}, longest "
            f"{r['longest_units']} units, {r['documents']} document(s)"
            f"{', with its answer' if r['input_label_match'] else ''}"
            f", question + answer {r['qa_coverage']:.0%}</small>",
            _passage(r["matches"][0]),
        ]
        for r in matched[:worst]
    ]
    return table_html(["item", "longest matching passage (highlighted)"], _or_none(rows))


def _near_html(items: list[dict], worst: int) -> str:
    near = sorted(
        (r for r in items if r["near_duplicates"]),
        key=lambda r: r["near_duplicates"][0]["jaccard"],
        reverse=True,
    )
    rows = [
        [
            f"{escape(r['id'])}<br><small>Jaccard {r['near_duplicates'][0]['jaccard']:.2f}, "
            f"{r['bucket']} by n-grams</small>",
            _passage(r["near_duplicates"][0]),
        ]
        for r in near[:worst]
    ]
    return table_html(["item", "resembling passage"], _or_none(rows))


def _clean_subset_html(clean_subset: dict) -> str:
    rows = [
        [
            escape(t),
            escape(m),
            s["metric"],
            f"{s['full']['mean']:.3f} <small>(n={s['full']['n']})</small>",
            f"{s['clean']['mean']:.3f} <small>[{s['clean']['ci95'][0]:.3f}, {s['clean']['ci95'][1]:.3f}] "
            f"(n={s['clean']['n']})</small>"
            if s["clean"]["n"]
            else "<small>no clean items</small>",
        ]
        for t, by_model in clean_subset.items()
        for m, s in by_model.items()
    ]
    if not rows:
        return (
            "<p><small>Run <code>make eval</code> to see each model's score on the clean subset.</small></p>"
        )
    return "<h2>Scores on the clean subset</h2>" + table_html(
        ["task", "model", "metric", "all items", "clean items"], rows
    )


def render_audit_report(result: dict, worst: int) -> str:
    method = result["method"]
    return page_html(
        "contamination audit",
        f"""<h1>Contamination audit</h1>
<p>{result["documents"]} documents ({result["bytes"] / 1e6:.1f} MB) from
<code>{escape(result["corpus"])}</code> in {result["seconds"]:.1f} s.
Text: {escape(method["normalisation"])}; matched fields: {escape(method["fields"])};
units: {escape(method["units"])}; n-grams: <code>{escape(json.dumps(method["ngrams"]))}</code>;
buckets by the share of the input covered: clean &lt; 20%, dirty &ge; 80%, and dirty too
when the question is found with its answer (however little of a long context is covered).</p>
{_buckets_html(result["tasks"])}
{_bucket_plot(result["tasks"]) if result["tasks"] else ""}
{_clean_subset_html(result["clean_subset"])}
<h2>Most contaminated items</h2>
{_worst_html(result["items"], worst)}
<h2>Near-duplicates (MinHashLSH, reported apart from n-gram matches)</h2>
<p><small>{escape(json.dumps(method["near_duplicates"]))}</small></p>
{_near_html(result["items"], worst)}""",
    )


# the console summaries


def _task_console(name: str, results: dict) -> Table:
    wide = len(results["models"]) <= 3  # with more models the intervals stay in the report
    table = Table(title=f"evaluation `{name}` (headline score{', 95% interval' if wide else ''})")
    table.add_column("task")
    for model in results["models"]:
        table.add_column(model, justify="right")
    for task, entry in results["tasks"].items():
        metric = headline(entry)
        cells = [
            f"{s[metric]['mean']:.3f}"
            + (f" [{s[metric]['ci95'][0]:.2f}, {s[metric]['ci95'][1]:.2f}]" if wide else "")
            for s in entry["scores"].values()
        ]
        table.add_row(f"{task} ({entry['n']}, {metric})", *cells)
    return table


def _models_console(results: dict) -> Table | None:
    """Per model: bits per byte with intervals and what its own training stage cost (none when
    there is neither: no validation split scored, no model trained here)."""
    bpb = results.get("perplexity_intervals", {})
    if not bpb and not any(results.get("cost", {}).values()):
        return None
    table = Table(title="bits per byte (95% interval over documents; lower is better) and training cost")
    for column in ("model", *(f"{c} bits/byte" for c in bpb), "tokens", "time"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in results["models"]:
        cells = [
            f"{by[model]['bpb']:.4f} [{by[model]['ci95'][0]:.4f}, {by[model]['ci95'][1]:.4f}]"
            if model in by
            else "-"
            for by in bpb.values()
        ]
        cost = results.get("cost", {}).get(model)
        spent = [format_tokens(cost["tokens"]), format_seconds(cost["seconds"])] if cost else ["?", "?"]
        table.add_row(model, *cells, *spent)
    return table


def _headline_pairs_console(results: dict) -> Table | None:
    """Per pair, over the tasks: how often the difference in headline score is beyond noise."""
    pairs = list(next(iter(results["tasks"].values()), {"paired": {}})["paired"])
    if not pairs:
        return None
    diffs = Table(title="paired differences in headline score over the tasks (95% interval excludes 0)")
    for col in ("models", "better", "worse", "mean difference"):
        diffs.add_column(col, justify="left" if col == "models" else "right")
    for pair in pairs:
        per_task = [entry["paired"][pair][headline(entry)] for entry in results["tasks"].values()]
        diffs.add_row(
            pair,
            str(sum(d["significant"] and d["mean"] > 0 for d in per_task)),
            str(sum(d["significant"] and d["mean"] < 0 for d in per_task)),
            f"{sum(d['mean'] for d in per_task) / len(per_task):+.3f}",
        )
    return diffs


def _difference(d: dict | None) -> str:
    if d is None:
        return "-"
    mark = " *" if d["significant"] else "  "
    return f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]{mark}"


def _bpb_pairs_console(results: dict) -> Table | None:
    paired = results.get("perplexity_paired", {})
    pairs = list(dict.fromkeys(p for by_pair in paired.values() for p in by_pair))
    if not pairs:
        return None
    table = Table(title="paired differences in bits per byte (negative: lower, better; * beyond noise)")
    table.add_column("models")
    for corpus in paired:
        table.add_column(corpus, justify="right")
    for pair in pairs:
        table.add_row(pair, *(_difference(by_pair.get(pair)) for by_pair in paired.values()))
    return table


def _equal_compute_console(results: dict) -> Table | None:
    rows = results.get("equal_compute", {})
    if not rows:
        return None
    table = Table(title="equal compute: validation loss, selection vs the full run at the same tokens")
    for column in ("model", "tokens", "selection", "full run"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model, e in rows.items():
        own, full = e["selection_val_loss"] or {}, e["full_run_val_loss_at_tokens"]
        table.add_row(
            model,
            format_tokens(e["tokens"]),
            ", ".join(f"{c} {v:.4f}" for c, v in own.items()),
            ", ".join(f"{c} {full[c]:.4f}" for c in own) if full else "full run trained fewer tokens",
        )
    return table


def eval_tables(name: str, results: dict) -> list[Table]:
    """The console summary of `eval`: scores per task, bits per byte and cost, then the pairs."""
    tables = [
        _task_console(name, results),
        _models_console(results),
        _headline_pairs_console(results),
        _bpb_pairs_console(results),
        _equal_compute_console(results),
    ]
    return [t for t in tables if t is not None]


def audit_table(name: str, result: dict) -> Table:
    """The console summary of `audit`: each task's items by bucket."""
    table = Table(
        title=f"contamination audit `{name}`: {result['documents']} documents, "
        f"{result['bytes'] / 1e6:.1f} MB in {result['seconds']:.0f} s"
    )
    columns = ("task", "items", "clean", "partial", "dirty", "short", "+answer", "near", "context only")
    for column in columns:
        table.add_column(column, justify="left" if column == "task" else "right")
    keys = ("items", "clean", "partial", "dirty", "too_short", "input_label_match", "near_duplicate")
    keys += ("context_only",)
    for task, s in result["tasks"].items():
        table.add_row(task, *(str(s[k]) for k in keys))
    return table


def clean_subset_lines(result: dict) -> list[str]:
    """Per task: each model's headline score on all items and on the clean ones."""
    return [
        f"{task}: {next(iter(by_model.values()))['metric']} all / clean "
        + ", ".join(
            f"{m} {s['full']['mean']:.3f} / "
            + (f"{s['clean']['mean']:.3f} (n={s['clean']['n']})" if s["clean"]["n"] else "-")
            for m, s in by_model.items()
        )
        for task, by_model in result["clean_subset"].items()
    ]
