"""fastText classifiers: domain routing and quality filtering, trained from recipe seeds."""

from curation.classifiers.fasttext import ClassifierScorer, ClassifierTrainer, fasttext_line

__all__ = ["ClassifierScorer", "ClassifierTrainer", "fasttext_line"]
