"""`python -m evaluation eval RECIPE`: every model on every task, with intervals and paired differences.

Writes `out/<name>/eval/results.json`, `report.html` and `lm_eval_tasks/<task>.yaml`.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from evaluation.config import RunConfig
from evaluation.intervals import bootstrap_interval, paired_difference
from evaluation.scoring import LoglikelihoodScorer, score_items
from evaluation.tasks import McItem, Template, language_template, load_items

METRICS = ("acc", "acc_norm", "acc_bytes")


def stage_exports(train_dir: Path) -> dict[str, str]:
    """A training run's Hugging Face exports, in stage order."""
    metrics = train_dir / "metrics.jsonl"
    stages = []
    if metrics.is_file():
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        stages = list(dict.fromkeys(r["stage"] for r in rows))
    return {s: str(train_dir / "hf" / s) for s in stages if (train_dir / "hf" / s / "config.json").is_file()}


def default_models(run: RunConfig) -> dict[str, str]:
    """The training run's stage exports (the first is the baseline), then each data selection's
    (`<stage>-<selection>`: the same stage trained on the selection)."""
    train = run.run_dir / "train"
    models = stage_exports(train)
    for selection in sorted(p for p in (train / "selections").glob("*") if p.is_dir()):
        models |= {f"{stage}-{selection.name}": path for stage, path in stage_exports(selection).items()}
    return models


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
def bits_per_byte(model, tokenizer, texts: list[str], prefix_ids: list[int], window: int) -> float:
    """Total negative log-likelihood in bits over total UTF-8 bytes: comparable across tokenizers."""
    nll, n_bytes = 0.0, 0
    for text in texts:
        ids = prefix_ids + tokenizer(text, add_special_tokens=False)["input_ids"]
        for start in range(1, len(ids), window):
            chunk = torch.tensor([ids[start - 1 : start + window]])
            logits = model(input_ids=chunk[:, :-1]).logits.double()
            nll += torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item()
        n_bytes += len(text.encode())
    return nll / math.log(2) / max(1, n_bytes)


def validation_texts(run: RunConfig, corpus: str, limit: int) -> list[str]:
    texts = []
    for path in sorted((run.run_dir / "corpus" / "docs" / corpus / "val").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts[:limit]


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


def run_eval(run: RunConfig, progress=None) -> dict:
    cfg = run.eval
    out = run.run_dir / "eval"
    (out / "lm_eval_tasks").mkdir(parents=True, exist_ok=True)
    models = {Path(m).name: m for m in cfg.models} or default_models(run)
    if not models:
        raise FileNotFoundError(
            f"no models to evaluate: `eval.models` is empty and {run.run_dir / 'train' / 'hf'} has no "
            "stage exports (run `make train` first)"
        )
    tasks: dict[str, tuple[list[McItem], Callable[[McItem], Template]]] = {}
    for src, path in run.task_files():
        items = load_items(path)
        name = items[0].task
        template_for = language_template
        if src.shots:
            shot_templates = fewshot_templates(items, load_items(Path(src.fewshot)), src.shots, cfg.seed)
            template_for = lambda item, t=shot_templates: t[item.id]  # noqa: E731
        tasks[name] = (items, template_for)
        (out / "lm_eval_tasks" / f"{name}.yaml").write_text(
            lm_eval_yaml(name, path, language_template(items[0]))
        )
    results: dict = {"models": models, "prefix": {}, "tasks": {}, "perplexity_bits_per_byte": {}}
    per_item_scores: dict[str, dict[str, list[dict]]] = {}
    for label, source in models.items():
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
        scorer = LoglikelihoodScorer(model, tokenizer, cfg.batch_size, cfg.prefix)
        results["prefix"][label] = scorer.prefix
        for name, (items, template_for) in tasks.items():
            if progress:
                progress(f"{label}: {name}")
            per_item_scores.setdefault(name, {})[label] = score_items(scorer, items, template_for)
        window = getattr(model.config, "max_position_embeddings", 1024)
        for corpus in cfg.perplexity:
            texts = validation_texts(run, corpus, cfg.perplexity_max_docs)
            if texts:
                if progress:
                    progress(f"{label}: bits per byte on {corpus}")
                bpb = bits_per_byte(model, tokenizer, texts, scorer.prefix_ids, window)
                results["perplexity_bits_per_byte"].setdefault(corpus, {})[label] = round(bpb, 5)
    labels = list(models)
    if unknown := [b for b in cfg.baselines if b not in models]:
        raise ValueError(f"eval.baselines: {unknown} are not among the models ({', '.join(labels)})")
    baselines = cfg.baselines or labels[:1]
    for name, by_model in per_item_scores.items():
        entry = {
            "n": len(tasks[name][0]),
            "scores": {m: summarise(s) for m, s in by_model.items()},
            "paired": {},
        }
        for baseline in baselines:
            for other in (label for label in labels if label != baseline):
                entry["paired"][f"{other} - {baseline}"] = {
                    metric: paired_difference(
                        [r[metric] for r in by_model[baseline]], [r[metric] for r in by_model[other]]
                    )
                    for metric in METRICS
                }
        entry["items"] = {m: s for m, s in by_model.items()}
        results["tasks"][name] = entry
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    from evaluation.report import render_eval_report

    (out / "report.html").write_text(render_eval_report(results))
    return results
