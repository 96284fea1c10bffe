"""Final stage: gathers stats and writes stats.json and report.html."""

import json
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from curation.report.html import render_report
from curation.report.stats import collect


class CorpusReport(PipelineStep):
    type = "📊 - REPORT"
    name = "📊 corpus report"

    def __init__(self, root: Path, stage_names: list[str]):
        super().__init__()
        self.root = Path(root)
        self.stage_names = stage_names

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stats = collect(self.root, self.stage_names)
        (self.root / "stats.json").write_text(json.dumps(stats, indent=2))
        (self.root / "report.html").write_text(render_report(self.root, stats))
