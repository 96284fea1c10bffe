"""Final stage: gathers stats, audits the tokenizers, and writes stats.json and report.html."""

import json

from datatrove.pipeline.base import PipelineStep

from contracts.layout import RunLayout
from curation.report.html import render_report
from curation.report.stats import collect
from curation.report.tokenizer_audit import TokenizerAudit, write_audit


class CorpusReport(PipelineStep):
    type = "📊 - REPORT"
    name = "📊 corpus report"

    def __init__(self, layout: RunLayout, stage_names: list[str], tokenizers: dict[str, str] | None = None):
        super().__init__()
        self.layout = layout
        self.stage_names = stage_names
        self.tokenizers = tokenizers or {"corpus": str(layout.tokenizer)}  # label -> source to audit

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stats = collect(self.layout, self.stage_names)
        stats["tokenizers"] = TokenizerAudit(self.tokenizers).run(self.layout)
        write_audit(stats["tokenizers"], self.layout)
        self.layout.corpus_stats.write_text(json.dumps(stats, indent=2))
        self.layout.corpus_report.write_text(render_report(self.layout, stats))
