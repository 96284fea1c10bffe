"""`python -m evaluation eval RECIPE`: every model on every task, with intervals and paired differences.

`plan_eval` checks everything before any model loads (the tasks: evaluation/tasks.py), `evaluate`
scores, and `write_eval` (evaluation/report/eval_page.py) writes `out/<name>/eval/results.json` and
`report.html`; the tasks are also exported as `lm_eval_tasks/<task>.yaml`.
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
from transformers import AutoModelForCausalLM, AutoTokenizer

from contracts.layout import EXPORT_MARKER, TrainLayout
from contracts.models import ResolvedModel, resolve_model
from contracts.recipe import safe_name
from evaluation.config import EvalConfig, EvalError, RunConfig, model_label
from evaluation.costs import arm_cost, equal_compute, read_metrics, stage_order
from evaluation.generation import GreedyGenerator
from evaluation.intervals import (
    bootstrap_interval,
    paired_difference,
    paired_ratio_difference,
    ratio_interval,
)
from evaluation.metrics import score_generation
from evaluation.prompts import in_chat
from evaluation.report import write_eval
from evaluation.scoring import LoglikelihoodScorer, score_items
from evaluation.tasks import TaskRun, load_tasks, write_lm_eval_tasks

Progress = Callable[[str], None] | None
Documents = list[tuple[float, int]]  # per document: bits and UTF-8 bytes


def stage_exports(train: TrainLayout) -> dict[str, str]:
    """A training run's Hugging Face exports, in stage order: complete ones only (the marker is
    written last; an export cut short has none)."""
    stages = stage_order(read_metrics(train.metrics))
    folders = {s: train.export(safe_name(s)) for s in stages}
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
    arms = {stage: Arm(path, stage) for stage, path in stage_exports(run.layout.train).items()}
    for selection in sorted(p.name for p in run.layout.selection_runs.glob("*") if p.is_dir()):
        for stage, path in stage_exports(run.layout.train_run(selection)).items():
            label = f"{stage}-{safe_name(selection)}"
            if label in arms:
                raise EvalError(f"models {arms[label].path} and {path} would both be labelled {label!r}")
            arms[label] = Arm(path, stage, selection)
    return arms


def default_models(run: RunConfig) -> dict[str, str]:
    return {label: arm.path for label, arm in training_arms(run).items()}


def resolved(run: RunConfig, label: str, ref: str) -> ResolvedModel:
    """A reference of `eval.models` or `eval.reference_models` resolved (contracts.models): a
    model that is not there yet is an error naming its key."""
    key = f"eval.reference_models.{label}" if label in run.eval.reference_models else "eval.models"
    try:
        return resolve_model(ref, run.layout)
    except FileNotFoundError as e:
        raise EvalError(f"{key}: {e}") from None


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
            f"no models to evaluate: `eval.models` is empty and {run.layout.train.exports} has no "
            "stage exports (run `make train` first)"
        )
    for label, ref in models.items():
        model = resolved(run, label, ref)
        if model.kind != "hub" and not (Path(model.path_or_id) / "config.json").is_file():
            raise EvalError(f"model {label!r}: {model.path_or_id} is not a model folder (no config.json)")
        models[label] = model.path_or_id
    for key in ("baselines", "chat_models"):
        if unknown := [b for b in getattr(run.eval, key) if b not in models]:
            raise EvalError(f"eval.{key}: {unknown} are not among the models ({', '.join(models)})")
    return models


def pairs(labels: list[str], baselines: list[str]) -> list[tuple[str, str]]:
    """(baseline, other) for each baseline and every other model; reported as `other - baseline`."""
    return [(b, other) for b in baselines for other in labels if other != b]


def _arm_metrics(run: RunConfig, arm: Arm) -> list[dict]:
    return read_metrics(run.layout.train_run(arm.selection).metrics)


def _arms_by_model(run: RunConfig, models: dict[str, str]) -> dict[str, Arm]:
    """The run's arm behind each model label, matched by folder (so `eval.models` may name exports)."""
    by_path = {Path(arm.path).resolve(): arm for arm in training_arms(run).values()}
    return {
        label: by_path[Path(source).resolve()]
        for label, source in models.items()
        if label not in run.eval.reference_models and Path(source).resolve() in by_path
    }


def reference_cost(source: str) -> dict:
    """A reference model's training cost: its own run's, when it is a stage export with that run's
    metrics beside it (another recipe's arm); else it trained nothing here (0)."""
    export = TrainLayout.of_export(Path(source))
    rows = read_metrics(export[0].metrics) if export else []
    if export and export[1] in stage_order(rows):
        return arm_cost(rows, export[1])
    return {"tokens": 0, "seconds": 0.0, "cumulative_tokens": 0}


def model_costs(run: RunConfig, models: dict[str, str]) -> dict[str, dict | None]:
    """Per model: tokens and seconds of its own stage, and cumulative tokens (costs.arm_cost); a
    reference model's from its own run where it has one (`reference_cost`), a model the run did not
    train is unknown (null)."""
    main = read_metrics(run.layout.train.metrics)
    arms = _arms_by_model(run, models)
    out: dict[str, dict | None] = {}
    for label, source in models.items():
        if label in run.eval.reference_models:
            out[label] = reference_cost(source)
        elif arm := arms.get(label):
            own = _arm_metrics(run, arm)
            out[label] = arm_cost(own, arm.stage, main if arm.selection else None)
        else:
            out[label] = None
    return out


