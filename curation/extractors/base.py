"""Shared machinery of extractors: a crash-proof sandbox with a time limit, and drop reasons."""

from abc import abstractmethod

from datatrove.data import Document
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.filters.base_filter import BaseFilter


class Rejected(Exception):
    """Raised by `extract` when a document cannot yield text; `reason` becomes the drop reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Extractor(BaseFilter):
    """Runs `extract` on documents of one `format` in datatrove's sandbox process.

    Unlike datatrove's BaseExtractor (which skips failures without a reason), every failure here
    is a drop with a reason (`timeout`, `crashed`, or the extractor's own), so the step's
    accounting holds: in = kept + dropped. Documents of other formats pass through untouched.
    The timeout is generous by default so the output does not depend on machine load.
    """

    type = "🛢 - EXTRAC"
    file_format: str

    def __init__(self, timeout: float, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.timeout = timeout
        self._sandbox: ExtractorSandbox | None = None

    @abstractmethod
    def extract(self, payload: bytes) -> tuple[str, dict]:
        """Return (text, metadata) or raise Rejected(reason)."""

    def _extract_safely(self, payload: bytes) -> tuple[str, dict] | Exception:
        # runs in the sandbox process: exceptions must be returned, not raised, to reach the parent
        try:
            return self.extract(payload)
        except Rejected as e:
            return e
        except Exception as e:  # a library bug on one document must not end the run
            return Rejected(f"error_{type(e).__name__}")

    def run(self, data, rank: int = 0, world_size: int = 1):
        with ExtractorSandbox(timeout=self.timeout, warmup_text=b"") as self._sandbox:
            yield from super().run(data, rank, world_size)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("format") != self.file_format:
            return True
        payload = doc.media[0].media_bytes if doc.media else doc.text.encode()
        try:
            text, metadata = self._sandbox.process_document(payload, self._extract_safely)
        except Rejected as e:
            return False, e.reason
        except TimeoutError:
            return False, "timeout"
        except EOFError:
            return False, "crashed"
        doc.text = text
        doc.media = []
        doc.metadata.update(metadata)
        doc.metadata["format"] = "text"
        doc.metadata["extracted_from"] = self.file_format
        return True
