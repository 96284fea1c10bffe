"""Readers for files that hold many records: JSONL, Parquet, local HF datasets, WARC.

What cannot be read within the limits (a record over `max_bytes` once decompressed, a malformed
line or file) becomes a document without text marked `read_rejected`, which `ReadLimits` rejects
with its reason and cause: nothing is skipped without a trace, and nothing is read whole.
"""

import re
import zlib

import orjson
from datatrove.data import Document, Media, MediaType
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader
from datatrove.pipeline.readers.base import BaseDiskReader

from contracts.documents import BalancedShards
from curation.extractors.base import Rejected
from curation.extractors.html import decode_text

UNREAD = "read_rejected"
CHUNK_BYTES = 1 << 20
MAX_RECORD_BYTES = 64 << 20
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)

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


def read_bounded(stream, limit: int) -> bytes | None:
    """The stream's bytes, read in chunks, or None once there are more than `limit`: a decompressing
    stream (a gzip bomb) stops at the limit instead of expanding in memory."""
    buf = bytearray()
    while chunk := stream.read(min(CHUNK_BYTES, limit + 1 - len(buf))):
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)


def bounded_lines(stream, limit: int):
    """The lines of a binary stream; None for a line over `limit` bytes, whose rest is read past in
    chunks and never held."""
    while line := stream.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        while (rest := stream.readline(CHUNK_BYTES)) and not rest.endswith(b"\n"):
            pass
        yield None


def unread(source: str, metadata: dict, rejected: Rejected, doc_id: str | None = None) -> Document:
    """A document in place of a file or record that could not be read; `ReadLimits` rejects it."""
    problem = {"reason": rejected.reason, "cause": rejected.cause}
    return Document(text="", id=doc_id or source, metadata=metadata | {"source": source, UNREAD: problem})


class KeepsEmptyRecords:
    """datatrove readers skip records without text; we keep them so a filter records why they left.
    A record that is not an object with a string text becomes a `malformed` document."""

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str):
        source = f"{source_file}#{id_in_file}"
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            parsed = self.adapter(dict(data), source_file, id_in_file)
            text = parsed.get("text") or ""
            if not isinstance(text, str):
                raise TypeError(f"`{self.text_key}` holds a {type(text).__name__}, not a string")
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            return unread(source, self.default_metadata or {}, Rejected("malformed", e))
        metadata = (self.default_metadata or {}) | parsed.get("metadata", {})
        metadata.setdefault("source", source)
        return Document(text=text, id=str(parsed["id"]), metadata=metadata)


class JsonlRecordReader(BalancedShards, KeepsEmptyRecords, JsonlReader):
    """JSONL, line by line within `max_bytes` (decompressed): a longer line is `too_large`, one that
    is not JSON `malformed`, and a file that stops decompressing ends with one `malformed` document."""

    def __init__(self, data_folder, max_bytes: int = MAX_RECORD_BYTES, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.max_bytes = max_bytes

    def _record(self, line: bytes | None, filepath: str, li: int) -> Document:
        if line is None:
            too_long = Rejected("too_large", f"line {li} is over {self.max_bytes:,} bytes")
            return unread(f"{filepath}#{li}", self.default_metadata or {}, too_long)
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            return unread(f"{filepath}#{li}", self.default_metadata or {}, Rejected("malformed", e))
        return self.get_document_from_dict(data, filepath, li)

    def read_file(self, filepath: str):
        li = 0
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
                for li, line in enumerate(bounded_lines(f, self.max_bytes)):
                    if line is not None and not line.strip():
                        continue
                    with self.track_time():
                        document = self._record(line, filepath, li)
                    yield document
        except (OSError, EOFError, zlib.error) as e:  # a truncated or corrupt .gz, an unreadable file
            yield unread(f"{filepath}#{li}", self.default_metadata or {}, Rejected("malformed", e))


class ParquetRecordReader(BalancedShards, KeepsEmptyRecords, ParquetReader):
    """A Parquet file that cannot be decoded ends with one `malformed` document (and its cause)."""

    def read_file(self, filepath: str):
        from pyarrow import ArrowException

        n = 0
        try:
            for document in super().read_file(filepath):
                yield document
                n += 1
        except (ArrowException, OSError) as e:
            yield unread(f"{filepath}#{n}", self.default_metadata or {}, Rejected("malformed", e))


class DatasetRecordReader(RotatedShards, KeepsEmptyRecords, HuggingFaceDatasetReader):
    """A local `datasets` folder written with `save_to_disk`."""

    def __init__(self, path: str, **kwargs):
        super().__init__(path, load_from_disk=True, **kwargs)


RECORD_READERS: dict[str, type[BaseDiskReader]] = {
    "jsonl": JsonlRecordReader,
    "parquet": ParquetRecordReader,
    "hf": DatasetRecordReader,
}


class WarcRecordReader(BalancedShards, BaseDiskReader):
    """Every `response`/`conversion` record becomes a raw document, whatever its content type.

    datatrove's WarcReader silently skips non-HTML payloads; here they travel on with their MIME
    type (`format: unsupported`) so the pipeline can reject them with a reason, PDFs found in a
    crawl are handed to the PDF extractor, and `text/plain` is decoded here and kept as text.
    Payloads are read (and their `Content-Encoding` decoded) in chunks up to `max_bytes`.
    """

    name = "🕷 WARC records"

    def __init__(self, data_folder, max_bytes: int = MAX_RECORD_BYTES, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.max_bytes = max_bytes

    def read_file(self, filepath: str):
        from warcio.archiveiterator import ArchiveIterator

        path, n = self.data_folder.resolve_paths(filepath), 0
        try:
            with self.data_folder.open(filepath, "rb") as f:
                for record in ArchiveIterator(f):
                    if record.rec_type not in ("response", "conversion"):
                        continue
                    with self.track_time():  # not around the yield: that would time the steps downstream
                        document = self._document(record, path)
                    n += 1
                    yield document
        except Exception as e:  # warcio's errors on a broken archive have no common base
            yield unread(f"{path}#{n}", self.default_metadata or {}, Rejected("malformed", e))

    def _document(self, record, path: str) -> Document:
        content_type = record.http_headers.get_header("Content-Type", "") if record.http_headers else ""
        mime = record.rec_headers.get("WARC-Identified-Payload-Type") or content_type
        mime = (mime or "text/plain").split(";")[0].strip().lower()
        url = record.rec_headers.get("WARC-Target-URI")
        source = f"{path}#{url}"
        doc_id = record.rec_headers.get("WARC-Record-ID") or source
        fmt = WARC_FORMATS.get(mime, "unsupported")
        metadata = (self.default_metadata or {}) | {
            "source": source,
            "url": url,
            "date": record.rec_headers.get("WARC-Date"),
            "format": fmt,
            "mime": mime,
        }
        try:
            payload = read_bounded(record.content_stream(), self.max_bytes)
        except Exception as e:  # a Content-Encoding that does not decode (zlib, brotli errors)
            return unread(source, metadata, Rejected("malformed", e), doc_id)
        if payload is None:
            too_large = Rejected("too_large", f"payload over {self.max_bytes:,} bytes once decoded")
            return unread(source, metadata, too_large, doc_id)
        if fmt == "text":
            declared = _CHARSET.search(content_type)
            text, codec = decode_text(payload, declared and declared.group(1))
            return Document(text=text, id=doc_id, metadata=metadata | {"charset": codec})
        media = Media(id=source, type=MediaType.DOCUMENT, url=url or "", media_bytes=payload)
        return Document(text="", id=doc_id, media=[media], metadata=metadata)


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
