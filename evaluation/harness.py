"""`python -m evaluation eval RECIPE`: every model on every task, with intervals and paired differences.

Writes `out/<name>/eval/results.json`, `report.html` and `lm_eval_tasks/<task>.yaml`.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from contracts.items import McItem, Template, language_template, load_items
from contracts.recipe import UnsafePathError, path_under, safe_name
from evaluation.config import EvalError, RunConfig, model_label
from evaluation.costs import arm_cost, equal_compute, read_metrics, stage_order
from evaluation.intervals import (
    bootstrap_interval,
    paired_difference,
    paired_ratio_difference,
    ratio_interval,
)
from evaluation.scoring import LoglikelihoodScorer, score_items

METRICS = ("acc", "acc_norm", "acc_bytes")
EXPORT_MARKER = "export.json"  # the trainer writes it last into hf/<stage>/ (training/checkpoint.py)


def stage_exports(train_dir: Path) -> dict[str, str]:
    """A training run's Hugging Face exports, in stage order: complete ones only (the marker is
    written last; an export cut short has none)."""
    stages = stage_order(read_metrics(train_dir / "metrics.jsonl"))
    folders = {s: train_dir / "hf" / safe_name(s) for s in stages}
    return {s: str(folder) for s, folder in folders.items() if (folder / EXPORT_MARKER).is_file()}


@dataclass(frozen=True)
class Arm:
    """One exported model of the training run: its folder, stage and (for a selection run) selection."""

    path: str
    stage: str
    selection: str | None = None


def training_arms(run: RunConfig) -> dict[str, Arm]:
    """The training run's stage exports (the first is the baseline), then each data selection's
    (`<stage>-<selection>`: the same stage trained on the selection)."""
    train = run.run_dir / "train"
    arms = {stage: Arm(path, stage) for stage, path in stage_exports(train).items()}
    for selection in sorted(p for p in (train / "selections").glob("*") if p.is_dir()):
        for stage, path in stage_exports(selection).items():
            label = f"{stage}-{safe_name(selection.name)}"
            if label in arms:
                raise EvalError(f"models {arms[label].path} and {path} would both be labelled {label!r}")
            arms[label] = Arm(path, stage, selection.name)
    return arms


def default_models(run: RunConfig) -> dict[str, str]:
    return {label: arm.path for label, arm in training_arms(run).items()}


def choose_models(run: RunConfig) -> dict[str, str]:
    """Label -> hub id or folder: the reference models first, then `eval.models` or the run's exports.

    Everything about the models is checked here, before any is loaded (labels are unique and
    baselines known: at config time where `eval.models` names them).
    """
    own = {model_label(m): m for m in run.eval.models} or default_models(run)
    if clash := sorted(set(own) & set(run.eval.reference_models)):
        raise EvalError(f"eval.reference_models: {clash} are also labels of the run's models")
    models = dict(run.eval.reference_models) | own
    if not models:
        raise FileNotFoundError(
            f"no models to evaluate: `eval.models` is empty and {run.run_dir / 'train' / 'hf'} has no "
            "stage exports (run `make train` first)"
        )
    for label, source in models.items():
        looks_local = source.startswith((".", "/")) or Path(source).exists()  # else a hub id
        if looks_local and not (Path(source) / "config.json").is_file():
            raise EvalError(f"model {label!r}: {source} is not a model folder (no config.json)")
    if unknown := [b for b in run.eval.baselines if b not in models]:
        raise EvalError(f"eval.baselines: {unknown} are not among the models ({', '.join(models)})")
    return models


def pairs(labels: list[str], baselines: list[str]) -> list[tuple[str, str]]:
    """(baseline, other) for each baseline and every other model; reported as `other - baseline`."""
    return [(b, other) for b in baselines for other in labels if other != b]


def _arm_metrics(run: RunConfig, arm: Arm) -> list[dict]:
    train = run.run_dir / "train"
    return read_metrics((train / "selections" / arm.selection if arm.selection else train) / "metrics.jsonl")


def _arms_by_model(run: RunConfig, models: dict[str, str]) -> dict[str, Arm]:
    """The run's arm behind each model label, matched by folder (so `eval.models` may name exports)."""
    by_path = {Path(arm.path).resolve(): arm for arm in training_arms(run).values()}
    return {
        label: by_path[Path(source).resolve()]
        for label, source in models.items()
        if label not in run.eval.reference_models and Path(source).resolve() in by_path
    }


def model_costs(run: RunConfig, models: dict[str, str]) -> dict[str, dict | None]:
    """Per model: tokens and seconds of its own stage, and cumulative tokens (costs.arm_cost); a
    reference model trained nothing here (0), a model the run did not train is unknown (null)."""
    main = read_metrics(run.run_dir / "train" / "metrics.jsonl")
    arms = _arms_by_model(run, models)
    out: dict[str, dict | None] = {}
    for label in models:
        if label in run.eval.reference_models:
            out[label] = {"tokens": 0, "seconds": 0.0, "cumulative_tokens": 0}
        elif arm := arms.get(label):
            own = _arm_metrics(run, arm)
            out[label] = arm_cost(own, arm.stage, main if arm.selection else None)
        else:
            out[label] = None
    return out


