"""Folders of documents as the stages hand them on (a corpus's `docs/`, a selection's `docs/`), and
how a folder's files are dealt to tasks: one reader for every stage that reads them."""

from __future__ import annotations

import itertools
from pathlib import Path

from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.readers.base import BaseDiskReader


def largest_first(files: list[str], sizes: list[int], n: int) -> list[list[str]]:
    """Deal files to `n` shards biggest first, each to the shard with the fewest bytes so far, so
    one large file (a 300-page PDF) does not land beside a full share of others."""
    shards: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for size, path in sorted(zip(sizes, files), key=lambda pair: (-pair[0], pair[1])):
        lightest = min(range(n), key=lambda k: (load[k], k))
        shards[lightest].append(path)
        load[lightest] += size
    return [sorted(shard) for shard in shards]


class BalancedShards:
    """Disk readers: balanced work per task, so no single task makes the whole stage wait.

    Files are dealt by size (`largest_first`), starting at task `shard_offset` so the inputs of
    several readers do not all pile onto task 0. An input with fewer files than tasks (one WARC, one
    JSONL dump) is dealt record by record instead: every task reads those files and keeps every
    `world_size`-th record. Reading is cheap next to extraction and filtering, and each record is
    still counted by exactly one task.

    With `record_limit` (an input's `limit`), every task reads the files in path order, dealt record
    by record, and the input ends after that many records: the same sample whatever the task count.
    """

    shard_offset = 0
    record_limit: int | None = None

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        files = self.data_folder.list_files(recursive=self.recursive, glob_pattern=self.glob_pattern)
        mine = (rank + self.shard_offset) % world_size
        if len(files) >= world_size and self.record_limit is None:
            shard = largest_first(files, [self.data_folder.size(f) for f in files], world_size)[mine]
        else:
            shard = sorted(files)
            counter = itertools.count()
            limit = self.record_limit
            read_all = type(self).read_file  # the class's, so a second run does not wrap the wrapper

            def read_mine(path):
                for doc, k in zip(read_all(self, path), counter):
                    if limit is not None and k >= limit:
                        return
                    if k % world_size == mine:
                        yield doc

            self.read_file = read_mine
        for doc in self.read_files_shard(shard):
            self.update_doc_stats(doc)
            yield doc


class DocsJsonlReader(BalancedShards, JsonlReader):
    """A stage's JSONL documents (`${rank}.jsonl.gz`), dealt to tasks by size."""


class DocsParquetReader(BalancedShards, ParquetReader):
    """A stage's Parquet documents, dealt to tasks by size."""


def docs_reader(folder: Path) -> BaseDiskReader:
    """A corpus's `docs/` (or any folder of JSONL / Parquet documents), as the later stages read it."""
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus folder {folder} does not exist (run `make corpus` first)")
    if any(folder.rglob("*.parquet")):
        return DocsParquetReader(str(folder), glob_pattern="**/*.parquet", default_metadata={})
    return DocsJsonlReader(str(folder), glob_pattern="**/*.jsonl*", default_metadata={})
