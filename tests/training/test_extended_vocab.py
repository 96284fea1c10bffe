"""A pretrained-style model (the tiny Llama saved with its own tokenizer) trained on a corpus whose
tokenizer the real tokenizer and tokenize stages extended with tokens learnt on Japanese text."""

import gzip
import json
import shutil

import pytest
import torch
import yaml
from conftest import TINY_LLAMA, sample_texts, subset_recipe
from safetensors.torch import load_file
from test_training import torchrun
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from curation.config import load_corpus_recipe
from curation.pipeline import CorpusPipeline
from training.model import TokenizerMismatch, build_model
from training.vocab import base_pieces

NEW = 64


def write_docs(folder, texts: list[str]) -> None:
    folder.mkdir(parents=True)
    with gzip.open(folder / "00000.jsonl.gz", "wt") as f:
        f.writelines(
            json.dumps({"id": str(i), "text": t, "metadata": {}}) + "\n" for i, t in enumerate(texts)
        )


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    """Docs written straight into the corpus folder, then the pipeline's tokenizer and tokenize stages."""
    work = tmp_path_factory.mktemp("extended")
    models = {"untied": tiny[0]}
    torch.manual_seed(0)
    models["tied"] = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(tiny[1]), tie_word_embeddings=True, **TINY_LLAMA)
    )
    for name, model in models.items():
        model.save_pretrained(work / name)
        tiny[1].save_pretrained(work / name)
    tokenizer = {"train": None, "path": str(work / "untied"), "extend": {"tokens": NEW}}
    recipe = load_corpus_recipe(subset_recipe(work, "extended", tokenizer=tokenizer), check_paths=False)
    texts = {
        "domain": sample_texts("finance/gnucash/ja", 16),
        "replay": sample_texts("finance/gnucash/en", 16),
    }
    for corpus, docs in texts.items():
        write_docs(recipe.layout.corpus_docs(corpus, "train"), docs[:12])
        write_docs(recipe.layout.corpus_docs(corpus, "val"), docs[12:])
    pipeline = CorpusPipeline(recipe)
    for stage in pipeline.stages:
        if stage.name in ("tokenizer", "tokenize"):
            for step in pipeline.build(stage):
                step.run(None, 0, 1)
    return {
        "work": work,
        "layout": recipe.layout,
        "base": tiny[1],
        "extended": AutoTokenizer.from_pretrained(recipe.layout.tokenizer),
        "english": "\n".join(texts["replay"][:2]),
    }


def grown(run, name: str):
    return build_model(
        str(run["work"] / name), None, run["extended"], extension=run["layout"].tokenizer_extension
    )


@pytest.mark.parametrize("name", ["untied", "tied"])
def test_new_rows_are_the_mean_of_their_pieces_and_old_logits_are_unchanged(run, name):
    base, extended = run["base"], run["extended"]
    original = AutoModelForCausalLM.from_pretrained(run["work"] / name).eval()
    model = grown(run, name).eval()
    assert model.config.vocab_size == len(extended) == len(base) + NEW
    tables = {"input": model.get_input_embeddings().weight, "output": model.get_output_embeddings().weight}
    before = {
        "input": original.get_input_embeddings().weight,
        "output": original.get_output_embeddings().weight,
    }
    for token, id in extended.get_vocab().items():
        if id >= len(base):
            pieces = base_pieces(base, token)
            for side, table in tables.items():
                torch.testing.assert_close(table[id], before[side][pieces].mean(0))
    ids = torch.tensor([base.encode(run["english"])[:60]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits[..., : len(base)], original(ids).logits)


def test_focus_sources_in_extension_json_set_the_new_rows(run, tmp_path):
    """A new token that extension.json gives FOCUS `sources` starts as their weighted sum, on the input
    and the output side; the others still start as the mean of their pieces."""
    shutil.copytree(run["layout"].tokenizer, tmp_path / "tokenizer")
    record_file = tmp_path / "tokenizer" / "extension.json"
    record = json.loads(record_file.read_text())
    drawn = {record["added"][0]["id"]: [[5, 0.25], [17, 0.75]], record["added"][3]["id"]: [[40, 1.0]]}
    for entry in record["added"]:
        if entry["id"] in drawn:
            entry["sources"] = drawn[entry["id"]]
    record_file.write_text(json.dumps(record))
    original = AutoModelForCausalLM.from_pretrained(run["work"] / "untied")
    model = build_model(str(run["work"] / "untied"), None, run["extended"], extension=record_file)
    for side in ("get_input_embeddings", "get_output_embeddings"):
        table, before = getattr(model, side)().weight, getattr(original, side)().weight
        for entry in record["added"]:
            id = entry["id"]
            if id in drawn:
                expected = sum(weight * before[old] for old, weight in drawn[id])
            else:
                expected = before[base_pieces(run["base"], entry["token"])].mean(0)
            torch.testing.assert_close(table[id], expected)


def test_a_trained_extended_model_exports_resumes_and_loads(run):
    recipe = run["work"] / "train.yaml"
    stage = {"name": "ja", "mixture": {"domain": 1, "replay": 1}, "steps": 4}
    train = {"model": str(run["work"] / "untied"), "seq_len": 32, "micro_batch": 2, "global_batch": 4}
    train |= {"eval_every": 2, "eval_batches": 1, "checkpoint_every": 2, "stages": [stage]}
    output_dir = str(run["layout"].output_dir)
    recipe.write_text(yaml.safe_dump({"name": "extended", "output_dir": output_dir, "train": train}))
    result = torchrun(recipe, nproc=1, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    export = run["layout"].train.export("ja")
    model = AutoModelForCausalLM.from_pretrained(export)
    tokenizer = AutoTokenizer.from_pretrained(export)
    assert tokenizer.get_vocab() == run["extended"].get_vocab()
    assert model.get_input_embeddings().weight.shape[0] == len(run["base"]) + NEW
    trained = load_file(export / "model.safetensors")
    shutil.rmtree(export)  # exported again from the last checkpoint, loaded into the grown model
    result = torchrun(recipe, nproc=1, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stdout
    assert all(torch.equal(t, load_file(export / "model.safetensors")[k]) for k, t in trained.items())


def test_a_tokenizer_extended_from_another_base_or_without_its_record_is_refused(run, tmp_path):
    other = tmp_path / "other-base"
    shutil.copytree(run["work"] / "untied", other)
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["another base"])
    tokenizer.save_pretrained(other)
    with pytest.raises(TokenizerMismatch, match="no extension of it"):
        build_model(str(other), None, run["extended"], extension=run["layout"].tokenizer_extension)
    shutil.copytree(run["layout"].tokenizer, tmp_path / "tokenizer")
    (tmp_path / "tokenizer" / "extension.json").unlink()
    unrecorded = AutoTokenizer.from_pretrained(tmp_path / "tokenizer")
    with pytest.raises(TokenizerMismatch, match="no extension of it"):
        build_model(
            str(run["work"] / "untied"), None, unrecorded, extension=tmp_path / "tokenizer" / "extension.json"
        )
