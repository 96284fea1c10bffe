"""Readers turn files into Documents; nothing they find is skipped without a trace."""

from curation.readers.files import DocumentFileReader
from curation.readers.limits import ReadLimits
from curation.readers.records import (
    RECORD_READERS,
    StageParquetReader,
    StageReader,
    WarcRecordReader,
)

__all__ = [
    "DocumentFileReader",
    "RECORD_READERS",
    "ReadLimits",
    "StageParquetReader",
    "StageReader",
    "WarcRecordReader",
]
