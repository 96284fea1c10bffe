"""One Document per file (PDF, HTML): the raw bytes ride along as media for the extractor."""

from datatrove.data import Document, Media, MediaType
from datatrove.pipeline.readers.base import BaseDiskReader

from curation.readers.records import BalancedShards


class DocumentFileReader(BalancedShards, BaseDiskReader):
    """Reads whole files as raw bytes; decoding and extraction belong to the extractors.

    Every file yields a document, including 0-byte and unreadable ones, so the extractors can
    reject them with a reason instead of the reader dropping them silently.
    """

    name = "📄 Document files"

    def __init__(self, data_folder, file_format: str, glob_pattern: str | None = None, **kwargs):
        super().__init__(data_folder, glob_pattern=glob_pattern, **kwargs)
        self.file_format = file_format

    def read_file(self, filepath: str):
        with self.track_time():
            with self.data_folder.open(filepath, "rb") as f:
                payload = f.read()
        source = self.data_folder.resolve_paths(filepath)
        yield Document(
            text="",
            id=source,
            media=[Media(id=source, type=MediaType.DOCUMENT, url=source, media_bytes=payload)],
            metadata=(self.default_metadata or {}) | {"source": source, "format": self.file_format},
        )
