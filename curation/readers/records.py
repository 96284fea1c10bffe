"""Readers for files that hold many records: JSONL, Parquet, local HF datasets, WARC."""

import itertools
from pathlib import Path

from datatrove.data import Document, Media, MediaType
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader
from datatrove.pipeline.readers.base import BaseDiskReader

WARC_FORMATS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/plain": "text",
}


class RotatedShards:
    """Input number `shard_offset` deals its shards to tasks starting at that task, so small inputs
    of several readers do not all land on task 0."""

    shard_offset = 0

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        return super().run(data, (rank + self.shard_offset) % world_size, world_size)


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


class KeepsEmptyRecords:
    """datatrove readers skip records without text; we keep them so a filter records why they left."""

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str):
        parsed = self.adapter(dict(data), source_file, id_in_file)
        metadata = (self.default_metadata or {}) | parsed.get("metadata", {})
        metadata.setdefault("source", f"{source_file}#{id_in_file}")
        return Document(text=parsed.get("text") or "", id=str(parsed["id"]), metadata=metadata)


class JsonlRecordReader(BalancedShards, KeepsEmptyRecords, JsonlReader):
    pass


class ParquetRecordReader(BalancedShards, KeepsEmptyRecords, ParquetReader):
    pass


class DatasetRecordReader(RotatedShards, KeepsEmptyRecords, HuggingFaceDatasetReader):
    """A local `datasets` folder written with `save_to_disk`."""

    def __init__(self, path: str, **kwargs):
        super().__init__(path, load_from_disk=True, **kwargs)


RECORD_READERS: dict[str, type[BaseDiskReader]] = {
    "jsonl": JsonlRecordReader,
    "parquet": ParquetRecordReader,
    "hf": DatasetRecordReader,
}


def docs_folder_reader(folder: Path) -> BaseDiskReader:
    """A corpus's `docs/` (or any folder of JSONL / Parquet documents), as the later stages read it."""
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus folder {folder} does not exist (run `make corpus` first)")
    fmt = "parquet" if any(folder.rglob("*.parquet")) else "jsonl"
    pattern = "**/*.parquet" if fmt == "parquet" else "**/*.jsonl*"
    return RECORD_READERS[fmt](str(folder), glob_pattern=pattern, default_metadata={})


class WarcRecordReader(BalancedShards, BaseDiskReader):
    """Every `response`/`conversion` record becomes a raw document, whatever its content type.

    datatrove's WarcReader silently skips non-HTML payloads; here they travel on with their MIME
    type (`format: unsupported`) so the pipeline can reject them with a reason, and PDFs found in
    a crawl are handed to the PDF extractor.
    """

    name = "🕷 WARC records"

    def read_file(self, filepath: str):
        from warcio.archiveiterator import ArchiveIterator

        with self.data_folder.open(filepath, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type not in ("response", "conversion"):
                    continue
                with self.track_time():  # not around the yield: that would time the steps downstream
                    payload = record.content_stream().read()
                    mime = record.rec_headers.get("WARC-Identified-Payload-Type") or (
                        record.http_headers.get_header("Content-Type", "") if record.http_headers else ""
                    )
                    mime = (mime or "text/plain").split(";")[0].strip().lower()
                    url = record.rec_headers.get("WARC-Target-URI")
                    source = f"{self.data_folder.resolve_paths(filepath)}#{url}"
                    document = Document(
                        text="",
                        id=record.rec_headers.get("WARC-Record-ID") or source,
                        media=[Media(id=source, type=MediaType.DOCUMENT, url=url or "", media_bytes=payload)],
                        metadata=(self.default_metadata or {})
                        | {
                            "source": source,
                            "url": url,
                            "date": record.rec_headers.get("WARC-Date"),
                            "format": WARC_FORMATS.get(mime, "unsupported"),
                            "mime": mime,
                        },
                    )
                yield document


class SkipsMissingInput:
    """A previous stage's output may be empty (everything dropped): that is an empty input."""

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        if not self.data_folder.exists("") or not self.data_folder.list_files(glob_pattern=self.glob_pattern):
            return
        yield from super().run(None, rank, world_size)


class StageReader(SkipsMissingInput, JsonlReader):
    """Reads the JSONL documents a previous stage wrote."""


class StageParquetReader(SkipsMissingInput, ParquetReader):
    """Reads the Parquet documents a previous stage wrote."""
