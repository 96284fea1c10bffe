"""Token shards, the format the corpus and selection stages write and the trainer reads: datatrove's
`.ds` files (token ids, document ends marked by the EOS token), written with the corpus's tokenizer."""

from pathlib import Path

from datatrove.pipeline.tokens import DocumentTokenizer
from pydantic import BaseModel, ConfigDict, Field

EOS_TOKEN = "<|endoftext|>"  # the default document separator (`tokenizer.eos_token`)


class ShardSettings(BaseModel):
    """How token shards are cut (the recipe's `output` section): a selection's shards are cut as the
    corpus's are."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    max_tokens_per_shard: int | None = Field(None, ge=1000)
    seed: int = 0


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
