"""The trainer on a real corpus run: FSDP over gloo in real torchrun subprocesses, exact resume,
Hugging Face export, exact mixture proportions, and refusals before any work starts.

The stages are `main` then `cpt`: their names sort in the opposite order to the run's."""

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import pytest
import torch
import yaml
from conftest import ROOT, TINY_LLAMA, free_port
from fault_harness import kill_tree

from contracts.layout import EXPORT_MARKER
from training.data import PackedWindows, ReplayMixture, TokenShards

TINY = {
    "init": TINY_LLAMA,
    "seq_len": 64,
    "micro_batch": 2,
    "global_batch": 8,
    "eval_every": 4,
    "eval_batches": 2,
    "checkpoint_every": 4,
    "stages": [
        {
            "name": "main",
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


def train_recipe(corpus_run, name: str, select: dict | None = None, **overrides) -> Path:
    """A recipe named `name` whose corpus is the shared test corpus (linked, not rebuilt); `select`:
    its `select:` section (the budgets its `selections` train)."""
    work = corpus_run["work"]
    (work / "out" / name).mkdir(parents=True, exist_ok=True)
    link = work / "out" / name / "corpus"
    if not link.exists():
        link.symlink_to(corpus_run["root"])
    assert link.resolve() == corpus_run["root"].resolve(), f"{name} collides with another test's corpus"
    path = work / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": name, "output_dir": str(work / "out"), "train": TINY | overrides}
            | ({"select": select} if select else {})
        )
    )
    return path


def torchrun_command(recipe: Path, nproc: int = 2) -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    return command + ["--master-port", str(free_port()), "-m", "training", str(recipe)]


ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def torchrun(recipe: Path, nproc: int = 2, timeout: float = 900) -> subprocess.CompletedProcess:
    """The run to its end; one still running after `timeout` (hung in a collective) is killed and fails."""
    proc = subprocess.Popen(
        torchrun_command(recipe, nproc), cwd=ROOT, stdout=PIPE, stderr=PIPE, text=True, env=ENV
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun {recipe.name} still running after {timeout} s: {stderr[-2000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def metric_rows(train_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()]


def losses(train_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in metric_rows(train_dir) if "loss" in r}


@pytest.fixture(scope="module")
def trained(corpus_run):
    recipe = train_recipe(corpus_run, "train-trained")
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    return corpus_run["work"] / "out" / "train-trained" / "train"


def test_fsdp_training_lowers_the_loss(trained):
    rows = metric_rows(trained)
    base = [r for r in rows if r["stage"] == "main" and "val_loss" in r]
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
    kill_tree(proc)
    # the run may have got further before the kill landed: keep only the step-4 checkpoint, so the
    # resume starts mid-stage whatever the timing was
    for folder in (train_dir / "checkpoints").iterdir():
        if folder != marker.parent:
            shutil.rmtree(folder)
    shutil.rmtree(train_dir / "hf" / "cpt", ignore_errors=True)
    with open(train_dir / "metrics.jsonl", "a") as f:  # what a kill in the middle of a row leaves
        f.write('{"step": 17, "stage": "cpt", "stage_st')
    base_export = (train_dir / "hf" / "main" / "model.safetensors").stat().st_mtime
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stdout and "cpt-0000004" in result.stdout
    assert (train_dir / "hf" / "main" / "model.safetensors").stat().st_mtime == base_export  # not redone
    resumed, straight = losses(train_dir), losses(trained)
    assert [(r["stage"], r["step"], "loss" in r) for r in metric_rows(train_dir)] == [
        (r["stage"], r["step"], "loss" in r) for r in metric_rows(trained)
    ]  # each row once, none torn
    assert all(abs(resumed[s] - straight[s]) <= 1e-5 for s in straight), (resumed, straight)


def assert_export_matches_checkpoint(export: Path, folder: Path, scratch: Path) -> None:
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(export)
    dcp_to_torch_save(folder, scratch)
    weights = torch.load(scratch, weights_only=False)["model"]
    fresh = AutoModelForCausalLM.from_config(exported.config)
    fresh.load_state_dict(weights)
    tokens = torch.randint(0, exported.config.vocab_size, (2, 32))
    with torch.no_grad():
        assert torch.allclose(exported(tokens).logits, fresh(tokens).logits, atol=1e-6)


def test_exported_model_gives_the_checkpoint_logits(trained, tmp_path):
    assert_export_matches_checkpoint(
        trained / "hf" / "cpt", trained / "checkpoints" / "cpt-0000008", tmp_path / "final.pt"
    )
    assert (trained / "hf" / "cpt" / EXPORT_MARKER).is_file()


def test_an_export_cut_short_is_redone_without_training_again(corpus_run, trained, tmp_path):
    """A kill while `hf/cpt` was being written (after the stage's last checkpoint): the rerun exports
    it again from that checkpoint and trains no step."""
    recipe = train_recipe(corpus_run, "train-export-cut")
    train_dir = corpus_run["work"] / "out" / "train-export-cut" / "train"
    shutil.copytree(trained, train_dir)
    export = train_dir / "hf" / "cpt"
    shutil.rmtree(export)
    export.mkdir()  # what an export written in place leaves: a config, no weights
    shutil.copy(trained / "hf" / "cpt" / "config.json", export)
    metrics = (train_dir / "metrics.jsonl").read_text()
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stdout and "cpt-0000008" in result.stdout
    assert (train_dir / "metrics.jsonl").read_text() == metrics
    assert_export_matches_checkpoint(export, train_dir / "checkpoints" / "cpt-0000008", tmp_path / "final.pt")


def corpus_windows(corpus_run) -> dict[str, PackedWindows]:
    tokens = corpus_run["root"] / "tokens"
    return {
        n: PackedWindows(TokenShards(tokens / n / "train"), 32, seed=i)
        for i, n in enumerate(["domain", "replay"])
    }


def test_mixture_proportions_hold_in_every_batch(corpus_run):
    windows = corpus_windows(corpus_run)
    weights = {"domain": 0.8, "replay": 0.2}
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


@pytest.mark.parametrize("weights", [{"domain": 0.7, "replay": 0.3}, {"domain": 1, "replay": 1, "other": 1}])
def test_a_share_between_whole_sequences_holds_over_the_stage(corpus_run, weights):
    """0.7 of a global batch of 16 is 11.2 sequences: steps of 11 and 12, 0.7 within one sequence at
    every step (not 11 every step, which would train 0.6875), and the same after a resume."""
    windows = corpus_windows(corpus_run)
    windows["other"] = windows["domain"]
    shares = {n: w / sum(weights.values()) for n, w in weights.items()}
    mixture = ReplayMixture(windows, weights, 16, seed=3)
    read = dict.fromkeys(weights, 0)
    for step in range(40):
        if step == 20:  # a resume: a new mixture from the checkpointed cursors
            state = mixture.state_dict()
            mixture = ReplayMixture(windows, weights, 16, seed=3)
            mixture.load_state_dict(state)
        plan = [n for n, _ in mixture.global_batch(step)]
        for name, share in shares.items():
            assert math.floor(share * 16) <= plan.count(name) <= math.ceil(share * 16)
            read[name] += plan.count(name)
            assert abs(read[name] - share * 16 * (step + 1)) < 1


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


def test_a_model_whose_tokenizer_does_not_load_is_refused(corpus_run, tmp_path):
    """Only the vocabulary sizes could be compared: that needs the recipe's say-so."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from training.model import TokenizerMismatch, build_model

    model_dir = tmp_path / "no-tokenizer"
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=4096, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    ).save_pretrained(model_dir)
    corpus_tokenizer = corpus_run["root"] / "tokenizer"
    tokenizer = AutoTokenizer.from_pretrained(str(corpus_tokenizer))
    with pytest.raises(TokenizerMismatch) as refused:
        build_model(str(model_dir), None, tokenizer)
    message = str(refused.value)
    assert str(model_dir) in message and str(corpus_tokenizer) in message and "tokenizer_check" in message
    model = build_model(str(model_dir), None, tokenizer, tokenizer_check="vocab_size")
    assert model.config.vocab_size == 4096


def test_validation_with_an_odd_window_count_over_two_ranks(corpus_run):
    """Ranks dealt an unequal number of validation windows still run the same number of forwards
    (each one a collective under FSDP), and the loss is the single-process loss."""
    windows = PackedWindows(TokenShards(corpus_run["root"] / "tokens" / "domain" / "val"), TINY["seq_len"], 0)
    assert windows.count % 2 == 1, f"this test wants an odd number of validation windows, not {windows.count}"
    stage = {"name": "short", "mixture": {"domain": 1.0}, "steps": 2}
    settings = {"stages": [stage], "micro_batch": 1, "global_batch": 2, "eval_batches": windows.count}
    first_eval = {}
    for nproc in (2, 1):
        name = f"train-odd-validation-{nproc}"
        result = torchrun(train_recipe(corpus_run, name, **settings), nproc=nproc, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        rows = (corpus_run["work"] / "out" / name / "train" / "metrics.jsonl").read_text().splitlines()
        first_eval[nproc] = json.loads(rows[0])["val_loss"]
    assert first_eval[2] == first_eval[1]


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
    from selection.config import load_select_recipe
    from selection.run import run_selections
    from training.config import load_train_config

    half = {"tokens": 0.5, "method": "random"}
    recipe = train_recipe(corpus_run, "train-select", select={"budgets": {"half": half}}, selections=["half"])
    selection = run_selections(load_select_recipe(recipe))["half"]
    result = torchrun(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "selection `half` done" in result.stdout
    train = corpus_run["work"] / "out" / "train-select" / "train"
    run = load_train_config(recipe).for_selection("half")
    assert run.out.root == train / "selections" / "half" and run.train.model == str(train / "hf" / "main")
    assert len(TokenShards(run.train_tokens("domain"))) == selection["kept_tokens"] < selection["tokens"]
    assert (run.out.root / "hf" / "cpt" / "config.json").is_file()

    main_cpt = [r for r in metric_rows(train) if r["stage"] == "cpt"]
    selected = metric_rows(run.out.root)
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
    from test_model_import import write_gguf
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from selection.config import load_select_recipe
    from selection.run import run_selections
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
        select={"budgets": {"third": {"tokens": 0.3, "method": "random"}}},
    )
    run_selections(load_select_recipe(recipe))
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
    per_step = TINY["global_batch"] * stage["mixture"]["domain"] / sum(stage["mixture"].values())
    assert run.train.stages[0].steps == math.ceil(windows / per_step) != stage["steps"]
    rows = metric_rows(run.out.root)
    assert len([r for r in rows if "loss" in r]) == math.ceil(windows / per_step)
