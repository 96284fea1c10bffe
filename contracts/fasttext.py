"""fastText as every stage uses it: how a document becomes a line, how a model is trained, and how
its precision and recall are counted. The corpus classifiers and the distilled grader share these, so
a document reads the same to a model whichever stage trained it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

_SPACE = re.compile(r"\s+")
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff])")


def fasttext_line(text: str, max_chars: int) -> str:
    """One document per line, lower-cased; CJK characters become tokens (fastText splits on spaces),
    so with word bigrams the classifier sees Japanese character bigrams."""
    return _SPACE.sub(" ", _CJK.sub(r" \1 ", text[:max_chars].lower())).strip()


@dataclass(frozen=True)
class FastTextSettings:
    """How a fastText model is trained, and how much of a document it reads (`max_chars`)."""

    epochs: int
    word_ngrams: int
    hash_buckets: int
    lr: float
    max_chars: int
    seed: int

    @classmethod
    def of(cls, section) -> FastTextSettings:
        """From a recipe section with these fields (a corpus classifier, the distilled grader)."""
        return cls(*(getattr(section, f.name) for f in fields(cls)))


_TRAIN = """
import json, sys, fasttext
fasttext.train_supervised(**json.loads(sys.argv[1])).save_model(sys.argv[2])
"""


def train_fasttext(examples: list[tuple[str, str]], settings: FastTextSettings, where: str):
    """A supervised fastText model on (label, text) examples, each text cut into chunks (a few long
    documents are too few examples otherwise); returns it and the learning rate that worked.

    Trained in a fresh Python process: fastText 0.9.2 trains on memory it never initialised (under
    MALLOC_PERTURB_ its input matrix comes out near -1e16). Fresh pages are zeros, so a new process
    trains as intended; in one whose heap numpy work has churned, models came out NaN or at chance."""
    import fasttext

    chunk = max(200, settings.max_chars // 4)
    with tempfile.TemporaryDirectory() as tmp:
        data, model = Path(tmp) / "train.txt", Path(tmp) / "model.bin"
        with data.open("w") as f:
            for label, text in examples:
                for start in range(0, min(len(text), 8 * chunk), chunk):
                    if line := fasttext_line(text[start : start + chunk], chunk):
                        f.write(f"__label__{label} {line}\n")
        params = {
            "input": str(data),
            "epoch": settings.epochs,
            "wordNgrams": settings.word_ngrams,
            "bucket": settings.hash_buckets,
            "dim": 64,
            "seed": settings.seed,
            "thread": 1,  # deterministic
            "verbose": 0,
        }
        lr = settings.lr
        for _ in range(4):  # fastText can diverge (NaN) on small data: halve the learning rate and retry
            run = subprocess.run(
                [sys.executable, "-c", _TRAIN, json.dumps(params | {"lr": lr}), str(model)],
                capture_output=True,
                text=True,
            )
            if run.returncode == 0:
                return fasttext.load_model(str(model)), lr
            if "NaN" not in run.stderr:
                raise RuntimeError(f"{where}: fastText training failed: {run.stderr.strip()[-500:]}")
            lr /= 2
        raise RuntimeError(f"{where}: fastText diverged even at lr={lr}")


def precision_recall(predicted: list[bool], actual: list[bool]) -> dict[str, float | None]:
    tp = sum(p and y for p, y in zip(predicted, actual))
    fp = sum(p and not y for p, y in zip(predicted, actual))
    fn = sum(not p and y for p, y in zip(predicted, actual))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {"precision": precision, "recall": recall, "f1": f1}


def positive_probability(model, line: str) -> float:
    labels, probs = model.predict(line, k=2)
    return float(dict(zip(labels, probs)).get("__label__pos", 0.0))