def equal_compute_results(run: RunConfig, models: dict[str, str]) -> dict[str, dict]:
    """Each selection model beside the full run's same stage at the selection's tokens."""
    main = read_metrics(run.layout.train.metrics)
    return {
        label: equal_compute(_arm_metrics(run, arm), main, arm.stage)
        for label, arm in _arms_by_model(run, models).items()
        if arm.selection
    }


@torch.no_grad()
def bits_per_byte(model, tokenizer, texts: list[str], prefix_ids: list[int], window: int) -> Documents:
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
    for path in sorted(run.layout.corpus_docs(corpus, "val").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            texts += [json.loads(line)["text"][:chars] for line in f]
    return [t for t in texts if t][:limit]


def bpb_summary(docs: Documents) -> dict:
    """Total bits per byte with a 95% interval over documents (ratio of sums on each resample)."""
    bits, n_bytes = zip(*docs)
    low, high = ratio_interval(bits, n_bytes)
    return {
        "bpb": round(sum(bits) / sum(n_bytes), 5),
        "ci95": [round(low, 5), round(high, 5)],
        "documents": len(docs),
        "bytes": sum(n_bytes),
    }


def perplexity_pairs(docs: dict[str, Documents], pair_list: list[tuple[str, str]]) -> dict:
    """`other - baseline` in bits per byte on the same documents and resamples (lower is better)."""
    out = {}
    for baseline, other in pair_list:
        if baseline in docs and other in docs:
            (a_bits, a_bytes), (b_bits, b_bytes) = zip(*docs[baseline]), zip(*docs[other])
            out[f"{other} - {baseline}"] = paired_ratio_difference(a_bits, a_bytes, b_bits, b_bytes)
    return out


def document_table(by_model: dict[str, Documents]) -> dict:
    """Per-document bytes (the same text for every model) and each model's bits: for re-analysis."""
    first = next(iter(by_model.values()))
    return {
        "bytes": [n for _, n in first],
        "bits": {m: [round(bits, 3) for bits, _ in d] for m, d in by_model.items()},
    }


def summarise(per_item: list[dict], metrics: tuple[str, ...]) -> dict:
    out = {}
    for metric in metrics:
        values = [r[metric] for r in per_item]
        low, high = bootstrap_interval(values)
        out[metric] = {"mean": float(np.mean(values)), "ci95": [low, high]}
    return out


class EvalPlan(NamedTuple):
    """What an evaluation scores, every part checked before any model loads: models by label, the
    (baseline, other) pairs, tasks, the items left out, and each corpus's validation texts."""

    models: dict[str, str]
    pairs: list[tuple[str, str]]
    tasks: dict[str, TaskRun]
    rejected: list[dict]
    texts: dict[str, list[str]]
    chat: dict[str, dict[str, bool]]  # task -> model label -> prompted in its chat template


def chat_prompts(cfg: EvalConfig, models: dict[str, str], tasks: dict[str, TaskRun]) -> dict:
    """Per task and model: the task's `chat` where set, else whether the model is in `chat_models`.
    Every model prompted so must have a chat template (its tokenizer is read here, before scoring)."""

    def chat(task: TaskRun, label: str) -> bool:
        return label in cfg.chat_models if task.source.chat is None else task.source.chat

    by_task = {name: {label: chat(task, label) for label in models} for name, task in tasks.items()}
    for label in {label for by_model in by_task.values() for label, on in by_model.items() if on}:
        if not AutoTokenizer.from_pretrained(models[label]).chat_template:
            raise EvalError(f"model {label!r} is prompted in its chat template, but its tokenizer has none")
    return by_task


def validation_sets(run: RunConfig) -> dict[str, list[str]]:
    """The texts scored in bits per byte, by corpus (`eval.perplexity`); corpora without any left out."""
    cfg = run.eval
    texts = {
        c: validation_texts(run, c, cfg.perplexity_max_docs, cfg.perplexity_doc_chars) for c in cfg.perplexity
    }
    return {c: t for c, t in texts.items() if t}


def plan_eval(run: RunConfig) -> EvalPlan:
    cfg = run.eval
    models = choose_models(run)
    tasks, rejected = load_tasks(run)
    pair_list = pairs(list(models), cfg.baselines or list(models)[:1])
    chat = chat_prompts(cfg, models, tasks)
    return EvalPlan(models, pair_list, tasks, rejected, validation_sets(run), chat)


class ModelScores(NamedTuple):
    """One model's results: its prefix policy, per-item scores by task, per-document bits by corpus."""

    prefix: str
    items: dict[str, list[dict]]
    documents: dict[str, Documents]


def score_task(scorer: LoglikelihoodScorer, task: TaskRun, chat: bool) -> list[dict]:
    """Per item: log-likelihood scores of each choice, or the greedy generation and its metrics."""
    template_for = task.template_for
    if chat:  # the chat template starts the sequence itself
        template_for = in_chat(template_for, scorer.tokenizer)
        scorer = LoglikelihoodScorer(scorer.model, scorer.tokenizer, scorer.batch_size, "none")
    if task.output_type == "multiple_choice":
        return score_items(scorer, task.items, template_for)
    src = task.source
    generator = GreedyGenerator(scorer.model, scorer.tokenizer, scorer.batch_size, scorer.prefix_ids)
    if src.max_new_tokens >= generator.max_length:
        raise EvalError(
            f"eval.tasks.max_new_tokens: {src.max_new_tokens} for {task.path} leaves no room for the prompt "
            f"in the model's {generator.max_length} tokens"
        )
    prompts = [template_for(item).render(item) for item in task.items]
    predictions = generator.generate(prompts, src.max_new_tokens, src.stop)
    return [
        {
            "id": item.id,
            "question": item.question,
            "gold": item.answer_text,
            "prediction": prediction,
            **score_generation(prediction, item, src.metrics, src.tolerance),
        }
        for item, prediction in zip(task.items, predictions)
    ]


def score_model(cfg: EvalConfig, label: str, source: str, plan: EvalPlan, progress: Progress) -> ModelScores:
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    scorer = LoglikelihoodScorer(model, tokenizer, cfg.batch_size, cfg.prefix)
    items = {}
    for name, task in plan.tasks.items():
        if progress:
            progress(f"{label}: {name}")
        items[name] = score_task(scorer, task, plan.chat[name][label])
    documents = corpus_bits(cfg, label, model, tokenizer, scorer.prefix_ids, plan.texts, progress)
    return ModelScores(scorer.prefix, items, documents)


def corpus_bits(
    cfg: EvalConfig, label: str, model, tokenizer, prefix_ids: list[int], texts: dict, progress: Progress
) -> dict[str, Documents]:
    """Per corpus, each validation document's bits and bytes under the model."""
    window = perplexity_window(model, cfg.perplexity_window)
    documents = {}
    for corpus, corpus_texts in texts.items():
        if progress:
            progress(f"{label}: bits per byte on {corpus}")
        documents[corpus] = bits_per_byte(model, tokenizer, corpus_texts, prefix_ids, window)
    return documents


def task_results(plan: EvalPlan, scores: dict[str, dict[str, list[dict]]]) -> dict:
    """Per task: how it was scored, n, each model's means with intervals, paired differences,
    per-item scores (the metrics' first is the headline)."""
    out = {}
    for name, by_model in scores.items():
        task = plan.tasks[name]
        out[name] = {
            "output_type": task.output_type,
            "metrics": list(task.metrics),
            "chat": plan.chat[name],
            "n": len(task.items),
            "file_items": task.file_items,
            "scores": {m: summarise(s, task.metrics) for m, s in by_model.items()},
            "paired": {
                f"{other} - {baseline}": {
                    metric: paired_difference(
                        [r[metric] for r in by_model[baseline]], [r[metric] for r in by_model[other]]
                    )
                    for metric in task.metrics
                }
                for baseline, other in plan.pairs
            },
            "items": by_model,
        }
    return out


def eval_results(run: RunConfig, plan: EvalPlan, scored: dict[str, ModelScores]) -> dict:
    """results.json: per task and per corpus, each model with intervals and the paired differences;
    then what each model cost to train."""
    scores = {name: {label: s.items[name] for label, s in scored.items()} for name in plan.tasks}
    docs = {c: {label: s.documents[c] for label, s in scored.items()} for c in plan.texts}
    intervals = {c: {m: bpb_summary(d) for m, d in by_model.items()} for c, by_model in docs.items()}
    return {
        "models": plan.models,
        "prefix": {label: s.prefix for label, s in scored.items()},
        "tasks": task_results(plan, scores),
        "perplexity_bits_per_byte": {c: {m: s["bpb"] for m, s in by.items()} for c, by in intervals.items()},
        "perplexity_intervals": intervals,
        "perplexity_paired": {c: perplexity_pairs(by_model, plan.pairs) for c, by_model in docs.items()},
        "perplexity_documents": {c: document_table(by_model) for c, by_model in docs.items()},
        "cost": model_costs(run, plan.models),
        "equal_compute": equal_compute_results(run, plan.models),
        "rejected_items": plan.rejected,
    }


def evaluate(run: RunConfig, plan: EvalPlan, progress: Progress = None) -> dict:
    """Every model of the plan on every task and corpus, one model in memory at a time."""
    scored = {
        label: score_model(run.eval, label, source, plan, progress) for label, source in plan.models.items()
    }
    return eval_results(run, plan, scored)


def run_eval(run: RunConfig, progress: Progress = None) -> dict:
    """Plan (nothing loaded yet), export the tasks for lm-evaluation-harness, score, write."""
    plan = plan_eval(run)
    write_lm_eval_tasks(plan.tasks, run.layout.lm_eval_tasks)
    results = evaluate(run, plan, progress)
    write_eval(run.layout, results)
    return results
