"""Writers: where rejected documents go, each stamped with the step and reason that removed it."""

from curation.writers.rejected import RejectedWriter

__all__ = ["RejectedWriter"]
