"""The corpus step that removes benchmark overlap: what `make audit` would find, the corpus loses."""

from __future__ import annotations

from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from contracts.contamination.index import ContaminationIndex, NgramSettings, Run, load_benchmark_texts
from contracts.contamination.units import UnitText


class Decontaminate(BaseFilter):
    """Cuts every matched span plus `margin_chars` each side and keeps the fragments that are long
    enough (GPT-3's rule); drops the document (`contaminated`) when it has more than `max_spans`
    matches, nothing long enough is left, or `action: documents` says whole documents go.
    """

    name = "🧪 Decontaminate"

    def __init__(
        self,
        task_files: list[Path],
        ngrams: NgramSettings | None = None,
        action: str = "spans",
        margin_chars: int = 200,
        min_fragment_chars: int = 200,
        max_spans: int = 10,
        exclusion_writer=None,
        batch_size: int = 64,
    ):
        super().__init__(exclusion_writer, batch_size)  # a batch is matched in one numpy pass
        self.action = action
        self.margin_chars = margin_chars
        self.min_fragment_chars = min_fragment_chars
        self.max_spans = max_spans
        self.index = ContaminationIndex(load_benchmark_texts(task_files), ngrams or NgramSettings())

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        runs: list[list[Run]] = [[] for _ in batch]
        for run in self.index.find(UnitText(*(doc.text for doc in batch))):
            runs[run.text].append(run)
        return [self._cut(doc, found) for doc, found in zip(batch, runs)]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def _cut(self, doc: Document, runs: list[Run]) -> bool | tuple[bool, str]:
        if not runs:
            return True
        text, margin = doc.text, self.margin_chars
        spans: list[list[int]] = []
        for run in sorted(runs, key=lambda r: r.start):
            start, end = max(0, run.start - margin), min(len(text), run.end + margin)
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        items = sorted({self.index.items[r.item].text.id for r in runs})
        doc.metadata["contamination"] = {"items": items[:20], "spans": len(spans)}
        self.stat_update("contaminated")
        if self.action == "documents" or len(spans) > self.max_spans:
            return False, "contaminated"
        bounds = [0] + [x for span in spans for x in span] + [len(text)]
        pieces = [text[a:b].strip() for a, b in zip(bounds[::2], bounds[1::2])]
        kept = [p for p in pieces if p and len(p) >= self.min_fragment_chars]
        if not kept:
            return False, "contaminated"
        doc.text = "\n\n".join(kept)
        self.stat_update("spans_removed", value=len(spans))
        self.stat_update("chars_removed", value=len(text) - len(doc.text))
        return True
