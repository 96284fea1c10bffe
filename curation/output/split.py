"""Deterministic held-out validation split, so the trainer can never train on it."""

import hashlib

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


class TrainValSplit(PipelineStep):
    """Sets `split: val` for a stable `fraction` of documents, `train` for the rest.

    The hash is of the text, not the id (often a path): a document keeps its split wherever the
    data lives.
    """

    type = "✂️ - SPLIT"
    name = "✂️ train/val split"

    def __init__(self, fraction: float, seed: int = 0):
        super().__init__()
        self.fraction = fraction
        self.seed = seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            digest = hashlib.sha1(f"{self.seed}:{doc.text}".encode()).digest()
            split = "val" if int.from_bytes(digest[:4], "big") / 2**32 < self.fraction else "train"
            doc.metadata["split"] = split
            self.stat_update(split)
            yield doc
