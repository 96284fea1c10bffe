"""The corpus stage as a chain of datatrove executors, one per stage, connected through files.

Layout under `out/<name>/corpus/` (the contract later stages read):
  work/<stage>/            intermediate documents and dedup files
  logs/<stage>/            datatrove logs, per-task stats, completion markers, fingerprint (recipe
                           sections, benchmark files, and for `extract` the input listing)
  rejected/<step>/         every dropped document, with `rejected_step` and `rejected_reason`
                           (decontaminate/: documents dropped for benchmark overlap)
  classifiers/             domain.bin/.json, quality.bin/.json (held-out precision/recall)
  docs/<corpus>/<split>/   curated documents with all metadata (corpus: domain|replay, split: train|val)
  tokenizer/               tokenizer.json + transformers files
  tokens/<corpus>/<split>/ datatrove token shards (*.ds, *.ds.index, *.ds.metadata)
  stats.json, report.html, recipe.yaml
"""

from __future__ import annotations

import hashlib
import json
import os
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

from contracts.recipe import remove_under
from curation.classifiers import ClassifierScorer, ClassifierTrainer
from curation.config import SOURCE_KINDS, CorpusRecipe
from curation.decont import Decontaminate
from curation.dedup import FastMinhashSignature, MinhashClusterFilter, normalised_text
from curation.extractors import recipe_extractors
from curation.filters import HeuristicFilter, OfflineLanguageFilter, PassageFilter, heuristic_judges
from curation.formatters import NfkcFormatter
from curation.output import CorpusTokenizer, TokenizerBuilder, TrainValSplit
from curation.output.tokens import shard_writer
from curation.readers import (
    RECORD_READERS,
    DocumentFileReader,
    ReadLimits,
    StageParquetReader,
    StageReader,
    WarcRecordReader,
)
from curation.report import CorpusReport
from curation.writers import RejectedWriter

CORPORA = ("domain", "replay")
SPLITS = ("train", "val")


@dataclass
class Stage:
    """One datatrove executor: its steps, task count, the folders it owns and what it depends on."""

    name: str
    build: Callable[[], list]
    tasks: int
    outputs: list[Path]
    recipe_keys: tuple[str, ...]
    files: list[Path] = field(default_factory=list)  # inputs outside the recipe (benchmark files)
    listing: list = field(default_factory=list)  # input files by name, size and time (too big to hash)
    fingerprint: str = field(default="")


