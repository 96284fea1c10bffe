"""One Document per file (PDF, HTML): the raw bytes ride along as media for the extractor."""

from datatrove.data import Document, Media, MediaType
from datatrove.pipeline.readers.base import BaseDiskReader

from contracts.documents import BalancedShards
from curation.extractors.base import Rejected
from curation.readers.records import read_bounded, unread

MAX_FILE_BYTES = 256 << 20


class DocumentFileReader(BalancedShards, BaseDiskReader):
    """Reads whole files as raw bytes, up to `max_bytes`; decoding and extraction belong to the extractors.

    Every file yields a document, including 0-byte, unreadable and oversized ones (read no further
    than the limit), so the pipeline rejects them with a reason instead of the reader dropping them
    silently or holding a 2 GB file in memory.
    """

    name = "📄 Document files"

    def __init__(
        self,
        data_folder,
        file_format: str,
        glob_pattern: str | None = None,
        max_bytes: int = MAX_FILE_BYTES,
        **kwargs,
    ):
        super().__init__(data_folder, glob_pattern=glob_pattern, **kwargs)
        self.file_format = file_format
        self.max_bytes = max_bytes

    def read_file(self, filepath: str):
        with self.track_time():
            document = self._document(filepath)
        yield document

    def _document(self, filepath: str) -> Document:
        source = self.data_folder.resolve_paths(filepath)
        metadata = (self.default_metadata or {}) | {"source": source, "format": self.file_format}
        try:
            payload = None
            if self.data_folder.size(filepath) <= self.max_bytes:  # a 2 GB file is not opened
                with self.data_folder.open(filepath, "rb") as f:
                    payload = read_bounded(f, self.max_bytes)
        except OSError as e:
            return unread(source, metadata, Rejected("unreadable", e))
        if payload is None:
            return unread(source, metadata, Rejected("too_large", f"over {self.max_bytes:,} bytes"))
        media = Media(id=source, type=MediaType.DOCUMENT, url=source, media_bytes=payload)
        return Document(text="", id=source, media=[media], metadata=metadata)
