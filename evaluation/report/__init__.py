"""What people read of the evaluation stage: the HTML pages of `eval`, `audit` and `merges` (written
beside their JSON results) and the console summaries the entry point prints."""

from evaluation.report.audit_page import render_audit_report, write_audit
from evaluation.report.console import audit_table, clean_subset_lines, eval_tables
from evaluation.report.eval_page import render_eval_report, write_eval
from evaluation.report.merge_page import render_merge_report, write_merges

__all__ = [
    "audit_table",
    "clean_subset_lines",
    "eval_tables",
    "render_audit_report",
    "render_eval_report",
    "render_merge_report",
    "write_audit",
    "write_eval",
    "write_merges",
]
