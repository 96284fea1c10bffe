"""The reading limits' verdicts: what a reader could not read leaves here with its reason and cause."""

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from curation.readers.records import UNREAD


class ReadLimits(BaseFilter):
    """Rejects the documents readers marked `read_rejected` (`too_large`, `malformed`, `unreadable`)
    and text records longer than `max_text_chars`, keeping the cause in `rejected_cause`.

    Readers have no exclusion writer; this step, right after them, gives their refusals one.
    """

    name = "📏 Read limits"

    def __init__(self, max_text_chars: int, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.max_text_chars = max_text_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if problem := doc.metadata.pop(UNREAD, None):
            if problem["cause"]:
                doc.metadata["rejected_cause"] = problem["cause"]
            return False, problem["reason"]
        if len(doc.text) > self.max_text_chars:
            doc.metadata["rejected_cause"] = {
                "message": f"{len(doc.text):,} characters, limit {self.max_text_chars:,}"
            }
            return False, "text_too_long"
        return True
