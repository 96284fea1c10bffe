"""Transforms rewrite kept documents into training text (AdaptLLM's reading comprehension)."""

from curation.transforms.reading_comprehension import EXERCISE_TYPES, ReadingComprehension, mine

__all__ = ["EXERCISE_TYPES", "ReadingComprehension", "mine"]
