"""Train a binary fastText classifier from seed documents; score pipeline documents with it."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from contracts.fasttext import (
    FastTextSettings,
    fasttext_line,
    positive_probability,
    precision_recall,
    train_fasttext,
)
from curation.extractors import Extractor, Rejected
from curation.readers.records import UNREAD, JsonlRecordReader

_SEED_FORMATS = {".pdf": "pdf", ".html": "html", ".htm": "html", ".jsonl": "jsonl", ".jsonl.gz": "jsonl"}


def seed_format(path: Path) -> str:
    name = path.name.lower()
    return next((fmt for suffix, fmt in _SEED_FORMATS.items() if name.endswith(suffix)), "text")


@dataclass(frozen=True)
class SeedReader:
    """Reads seed files as the pipeline reads its inputs: PDF and HTML by the same extractors (in
    their sandbox), JSONL by the record reader, within the same size limits."""

    extractors: dict[str, Extractor]  # by format: pdf, html
    max_file_bytes: int
    max_record_bytes: int

    def read(self, paths: list[Path]) -> Iterator[tuple[Path, str | Rejected]]:
        """(file, text or why not) for each seed file."""
        by_format = defaultdict(list)
        for path in paths:
            if path.stat().st_size > self.max_file_bytes:
                yield path, Rejected("too_large", f"over {self.max_file_bytes:,} bytes")
            else:
                by_format[seed_format(path)].append(path)
        for fmt, extractor in self.extractors.items():
            files = by_format[fmt]
            for path, result in zip(files, extractor.extract_all(path.read_bytes() for path in files)):
                yield path, result if isinstance(result, Rejected) else result[0]
        for path in by_format["jsonl"]:
            reader = JsonlRecordReader(str(path.parent), max_bytes=self.max_record_bytes)
            for doc in reader.read_file(path.name):
                problem = doc.metadata.get(UNREAD)
                yield path, Rejected(problem["reason"]) if problem else doc.text
        for path in by_format["text"]:
            yield path, path.read_bytes().decode("utf-8", errors="replace")


class ClassifierTrainer(PipelineStep):
    """Trains `<name>.bin` on seed globs and writes its held-out precision/recall to `<name>.json`.

    Seed files that are also inputs take their text from the documents already extracted into
    `extracted_dirs` (the same text the classifier will score, and no second extraction); other
    seed files are read by `seeds` (a rejected seed is counted as `seed_rejected_<reason>`). A
    `model` given instead is copied, so the corpus folder records what was used. With several
    trainers in one stage, task `task` runs this one.
    """

    type = "🧠 - CLASSIFY"
    name = "🎓 fastText trainer"

    def __init__(
        self,
        output_dir: str,
        label: str,
        settings: FastTextSettings,
        threshold: float,
        held_out: float,
        positive: list[str] = (),
        negative: list[str] = (),
        seeds: SeedReader | None = None,
        model: str | None = None,
        extracted_dirs: list[str] = (),
        task: int = 0,
    ):
        super().__init__()
        self.output_dir = output_dir
        self.label = label
        self.settings = settings
        self.threshold = threshold
        self.held_out = held_out
        self.positive = positive
        self.negative = negative
        self.seeds = seeds
        self.model = model
        self.extracted_dirs = extracted_dirs
        self.task = task

    def _seed_files(self) -> dict[Path, int]:
        files = {}
        for target, patterns in ((1, self.positive), (0, self.negative)):
            for pattern in patterns:
                files |= {
                    Path(p).resolve(): target for p in glob.glob(pattern, recursive=True) if Path(p).is_file()
                }
        return files

    def _examples(self) -> list[tuple[int, str]]:
        seeds = self._seed_files()
        examples, found = [], set()
        for folder in self.extracted_dirs:
            for path in sorted(Path(folder).rglob("*.jsonl.gz")):
                with gzip.open(path, "rt") as f:
                    for line in f:
                        doc = json.loads(line)
                        source = Path(doc["metadata"].get("source", ""))
                        if source in seeds and source not in found:
                            examples.append((seeds[source], doc["text"]))
                            found.add(source)
        for path, text in self.seeds.read(sorted(set(seeds) - found)):
            if isinstance(text, Rejected):
                self.stat_update(f"seed_rejected_{text.reason}")
            elif text.strip():
                examples.append((seeds[path], text))
        self.stat_update("seeds_from_pipeline", value=len(found))
        return sorted(examples)

    def _held_out(self, text: str) -> bool:
        digest = hashlib.sha1(f"{self.settings.seed}:{text}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.held_out

    def run(self, data=None, rank: int = 0, world_size: int = 1):

        if rank != self.task:
            return
        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        model_path = out / f"{self.label}.bin"
        if self.model:
            shutil.copyfile(self.model, model_path)
            (out / f"{self.label}.json").write_text(json.dumps({"source": self.model}, indent=2))
            return
        examples = self._examples()
        train = [(y, x) for y, x in examples if not self._held_out(x)]
        test = [(y, x) for y, x in examples if self._held_out(x)]
        if not {y for y, _ in train} >= {0, 1}:
            raise ValueError(f"classifiers.{self.label}: seeds need both positive and negative documents")
        # held-out documents are split off first, so no chunk of a test document is trained on
        model, lr = train_fasttext(
            [("pos" if y else "neg", x) for y, x in train], self.settings, f"classifiers.{self.label}"
        )
        model.save_model(str(model_path))
        scores = [positive_probability(model, fasttext_line(x, self.settings.max_chars)) for _, x in test]
        predicted = [s >= self.threshold for s in scores]
        metrics = {
            "train_examples": {
                "positive": sum(y for y, _ in train),
                "negative": sum(1 - y for y, _ in train),
            },
            "held_out_examples": {
                "positive": sum(y for y, _ in test),
                "negative": sum(1 - y for y, _ in test),
            },
            "threshold": self.threshold,
            "lr": lr,
            **precision_recall(predicted, [bool(y) for y, _ in test]),
        }
        self.stat_update("seeds", value=len(examples))
        (out / f"{self.label}.json").write_text(json.dumps(metrics, indent=2))


class ClassifierScorer(BaseFilter):
    """Writes `<label>_score`; drops below the threshold (`drop=True`) or routes by it.

    Routing (`route`) sets e.g. `corpus: domain|replay` and keeps every document; a document that
    already has the key (its input names its corpus) keeps its value and only gets the score.
    """

    type = "🧠 - CLASSIFY"

    def __init__(
        self,
        model_path: str,
        label: str,
        threshold: float,
        max_chars: int,
        route: tuple[str, str, str] | None = None,
        exclusion_writer=None,
    ):
        self.name = f"🧠 {label} classifier"  # before super().__init__, which names the step's stats
        super().__init__(exclusion_writer)
        self.model_path = model_path
        self.label = label
        self.threshold = threshold
        self.max_chars = max_chars
        self.route = route
        self._model = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        score = positive_probability(self._model, fasttext_line(doc.text, self.max_chars))
        doc.metadata[f"{self.label}_score"] = round(score, 4)
        if self.route:
            key, above, below = self.route
            if doc.metadata.get(key) is None:
                doc.metadata[key] = above if score >= self.threshold else below
            return True
        return score >= self.threshold or (False, self.label)
