"""Exclusion writer that records why a document left the pipeline."""

from datatrove.data import Document
from datatrove.pipeline.writers import JsonlWriter


class RejectedWriter(JsonlWriter):
    """`rejected/<step>/<rank>.jsonl.gz`; `reason` is the filter's, else the step's default."""

    def __init__(self, output_folder, step: str, default_reason: str | None = None):
        super().__init__(output_folder, output_filename="${rank}.jsonl.gz")
        self.step = step
        self.default_reason = default_reason or step

    def write(self, document: Document, rank: int = 0, **kwargs):
        document.metadata["rejected_step"] = self.step
        document.metadata["rejected_reason"] = (
            document.metadata.pop("filter_reason", None) or self.default_reason
        )
        document.media = []
        super().write(document, rank, **kwargs)
