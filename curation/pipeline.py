"""The corpus stage as a chain of datatrove executors, one per declared `CorpusStage`, connected by files.

Every folder is a `contracts.layout.RunLayout` path under `out/<name>/corpus/`; stages hand each
other intermediate documents and dedup files in `work/<folder>/`. `logs/<stage>/` holds datatrove's
logs, per-task stats, completion markers and the stage's fingerprint (its recipe sections, benchmark
files, and for `extract` the input listing): a changed fingerprint reruns the stage and every later
one. `rejected/<step>/` holds every dropped document, with `rejected_step` and `rejected_reason`.

A stage declares in one place the recipe sections it reads and the rejected folders it writes; its
fingerprint, the folders a rerun empties, its rejected writers and the report's default reasons all
come from that declaration.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import multiprocess
import yaml
from datatrove.io import get_datafolder
from datatrove.pipeline.dedup import (
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
    MinhashDedupBuckets,
    MinhashDedupCluster,
)
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

from contracts.fasttext import FastTextSettings
from contracts.publish import write_atomic
from contracts.recipe import remove_under
from contracts.rejected import RejectedWriter
from contracts.tokens import shard_writer
from curation.classifiers import ClassifierScorer, ClassifierTrainer, SeedReader
from curation.config import SOURCE_KINDS, ClassifierConfig, CorpusRecipe
from curation.decont import Decontaminate
from curation.dedup import FastMinhashSignature, MinhashClusterFilter, normalised_text
from curation.extractors import Extractor, HtmlExtractor, PdfExtractor
from curation.filters import HeuristicFilter, OfflineLanguageFilter, PassageFilter, heuristic_judges
from curation.formatters import NfkcFormatter
from curation.output import CorpusTokenizer, TokenizerBuilder, TrainValSplit
from curation.readers import (
    RECORD_READERS,
    DocumentFileReader,
    ReadLimits,
    StageParquetReader,
    StageReader,
    WarcRecordReader,
)
from curation.report import CorpusReport
from curation.report.tokenizer_audit import audit_sources
from curation.transforms import ReadingComprehension

CORPORA = ("domain", "replay")
SPLITS = ("train", "val")
RENAMED_STAGES = {"select": "route"}  # a run folder made before the rename reruns from the new name

Rejected = Callable[[str], RejectedWriter]  # a stage's writer for `rejected/<step>/`, by step


@dataclass
class CorpusStage:
    """One datatrove executor, declared: the folders it reads and owns, its task count, the recipe
    sections and rejected folders it uses, and its steps (built when the executor is)."""

    name: str
    inputs: list[Path]  # what it reads: the recipe's inputs, or earlier stages' outputs
    outputs: list[Path]  # what it owns besides its `rejects`: emptied when it reruns
    tasks: int
    sections: tuple[str, ...]  # recipe sections it reads: their change reruns it (and every later stage)
    steps: Callable[[Rejected], list]  # given the writers of its `rejects` (`CorpusPipeline.build`)
    # rejected/<step>/ folders it writes (emptied when it reruns) -> the reason of drops its step
    # counts without one (None: its filter names each; the writer falls back to the folder's name)
    rejects: dict[str, str | None] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # inputs outside the recipe (benchmark files)
    listing: list = field(default_factory=list)  # input files by name, size and time (too big to hash)
    fingerprint: str = field(default="")


class CorpusPipeline:
    """Builds the stages from a recipe and runs them with the recipe's executor."""

    def __init__(self, recipe: CorpusRecipe):
        self.recipe = recipe
        self.layout = recipe.layout
        self.tasks = recipe.executor.tasks
        self.work = self.layout.work
        # datatrove step -> the default reason its rejected writer gives (filled as steps are built)
        self.default_reasons: dict[str, str] = {}
        self.stages = self._stages()
        previous = ""
        for stage in self.stages:
            sections = {k: recipe.model_dump(mode="json").get(k) for k in stage.sections}
            files = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in stage.files}
            payload = json.dumps(
                [previous, stage.name, stage.tasks, sections, files, stage.listing],
                sort_keys=True,
                default=str,
            )
            stage.fingerprint = previous = hashlib.sha256(payload.encode()).hexdigest()[:16]

    # ---- helpers -------------------------------------------------------------------------------
    def owned(self, stage: CorpusStage) -> list[Path]:
        """What a rerun of the stage empties: its outputs and its declared rejected folders."""
        return [*stage.outputs, *(self.layout.rejected / step for step in stage.rejects)]

    def build(self, stage: CorpusStage) -> list:
        """The stage's steps, with writers for its declared rejected folders only: another raises
        here, before any stage runs, since a rerun would not empty it. Records the writers' default
        reasons for the report."""

        def rejected(step: str) -> RejectedWriter:
            if step not in stage.rejects:
                raise ValueError(
                    f"stage `{stage.name}` writes rejected/{step}/ without declaring it: add "
                    f"{step!r} to its `rejects`, so a rerun of the stage empties that folder"
                )
            return RejectedWriter(str(self.layout.rejected / step), step, stage.rejects[step])

        steps = stage.steps(rejected)
        for step in steps:
            writer = getattr(step, "exclusion_writer", None)
            if isinstance(writer, RejectedWriter) and stage.rejects.get(writer.step):
                self.default_reasons[str(step)] = writer.default_reason  # datatrove's stats name
        return steps

    def reader(self, folder: Path) -> StageReader:
        return StageReader(str(folder), glob_pattern="*.jsonl.gz")

    def writer(self, folder: Path) -> JsonlWriter:
        return JsonlWriter(str(folder), output_filename="${rank}.jsonl.gz")

    def logs(self, stage: str) -> Path:
        return self.layout.corpus_logs / stage

    @property
    def _unique(self) -> Path:
        """What near-duplicate removal reads: the exact-deduplicated documents, or the filtered."""
        return self.work / ("exact" if self.recipe.dedup.exact else "filtered")

    def _extractors(self, rejected=lambda fmt: None) -> dict[str, Extractor]:
        """The extractors with the recipe's `extract` limits, by format; `rejected(fmt)` gives each
        its exclusion writer. Inputs and classifier seed files go through the same ones."""
        extract = self.recipe.extract
        return {
            "pdf": PdfExtractor(
                extract.pdf_timeout_s,
                extract.pdf_min_chars_per_page,
                rejected("pdf"),
                max_pages=extract.max_pdf_pages,
                max_text_chars=extract.max_text_chars,
            ),
            "html": HtmlExtractor(
                extract.html_backend, extract.html_timeout_s, rejected("html"), extract.max_text_chars
            ),
        }

    def _input_readers(self) -> list:
        readers = []
        for src in self.recipe.inputs:
            path = Path(src.path)
            folder, pattern = (str(path), src.glob) if path.is_dir() else (str(path.parent), path.name)
            meta = {"input": src.label, "kind": src.kind} | ({"corpus": src.corpus} if src.corpus else {})
            if src.format in ("pdf", "html"):
                readers.append(
                    DocumentFileReader(
                        folder,
                        src.format,
                        glob_pattern=pattern,
                        default_metadata=meta,
                        max_bytes=self.recipe.extract.max_file_bytes,
                    )
                )
            elif src.format == "warc":
                readers.append(
                    WarcRecordReader(
                        folder,
                        glob_pattern=pattern,
                        default_metadata=meta,
                        max_bytes=self.recipe.extract.max_record_bytes,
                    )
                )
            else:
                options = {
                    "text_key": src.text_key,
                    "id_key": src.id_key,
                    "default_metadata": meta | {"format": "text"},
                }
                if src.format != "hf":
                    options["glob_pattern"] = pattern
                if src.format == "jsonl":
                    options["max_bytes"] = self.recipe.extract.max_record_bytes
                readers.append(
                    RECORD_READERS[src.format](folder if src.format != "hf" else str(path), **options)
                )
        for offset, (reader, src) in enumerate(zip(readers, self.recipe.inputs)):
            reader.shard_offset = offset
            reader.record_limit = src.limit
        return readers

    def _input_listing(self) -> list:
        """Per input, each file its reader reads, with size and modification time: files added or
        changed after an interrupted run would be dealt to tasks differently on resume (read twice
        or missed), so they make the extract stage start over."""
        listing = []
        for reader in self._input_readers():
            if isinstance(reader, BaseDiskReader):
                folder = reader.data_folder
                files = folder.list_files(recursive=reader.recursive, glob_pattern=reader.glob_pattern)
            else:  # a `hf` dataset folder (`save_to_disk`): every file in it
                folder = get_datafolder(reader.dataset)
                files = folder.list_files()
            listing.append([(f, folder.size(f), folder.modified(f)) for f in sorted(files)])
        return listing

    def _minhash_config(self) -> MinhashConfig:
        mh = self.recipe.dedup.minhash
        return MinhashConfig(
            n_grams=mh.word_ngrams,
            num_buckets=mh.buckets,
            hashes_per_bucket=mh.hashes_per_bucket,
            seed=mh.seed,
        )

    # ---- the stages, in data-flow order ------------------------------------------------------
    def _stages(self) -> list[CorpusStage]:
        dedup = self.recipe.dedup
        return [
            self._extract(),
            *(self._exact_dedup() if dedup.exact else []),
            *(self._minhash_clusters() if dedup.minhash else []),
            self._dedup_filter(),
            self._classifiers(),
            self._route(),
            self._tokenizer(),
            self._tokenize(),
            self._report(),
        ]

    def _extract(self) -> CorpusStage:
        return CorpusStage(
            name="extract",
            inputs=[Path(src.path) for src in self.recipe.inputs],
            outputs=[self.work / "filtered"],
            tasks=self.tasks,
            sections=("inputs", "extract", "normalise", "languages", "passages", "filters"),
            steps=self._extract_steps,
            rejects=dict.fromkeys(
                ("read", "pdf", "html", "language", "passages", "passages_cut", "heuristics")
            ),
            listing=self._input_listing(),
        )

    def _extract_steps(self, rejected: Rejected) -> list:
        r = self.recipe
        steps = [
            *self._input_readers(),
            ReadLimits(r.extract.max_text_chars, rejected("read")),
            *self._extractors(rejected).values(),
        ]
        if r.normalise.ftfy:
            steps.append(FTFYFormatter())
        if r.normalise.nfkc:
            steps.append(NfkcFormatter())
        lang, keep = r.languages, r.languages.keep
        steps += [
            OfflineLanguageFilter(keep, lang.threshold, lang.passage_threshold, rejected("language")),
            PassageFilter(
                heuristic_judges("document", keep, r.filters, passages=True),
                r.passages.min_chars,
                r.passages.target_chars,
                r.passages.min_repeats,
                r.passages.split,
                exclusion_writer=rejected("passages"),
                cut_writer=rejected("passages_cut"),
            ),
            HeuristicFilter(
                {kind: heuristic_judges(kind, keep, r.filters) for kind in SOURCE_KINDS},
                rejected("heuristics"),
            ),
            self.writer(self.work / "filtered"),
        ]
        return steps

    def _exact_dedup(self) -> list[CorpusStage]:
        """datatrove's three exact-deduplication stages: signatures, duplicates found, filtered."""
        w, config = self.work, ExactDedupConfig(content_getter=normalised_text)
        return [
            CorpusStage(
                name="exact_signatures",
                inputs=[w / "filtered"],
                outputs=[w / "exact_sigs"],
                tasks=self.tasks,
                sections=("dedup",),
                steps=lambda _: [
                    self.reader(w / "filtered"),
                    ExactDedupSignature(str(w / "exact_sigs"), config),
                ],
            ),
            CorpusStage(
                name="exact_find",
                inputs=[w / "exact_sigs"],
                outputs=[w / "exact_dups"],
                tasks=1,
                sections=(),
                steps=lambda _: [ExactFindDedups(str(w / "exact_sigs"), str(w / "exact_dups"), config)],
            ),
            CorpusStage(
                name="exact_filter",
                inputs=[w / "filtered", w / "exact_dups"],
                outputs=[w / "exact"],
                tasks=self.tasks,
                sections=(),
                steps=lambda rejected: [
                    self.reader(w / "filtered"),
                    ExactDedupFilter(str(w / "exact_dups"), config, exclusion_writer=rejected("exact_dedup")),
                    self.writer(w / "exact"),
                ],
                rejects={"exact_dedup": "exact_duplicate"},
            ),
        ]

    def _minhash_clusters(self) -> list[CorpusStage]:
        """datatrove's MinHash stages up to the clusters; `dedup_filter` drops all but one of each."""
        w, mh = self.work, self.recipe.dedup.minhash
        return [
            CorpusStage(
                name="minhash_signatures",
                inputs=[self._unique],
                outputs=[w / "mh_sigs"],
                tasks=self.tasks,
                sections=("dedup",),
                steps=lambda _: [self.reader(self._unique), self._minhash_signature()],
            ),
            CorpusStage(
                name="minhash_buckets",
                inputs=[w / "mh_sigs"],
                outputs=[w / "mh_buckets"],
                tasks=mh.buckets,
                sections=(),
                steps=lambda _: [
                    MinhashDedupBuckets(
                        str(w / "mh_sigs"), str(w / "mh_buckets"), config=self._minhash_config()
                    )
                ],
            ),
            CorpusStage(
                name="minhash_cluster",
                inputs=[w / "mh_buckets"],
                outputs=[w / "mh_clusters"],
                tasks=1,
                sections=(),
                steps=lambda _: [
                    MinhashDedupCluster(
                        str(w / "mh_buckets"),
                        str(w / "mh_clusters"),
                        config=self._minhash_config(),
                        save_cluster_size=True,
                    )
                ],
            ),
        ]

    def _minhash_signature(self) -> FastMinhashSignature:
        mh = self.recipe.dedup.minhash
        return FastMinhashSignature(
            str(self.work / "mh_sigs"), self._minhash_config(), mh.char_ngrams, mh.char_ngram_languages
        )

    def _dedup_filter(self) -> CorpusStage:
        clusters = [self.work / "mh_clusters"] if self.recipe.dedup.minhash else []
        return CorpusStage(
            name="dedup_filter",
            inputs=[self._unique, *clusters],
            outputs=[self.work / "deduped"],
            tasks=self.tasks,
            sections=("pii", "decontaminate"),
            steps=self._dedup_filter_steps,
            rejects={"minhash_dedup": "near_duplicate", "decontaminate": None},
            files=self._decontamination_files(),
        )

    def _dedup_filter_steps(self, rejected: Rejected) -> list:
        r = self.recipe
        steps: list = [self.reader(self._unique)]
        if r.dedup.minhash:
            steps.append(
                MinhashClusterFilter(
                    str(self.work / "mh_clusters"),
                    exclusion_writer=rejected("minhash_dedup"),
                    load_cluster_sizes=True,
                )
            )
        if r.pii.emails or r.pii.ips:
            steps.append(PIIFormatter(remove_emails=r.pii.emails, remove_ips=r.pii.ips))
        if d := r.decontaminate:
            steps.append(
                Decontaminate(
                    self._decontamination_files(),
                    d.ngrams,
                    d.action,
                    d.margin_chars,
                    d.min_fragment_chars,
                    d.max_spans,
                    exclusion_writer=rejected("decontaminate"),
                )
            )
        steps.append(self.writer(self.work / "deduped"))
        return steps

    def _decontamination_files(self) -> list[Path]:
        return [path for task in self.recipe.decontamination_tasks() for path in task.files()]

    def _classifiers(self) -> CorpusStage:
        clf = self.recipe.classifiers
        return CorpusStage(
            name="classifiers",
            # seed text comes from documents already extracted: kept ones, and those the filters dropped
            inputs=[self.work / "filtered", self.layout.rejected],
            outputs=[self.layout.classifiers],
            tasks=1 + (clf.quality is not None),  # one task per classifier
            sections=("classifiers",),
            steps=self._trainers,
        )

    def _trainers(self, _: Rejected) -> list[ClassifierTrainer]:
        clf = self.recipe.classifiers
        return [
            self._trainer("domain", clf.domain, 0),
            *([self._trainer("quality", clf.quality, 1)] if clf.quality else []),
        ]

    def _trainer(self, label: str, clf: ClassifierConfig, task: int) -> ClassifierTrainer:
        """Task `task` trains `label`; seed files that are inputs too are read as extracted."""
        extract = self.recipe.extract  # seed files are read and extracted as inputs are
        return ClassifierTrainer(
            str(self.layout.classifiers),
            label,
            FastTextSettings.of(clf),
            clf.threshold,
            clf.held_out,
            positive=clf.positive,
            negative=clf.negative,
            seeds=SeedReader(self._extractors(), extract.max_file_bytes, extract.max_record_bytes),
            model=clf.model,
            extracted_dirs=[str(self.work / "filtered"), str(self.layout.rejected)],
            task=task,
        )

    def _route(self) -> CorpusStage:
        """Quality filter, domain/replay routing, the train/validation split and the transform."""
        return CorpusStage(
            name="route",
            inputs=[self.work / "deduped", self.layout.classifiers],
            outputs=[self.layout.docs],
            tasks=self.tasks,
            sections=("output", "transform"),
            steps=self._route_steps,
            rejects={"quality": None},
        )

    def _route_steps(self, rejected: Rejected) -> list:
        clf, out = self.recipe.classifiers, self.recipe.output
        models = self.layout.classifiers
        steps: list = [self.reader(self.work / "deduped")]
        if clf.quality:
            steps.append(
                ClassifierScorer(
                    str(models / "quality.bin"),
                    "quality",
                    clf.quality.threshold,
                    clf.quality.max_chars,
                    exclusion_writer=rejected("quality"),
                )
            )
        steps.append(
            ClassifierScorer(
                str(models / "domain.bin"),
                "domain",
                clf.domain.threshold,
                clf.domain.max_chars,
                route=("corpus", "domain", "replay"),
            )
        )
        steps.append(TrainValSplit(out.val_fraction, out.seed))
        if t := self.recipe.transform:  # domain training documents only: validation stays raw text
            steps.append(ReadingComprehension(t.mode, t.max_per_type))
        writer_cls = JsonlWriter if out.docs_format == "jsonl" else ParquetWriter
        ext = "jsonl.gz" if out.docs_format == "jsonl" else "parquet"
        steps.append(writer_cls(str(self.layout.docs), output_filename="${corpus}/${split}/${rank}." + ext))
        return steps

    def _tokenizer(self) -> CorpusStage:
        return CorpusStage(
            name="tokenizer",
            inputs=[self.layout.docs],
            outputs=[self.layout.tokenizer],
            tasks=1,
            sections=("tokenizer",),
            steps=lambda _: [self._tokenizer_builder()],
        )

    def _tokenizer_builder(self) -> TokenizerBuilder:
        tok, out = self.recipe.tokenizer, str(self.layout.tokenizer)
        learnt = tok.extend or tok.train  # what is learnt on the corpus, if anything
        if learnt is None:
            return TokenizerBuilder(out, tok.eos_token, path=tok.path)
        corpora = CORPORA if learnt.corpus == "both" else (learnt.corpus,)
        size = (
            {
                "extend_tokens": tok.extend.tokens,
                "extension_file": str(self.layout.tokenizer_extension),
                "extend_init": tok.extend.init,
            }
            if tok.extend
            else {"vocab_size": tok.train.vocab_size}
        )
        return TokenizerBuilder(
            out,
            tok.eos_token,
            path=tok.path,
            train_dirs=[str(self.layout.corpus_docs(corpus, "train")) for corpus in corpora],
            min_frequency=learnt.min_frequency,
            **size,
        )

    def _tokenize(self) -> CorpusStage:
        return CorpusStage(
            name="tokenize",
            inputs=[self.layout.docs, self.layout.tokenizer],
            outputs=[self.layout.tokens],
            tasks=self.tasks,
            sections=(),
            steps=self._tokenize_steps,
        )

    def _tokenize_steps(self, _: Rejected) -> list:
        r, jobs = self.recipe, []
        for corpus in CORPORA:
            for split in SPLITS:
                docs = self.layout.corpus_docs(corpus, split)
                reader = (
                    self.reader(docs) if r.output.docs_format == "jsonl" else StageParquetReader(str(docs))
                )
                tokenizer = shard_writer(
                    self.layout.corpus_tokens(corpus, split),
                    f"{corpus}_{split}",
                    self.layout.tokenizer_file,
                    r.tokenizer.eos_token,
                    r.output.max_tokens_per_shard,
                    r.output.seed,
                )
                jobs.append((reader, tokenizer))
        return [CorpusTokenizer(jobs)]

    def _report(self) -> CorpusStage:
        layout = self.layout
        return CorpusStage(
            name="report",
            # and every log, and the audited tokenizers
            inputs=[layout.docs, layout.rejected, layout.classifiers, layout.tokens, layout.tokenizer],
            outputs=[],  # stats.json, report.html and the tokenizer audit are rewritten on every run
            tasks=1,
            sections=(),
            # the default reasons are filled as every stage's steps are built, all before any runs
            steps=lambda _: [
                CorpusReport(
                    layout,
                    [stage.name for stage in self.stages],
                    audit_sources(self.recipe),
                    self.default_reasons,
                )
            ],
        )

    # ---- running -------------------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Invalidate stages whose recipe sections or inputs changed (and all after them); return
        notices. A folder that cannot be removed raises before its stage's new fingerprint is written."""
        notices, redo = self._migrate_renamed()
        stale = False
        run_dir = self.recipe.run_dir
        for stage in self.stages:
            marker = self.logs(stage.name) / "fingerprint"
            recorded = marker.read_text().strip() if marker.is_file() else None
            if stale or stage.name in redo or (recorded is not None and recorded != stage.fingerprint):
                if recorded is not None and not stale:
                    notices.append(
                        f"recipe or inputs changed since the last run: recomputing from stage `{stage.name}`"
                    )
                stale = True
                for folder in [*self.owned(stage), self.logs(stage.name)]:  # the marker last
                    remove_under(run_dir, folder)
            write_atomic(marker, stage.fingerprint)  # a crash leaves the old fingerprint or the new
        owned = {folder for stage in self.stages for folder in self.owned(stage)}
        for folder in self.layout.rejected.glob("*"):
            if folder not in owned:  # a step the recipe no longer has (e.g. dedup switched off)
                remove_under(run_dir, folder)
        self.layout.corpus.mkdir(parents=True, exist_ok=True)
        self.layout.recipe_copy.write_text(
            yaml.safe_dump(self.recipe.model_dump(mode="json"), sort_keys=False)
        )
        return notices

    def _migrate_renamed(self) -> tuple[list[str], set[str]]:
        """Old stage names' logs removed; the notices, and the stages to recompute (renamed ones)."""
        notices, redo = [], set()
        for old, new in RENAMED_STAGES.items():
            if self.logs(old).is_dir():
                notices.append(f"stage `{old}` is now named `{new}`: recomputing from stage `{new}`")
                remove_under(self.recipe.run_dir, self.logs(old))
                redo.add(new)
        return notices, redo

    def executors(self) -> list:
        """One executor per stage; each depends on the previous (how Slurm chains its jobs)."""
        ex = self.recipe.executor
        chain = []
        for stage in self.stages:
            common = {
                "pipeline": self.build(stage),
                "tasks": stage.tasks,
                "workers": min(ex.workers, stage.tasks),
                "logging_dir": str(self.logs(stage.name)),
                "depends": chain[-1] if chain else None,
                "skip_completed": stage.name != "report",  # the report always reflects the current state
            }
            if ex.type == "local":
                from datatrove.executor import LocalPipelineExecutor

                chain.append(LocalPipelineExecutor(**common))
            elif ex.type == "ray":
                from datatrove.executor import RayPipelineExecutor

                chain.append(RayPipelineExecutor(tasks_per_job=ex.tasks_per_job, **common))
            else:
                from datatrove.executor import SlurmPipelineExecutor

                s = ex.slurm
                chain.append(
                    SlurmPipelineExecutor(
                        job_name=f"{self.recipe.name}-{stage.name}",
                        partition=s.partition,
                        time=s.time,
                        cpus_per_task=s.cpus_per_task,
                        mem_per_cpu_gb=s.mem_per_cpu_gb,
                        sbatch_args=s.sbatch_args,
                        tasks_per_job=ex.tasks_per_job,
                        **common,
                    )
                )
        return chain

    def run(self, on_stage: Callable[[str], None] | None = None) -> list[str]:
        """Run all stages; local and Ray run them here one after another, Slurm submits the chain."""
        notices = self.prepare()
        executors = self.executors()
        if self.recipe.executor.type == "ray":
            import ray

            if not ray.is_initialized():  # joins RAY_ADDRESS's cluster if set, else starts a local one
                ray.init(num_cpus=self.recipe.executor.workers, include_dashboard=False, log_to_driver=False)
        if self.recipe.executor.type == "slurm":
            executors[-1].run()
            return notices
        # local workers are forked from datatrove's forkserver: import our steps there once, not
        # in every worker of every stage
        multiprocess.set_forkserver_preload(["curation.pipeline"])
        for stage, executor in zip(self.stages, executors):
            if on_stage:
                on_stage(stage.name)
            executor.depends = None
            start = time.perf_counter()
            executor.run()
            (self.logs(stage.name) / "wall_seconds").write_text(f"{time.perf_counter() - start:.3f}")
        return notices
