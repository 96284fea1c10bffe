"""Shared fixtures: a small real-document subset of the embedded sample and one corpus run on it."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
KIT = Path(os.environ.get("SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))

SUBSET = {  # folder under data/samples -> number of files (sorted, first N)
    "finance/gnucash/en": 14,
    "finance/gnucash/ja": 8,
    "finance/eqonomize": 6,
    "finance/economics": 3,
    "general/debian-handbook/en": 12,
    "general/debian-handbook/ja": 8,
    "general/python": 14,
    "general/postgresql": 14,
    "crawl": 1,
    "jsonl": 1,
    "bad": 7,
}
MIRRORS = ["*-mirror.html"]  # the sample's planted near-duplicates, with their originals
TINY_LLAMA = {  # the `train.init` of the training tests' tiny Llama (random weights)
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="session")
def tiny():
    """A tiny Llama (random weights) and a byte-level BPE trained on real Python docs, built here."""
    import gzip
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    with gzip.open(SAMPLES / "jsonl" / "python-doc-sources.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        bos_token_id=tokenizer.eos_token_id,  # else Llama's defaults (1, 2): byte tokens here
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


@pytest.fixture(scope="session")
def kit():
    if not (KIT / "MANIFEST.sha256").is_file():
        pytest.skip(f"shared data kit not found at {KIT}")
    return KIT


def _copy_subset(dest: Path) -> None:
    for folder, n in SUBSET.items():
        files = sorted(p for p in (SAMPLES / folder).iterdir() if p.is_file())
        chosen = files[:n]
        for pattern in MIRRORS:
            for mirror in (SAMPLES / folder).glob(pattern):
                original = mirror.with_name(mirror.name.replace("-mirror", ""))
                chosen += [mirror] + ([original] if original.exists() else [])
        (dest / folder).mkdir(parents=True, exist_ok=True)
        for f in sorted(set(chosen)):
            shutil.copy(f, dest / folder / f.name)


def free_port() -> int:
    """A port no process listens on now: torchrun's rendezvous, so concurrent runs never share one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_texts(folder: str, n: int) -> list[str]:
    """The first `n` HTML pages of a sample folder as text (trafilatura, as the pipeline extracts them)."""
    import trafilatura

    return [trafilatura.extract(p.read_text()) for p in sorted((SAMPLES / folder).glob("*.html"))[:n]]


def read_docs(folder: Path) -> list[dict]:
    """Every document (or rejected document) under a folder of datatrove `.jsonl.gz` shards."""
    import gzip
    import json

    docs = []
    for path in sorted(folder.rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            docs += [json.loads(line) for line in f]
    return docs


def subset_recipe(workdir: Path, name: str = "subset", **overrides) -> Path:
    """The default recipe pointed at a copied subset of the sample, with `overrides` merged in."""
    data = workdir / "samples"
    if not data.exists():
        _copy_subset(data)
    recipe = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())
    text = yaml.safe_dump(recipe).replace("data/samples", str(data))
    recipe = yaml.safe_load(text)
    recipe.update(name=name, output_dir=str(workdir / "out"))
    for section in ("mixsweep", "merge"):  # about the default's own training run, which tests replace
        recipe.pop(section)
    recipe["tokenizer"]["train"]["vocab_size"] = 2000
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = recipe[key] | value
        else:
            recipe[key] = value
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_corpus(recipe: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "curation", "run", str(recipe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        **kwargs,
    )


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory):
    """One real corpus run on the subset (local executor, 2 workers); many tests read its output."""
    work = tmp_path_factory.mktemp("corpus")
    recipe = subset_recipe(work)
    result = run_corpus(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"work": work, "recipe": recipe, "root": work / "out" / "subset" / "corpus", "result": result}