def equal_compute_results(run: RunConfig, models: dict[str, str]) -> dict[str, dict]:
    """Each selection model beside the full run's same stage at the selection's tokens."""
    main = read_metrics(run.run_dir / "train" / "metrics.jsonl")
    return {
        label: equal_compute(_arm_metrics(run, arm), main, arm.stage)
        for label, arm in _arms_by_model(run, models).items()
        if arm.selection
    }


def sample_items(items: list[McItem], n: int | None, seed: int) -> list[McItem]:
    """N items drawn with the seed, in file order: every model is scored on the same ones."""
    if n is None or n >= len(items):
        return items
    chosen = np.random.default_rng(seed).choice(len(items), size=n, replace=False)
    return [items[i] for i in sorted(chosen)]


def fewshot_templates(items: list[McItem], pool: list[McItem], shots: int, seed: int) -> dict[str, Template]:
    """One template per item, prefixed with `shots` solved examples drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    out = {}
    for item in items:
        base = language_template(item)
        examples = [p for p in pool if p.id != item.id]
        chosen = [
            examples[i] for i in rng.choice(len(examples), size=min(shots, len(examples)), replace=False)
        ]
        solved = "".join(
            (base.render(e) + base.delimiter + e.choices[e.answer]).replace("{", "{{").replace("}", "}}")
            + "\n\n"
            for e in chosen
        )
        out[item.id] = Template(solved + base.prompt, base.delimiter)
    return out


@torch.no_grad()
def bits_per_byte(
    model, tokenizer, texts: list[str], prefix_ids: list[int], window: int
) -> list[tuple[float, int]]:
    """Per document: negative log-likelihood in bits and UTF-8 bytes. Their sums' ratio is bits per
    byte, comparable across tokenizers; per document, it can be resampled for intervals."""
    out = []
    for text in texts:
        ids = prefix_ids + tokenizer(text, add_special_tokens=False)["input_ids"]
        nll = 0.0
        for start in range(1, len(ids), window):
            chunk = torch.tensor([ids[start - 1 : start + window]])
            logits = model(input_ids=chunk[:, :-1]).logits.double()
            nll += torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item()
        out.append((nll / math.log(2), len(text.encode())))
    return out


def perplexity_window(model, configured: int | None) -> int:
    """Tokens per forward: `eval.perplexity_window`, else the model's context, at most 2048."""
    return configured or min(getattr(model.config, "max_position_embeddings", None) or 2048, 2048)


def validation_texts(run: RunConfig, corpus: str, limit: int, chars: int | None = None) -> list[str]:
    """The first `limit` non-empty validation documents, each cut to `chars` characters: the same text
    for every model, and a bounded time on long filings."""
    texts = []
    for path in sorted((run.run_dir / "corpus" / "docs" / corpus / "val").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            texts += [json.loads(line)["text"][:chars] for line in f]
    return [t for t in texts if t][:limit]


def bpb_summary(docs: list[tuple[float, int]]) -> dict:
    """Total bits per byte with a 95% interval over documents (ratio of sums on each resample)."""
    bits, n_bytes = zip(*docs)
    low, high = ratio_interval(bits, n_bytes)
    return {
        "bpb": round(sum(bits) / sum(n_bytes), 5),
        "ci95": [round(low, 5), round(high, 5)],
        "documents": len(docs),
        "bytes": sum(n_bytes),
    }


def perplexity_pairs(docs: dict[str, list[tuple[float, int]]], pair_list: list[tuple[str, str]]) -> dict:
    """`other - baseline` in bits per byte on the same documents and resamples (lower is better)."""
    out = {}
    for baseline, other in pair_list:
        if baseline in docs and other in docs:
            (a_bits, a_bytes), (b_bits, b_bytes) = zip(*docs[baseline]), zip(*docs[other])
            out[f"{other} - {baseline}"] = paired_ratio_difference(a_bits, a_bytes, b_bits, b_bytes)
    return out


def document_table(by_model: dict[str, list[tuple[float, int]]]) -> dict:
    """Per-document bytes (the same text for every model) and each model's bits: for re-analysis."""
    first = next(iter(by_model.values()))
    return {
        "bytes": [n for _, n in first],
        "bits": {m: [round(bits, 3) for bits, _ in d] for m, d in by_model.items()},
    }


def summarise(per_item: list[dict]) -> dict:
    out = {}
    for metric in METRICS:
        values = [r[metric] for r in per_item]
        low, high = bootstrap_interval(values)
        out[metric] = {"mean": float(np.mean(values)), "ci95": [low, high]}
    return out


def lm_eval_yaml(task: str, path: Path, template: Template) -> str:
    """The same task for lm-evaluation-harness (`dataset_path: json` with local data_files)."""
    prompt = template.prompt.replace("{context}", "{{context + '\\n' if context else ''}}")
    prompt = prompt.replace("{question}", "{{question}}")
    spec = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(path.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": prompt,
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{answer}}",
        "target_delimiter": template.delimiter,
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}, {"metric": "acc_bytes"}],
    }
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


