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

    def __init__(self, timeout: float, exclusion_writer=None, batch_size: int = 16):
        super().__init__(exclusion_writer, batch_size)
        self.timeout = timeout
        self._sandbox: ExtractorSandbox | None = None

    @abstractmethod
    def extract(self, payload: bytes) -> tuple[str, dict]:
        """Return (text, metadata) or raise Rejected(reason)."""

    def _extract_safely(self, payloads: list[bytes]) -> list[tuple[str, dict] | Rejected]:
        # runs in the sandbox process: exceptions are returned, not raised, to reach the parent
        results = []
        for payload in payloads:
            try:
                results.append(self.extract(payload))
            except Rejected as e:
                results.append(e)
            except Exception as e:  # a library bug on one document must not end the run
                results.append(Rejected(f"error_{type(e).__name__}"))
        return results

    def _in_sandbox(self, payloads: list[bytes]) -> list[tuple[str, dict] | Rejected]:
        """Documents go to the sandbox in batches (one round trip each); when a batch times out or
        kills the sandbox, its documents are retried one by one to find the one to blame."""
        try:
            self._sandbox.timeout = self.timeout * len(payloads)
            return self._sandbox.process_document((payloads,), self._extract_safely)
        except (TimeoutError, EOFError) as e:
            if len(payloads) == 1:
                return [Rejected("timeout" if isinstance(e, TimeoutError) else "crashed")]
            return [result for payload in payloads for result in self._in_sandbox([payload])]

    def run(self, data, rank: int = 0, world_size: int = 1):
        with ExtractorSandbox(timeout=self.timeout, warmup_text=([],)) as self._sandbox:
            yield from super().run(data, rank, world_size)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        mine = [doc for doc in batch if doc.metadata.get("format") == self.file_format]
        payloads = [doc.media[0].media_bytes if doc.media else doc.text.encode() for doc in mine]
        self.stat_update("input_bytes", value=sum(map(len, payloads)))
        results = dict(zip(map(id, mine), self._in_sandbox(payloads) if mine else []))
        verdicts = []
        for doc in batch:
            result = results.get(id(doc), True)  # other formats pass through
            if isinstance(result, Rejected):
                verdicts.append((False, result.reason))
                continue
            if result is not True:
                text, metadata = result
                doc.text, doc.media = text, []
                doc.metadata.update(metadata)
                doc.metadata["format"], doc.metadata["extracted_from"] = "text", self.file_format
            verdicts.append(True)
        return verdicts
