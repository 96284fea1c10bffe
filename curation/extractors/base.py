"""Shared machinery of extractors: a crash-proof sandbox with a time limit, and drop reasons with causes."""

import signal
import traceback
from abc import abstractmethod
from collections.abc import Iterable, Iterator

from datatrove.data import Document
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.filters.base_filter import BaseFilter

TRACEBACK_LINES = 6  # the tail of a traceback kept with a rejected document
MESSAGE_CHARS = 500


def describe(error: BaseException) -> dict:
    """What rejected/ keeps of an exception: its type, message, the module whose code raised it (so
    a library regression reads as that library's failure), and the traceback's tail."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "?") if tb else type(error).__module__
    lines = "".join(traceback.format_exception(error)).splitlines()
    return {
        "type": type(error).__name__,
        "message": str(error)[:MESSAGE_CHARS],
        "module": module,
        "traceback": "\n".join(lines[-TRACEBACK_LINES:]),
    }


class Rejected(Exception):
    """Raised by `extract` when a document cannot yield text; `reason` becomes the drop reason.

    `cause` (a message, or the exception behind the reason) is kept in rejected/ metadata as
    `rejected_cause`; it is described where it is raised, since tracebacks do not leave the sandbox.
    """

    def __init__(self, reason: str, cause: str | BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cause = describe(cause) if isinstance(cause, BaseException) else cause and {"message": cause}


class Extractor(BaseFilter):
    """Runs `extract` on documents of one `format` in datatrove's sandbox process.

    Unlike datatrove's BaseExtractor (which skips failures without a reason), every failure here
    is a drop with a reason (`timeout`, `crashed`, `text_too_long`, or the extractor's own) and its
    cause, so the step's accounting holds: in = kept + dropped. Documents go to the sandbox one at
    a time, each with its own time limit, so a hostile document is the only one it rejects.
    Documents of other formats pass through untouched. The timeout is generous by default so the
    output does not depend on machine load.
    """

    type = "🛢 - EXTRAC"
    file_format: str

    def __init__(self, timeout: float, exclusion_writer=None, max_text_chars: int = 10_000_000):
        super().__init__(exclusion_writer)
        self.timeout = timeout
        self.max_text_chars = max_text_chars
        self._sandbox: ExtractorSandbox | None = None

    @abstractmethod
    def extract(self, payload: bytes) -> tuple[str, dict]:
        """Return (text, metadata) or raise Rejected(reason)."""

    def _extract_safely(self, payload: bytes) -> tuple[str, dict] | Rejected:
        # runs in the sandbox process: exceptions are returned, not raised, to reach the parent
        try:
            text, metadata = self.extract(payload)
        except Rejected as e:
            return e
        except Exception as e:  # a library bug on one document must not end the run
            return Rejected(f"error_{type(e).__name__}", e)
        if len(text) > self.max_text_chars:
            return Rejected("text_too_long", f"{len(text):,} characters, limit {self.max_text_chars:,}")
        return text, metadata

    def _in_sandbox(self, payload: bytes) -> tuple[str, dict] | Rejected:
        try:
            return self._sandbox.process_document((payload,), self._extract_safely)
        except Rejected as e:  # the sandbox raises the exceptions it receives
            return e
        except TimeoutError:
            return Rejected("timeout", f"no result within {self.timeout} s; the sandbox process was killed")
        except EOFError:
            code = self._sandbox.all_processes[-1].exitcode
            how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
            return Rejected("crashed", f"the sandbox process died ({how}; SIGKILL is usually out of memory)")

    def extract_all(self, payloads: Iterable[bytes]) -> Iterator[tuple[str, dict] | Rejected]:
        """Each payload's result, extracted in a sandbox process with the time limit (seed files and
        the report's backend comparison go through here too, never through `extract` directly)."""
        with ExtractorSandbox(timeout=self.timeout, warmup_text=(b"",)) as self._sandbox:
            for payload in payloads:
                yield self._in_sandbox(payload)

    def run(self, data, rank: int = 0, world_size: int = 1):
        with ExtractorSandbox(timeout=self.timeout, warmup_text=(b"",)) as self._sandbox:
            yield from super().run(data, rank, world_size)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("format") != self.file_format:
            return True  # other formats pass through
        payload = doc.media[0].media_bytes if doc.media else doc.text.encode()
        self.stat_update("input_bytes", value=len(payload))
        result = self._in_sandbox(payload)
        if isinstance(result, Rejected):
            if result.cause:
                doc.metadata["rejected_cause"] = result.cause
            return False, result.reason
        doc.text, doc.media = result[0], []
        doc.metadata.update(result[1])
        doc.metadata["format"], doc.metadata["extracted_from"] = "text", self.file_format
        return True
