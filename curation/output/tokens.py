"""All token shards in one stage: every docs/<corpus>/<split>/ folder into tokens/<corpus>/<split>/."""

from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.tokens import DocumentTokenizer


def shard_writer(
    folder: Path, name: str, tokenizer_file: Path, eos_token: str, max_tokens_per_shard: int | None, seed: int
) -> DocumentTokenizer:
    """datatrove's tokenizer writing `folder/*.ds` with the corpus's tokenizer: what the trainer reads."""
    return DocumentTokenizer(
        str(folder),
        tokenizer_name_or_path=str(tokenizer_file),
        eos_token=eos_token,
        max_tokens_per_file=max_tokens_per_shard,
        seed=seed,
        save_filename=name,
    )


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
