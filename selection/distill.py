"""The grader's judgement at corpus scale: fastText learns the graded sample, then scores everything.

FineWeb-Edu's recipe: an LLM grades a sample, a cheap classifier is trained on the grades, and only
the classifier sees the whole corpus. The classifier is only as good as its agreement with the
grader on documents it did not train on, so that agreement (Spearman, and F1 at the threshold
that will select documents) is measured on a held-out share and written beside the model.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep

from contracts.fasttext import FastTextSettings, fasttext_line, precision_recall, train_fasttext


def expected_grade(model, line: str) -> float:
    """The grade the classifier expects: its label probabilities times the grades they name."""
    labels, probs = model.predict(line, k=-1)
    return float(sum(p * float(label.removeprefix("__label__")) for label, p in zip(labels, probs)))


class GradeDistiller(PipelineStep):
    """Trains `model.bin` on the graded documents of `grades.jsonl` and writes `metrics.json`: the
    held-out Spearman correlation with the grader, precision/recall/F1 at `threshold`, and whether
    the agreement is high enough (`min_spearman`) to trust the classifier in the grader's place.
    The classes are the grades, or with `labels="terciles"` the thirds of the grader's ranking."""

    type = "🧑‍⚖️ - SELECT"
    name = "🎓 grade distiller"

    def __init__(
        self,
        grades_file: str,
        output_folder: str,
        settings: FastTextSettings,
        threshold: float = 3.0,
        labels: str = "grades",
        held_out: float = 0.2,
        min_spearman: float = 0.5,
    ):
        super().__init__()
        self.grades_file = Path(grades_file)
        self.output_folder = Path(output_folder)
        self.settings = settings
        self.threshold = threshold
        self.labels = labels
        self.held_out = held_out
        self.min_spearman = min_spearman

    def _held_out(self, doc_id: str) -> bool:
        # salted: the grader sampled the lowest unsalted hashes, so those would all look held out
        digest = hashlib.sha256(f"distill-held-out:{self.settings.seed}:{doc_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.held_out

    def _labelled(self, examples: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """Each example's class, named by the grade it stands for: the rounded grade, or for
        `terciles` the mean grade of its third of the ranking (a weak grader whose grades all
        round alike still ranks documents, and selection only needs the ranking)."""
        if self.labels == "grades":
            return [(round(g), t) for g, t in examples]
        order = sorted(range(len(examples)), key=lambda k: examples[k][0])
        labelled = list(examples)
        for third in np.array_split(np.array(order, dtype=int), 3):
            mean = round(float(np.mean([examples[k][0] for k in third])), 4) if len(third) else 0.0
            for k in third.tolist():
                labelled[k] = (mean, examples[k][1])
        return labelled

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from scipy.stats import spearmanr

        if world_size != 1:
            raise ValueError("GradeDistiller trains one model: run it as a single task")
        grades = {}
        for line in self.grades_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["status"] == "graded":
                grades[record["id"]] = record["grade"]
        texts = {doc.id: doc.text for doc in data or [] if doc.id in grades}
        train = [(grades[i], t) for i, t in sorted(texts.items()) if not self._held_out(i)]
        test = [(grades[i], t) for i, t in sorted(texts.items()) if self._held_out(i)]
        train = self._labelled(train)
        if len({g for g, _ in train}) < 2:
            raise ValueError(
                f"select.distill: the {len(train)} graded training documents share one grade; "
                "there is nothing to learn (grade a larger or more varied sample)"
            )
        model, lr = train_fasttext([(f"{g:g}", t) for g, t in train], self.settings, "select.distill")
        self.output_folder.mkdir(parents=True, exist_ok=True)
        model.save_model(str(self.output_folder / "model.bin"))
        predicted = [expected_grade(model, fasttext_line(t, self.settings.max_chars)) for _, t in test]
        actual = [g for g, _ in test]
        rho = spearmanr(predicted, actual).statistic if len(test) >= 3 else math.nan
        t = self.threshold
        spearman = None if math.isnan(rho) else round(float(rho), 4)
        metrics = {
            "train_documents": len(train),
            "held_out_documents": len(test),
            "lr": lr,
            "spearman": spearman,
            "threshold": t,
            **precision_recall([p >= t for p in predicted], [g >= t for g in actual]),
            "min_spearman": self.min_spearman,
            "trusted": spearman is not None and spearman >= self.min_spearman,
            "held_out": [{"grade": g, "predicted": round(p, 4)} for g, p in zip(actual, predicted)],
        }
        self.stat_update("trained_on", value=len(train))
        (self.output_folder / "metrics.json").write_text(json.dumps(metrics, indent=2))


class DistilledScorer(PipelineStep):
    """Writes every document's expected grade under the distilled model to `<rank>.jsonl`."""

    type = "🧑‍⚖️ - SELECT"
    name = "🎓 distilled grade"

    def __init__(self, model_path: str, output_folder: str, max_chars: int):
        super().__init__()
        self.model_path = model_path
        self.output_folder = Path(output_folder)
        self.max_chars = max_chars

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import fasttext

        model = fasttext.load_model(self.model_path)
        self.output_folder.mkdir(parents=True, exist_ok=True)
        with open(self.output_folder / f"{rank:05d}.jsonl", "w", encoding="utf-8") as out:
            for doc in data or []:
                with self.track_time():
                    score = expected_grade(model, fasttext_line(doc.text, self.max_chars))
                    out.write(json.dumps({"id": doc.id, "score": round(score, 4)}) + "\n")
                    self.stat_update("scored")
                yield doc
