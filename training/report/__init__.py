"""What people read of the training stage: a run's curves.png and console summary, and the mixture
sweep's mixsweep/report.html."""

from training.report.curves import read_metrics, summarize
from training.report.mixsweep_page import write_report

__all__ = ["read_metrics", "summarize", "write_report"]
