"""The trainer on a real corpus run: FSDP over gloo in real torchrun subprocesses, exact resume,
Hugging Face export, exact mixture proportions, and refusals before any work starts."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from conftest import ROOT

from training.data import PackedWindows, ReplayMixture, TokenShards, exact_counts

TINY = {
    "init": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
    },
    "seq_len": 64,
    "micro_batch": 2,
    "global_batch": 8,
    "eval_every": 4,
    "eval_batches": 2,
    "checkpoint_every": 4,
    "stages": [
        {
            "name": "base",
            "mixture": {"replay": 1.0},
            "steps": 12,
            "schedule": {"peak_lr": 3e-3, "final_lr": 3e-4, "warmup_steps": 2},
        },
        {
            "name": "cpt",
            "mixture": {"domain": 3, "replay": 1},
            "steps": 8,
            "schedule": {"kind": "wsd", "peak_lr": 2e-3, "final_lr": 2e-4, "warmup_steps": 2},
        },
    ],
}


def train_recipe(corpus_run, name: str, **overrides) -> Path:
    """A recipe named `name` whose corpus is the shared test corpus (linked, not rebuilt)."""
    work = corpus_run["work"]
    (work / "out" / name).mkdir(parents=True, exist_ok=True)
    link = work / "out" / name / "corpus"
    if not link.exists():
        link.symlink_to(corpus_run["root"])
    assert link.resolve() == corpus_run["root"].resolve(), f"{name} collides with another test's corpus"
    path = work / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({"name": name, "output_dir": str(work / "out"), "train": TINY | overrides})
    )
    return path


def torchrun_command(recipe: Path, nproc: int = 2) -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    return command + ["--master-port", str(29600 + os.getpid() % 300), "-m", "training", str(recipe)]


ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def torchrun(recipe: Path, nproc: int = 2, **kwargs):
    return subprocess.run(
        torchrun_command(recipe, nproc), cwd=ROOT, capture_output=True, text=True, env=ENV, **kwargs
    )


def losses(train_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.fixture(scope="module")
def trained(corpus_run):
    recipe = train_recipe(corpus_run, "train-trained")
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    return corpus_run["work"] / "out" / "train-trained" / "train"


def test_fsdp_training_lowers_the_loss(trained):
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    base = [r for r in rows if r["stage"] == "base" and "val_loss" in r]
    assert base[-1]["val_loss"]["replay"] < base[0]["val_loss"]["replay"] - 0.25  # from ln(vocab)
    cpt = [r for r in rows if r["stage"] == "cpt" and "val_loss" in r]
    assert cpt[-1]["val_loss"]["domain"] < cpt[0]["val_loss"]["domain"]
    assert all(k in rows[-1] for k in ("loss", "lr", "grad_norm", "tokens_per_s"))
    assert (trained / "curves.png").stat().st_size > 10_000


def test_interrupted_run_resumes_with_the_same_losses(corpus_run, trained):
    recipe = train_recipe(corpus_run, "train-interrupted")
    train_dir = corpus_run["work"] / "out" / "train-interrupted" / "train"
    proc = subprocess.Popen(
        torchrun_command(recipe),
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = train_dir / "checkpoints" / "cpt-0000004" / "trainer.json"  # mid-way through stage 2
    deadline = time.time() + 600
    while not marker.is_file():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.1)
    workers = psutil.Process(proc.pid).children(recursive=True)  # torchrun starts them in new sessions
    for process in [psutil.Process(proc.pid), *workers]:
        process.kill()
    psutil.wait_procs(workers, timeout=30)
    proc.wait()
    # the run may have got further before the kill landed: keep only the step-4 checkpoint, so the
    # resume starts mid-stage whatever the timing was
    for folder in (train_dir / "checkpoints").iterdir():
        if folder != marker.parent:
            shutil.rmtree(folder)
    shutil.rmtree(train_dir / "hf" / "cpt", ignore_errors=True)
    base_export = (train_dir / "hf" / "base" / "model.safetensors").stat().st_mtime
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stdout and "cpt-0000004" in result.stdout
    assert (train_dir / "hf" / "base" / "model.safetensors").stat().st_mtime == base_export  # not redone
    resumed, straight = losses(train_dir), losses(trained)
    assert resumed.keys() == straight.keys()
    assert all(abs(resumed[s] - straight[s]) <= 1e-5 for s in straight), (resumed, straight)


def test_exported_model_gives_the_checkpoint_logits(trained):
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(trained / "hf" / "cpt")
    dcp_to_torch_save(trained / "checkpoints" / "cpt-0000008", trained / "final.pt")
    weights = torch.load(trained / "final.pt", weights_only=False)["model"]
    fresh = AutoModelForCausalLM.from_config(exported.config)
    fresh.load_state_dict(weights)
    tokens = torch.randint(0, exported.config.vocab_size, (2, 32))
    with torch.no_grad():
        assert torch.allclose(exported(tokens).logits, fresh(tokens).logits, atol=1e-6)


def test_mixture_proportions_hold_in_every_batch(corpus_run):
    tokens = corpus_run["root"] / "tokens"
    windows = {
        n: PackedWindows(TokenShards(tokens / n / "train"), 32, seed=i)
        for i, n in enumerate(["domain", "replay"])
    }
    weights = {"domain": 0.8, "replay": 0.2}
    assert exact_counts(weights, 10) == {"domain": 8, "replay": 2}
    assert sum(exact_counts({"a": 1, "b": 1, "c": 1}, 16).values()) == 16
    mixture = ReplayMixture(windows, weights, 10, seed=3)
    again = ReplayMixture(windows, weights, 10, seed=3)
    for step in range(60):  # past one epoch of the smaller corpus
        per_rank = mixture.micro_batches(step, rank=0, world=2, micro=5)
        names = [n for _, batch in per_rank for n in batch]
        assert len(names) == 5
        plan = again.global_batch(step)
        assert sorted(n for n, _ in plan) == ["domain"] * 8 + ["replay"] * 2
        assert [n for n, _ in plan[:5]] == names  # rank 0's share is the plan's first half
        for name in ("domain", "replay"):  # the two instances advanced identically
            assert mixture.cursors[name].state_dict() == again.cursors[name].state_dict()


def test_a_model_with_another_tokenizer_is_refused(corpus_run, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(
        ["a different corpus " * 50], trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"])
    )
    other = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")
    model_dir = tmp_path / "other-model"
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=4096, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    ).save_pretrained(model_dir)
    other.save_pretrained(model_dir)
    recipe = train_recipe(corpus_run, "train-mismatch", init=None, model=str(model_dir))
    result = torchrun(recipe, nproc=1, timeout=300)
    assert result.returncode == 1
    assert "different tokenizer" in result.stderr and str(model_dir) in result.stderr
    assert not (corpus_run["work"] / "out" / "train-mismatch" / "train" / "checkpoints").exists()


def test_train_section_errors_name_the_key_and_file(corpus_run):
    recipe = train_recipe(corpus_run, "train-typo", micro_batchs=4)
    result = subprocess.run(
        [sys.executable, "-m", "training", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"{recipe}: train.micro_batchs: unknown key" in result.stderr


def test_a_diverging_run_stops_with_a_message_and_keeps_its_checkpoint(corpus_run):
    stage = {
        "name": "hot",
        "mixture": {"replay": 1.0},
        "steps": 6,
        "schedule": {"peak_lr": 1e4, "warmup_steps": 0},
    }
    recipe = train_recipe(corpus_run, "train-diverging", stages=[stage], checkpoint_every=1)
    result = torchrun(recipe, nproc=1, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "stopped before the optimizer step" in result.stderr
    assert list(
        (corpus_run["work"] / "out" / "train-diverging" / "train" / "checkpoints").glob("*/trainer.json")
    )


def test_activation_checkpointing_gives_the_same_losses(corpus_run):
    stage = {"name": "short", "mixture": {"replay": 1.0}, "steps": 3}
    runs = {}
    for flag in (False, True):
        name = f"train-checkpointing-{flag}".lower()
        recipe = train_recipe(corpus_run, name, stages=[stage], activation_checkpointing=flag)
        result = torchrun(recipe, nproc=1, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        runs[flag] = losses(corpus_run["work"] / "out" / name / "train")
    assert runs[True].keys() == runs[False].keys()
    assert all(abs(runs[True][s] - runs[False][s]) <= 1e-5 for s in runs[False])


def test_selection_runs_start_from_the_base_export_and_read_the_selection(corpus_run):
    from curation.recipe import BudgetConfig, SelectConfig, load_recipe
    from curation.select.stage import run_selections
    from training.config import load_train_config

    recipe = train_recipe(corpus_run, "train-select", selections=["half"])
    corpus_recipe = load_recipe(corpus_run["recipe"]).model_copy(
        update={
            "name": "train-select",
            "select": SelectConfig(budgets={"half": BudgetConfig(tokens=0.5, method="random")}),
        }
    )
    selection = run_selections(corpus_recipe)["half"]
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "selection `half` done" in result.stdout
    train = corpus_run["work"] / "out" / "train-select" / "train"
    run = load_train_config(recipe).for_selection("half")
    assert run.train_dir == train / "selections" / "half" and run.train.model == str(train / "hf" / "base")
    assert len(TokenShards(run.train_tokens("domain"))) == selection["kept_tokens"] < selection["tokens"]
    assert (run.train_dir / "hf" / "cpt" / "config.json").is_file()

    def rows(folder):
        return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]

    main_cpt = [r for r in rows(train) if r["stage"] == "cpt"]
    selected = rows(run.train_dir)
    assert {r["stage"] for r in selected} == {"cpt"}
    assert len([r for r in selected if "loss" in r]) == len([r for r in main_cpt if "loss" in r]) == 8
    # both cpt stages begin from the same weights (the base export) on the same validation text ...
    first = next(r["val_loss"] for r in selected if "val_loss" in r)
    assert first == pytest.approx(next(r["val_loss"] for r in main_cpt if "val_loss" in r), abs=1e-4)
    # ... and then train on different domain documents
    assert [r["loss"] for r in selected if "loss" in r] != [r["loss"] for r in main_cpt if "loss" in r]


def test_shard_digest_tells_same_sized_corpora_apart(corpus_run, tmp_path):
    shards = corpus_run["root"] / "tokens" / "domain" / "train"
    copy = tmp_path / "copy"
    shutil.copytree(shards, copy)
    assert TokenShards(copy).digest() == TokenShards(shards).digest()
    first = sorted(copy.glob("*.ds"))[0]
    data = bytearray(first.read_bytes())
    data[2:4], data[4:6] = data[4:6], data[2:4]  # two tokens swap places: same count, other data
    first.write_bytes(bytes(data))
    assert len(TokenShards(copy)) == len(TokenShards(shards))
    assert TokenShards(copy).digest() != TokenShards(shards).digest()


def test_training_starts_from_a_gguf_model(corpus_run, tmp_path):
    """`train.model: gguf:...` in 2 processes: rank 0 converts the file, every rank trains from it;
    a selection of the only stage starts from that model and reads its tokens once (`one_pass`)."""
    import math

    from test_model_import import write_gguf
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from curation.recipe import BudgetConfig, SelectConfig, load_recipe
    from curation.select.stage import run_selections
    from training.config import load_train_config

    tokenizer = AutoTokenizer.from_pretrained(corpus_run["root"] / "tokenizer")
    config = LlamaConfig(vocab_size=len(tokenizer), **TINY["init"], tie_word_embeddings=False)
    torch.manual_seed(0)
    path = tmp_path / "corpus-llama.gguf"
    write_gguf(LlamaForCausalLM(config), tokenizer, path)
    stage = TINY["stages"][1] | {"steps": 4}
    recipe = train_recipe(
        corpus_run,
        "train-gguf",
        init=None,
        model=f"gguf:{path}",
        stages=[stage],
        selections=["third"],
        selection_length="one_pass",
    )
    corpus_recipe = load_recipe(corpus_run["recipe"]).model_copy(
        update={
            "name": "train-gguf",
            "select": SelectConfig(budgets={"third": BudgetConfig(tokens=0.3, method="random")}),
        }
    )
    run_selections(corpus_recipe)
    result = torchrun(recipe, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = corpus_run["work"] / "out"
    converted = out / "models" / "corpus-llama"
    assert (converted / "source.json").is_file()
    assert (out / "train-gguf" / "train" / "hf" / "cpt" / "config.json").is_file()
    main = load_train_config(recipe)
    run = main.model_copy(
        update={"train": main.train.model_copy(update={"model": str(converted)})}
    ).for_selection("third")
    assert run.train.model == str(converted)  # the first stage's selection starts from the model
    windows = (len(TokenShards(run.train_tokens("domain"))) - 1) // TINY["seq_len"]
    per_step = exact_counts(stage["mixture"], TINY["global_batch"])["domain"]
    assert run.train.stages[0].steps == math.ceil(windows / per_step) != stage["steps"]
    rows = [json.loads(line) for line in (run.train_dir / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rows if "loss" in r]) == math.ceil(windows / per_step)
