"""The corpus tokenizer: a given one (local path or hub id), or a byte-level BPE trained here."""

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

from datatrove.pipeline.base import PipelineStep


def iter_texts(folder: Path):
    for path in sorted(folder.rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                yield json.loads(line)["text"]


class TokenizerBuilder(PipelineStep):
    """Writes `tokenizer/` (tokenizer.json + transformers files) that the token shards refer to:
    loaded from `path`, else trained on the documents of `train_dirs`."""

    type = "🔢 - TOKENIZER"
    name = "🔢 tokenizer"

    def __init__(
        self,
        output_dir: str,
        eos_token: str,
        path: str | None = None,
        train_dirs: Sequence[str] = (),
        vocab_size: int = 8192,
        min_frequency: int = 2,
    ):
        super().__init__()
        self.output_dir = output_dir
        self.eos_token = eos_token
        self.path = path
        self.train_dirs = train_dirs
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from transformers import AutoTokenizer, PreTrainedTokenizerFast

        out = Path(self.output_dir)
        if self.path:
            tok = AutoTokenizer.from_pretrained(self.path)
            if tok.eos_token is None:
                tok.add_special_tokens({"eos_token": self.eos_token})
        else:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

            bpe = Tokenizer(models.BPE())
            bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            bpe.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=self.vocab_size,
                min_frequency=self.min_frequency,
                special_tokens=[self.eos_token],
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )

            def texts():
                for folder in self.train_dirs:
                    yield from iter_texts(Path(folder))

            bpe.train_from_iterator(texts(), trainer=trainer)
            tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=self.eos_token)
        tok.save_pretrained(out)
        self.stat_update("vocab_size", value=len(tok))
