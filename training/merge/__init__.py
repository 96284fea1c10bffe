"""Model merging after continual pretraining (`make merge`): mergekit's methods, streamed tensor by tensor."""

from training.merge.config import MergeError, MergeRecipe
from training.merge.merger import run_merges, summary

__all__ = ["MergeError", "MergeRecipe", "run_merges", "summary"]
