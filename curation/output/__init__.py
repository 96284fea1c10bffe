"""Final shaping of the corpus: train/validation split and tokenizer preparation."""

from curation.output.split import TrainValSplit
from curation.output.tokenizer import TokenizerBuilder

__all__ = ["TokenizerBuilder", "TrainValSplit"]
