"""Deterministic held-out validation split, so the trainer can never train on it."""

import hashlib

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


class TrainValSplit(PipelineStep):
    """Sets `split: val` for a stable `fraction` of documents, `train` for the rest.

    The hash is of the text, not the id (often a path): a document keeps its split wherever the
    data lives. A passage of a longer document (`passages.split`) is hashed by its parent's digest,
    so all of one filing's passages land on one side: validation never holds a page whose siblings
    were trained on.
    """

    type = "✂️ - SPLIT"
    name = "✂️ train/val split"

    def __init__(self, fraction: float, seed: int = 0):
        super().__init__()
        self.fraction = fraction
        self.seed = seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            key = doc.metadata.get("parent_digest") or doc.text
            digest = hashlib.sha1(f"{self.seed}:{key}".encode()).digest()
            split = "val" if int.from_bytes(digest[:4], "big") / 2**32 < self.fraction else "train"
            doc.metadata["split"] = split
            self.stat_update(split)
            yield doc
