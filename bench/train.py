"""Trainer benchmark: our loop against a plain PyTorch loop, and 2-process FSDP against 1 process.

Writes bench/results/train.json. Uses the default recipe's model and corpus (built if missing).
  python bench/train.py [--steps N]
On a GPU machine, also: tokens/s and MFU for a ~1B-parameter Llama in bf16 (--gpu-1b).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from contracts.layout import RunLayout

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT = RunLayout(ROOT / "out", "default")  # the corpus every benchmark run links to


def layout(name: str) -> RunLayout:
    return RunLayout(ROOT / "out", name)


def recipe(name: str, steps: int, train_overrides: dict | None = None) -> Path:
    data = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())
    train = data["train"] | {"eval_every": 10_000, "checkpoint_every": 10_000, "resume": "never"}
    train["stages"] = [{"name": "bench", "mixture": {"replay": 1.0}, "steps": steps}]
    data = {"name": name, "output_dir": "out", "train": train | (train_overrides or {})}
    run = layout(name)
    run.root.mkdir(parents=True, exist_ok=True)
    if not run.corpus.exists():
        run.corpus.symlink_to(DEFAULT.corpus.resolve())
    path = run.root / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def our_loop(nproc: int, steps: int, threads: int) -> dict:
    name = f"bench-train-{nproc}p"
    shutil.rmtree(layout(name).train.root, ignore_errors=True)
    path = recipe(name, steps)
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    command += ["--master-port", "29533", "-m", "training", str(path)]
    subprocess.run(
        command, cwd=ROOT, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rows = [json.loads(line) for line in layout(name).train.metrics.read_text().splitlines()]
    speeds = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][3:]  # after warm-up steps
    return {
        "processes": nproc,
        "threads_per_process": threads,
        "tokens_per_s": round(statistics.median(speeds), 1),
    }


def plain_loop(steps: int, threads: int) -> dict:
    """The same model, data, optimizer and clipping in one process: no FSDP, no torchrun."""
    import torch.nn.functional as F

    from training.config import load_train_config
    from training.data import PackedWindows, ReplayMixture, TokenShards, corpus_seed
    from training.model import build_model, corpus_tokenizer

    torch.set_num_threads(threads)
    cfg = load_train_config(recipe("bench-train-plain", steps)).train
    shards = TokenShards(DEFAULT.corpus_tokens("replay", "train"))
    windows = {"replay": PackedWindows(shards, cfg.seq_len, corpus_seed(cfg.seed, "replay"))}
    mixture = ReplayMixture(windows, {"replay": 1.0}, cfg.global_batch, seed=0)
    torch.manual_seed(cfg.seed)
    model = build_model(None, cfg.init, corpus_tokenizer(shards.tokenizer_path, DEFAULT.tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=cfg.betas, weight_decay=cfg.weight_decay)
    speeds = []
    for step in range(steps):
        began = time.perf_counter()
        for tokens, _ in mixture.micro_batches(step, 0, 1, cfg.micro_batch):
            logits = model(input_ids=tokens[:, :-1]).logits
            loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
            (loss / (cfg.global_batch // cfg.micro_batch)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        speeds.append(cfg.global_batch * cfg.seq_len / (time.perf_counter() - began))
    return {
        "processes": 1,
        "threads_per_process": threads,
        "tokens_per_s": round(statistics.median(speeds[3:]), 1),
    }


def gpu_1b(steps: int) -> dict:
    """A ~1B Llama in bf16 on one GPU through our loop: tokens/s and MFU."""
    init = {
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "max_position_embeddings": 2048,
    }
    name = "bench-train-gpu1b"
    shutil.rmtree(layout(name).train.root, ignore_errors=True)
    overrides = {"init": init, "seq_len": 2048, "micro_batch": 8, "global_batch": 16, "compile": True}
    path = recipe(name, steps, overrides)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "1",
        "-m",
        "training",
        str(path),
    ]
    subprocess.run(command, cwd=ROOT, check=True)
    rows = [json.loads(line) for line in layout(name).train.metrics.read_text().splitlines()]
    rows = [r for r in rows if "mfu" in r][5:]
    return {
        "device": torch.cuda.get_device_name(),
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows), 1),
        "mfu": round(statistics.median(r["mfu"] for r in rows), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--gpu-1b", action="store_true")
    args = parser.parse_args()
    os.chdir(ROOT)
    if not DEFAULT.tokens.is_dir():
        print("building the default corpus first ...", flush=True)
        subprocess.run([sys.executable, "-m", "curation", "run", "recipes/default.yaml"], check=True)
    cores = os.cpu_count() or 1
    result: dict = {"cpus": cores, "steps": args.steps}
    print("plain PyTorch loop ...", flush=True)
    result["plain_loop"] = plain_loop(args.steps, cores)
    print("our loop, 1 process ...", flush=True)
    result["our_loop_1_process"] = our_loop(1, args.steps, cores)
    print("our loop, 2 processes (FSDP over gloo) ...", flush=True)
    result["our_loop_2_processes"] = our_loop(2, args.steps, max(1, cores // 2))
    result["ours_vs_plain"] = round(
        result["our_loop_1_process"]["tokens_per_s"] / result["plain_loop"]["tokens_per_s"], 3
    )
    result["fsdp_2_vs_1"] = round(
        result["our_loop_2_processes"]["tokens_per_s"] / result["our_loop_1_process"]["tokens_per_s"], 3
    )
    if args.gpu_1b:
        result["gpu_1b_bf16"] = gpu_1b(args.steps)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
