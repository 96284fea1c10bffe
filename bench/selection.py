"""Data-selection throughput on CPU: documents/s for LLM grading with a local model, for the distilled
fastText classifier, and for the base-model ETS/ETA scores.

Documents are the shared kit's earnings-call transcripts (../shared/data/corpus); the model is a
Llama with the default recipe's shape (random weights: speed does not depend on them) and the
kit's GPT-2 tokenizer. Writes bench/results/select.json; skips when the kit is absent.
"""

from __future__ import annotations

import gzip
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
KIT = ROOT.parent / "shared" / "data"
GRADED, SCORED = 96, 96  # documents per model measurement; the classifier scores the whole file


def documents() -> list:
    from datatrove.data import Document

    with gzip.open(KIT / "corpus" / "finance-transcripts.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    return [
        Document(text=r["text"], id=str(r.get("id", n)), metadata={"corpus": "domain"})
        for n, r in enumerate(rows)
    ]


def model_folder(folder: Path) -> Path:
    from transformers import GPT2TokenizerFast, LlamaConfig, LlamaForCausalLM

    tokenizer = GPT2TokenizerFast(
        str(KIT / "tokenizers" / "gpt2" / "vocab.json"), str(KIT / "tokenizers" / "gpt2" / "merges.txt")
    )
    init = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())["train"]["init"]
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **init)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def rate(n: int, start: float) -> float:
    return round(n / (time.perf_counter() - start), 2)


def main() -> None:
    if not (KIT / "corpus").is_dir():
        print(f"skipped: {KIT} is absent")
        return
    import sys

    sys.path.insert(0, str(ROOT))
    from contracts.fasttext import FastTextSettings
    from selection.config import DistillConfig
    from selection.distill import DistilledScorer, GradeDistiller
    from selection.grading import LlmGrader, TransformersGrader
    from selection.model_scores import BaseModelScorer, task_example_texts

    docs = documents()
    torch.set_num_threads(1)  # per core
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = model_folder(tmp / "model")
        grader = LlmGrader(
            str(tmp / "grades" / "grades.jsonl"),
            str(tmp / "grades" / "cache"),
            TransformersGrader(str(model), batch_size=16, max_tokens=256),
            sample=GRADED,
            max_chars=2000,
            rubric=str(ROOT / "recipes" / "rubrics" / "short.txt"),
        )
        start = time.perf_counter()
        grader.run(docs)
        grading_rate = rate(GRADED, start)
        grades = [json.loads(line) for line in (tmp / "grades" / "grades.jsonl").read_text().splitlines()]
        # the classifier: trained on the graded sample (terciles of the grades), then scoring every document
        fasttext = FastTextSettings.of(DistillConfig())  # the recipe's defaults
        GradeDistiller(
            str(tmp / "grades" / "grades.jsonl"), str(tmp / "distilled"), fasttext, labels="terciles"
        ).run(docs)
        start = time.perf_counter()
        for _ in DistilledScorer(str(tmp / "distilled" / "model.bin"), str(tmp / "scores"), 4000).run(docs):
            pass
        classifier_rate = rate(len(docs), start)
        examples = task_example_texts([ROOT / "data" / "tasks" / "gnucash-demo-examples.jsonl"])
        scorer = BaseModelScorer(
            str(model), examples, str(tmp / "model_scores"), max_tokens=256, batch_size=16
        )
        start = time.perf_counter()
        for _ in scorer.run(docs[:SCORED]):
            pass
        model_rate = rate(SCORED, start)
    result = {
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "documents": {"source": "shared/data/corpus/finance-transcripts.jsonl.gz", "count": len(docs)},
        "model": "Llama, the default recipe's shape (4 layers, hidden 128), GPT-2 tokenizer, fp32 CPU",
        "grading_local_docs_per_s": grading_rate,
        "grading_settings": "256-token prompts (short rubric, document cut to fit), batch 16",
        "graded_status": {s: sum(g["status"] == s for g in grades) for s in ("graded", "ungraded", "failed")},
        "distilled_classifier_docs_per_s": classifier_rate,
        "ets_eta_scores_docs_per_s": model_rate,
        "ets_eta_settings": "first 256 tokens per document, batch 16, one forward pass for all three scores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "select.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
