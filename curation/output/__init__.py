"""Final shaping of the corpus: train/validation split and tokenizer preparation."""

from curation.output.split import TrainValSplit
from curation.output.tokenizer import TokenizerBuilder
from curation.output.tokens import CorpusTokenizer

__all__ = ["CorpusTokenizer", "TokenizerBuilder", "TrainValSplit"]
