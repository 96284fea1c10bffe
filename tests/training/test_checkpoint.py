"""Checkpoints and exports in a real (one-process, gloo) process group: the order of a run's
checkpoints, what a kill leaves behind, and exports that appear only complete."""

import json

import pytest
import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM

from contracts.layout import EXPORT_MARKER, TrainLayout
from contracts.publish import partial_dir
from training import checkpoint


@pytest.fixture
def world_of_one(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.fixture
def model_and_optimizer():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.arange(8)[None], labels=torch.arange(8)[None]).loss.backward()
    optimizer.step()
    return model, optimizer


def state(stage: int, name: str, step: int, global_step: int) -> dict:
    return {
        "stage": stage,
        "stage_name": name,
        "step": step,
        "global_step": global_step,
        "data": {},
        "config": "fingerprint",
    }


def test_checkpoints_are_ordered_by_their_place_in_the_run(world_of_one, model_and_optimizer, tmp_path):
    """`main` then `anneal`: the later stage's name sorts first, yet its checkpoints are the newest."""
    model, optimizer = model_and_optimizer
    checkpoints = TrainLayout(tmp_path).checkpoints
    run = [(0, "main", 4, 4), (0, "main", 8, 8), (1, "anneal", 4, 12), (1, "anneal", 8, 16)]
    for index, name, step, global_step in run:
        folder = checkpoint.checkpoint_dir(checkpoints, name, step)
        checkpoint.save(folder, model, optimizer, state(index, name, step, global_step))
        assert checkpoint.latest(checkpoints) == folder
    kept = sorted(p.name for p in checkpoints.iterdir())
    assert kept == ["anneal-0000004", "anneal-0000008"]


def test_incomplete_checkpoints_are_skipped_and_removed(world_of_one, model_and_optimizer, tmp_path):
    model, optimizer = model_and_optimizer
    checkpoints = TrainLayout(tmp_path).checkpoints
    good = checkpoint.checkpoint_dir(checkpoints, "main", 4)
    torch.manual_seed(7)
    checkpoint.save(good, model, optimizer, state(0, "main", 4, 4))
    draw = torch.rand(3)
    # what kills leave: shards of a save in progress, and a checkpoint whose trainer.json is torn
    partial = partial_dir(checkpoint.checkpoint_dir(checkpoints, "main", 8))
    partial.mkdir()
    (partial / "__0_0.distcp").write_bytes(b"\0" * 64)
    torn = checkpoint.checkpoint_dir(checkpoints, "main", 12)
    torn.mkdir()
    (torn / "trainer.json").write_text(json.dumps(state(0, "main", 12, 12))[:30])
    assert checkpoint.latest(checkpoints) == good
    assert sorted(checkpoints.iterdir()) == [good]

    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    checkpoint.load(good, model, optimizer)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.rand(3), draw)  # the random stream continues where the save left it


def test_an_export_appears_only_complete(world_of_one, model_and_optimizer, tiny, tmp_path, monkeypatch):
    model, _ = model_and_optimizer
    _, tokenizer = tiny
    folder = TrainLayout(tmp_path).export("main")
    end = state(0, "main", 8, 8)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while the export was being written")

    with monkeypatch.context() as patch:
        patch.setattr(tokenizer, "save_pretrained", killed)
        with pytest.raises(KeyboardInterrupt):
            checkpoint.export_hf(model, tokenizer, folder, end)
    assert not folder.exists()  # readers (evaluation, selection runs) see no half-written model
    assert not checkpoint.exported(folder, end)
    checkpoint.export_hf(model, tokenizer, folder, end)
    assert (folder / "config.json").is_file() and (folder / EXPORT_MARKER).is_file()
    assert not partial_dir(folder).exists()
    assert checkpoint.exported(folder, end)
    assert not checkpoint.exported(folder, state(0, "main", 12, 12))
