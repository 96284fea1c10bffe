"""fastText classifiers: domain routing and quality filtering, trained from recipe seeds."""

from curation.classifiers.fasttext import (
    ClassifierScorer,
    ClassifierTrainer,
    FastTextSettings,
    SeedReader,
    fasttext_line,
)

__all__ = ["ClassifierScorer", "ClassifierTrainer", "FastTextSettings", "SeedReader", "fasttext_line"]
