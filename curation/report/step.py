"""Final stage: gathers stats, audits the tokenizers, and writes stats.json and report.html."""

import json

from datatrove.pipeline.base import PipelineStep

from contracts.layout import RunLayout
from contracts.publish import write_atomic
from curation.report.html import render_report
from curation.report.stats import collect
from curation.report.tokenizer_audit import TokenizerAudit, write_audit


class CorpusReport(PipelineStep):
    type = "📊 - REPORT"
    name = "📊 corpus report"

    def __init__(
        self,
        layout: RunLayout,
        stage_names: list[str],
        tokenizers: dict[str, str] | None = None,
        default_reasons: dict[str, str] | None = None,
    ):
        super().__init__()
        self.layout = layout
        self.stage_names = stage_names
        self.tokenizers = tokenizers or {"corpus": str(layout.tokenizer)}  # label -> source to audit
        self.default_reasons = default_reasons  # by datatrove step: the stages' declared `rejects`

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stats = collect(self.layout, self.stage_names, self.default_reasons)
        stats["tokenizers"] = TokenizerAudit(self.tokenizers).run(self.layout)
        write_audit(stats["tokenizers"], self.layout)
        write_atomic(self.layout.corpus_stats, json.dumps(stats, indent=2))
        write_atomic(self.layout.corpus_report, render_report(self.layout, stats))
