"""The corpus tokenizer: a given one (local path or hub id), or a byte-level BPE trained here."""

import gzip
import json
from pathlib import Path

from datatrove.pipeline.base import PipelineStep


def iter_texts(folder: Path):
    for path in sorted(folder.rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                yield json.loads(line)["text"]


class TokenizerBuilder(PipelineStep):
    """Writes `tokenizer/` (tokenizer.json + transformers files) that the token shards refer to."""

    type = "🔢 - TOKENIZER"
    name = "🔢 tokenizer"

    def __init__(self, output_dir: str, config, docs_dir: str):
        super().__init__()
        self.output_dir = output_dir
        self.config = config
        self.docs_dir = docs_dir

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from transformers import AutoTokenizer, PreTrainedTokenizerFast

        out = Path(self.output_dir)
        if self.config.path:
            tok = AutoTokenizer.from_pretrained(self.config.path)
            if tok.eos_token is None:
                tok.add_special_tokens({"eos_token": self.config.eos_token})
        else:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

            train = self.config.train
            corpora = ["domain", "replay"] if train.corpus == "both" else [train.corpus]
            bpe = Tokenizer(models.BPE())
            bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            bpe.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=train.vocab_size,
                min_frequency=train.min_frequency,
                special_tokens=[self.config.eos_token],
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )

            def texts():
                for corpus in corpora:
                    yield from iter_texts(Path(self.docs_dir) / corpus / "train")

            bpe.train_from_iterator(texts(), trainer=trainer)
            tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=self.config.eos_token)
        tok.save_pretrained(out)
        self.stat_update("vocab_size", value=len(tok))
