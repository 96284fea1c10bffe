"""The run layout: every path under `out/<name>/`, named once.

Stages exchange data only through these files, so each stage can run on another machine:

    out/<name>/corpus/   docs/<corpus>/<split>/, tokens/<corpus>/<split>/, tokenizer/, classifiers/,
                         rejected/<step>/, logs/<stage>/, work/, tokenizers/{audit.json,audit.png},
                         stats.json, report.html, recipe.yaml
    out/<name>/select/   grades/, distilled/, scores/<score>/, budgets/<selection>/{docs,tokens,
                         rejected}/, logs/, report.html
    out/<name>/train/    hf/<stage>/, checkpoints/, metrics.jsonl, curves.png; selections/<selection>/
                         holds the same for each selection run
    out/<name>/mixsweep/ runs/<run>/ (training runs as train/, no export), runs.jsonl, fit.json,
                         report.html, mixture.yaml
    out/<name>/merge/    <merge>/ (a Hugging Face folder, or <merge>/t<weight>/ for each interpolation
                         weight), pareto.json, report.html
    out/<name>/eval/     results.json, report.html, lm_eval_tasks/
    out/<name>/audit/    contamination.json, report.html, matches/, logs/
    out/models/<name>/   models converted once from `gguf:` sources, shared by every recipe
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXPORT_MARKER = "export.json"  # the last file written into a model export (hf/<stage>/, merge/<name>/)
GGUF_PREFIX = "gguf:"  # `train.model: gguf:...`: a GGUF file, converted once under out/models/
CONVERSION_MARKER = "source.json"  # the last file written into a converted model (out/models/<name>/)


def gguf_stem(model: str) -> str | None:
    """A `gguf:` model's name: its file's stem (its converted folder's name and its label); None
    for any other reference, and "" for a `gguf:` naming no file."""
    return Path(model.removeprefix(GGUF_PREFIX)).stem if model.startswith(GGUF_PREFIX) else None


@dataclass(frozen=True)
class TrainLayout:
    """One training run's folder: `train/` or `train/selections/<selection>/`."""

    root: Path

    @classmethod
    def of_export(cls, folder: Path) -> tuple[TrainLayout, str] | None:
        """The run and stage whose export `folder` is (`<run>/hf/<stage>/`), or None."""
        folder = Path(folder)
        return (cls(folder.parent.parent), folder.name) if folder.parent.name == "hf" else None

    @property
    def exports(self) -> Path:
        return self.root / "hf"

    def export(self, stage: str) -> Path:
        """A stage's Hugging Face export (from_pretrained); complete once `export.json` is in it."""
        return self.exports / stage

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def curves(self) -> Path:
        return self.root / "curves.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"


@dataclass(frozen=True)
class RunLayout:
    output_dir: Path
    name: str

    @property
    def root(self) -> Path:
        return self.output_dir / self.name

    @property
    def models(self) -> Path:
        """Converted models, outside any run folder: one conversion serves every recipe."""
        return self.output_dir / "models"

    def converted_model(self, model: str) -> Path | None:
        """The folder a `gguf:<path>` or `gguf:<package>/<file>` model is converted into (named by the
        file's stem); None for a hub id or a folder, which are used as they are."""
        stem = gguf_stem(model)
        return None if stem is None else self.models / stem

    # the corpus stage
    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def docs(self) -> Path:
        return self.corpus / "docs"

    def corpus_docs(self, corpus: str, split: str) -> Path:
        return self.docs / corpus / split

    @property
    def tokens(self) -> Path:
        return self.corpus / "tokens"

    def corpus_tokens(self, corpus: str, split: str) -> Path:
        return self.tokens / corpus / split

    @property
    def tokenizer(self) -> Path:
        return self.corpus / "tokenizer"

    @property
    def tokenizer_file(self) -> Path:
        return self.tokenizer / "tokenizer.json"

    @property
    def tokenizer_extension(self) -> Path:
        """What `tokenizer.extend` added to which base: the trainer grows a model with that base to match."""
        return self.tokenizer / "extension.json"

    @property
    def tokenizer_audits(self) -> Path:
        """The tokenizer audit: fertility of each audited tokenizer per corpus and language."""
        return self.corpus / "tokenizers"

    @property
    def tokenizer_audit(self) -> Path:
        return self.tokenizer_audits / "audit.json"

    @property
    def tokenizer_audit_plot(self) -> Path:
        return self.tokenizer_audits / "audit.png"

    @property
    def classifiers(self) -> Path:
        return self.corpus / "classifiers"

    @property
    def rejected(self) -> Path:
        return self.corpus / "rejected"

    @property
    def corpus_logs(self) -> Path:
        return self.corpus / "logs"

    @property
    def work(self) -> Path:
        """Intermediate datasets between corpus stages (filtered, deduplicated, signatures)."""
        return self.corpus / "work"

    @property
    def corpus_stats(self) -> Path:
        return self.corpus / "stats.json"

    @property
    def corpus_report(self) -> Path:
        return self.corpus / "report.html"

    @property
    def recipe_copy(self) -> Path:
        return self.corpus / "recipe.yaml"

    # data selection
    @property
    def select(self) -> Path:
        return self.root / "select"

    @property
    def grades(self) -> Path:
        return self.select / "grades"

    @property
    def grades_file(self) -> Path:
        return self.grades / "grades.jsonl"

    @property
    def grade_cache(self) -> Path:
        """Grades kept across runs, one file per grader identity."""
        return self.grades / "cache"

    @property
    def distilled(self) -> Path:
        return self.select / "distilled"

    @property
    def scores(self) -> Path:
        return self.select / "scores"

    def score(self, name: str) -> Path:
        return self.scores / name

    @property
    def budgets(self) -> Path:
        return self.select / "budgets"

    def selection(self, name: str) -> Path:
        return self.budgets / name

    def selection_docs(self, name: str) -> Path:
        return self.selection(name) / "docs" / "domain" / "train"

    def selection_tokens(self, name: str) -> Path:
        """A selection's domain training shards: what a selection run reads instead of the corpus's."""
        return self.selection(name) / "tokens" / "domain" / "train"

    def selection_rejected(self, name: str) -> Path:
        """The documents a selection left out, in `<step>/` as the corpus's `rejected/`."""
        return self.selection(name) / "rejected"

    @property
    def select_logs(self) -> Path:
        return self.select / "logs"

    @property
    def select_report(self) -> Path:
        return self.select / "report.html"

    # training
    @property
    def train(self) -> TrainLayout:
        return TrainLayout(self.root / "train")

    @property
    def selection_runs(self) -> Path:
        return self.root / "train" / "selections"

    def train_run(self, selection: str | None = None) -> TrainLayout:
        """The main training run, or a selection's run."""
        return TrainLayout(self.selection_runs / selection) if selection else self.train

    # the mixture sweep
    @property
    def mixsweep(self) -> Path:
        return self.root / "mixsweep"

    def mixsweep_run(self, run: str) -> TrainLayout:
        return TrainLayout(self.mixsweep / "runs" / run)

    @property
    def mixsweep_runs(self) -> Path:
        return self.mixsweep / "runs.jsonl"

    @property
    def mixsweep_fit(self) -> Path:
        """The fitted laws and the chosen mixture: what `mixture: auto` reads."""
        return self.mixsweep / "fit.json"

    @property
    def mixsweep_report(self) -> Path:
        return self.mixsweep / "report.html"

    @property
    def mixsweep_snippet(self) -> Path:
        return self.mixsweep / "mixture.yaml"

    # merging
    @property
    def merges(self) -> Path:
        return self.root / "merge"

    def merge(self, name: str) -> Path:
        return self.merges / name

    @property
    def merge_pareto(self) -> Path:
        return self.merges / "pareto.json"

    @property
    def merge_report(self) -> Path:
        return self.merges / "report.html"

    # evaluation
    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def eval_results(self) -> Path:
        return self.eval / "results.json"

    @property
    def eval_report(self) -> Path:
        return self.eval / "report.html"

    @property
    def lm_eval_tasks(self) -> Path:
        return self.eval / "lm_eval_tasks"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def audit_result(self) -> Path:
        return self.audit / "contamination.json"

    @property
    def audit_report(self) -> Path:
        return self.audit / "report.html"

    @property
    def audit_matches(self) -> Path:
        return self.audit / "matches"

    @property
    def audit_logs(self) -> Path:
        return self.audit / "logs"
