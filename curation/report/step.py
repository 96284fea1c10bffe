"""Final stage: gathers stats and writes stats.json and report.html."""

import json

from datatrove.pipeline.base import PipelineStep

from contracts.layout import RunLayout
from curation.report.html import render_report
from curation.report.stats import collect


class CorpusReport(PipelineStep):
    type = "📊 - REPORT"
    name = "📊 corpus report"

    def __init__(self, layout: RunLayout, stage_names: list[str]):
        super().__init__()
        self.layout = layout
        self.stage_names = stage_names

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stats = collect(self.layout, self.stage_names)
        self.layout.corpus_stats.write_text(json.dumps(stats, indent=2))
        self.layout.corpus_report.write_text(render_report(self.layout, stats))
