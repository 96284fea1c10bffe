"""The corpus report: stats.json (numbers) and report.html (what a person opens)."""

from curation.report.step import CorpusReport

__all__ = ["CorpusReport"]
