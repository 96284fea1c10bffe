"""Readers turn files into Documents; nothing they find is skipped without a trace."""

from curation.readers.files import DocumentFileReader
from curation.readers.records import RecordReader, StageReader, WarcRecordReader

__all__ = ["DocumentFileReader", "RecordReader", "StageReader", "WarcRecordReader"]