class TaskRun(NamedTuple):
    """A task as scored: its file, its (sampled) items, each item's template, and how many items
    the file has (those with a usable task name)."""

    path: Path
    items: list[McItem]
    template_for: Callable[[McItem], Template]
    file_items: int


def load_tasks(run: RunConfig) -> tuple[dict[str, TaskRun], list[dict]]:
    """Each task file's items (a seeded sample where `sample` is set) and templates, and the items
    left out because their `task` cannot be a file name (each with its file and reason).

    A task's name names its lm-evaluation-harness YAML, so two files with one task are an error.
    """
    tasks: dict[str, TaskRun] = {}
    rejected = []
    for src, path in run.task_files():
        every = []
        for item in load_items(path):
            try:
                safe_name(item.task)
            except UnsafePathError as e:
                rejected.append({"file": str(path), "id": item.id, "reason": f"task {e}"})
                continue
            every.append(item)
        if not every:
            continue
        items = sample_items(every, src.sample, run.eval.seed)
        name = items[0].task
        if name in tasks:
            raise EvalError(f"task {name!r} is in two files: {tasks[name].path} and {path}")
        template_for = language_template
        if src.shots:
            shot_templates = fewshot_templates(items, load_items(Path(src.fewshot)), src.shots, run.eval.seed)
            template_for = lambda item, t=shot_templates: t[item.id]  # noqa: E731
        tasks[name] = TaskRun(path, items, template_for, len(every))
    return tasks, rejected


def write_lm_eval_tasks(tasks: dict[str, TaskRun], folder: Path) -> None:
    """The lm-evaluation-harness YAML of each task (it reads the whole file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, task in tasks.items():
        path_under(folder, f"{name}.yaml").write_text(
            lm_eval_yaml(name, task.path, language_template(task.items[0]))
        )


def task_results(tasks: dict[str, TaskRun], scores: dict[str, dict[str, list[dict]]], pair_list) -> dict:
    """Per task: n, each model's means with intervals, paired differences, per-item scores."""
    out = {}
    for name, by_model in scores.items():
        out[name] = {
            "n": len(tasks[name].items),
            "file_items": tasks[name].file_items,
            "scores": {m: summarise(s) for m, s in by_model.items()},
            "paired": {
                f"{other} - {baseline}": {
                    metric: paired_difference(
                        [r[metric] for r in by_model[baseline]], [r[metric] for r in by_model[other]]
                    )
                    for metric in METRICS
                }
                for baseline, other in pair_list
            },
            "items": by_model,
        }
    return out


def run_eval(run: RunConfig, progress=None) -> dict:
    cfg = run.eval
    out = run.run_dir / "eval"
    models = choose_models(run)
    pair_list = pairs(list(models), cfg.baselines or list(models)[:1])
    tasks, rejected = load_tasks(run)
    texts = {
        c: validation_texts(run, c, cfg.perplexity_max_docs, cfg.perplexity_doc_chars) for c in cfg.perplexity
    }
    write_lm_eval_tasks(tasks, out / "lm_eval_tasks")
    prefix: dict[str, str] = {}
    scores: dict[str, dict[str, list[dict]]] = {}
    docs: dict[str, dict[str, list[tuple[float, int]]]] = {c: {} for c, t in texts.items() if t}
    for label, source in models.items():
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
        scorer = LoglikelihoodScorer(model, tokenizer, cfg.batch_size, cfg.prefix)
        prefix[label] = scorer.prefix
        for name, task in tasks.items():
            if progress:
                progress(f"{label}: {name}")
            scores.setdefault(name, {})[label] = score_items(scorer, task.items, task.template_for)
        window = perplexity_window(model, cfg.perplexity_window)
        for corpus in docs:
            if progress:
                progress(f"{label}: bits per byte on {corpus}")
            docs[corpus][label] = bits_per_byte(model, tokenizer, texts[corpus], scorer.prefix_ids, window)
    intervals = {c: {m: bpb_summary(d) for m, d in by_model.items()} for c, by_model in docs.items()}
    results: dict = {
        "models": models,
        "prefix": prefix,
        "tasks": task_results(tasks, scores, pair_list),
        "perplexity_bits_per_byte": {c: {m: s["bpb"] for m, s in by.items()} for c, by in intervals.items()},
        "perplexity_intervals": intervals,
        "perplexity_paired": {c: perplexity_pairs(by_model, pair_list) for c, by_model in docs.items()},
        "perplexity_documents": {c: document_table(by_model) for c, by_model in docs.items()},
        "cost": model_costs(run, models),
        "equal_compute": equal_compute_results(run, models),
        "rejected_items": rejected,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    from evaluation.report import render_eval_report

    (out / "report.html").write_text(render_eval_report(results))
    return results