class CorpusPipeline:
    """Builds the stages from a recipe and runs them with the recipe's executor."""

    def __init__(self, recipe: CorpusRecipe):
        self.recipe = recipe
        self.root = recipe.layout.corpus
        self.tasks = recipe.executor.tasks
        self.work = self.root / "work"
        self.stages = self._stages()
        previous = ""
        for stage in self.stages:
            sections = {k: recipe.model_dump(mode="json").get(k) for k in stage.recipe_keys}
            files = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in stage.files}
            payload = json.dumps(
                [previous, stage.name, stage.tasks, sections, files, stage.listing],
                sort_keys=True,
                default=str,
            )
            stage.fingerprint = previous = hashlib.sha256(payload.encode()).hexdigest()[:16]

    # ---- helpers -------------------------------------------------------------------------------
    def rejected(self, step: str, default_reason: str | None = None) -> RejectedWriter:
        return RejectedWriter(str(self.root / "rejected" / step), step, default_reason)

    def reader(self, folder: Path) -> StageReader:
        return StageReader(str(folder), glob_pattern="*.jsonl.gz")

    def writer(self, folder: Path) -> JsonlWriter:
        return JsonlWriter(str(folder), output_filename="${rank}.jsonl.gz")

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

    # ---- the stages ----------------------------------------------------------------------------
    def _stages(self) -> list[Stage]:
        r, w, T = self.recipe, self.work, self.tasks
        rej = self.root / "rejected"
        extract_rejects = ["read", "pdf", "html", "language", "passages", "passages_cut", "heuristics"]
        stages = [
            Stage(
                "extract",
                self._extract_steps,
                T,
                [w / "filtered", *(rej / name for name in extract_rejects)],
                ("inputs", "extract", "normalise", "languages", "passages", "filters"),
                listing=self._input_listing(),
            ),
        ]
        current = w / "filtered"
        if r.dedup.exact:
            exact_cfg = ExactDedupConfig(content_getter=normalised_text)
            stages += [
                Stage(
                    "exact_signatures",
                    lambda: [
                        self.reader(w / "filtered"),
                        ExactDedupSignature(str(w / "exact_sigs"), exact_cfg),
                    ],
                    T,
                    [w / "exact_sigs"],
                    ("dedup",),
                ),
                Stage(
                    "exact_find",
                    lambda: [ExactFindDedups(str(w / "exact_sigs"), str(w / "exact_dups"), exact_cfg)],
                    1,
                    [w / "exact_dups"],
                    (),
                ),
                Stage(
                    "exact_filter",
                    lambda: [
                        self.reader(w / "filtered"),
                        ExactDedupFilter(
                            str(w / "exact_dups"),
                            exact_cfg,
                            exclusion_writer=self.rejected("exact_dedup", "exact_duplicate"),
                        ),
                        self.writer(w / "exact"),
                    ],
                    T,
                    [w / "exact", rej / "exact_dedup"],
                    (),
                ),
            ]
            current = w / "exact"
        source = current
        if r.dedup.minhash:
            mh = r.dedup.minhash
            cfg = self._minhash_config()
            stages += [
                Stage(
                    "minhash_signatures",
                    lambda: [
                        self.reader(source),
                        FastMinhashSignature(
                            str(w / "mh_sigs"), cfg, mh.char_ngrams, mh.char_ngram_languages
                        ),
                    ],
                    T,
                    [w / "mh_sigs"],
                    ("dedup",),
                ),
                Stage(
                    "minhash_buckets",
                    lambda: [MinhashDedupBuckets(str(w / "mh_sigs"), str(w / "mh_buckets"), config=cfg)],
                    mh.buckets,
                    [w / "mh_buckets"],
                    (),
                ),
                Stage(
                    "minhash_cluster",
                    lambda: [
                        MinhashDedupCluster(
                            str(w / "mh_buckets"), str(w / "mh_clusters"), config=cfg, save_cluster_size=True
                        )
                    ],
                    1,
                    [w / "mh_clusters"],
                    (),
                ),
            ]
        stages += [
            Stage(
                "dedup_filter",
                lambda: self._dedup_filter_steps(source),
                T,
                [w / "deduped", rej / "minhash_dedup", rej / "decontaminate"],
                ("pii", "decontaminate"),
                self._decontamination_files(),
            ),
            Stage(
                "classifiers",
                self._classifier_steps,
                1 + (r.classifiers.quality is not None),  # one task per classifier
                [self.root / "classifiers"],
                ("classifiers",),
            ),
            Stage("select", self._select_steps, T, [self.root / "docs", rej / "quality"], ("output",)),
            Stage(
                "tokenizer",
                lambda: [
                    TokenizerBuilder(str(self.root / "tokenizer"), r.tokenizer, str(self.root / "docs"))
                ],
                1,
                [self.root / "tokenizer"],
                ("tokenizer",),
            ),
        ]
        return stages + [
            Stage("tokenize", self._tokenize_steps, T, [self.root / "tokens"], ()),
            Stage("report", lambda: [CorpusReport(self.root, [s.name for s in self.stages])], 1, [], ()),
        ]

    def _extract_steps(self) -> list:
        r = self.recipe
        steps = [
            *self._input_readers(),
            ReadLimits(r.extract.max_text_chars, self.rejected("read")),
            *recipe_extractors(r.extract, self.rejected).values(),
        ]
        if r.normalise.ftfy:
            steps.append(FTFYFormatter())
        if r.normalise.nfkc:
            steps.append(NfkcFormatter())
        lang, keep = r.languages, r.languages.keep
        steps += [
            OfflineLanguageFilter(keep, lang.threshold, lang.passage_threshold, self.rejected("language")),
            PassageFilter(
                heuristic_judges("document", keep, r.filters, passages=True),
                r.passages.min_chars,
                r.passages.target_chars,
                r.passages.min_repeats,
                r.passages.split,
                exclusion_writer=self.rejected("passages"),
                cut_writer=self.rejected("passages_cut"),
            ),
            HeuristicFilter(
                {kind: heuristic_judges(kind, keep, r.filters) for kind in SOURCE_KINDS},
                self.rejected("heuristics"),
            ),
            self.writer(self.work / "filtered"),
        ]
        return steps

    def _dedup_filter_steps(self, source: Path) -> list:
        steps: list = [self.reader(source)]
        if self.recipe.dedup.minhash:
            steps.append(
                MinhashClusterFilter(
                    str(self.work / "mh_clusters"),
                    exclusion_writer=self.rejected("minhash_dedup", "near_duplicate"),
                    load_cluster_sizes=True,
                )
            )
        if self.recipe.pii.emails or self.recipe.pii.ips:
            steps.append(PIIFormatter(remove_emails=self.recipe.pii.emails, remove_ips=self.recipe.pii.ips))
        if self.recipe.decontaminate:
            steps.append(
                Decontaminate(
                    self._decontamination_files(), self.recipe.decontaminate, self.rejected("decontaminate")
                )
            )
        steps.append(self.writer(self.work / "deduped"))
        return steps

    def _decontamination_files(self) -> list[Path]:
        return [path for task in self.recipe.decontamination_tasks() for path in task.files()]

    def _classifier_steps(self) -> list:
        out = str(self.root / "classifiers")
        clf = self.recipe.classifiers
        # seed text comes from documents already extracted: kept ones, and those the filters dropped
        extracted = [str(self.work / "filtered"), str(self.root / "rejected")]
        extract = self.recipe.extract  # seed files are read and extracted as inputs are
        steps = [ClassifierTrainer(out, "domain", clf.domain, extracted, task=0, extract=extract)]
        if clf.quality:
            steps.append(ClassifierTrainer(out, "quality", clf.quality, extracted, task=1, extract=extract))
        return steps

    def _select_steps(self) -> list:
        clf, out = self.recipe.classifiers, self.recipe.output
        models = self.root / "classifiers"
        steps: list = [self.reader(self.work / "deduped")]
        if clf.quality:
            steps.append(
                ClassifierScorer(
                    str(models / "quality.bin"),
                    "quality",
                    clf.quality.threshold,
                    clf.quality.max_chars,
                    exclusion_writer=self.rejected("quality"),
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
        writer_cls = JsonlWriter if out.docs_format == "jsonl" else ParquetWriter
        ext = "jsonl.gz" if out.docs_format == "jsonl" else "parquet"
        steps.append(writer_cls(str(self.root / "docs"), output_filename="${corpus}/${split}/${rank}." + ext))
        return steps

    def _tokenize_steps(self) -> list:
        jobs = []
        for corpus in CORPORA:
            for split in SPLITS:
                docs = str(self.root / "docs" / corpus / split)
                reader = (
                    self.reader(Path(docs))
                    if self.recipe.output.docs_format == "jsonl"
                    else StageParquetReader(docs)
                )
                tokenizer = shard_writer(
                    self.recipe, self.root / "tokens" / corpus / split, f"{corpus}_{split}"
                )
                jobs.append((reader, tokenizer))
        return [CorpusTokenizer(jobs)]

    # ---- running -------------------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Invalidate stages whose recipe sections or inputs changed (and all after them); return
        notices. A folder that cannot be removed raises before its stage's new fingerprint is written."""
        notices = []
        stale = False
        run_dir = self.recipe.run_dir
        for stage in self.stages:
            marker = self.root / "logs" / stage.name / "fingerprint"
            recorded = marker.read_text().strip() if marker.is_file() else None
            if stale or (recorded is not None and recorded != stage.fingerprint):
                if recorded is not None and not stale:
                    notices.append(
                        f"recipe or inputs changed since the last run: recomputing from stage `{stage.name}`"
                    )
                stale = True
                for folder in [*stage.outputs, self.root / "logs" / stage.name]:  # the marker last
                    remove_under(run_dir, folder)
            marker.parent.mkdir(parents=True, exist_ok=True)
            partial = marker.with_name(marker.name + ".tmp")
            partial.write_text(stage.fingerprint)
            os.replace(partial, marker)  # a crash leaves the old fingerprint or the new, never half
        owned = {folder for stage in self.stages for folder in stage.outputs}
        for folder in (self.root / "rejected").glob("*"):
            if folder not in owned:  # a step the recipe no longer has (e.g. dedup switched off)
                remove_under(run_dir, folder)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "recipe.yaml").write_text(
            yaml.safe_dump(self.recipe.model_dump(mode="json"), sort_keys=False)
        )
        return notices

    def executors(self) -> list:
        """One executor per stage; each depends on the previous (how Slurm chains its jobs)."""
        ex = self.recipe.executor
        chain = []
        for stage in self.stages:
            common = {
                "pipeline": stage.build(),
                "tasks": stage.tasks,
                "workers": min(ex.workers, stage.tasks),
                "logging_dir": str(self.root / "logs" / stage.name),
                "depends": chain[-1] if chain else None,
                "skip_completed": stage.name != "report",  # the report always reflects the current state
            }
            if ex.type == "local":
                from datatrove.executor import LocalPipelineExecutor

                chain.append(LocalPipelineExecutor(**common))
            elif ex.type == "ray":
                from datatrove.executor import RayPipelineExecutor

                chain.append(RayPipelineExecutor(**common))
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
            (self.root / "logs" / stage.name / "wall_seconds").write_text(
                f"{time.perf_counter() - start:.3f}"
            )
        return notices
