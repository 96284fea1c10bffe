"""The model to train: a Hugging Face causal LM by hub id or path, or a Llama built from a config,
checked against the tokenizer the corpus shards were written with."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerBase

from training.vocab import add_token_rows, extends, extension_sources


class TokenizerMismatch(RuntimeError):
    """The model would read token ids that mean something else to it."""


def corpus_tokenizer(shards_tokenizer: str, corpus_tokenizer_dir: Path) -> PreTrainedTokenizerBase:
    """The tokenizer named in the shards' metadata (a tokenizer.json inside the corpus folder)."""
    folder = Path(shards_tokenizer).parent
    if not (folder / "tokenizer.json").is_file():  # the corpus was built from another directory
        folder = corpus_tokenizer_dir
    return AutoTokenizer.from_pretrained(str(folder))


def check_vocabulary(
    model_config,
    model_source: str | None,
    tokenizer: PreTrainedTokenizerBase,
    check: str = "strict",
    extension: Path | None = None,
) -> PreTrainedTokenizerBase | None:
    """Refuse a model whose vocabulary differs from the shards' tokenizer, or cannot be compared with
    it: a model without a tokenizer is accepted on vocabulary size alone only when the recipe says so
    (`tokenizer_check: vocab_size`). A shards' tokenizer that `extension` (curation's extension.json)
    records as an extension of the model's own is accepted: the model's own is returned, to grow from."""
    base = None
    if model_source is not None:
        try:
            own = AutoTokenizer.from_pretrained(model_source)
        except (OSError, ValueError) as e:
            if check != "vocab_size":
                raise TokenizerMismatch(
                    f"the model `{model_source}` has no tokenizer that loads ({str(e).splitlines()[0]}), "
                    "so its vocabulary cannot be checked against the corpus tokenizer "
                    f"`{tokenizer.name_or_path}`: save the model's tokenizer beside it, or set "
                    "`train.tokenizer_check: vocab_size` if it is known to be the corpus tokenizer"
                ) from e
            own = None
        if own is not None and own.get_vocab() != tokenizer.get_vocab():
            if not extends(tokenizer, own, extension):
                raise TokenizerMismatch(
                    f"the model `{model_source}` uses a different tokenizer ({len(own)} tokens) from the "
                    f"one the corpus shards were written with ({len(tokenizer)} tokens), and the corpus "
                    f"tokenizer is no extension of it: rebuild the corpus with `tokenizer: {{path: "
                    f"{model_source}}}` in the recipe (and `extend:` to add tokens)"
                )
            base = own
    if base is None and model_config.vocab_size < len(tokenizer):
        raise TokenizerMismatch(
            f"the model's vocabulary ({model_config.vocab_size}) is smaller than the corpus tokenizer's "
            f"({len(tokenizer)}): token ids would fall outside its embedding table"
        )
    return base


def build_model(
    model: str | None,
    init: dict | None,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_check: str = "strict",
    extension: Path | None = None,
) -> torch.nn.Module:
    """Pretrained weights from `model` (grown to the tokenizer when it extends the model's own), or a
    new Llama sized to the tokenizer (vocab padded to 64)."""
    if model is not None:
        config = AutoConfig.from_pretrained(model)
        base = check_vocabulary(config, model, tokenizer, tokenizer_check, extension)
        pretrained = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        if base is not None:
            add_token_rows(pretrained, tokenizer, base, extension_sources(extension))
        return pretrained
    settings = {"vocab_size": -(-len(tokenizer) // 64) * 64, "tie_word_embeddings": False} | dict(init)
    settings.setdefault("eos_token_id", tokenizer.eos_token_id)
    config = LlamaConfig(**settings)
    check_vocabulary(config, None, tokenizer)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs per token: 6 * non-embedding parameters + 12 * layers * hidden * seq_len."""
    config = model.config
    embedding = model.get_input_embeddings().weight.numel()
    n = sum(p.numel() for p in model.parameters()) - embedding
    return 6 * n + 12 * config.num_hidden_layers * config.hidden_size * seq_len
