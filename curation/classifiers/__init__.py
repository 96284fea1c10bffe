"""fastText classifiers: domain routing and quality filtering, trained from recipe seeds."""

from curation.classifiers.fasttext import ClassifierScorer, ClassifierTrainer, SeedReader

__all__ = ["ClassifierScorer", "ClassifierTrainer", "SeedReader"]
