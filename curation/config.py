"""The corpus stage's sections of the recipe (`inputs` to `executor`).

The recipe file, its `extends`, and its error wording belong to `contracts.recipe`; the steps take
plain arguments, built here and in `curation.pipeline` from these sections.
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.contamination import NgramSettings
from contracts.executor import ExecutorConfig
from contracts.items import TaskGlob
from contracts.recipe import RecipeBase, RecipeError, Strict, load_recipe, recipe_error
from contracts.tokens import EOS_TOKEN, ShardSettings
from curation.filters.registry import HEURISTIC_FILTERS

FORMATS = ("pdf", "html", "warc", "jsonl", "parquet", "hf")
SOURCE_KINDS = ("web", "document")


class InputSource(Strict):
    """One place documents come from; `format` is inferred from `glob` or the path when omitted.

    `kind` picks the filter settings: `web` (crawls, web pages: datatrove's web heuristics, judged
    whole) or `document` (PDFs, manuals, filings, transcripts: documentation settings, long texts
    judged by passages). PDFs default to `document`, everything else to `web`.
    """

    name: str | None = None
    path: str
    format: Literal["pdf", "html", "warc", "jsonl", "parquet", "hf"] | None = None
    kind: Literal["web", "document"] | None = None
    glob: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    limit: int | None = Field(None, ge=1)  # the first N records (files, rows) in path order: a sample
    corpus: Literal["domain", "replay"] | None = None  # known corpus: no classifier routing
    optional: bool = False  # e.g. ../shared/data: read when present, left out (with a notice) when not

    @model_validator(mode="after")
    def _infer_format_and_kind(self) -> InputSource:
        fmt = self.format
        if fmt is None:
            hint = (self.glob or self.path).lower()
            for candidate, suffixes in {
                "pdf": (".pdf",),
                "html": (".html", ".htm"),
                "warc": (".warc", ".warc.gz"),
                "jsonl": (".jsonl", ".jsonl.gz", ".json.gz"),
                "parquet": (".parquet",),
            }.items():
                if hint.endswith(suffixes):
                    fmt = candidate
                    break
            else:
                raise ValueError(
                    "cannot infer `format` from path/glob; set format: one of " + ", ".join(FORMATS)
                )
        kind = self.kind or ("document" if fmt == "pdf" else "web")
        if self.limit and fmt == "hf":
            raise ValueError("`limit` is for files and JSONL/Parquet/WARC records, not a `hf` dataset")
        return self.model_copy(update={"format": fmt, "kind": kind})

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


class ExtractConfig(Strict):
    """Time limits are per document; a document over a limit is rejected with its own reason
    (`timeout`, `too_large`, `too_many_pages`, `text_too_long`) and never read whole."""

    pdf_timeout_s: float = Field(60, gt=0)
    html_timeout_s: float = Field(30, gt=0)
    html_backend: Literal["trafilatura", "resiliparse"] = "trafilatura"
    pdf_min_chars_per_page: int = Field(20, ge=0)
    max_file_bytes: int = Field(256 << 20, ge=1)  # a PDF or HTML file
    max_record_bytes: int = Field(64 << 20, ge=1)  # a WARC payload (decoded) or JSONL line (decompressed)
    max_pdf_pages: int = Field(2000, ge=1)
    max_text_chars: int = Field(10_000_000, ge=1)  # extracted text, and text records


class NormaliseConfig(Strict):
    ftfy: bool = True
    nfkc: bool = False


class LanguageConfig(Strict):
    """`web` documents are identified whole and need `threshold`; `document` ones line by line
    (lines under `passage_threshold`, such as code or table rows, do not vote) and are kept when
    their main language, by share of letters, is kept."""

    keep: list[str] = ["en"]
    threshold: float = Field(0.65, ge=0, le=1)
    passage_threshold: float = Field(0.5, ge=0, le=1)


class PassageConfig(Strict):
    """Long `document` texts are judged passage by passage: PDF pages, else runs of paragraphs."""

    min_chars: int = Field(10_000, ge=0)  # longer documents are judged by passages
    target_chars: int = Field(3_000, ge=200)  # paragraphs are packed into passages of about this size
    min_repeats: int = Field(3, ge=2)  # a paragraph on this many passages is boilerplate after its first
    split: bool = False  # emit kept passages as documents of their own (metadata `parent_id`)


class MinhashSettings(Strict):
    word_ngrams: int = Field(5, ge=1)
    char_ngrams: int = Field(5, ge=1)
    char_ngram_languages: list[str] = ["ja", "zh", "th"]
    buckets: int = Field(14, ge=1)
    hashes_per_bucket: int = Field(8, ge=1)
    seed: int = 1


class DedupConfig(Strict):
    exact: bool = True
    minhash: MinhashSettings | None = MinhashSettings()


class PiiConfig(Strict):
    emails: bool = True
    ips: bool = True


class ClassifierConfig(Strict):
    """fastText classifier: trained from labelled seed globs, or loaded from `model`."""

    positive: list[str] = []
    negative: list[str] = []
    model: str | None = None
    threshold: float = Field(0.5, ge=0, le=1)
    held_out: float = Field(0.2, gt=0, lt=1)
    epochs: int = Field(50, ge=1)
    word_ngrams: int = Field(2, ge=1)
    hash_buckets: int = Field(100_000, ge=1000)  # fastText's default 2M makes a 500 MB model
    lr: float = Field(0.2, gt=0)
    max_chars: int = Field(4000, ge=100)
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> ClassifierConfig:
        if self.model is None and not (self.positive and self.negative):
            raise ValueError(
                "give either `model` (a fastText .bin) or both `positive` and `negative` seed globs"
            )
        if self.model is not None and (self.positive or self.negative):
            raise ValueError("give `model` or seed globs, not both")
        return self


class ClassifiersConfig(Strict):
    domain: ClassifierConfig
    quality: ClassifierConfig | None = None


class TokenizerTrainConfig(Strict):
    vocab_size: int = Field(8192, ge=300)
    corpus: Literal["replay", "domain", "both"] = "replay"
    min_frequency: int = Field(2, ge=1)


class TokenizerExtension(Strict):
    """`tokens` new BPE tokens learnt on the corpus's training documents, added to the `path` tokenizer
    after its own (Swallow's vocabulary extension); the trainer grows the model to match, each new
    token's rows starting as the mean of its base pieces' (`init: mean`) or as FOCUS's similarity-
    weighted mix of the old tokens it resembles in the corpus (`init: focus`)."""

    tokens: int = Field(ge=1)
    corpus: Literal["replay", "domain", "both"] = "domain"
    min_frequency: int = Field(2, ge=1)
    init: Literal["mean", "focus"] = "mean"


class TokenizerConfig(Strict):
    """`path` (local tokenizer.json / folder, or a hub id) or `train` a byte-level BPE on the corpus."""

    path: str | None = None
    train: TokenizerTrainConfig | None = None
    extend: TokenizerExtension | None = None
    eos_token: str = EOS_TOKEN
    # more tokenizers for `python -m curation tokenizers` (folders, tokenizer.json, SentencePiece
    # .model); left out of the tokenizer stage's fingerprint: auditing one never re-tokenizes the corpus
    audit: list[str] = Field([], exclude=True)

    @model_validator(mode="after")
    def _one_source(self) -> TokenizerConfig:
        if (self.path is None) == (self.train is None):
            raise ValueError("set exactly one of `path` or `train`")
        if self.extend and not self.path:
            raise ValueError("`extend` adds tokens to the `path` tokenizer: set `path`, not `train`")
        return self


class OutputConfig(ShardSettings):
    model_config = ConfigDict(extra="forbid", frozen=True)
    val_fraction: float = Field(0.05, gt=0, lt=0.5)
    docs_format: Literal["jsonl", "parquet"] = "jsonl"


class TransformConfig(Strict):
    """AdaptLLM's reading comprehension (Cheng et al., ICLR 2024) on the domain training documents:
    exercises mined from each one, appended to it (`append`, the paper's way) or written as documents
    of their own (`separate`). Validation documents stay raw text."""

    kind: Literal["reading_comprehension"] = "reading_comprehension"
    mode: Literal["append", "separate"] = "append"
    max_per_type: int = Field(2, ge=1)  # exercises of each type per document (the paper: 2)


class DecontaminateConfig(Strict):
    """Remove benchmark overlap from the corpus (GPT-3 practice: the match plus a margin)."""

    tasks: list[TaskGlob] = []  # default: the `eval:` section's tasks
    ngrams: NgramSettings = NgramSettings()
    action: Literal["spans", "documents"] = "spans"
    margin_chars: int = Field(200, ge=0)
    min_fragment_chars: int = Field(200, ge=0)  # shorter leftovers are dropped too
    max_spans: int = Field(10, ge=1)  # a document with more matches is dropped whole


class EvalTask(BaseModel):
    """An `eval.tasks` entry as decontamination reads it (the evaluation stage checks the rest)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    path: str
    optional: bool = False


class EvalTasks(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    tasks: list[EvalTask] = []


class TrainModel(BaseModel):
    """The `train:` section as the tokenizer audit reads it: the model whose tokenizer is audited."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    model: str | None = None


class CorpusRecipe(RecipeBase):
    """The corpus stage's view: its own sections, and the eval tasks decontamination defaults to."""

    sections: ClassVar[tuple[str, ...]] = (
        "inputs",
        "extract",
        "normalise",
        "languages",
        "passages",
        "filters",
        "dedup",
        "pii",
        "decontaminate",
        "classifiers",
        "tokenizer",
        "output",
        "transform",
        "executor",
    )

    inputs: list[InputSource] = Field(min_length=1)
    extract: ExtractConfig = ExtractConfig()
    normalise: NormaliseConfig = NormaliseConfig()
    languages: LanguageConfig = LanguageConfig()
    passages: PassageConfig = PassageConfig()
    # source kind -> language -> filter (curation/filters/registry.py) -> its keyword arguments, or
    # true (on, with its defaults) or false (off)
    filters: dict[str, dict[str, dict[str, dict[str, Any] | bool]]] = {}
    dedup: DedupConfig = DedupConfig()
    pii: PiiConfig = PiiConfig()
    decontaminate: DecontaminateConfig | None = None
    classifiers: ClassifiersConfig
    tokenizer: TokenizerConfig
    output: OutputConfig = OutputConfig()
    transform: TransformConfig | None = None  # `transform: reading_comprehension` or a mapping
    executor: ExecutorConfig = ExecutorConfig()
    eval: EvalTasks | None = None  # the evaluation stage's section: only its task files are read here
    train: TrainModel | None = None  # the training stage's section: only its `model` is read here

    @field_validator("transform", mode="before")
    @classmethod
    def _transform_by_name(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("filters", mode="before")
    @classmethod
    def _known_filters(cls, value: Any) -> Any:
        """Kinds and filter names are checked here; wrong types are left to the field's own check."""
        for kind, per_language in value.items() if isinstance(value, dict) else ():
            if kind not in SOURCE_KINDS:
                raise ValueError(
                    f"unknown source kind `{kind}`: filters are keyed by kind ({', '.join(SOURCE_KINDS)}),"
                    " then language, then filter, e.g. filters: {document: {en: {c4: false}}}"
                )
            for lang, per_filter in per_language.items() if isinstance(per_language, dict) else ():
                for fname in per_filter if isinstance(per_filter, dict) else ():
                    if fname not in HEURISTIC_FILTERS:
                        raise ValueError(
                            f"unknown filter `{fname}` under `{kind}.{lang}`; "
                            f"known: {', '.join(HEURISTIC_FILTERS)}"
                        )
        return value

    def decontamination_tasks(self) -> list[TaskGlob]:
        if self.decontaminate is None:
            return []
        if self.decontaminate.tasks:
            return self.decontaminate.tasks
        return [TaskGlob(path=t.path, optional=t.optional) for t in self.eval.tasks] if self.eval else []


def _check_paths(path: Path, recipe: CorpusRecipe) -> None:
    problems = []
    for i, src in enumerate(recipe.inputs):
        if not Path(src.path).exists():
            problems.append(f"inputs.{i}.path: {src.path!r} does not exist")
    for kind in ("domain", "quality"):
        clf = getattr(recipe.classifiers, kind)
        if clf is None:
            continue
        if clf.model and not Path(clf.model).is_file():
            problems.append(f"classifiers.{kind}.model: {clf.model!r} is not a file")
        for side in ("positive", "negative"):
            for j, pattern in enumerate(getattr(clf, side)):
                if not glob.glob(pattern, recursive=True):
                    problems.append(f"classifiers.{kind}.{side}.{j}: {pattern!r} matches no file")
    if recipe.decontaminate is not None:
        tasks = recipe.decontamination_tasks()
        if not tasks:
            problems.append("decontaminate.tasks: empty, and the recipe has no eval.tasks to default to")
        for j, task in enumerate(tasks):
            if not task.optional and not task.files():
                where = f"decontaminate.tasks.{j}" if recipe.decontaminate.tasks else f"eval.tasks.{j}"
                problems.append(f"{where}.path: {task.path!r} matches no file")
    tok = recipe.tokenizer.path
    if tok and (tok.startswith((".", "/")) or Path(tok).exists()) and not Path(tok).exists():
        problems.append(f"tokenizer.path: {tok!r} does not exist")
    elif tok and recipe.tokenizer.extend and (problem := _not_extendable(Path(tok))):
        problems.append(f"tokenizer.extend: {tok!r} is {problem}")
    if problems:
        raise recipe_error(path, problems)


def _not_extendable(tokenizer: Path) -> str | None:
    """Why a local tokenizer cannot be extended, when its tokenizer.json says so."""
    from curation.output.extension import not_extendable

    file = tokenizer / "tokenizer.json" if tokenizer.is_dir() else tokenizer
    if file.suffix != ".json" or not file.is_file():
        return None  # converted when loaded (a SentencePiece model): the tokenizer stage checks it
    return not_extendable(json.loads(file.read_text())["model"])


def load_corpus_recipe(path: str | Path, check_paths: bool = True) -> CorpusRecipe:
    """Parse and validate a recipe; raise RecipeError naming the key and the file."""
    path = Path(path)
    recipe = load_recipe(path, CorpusRecipe)
    _check_filter_arguments(path, recipe)
    if check_paths:
        recipe = _present_inputs(path, recipe)
        _check_paths(path, recipe)
    return recipe


def _present_inputs(path: Path, recipe: CorpusRecipe) -> CorpusRecipe:
    """The recipe without its absent `optional` inputs, each named on stderr."""
    present = [src for src in recipe.inputs if not src.optional or Path(src.path).exists()]
    for i, src in enumerate(recipe.inputs):
        if src not in present:
            print(
                f"{path}: inputs.{i} ({src.label}): {src.path} is absent; optional, left out", file=sys.stderr
            )
    if not present:
        raise RecipeError(f"{path}: inputs: every input is optional and absent")
    return recipe.model_copy(update={"inputs": present})


def _check_filter_arguments(path: Path, recipe: CorpusRecipe) -> None:
    """Filter overrides are datatrove keyword arguments: check them against the real signatures."""
    from curation.filters.heuristics import filter_settings

    for kind, per_language in recipe.filters.items():
        for lang, per_filter in per_language.items():
            for name in per_filter:
                try:
                    filter_settings(kind, lang, name, recipe.filters)
                except ValueError as e:
                    raise recipe_error(path, [str(e)]) from None
