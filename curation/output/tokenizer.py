"""The corpus tokenizer: a given one (local path or hub id), extended or not with tokens learnt on the
corpus, or a byte-level BPE trained here."""

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from loguru import logger


def iter_texts(folder: Path):
    for path in sorted(folder.rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                yield json.loads(line)["text"]


class TokenizerBuilder(PipelineStep):
    """Writes `tokenizer/` (tokenizer.json + transformers files) that the token shards refer to:
    loaded from `path`, else trained on the documents of `train_dirs`. With `extend_tokens`, the
    `path` tokenizer gains that many tokens learnt on `train_dirs`, recorded in `extension_file` with,
    under `extend_init: focus`, the old tokens each new one starts from."""

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
        extend_tokens: int = 0,
        extension_file: str | None = None,
        extend_init: str = "mean",
    ):
        super().__init__()
        self.output_dir = output_dir
        self.eos_token = eos_token
        self.path = path
        self.train_dirs = train_dirs
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.extend_tokens = extend_tokens
        self.extension_file = extension_file
        self.extend_init = extend_init

    def texts(self):
        for folder in self.train_dirs:
            yield from iter_texts(Path(folder))

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from transformers import AutoTokenizer, PreTrainedTokenizerFast

        out = Path(self.output_dir)
        if self.path:
            tok = AutoTokenizer.from_pretrained(self.path)
            if tok.eos_token is None:
                tok.add_special_tokens({"eos_token": self.eos_token})
            tok.save_pretrained(out)
            if self.extend_tokens:
                tok = self.extend(tok, out)
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
            bpe.train_from_iterator(self.texts(), trainer=trainer)
            tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=self.eos_token)
            tok.save_pretrained(out)
        self.stat_update("vocab_size", value=len(tok))

    def extend(self, base, out: Path):
        """The base with its new tokens, saved over it; `extension_file` says what base it extends
        (the trainer accepts a model with that tokenizer) and what it adds."""
        from transformers import AutoTokenizer

        from curation.output.extension import extend_bpe, focus_sources

        try:
            extended, added = extend_bpe(
                base.backend_tokenizer, self.texts(), self.extend_tokens, self.min_frequency
            )
        except ValueError as e:
            raise ValueError(f"tokenizer.extend: {self.path} is {e}") from None
        if len(added) < self.extend_tokens:
            logger.warning(
                f"tokenizer.extend: the corpus gave {len(added)} new tokens, not {self.extend_tokens}"
            )
        extended.save(str(out / "tokenizer.json"))
        vocab = base.get_vocab()
        ids = [extended.token_to_id(token) for token in added]
        entries = [{"id": i, "token": token, "text": extended.decode([i])} for i, token in zip(ids, added)]
        if self.extend_init == "focus":
            sources = focus_sources(extended, self.texts(), set(ids))
            for entry in entries:
                if entry["id"] in sources:
                    entry["sources"] = sources[entry["id"]]
            self.stat_update("focus_initialised", value=len(sources))
        record = {
            "base": self.path,
            "base_vocab_size": len(vocab),
            "base_vocab_sha256": hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest(),
            "init": self.extend_init,
            "added": entries,
        }
        Path(self.extension_file).write_text(json.dumps(record, ensure_ascii=False, indent=1))
        self.stat_update("added_tokens", value=len(added))
        return AutoTokenizer.from_pretrained(out)
