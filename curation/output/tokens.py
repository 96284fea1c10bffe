"""All token shards in one stage: every docs/<corpus>/<split>/ folder into tokens/<corpus>/<split>/."""

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.tokens import DocumentTokenizer


class CorpusTokenizer(PipelineStep):
    """Runs datatrove's DocumentTokenizer on each (reader, tokenizer) pair for this task's rank.

    One stage instead of one per folder: on a local machine each stage costs a worker-pool start.
    """

    type = "🔢 - TOKENIZER"
    name = "🔢 corpus tokenizer"

    def __init__(self, jobs: list[tuple[BaseDiskReader, DocumentTokenizer]]):
        super().__init__()
        self.jobs = jobs

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        for reader, tokenizer in self.jobs:
            with self.track_time():
                tokenizer.run(reader.run(None, rank, world_size), rank, world_size)
            self.stats.stats = self.stats.stats + tokenizer.stats.stats
