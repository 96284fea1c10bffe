"""The continual-pretraining loop, top to bottom: stages, steps, evaluation, checkpoints, export.

Writes under `out/<name>/train/`: metrics.jsonl (one line per step and per evaluation),
checkpoints/<stage>-<step>/ (DCP), hf/<stage>/ (Hugging Face folders), curves.png. A killed run
resumes from its newest complete checkpoint: the metrics written after it are dropped, and an export
the kill interrupted is redone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from contracts.publish import write_atomic
from training import checkpoint
from training.config import RunConfig, Schedule, TrainStage
from training.data import PackedWindows, ReplayMixture, TokenShards, corpus_seed, validation_batches
from training.model import build_model, corpus_tokenizer, flops_per_token
from training.parallel import apply_fsdp
from training.schedule import learning_rate

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


class TrainingStopped(RuntimeError):
    """The loss went NaN/inf: the run stops and keeps the last good checkpoint."""


class MixtureNotFitted(RuntimeError):
    """A `mixture: auto` stage was reached before `make mixsweep` wrote its fit: the stages before it
    are done and kept."""


def sequence_losses(model, tokens: torch.Tensor) -> torch.Tensor:
    """Each sequence's mean next-token loss. No KV cache: training never reuses it, and a cache built
    in every forward made compiled blocks recompile until dynamo gave up (measured on an H200)."""
    logits = model(input_ids=tokens[:, :-1], use_cache=False).logits
    return F.cross_entropy(logits.float().transpose(1, 2), tokens[:, 1:], reduction="none").mean(1)


def next_token_loss(model, tokens: torch.Tensor) -> torch.Tensor:
    return sequence_losses(model, tokens).mean()


class Trainer:
    """Trains the run's stages in order, exporting each (`export=False`: a mixture-sweep run, whose
    result is its validation losses)."""

    def __init__(self, run: RunConfig, export: bool = True):
        self.run, self.cfg, self.exports = run, run.train, export
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = torch.device(
            f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"
        )
        self.bf16 = self.device.type == "cuda" and self.cfg.precision != "fp32"
        self.out = run.out
        per_step = self.world * self.cfg.micro_batch
        if self.cfg.global_batch % per_step:
            raise ValueError(
                f"train.global_batch ({self.cfg.global_batch}) must be a multiple of micro_batch x processes "
                f"({self.cfg.micro_batch} x {self.world})"
            )
        self.accum = self.cfg.global_batch // per_step
        names = sorted({name for stage in self.cfg.stages for name in stage.corpora})
        self.train_windows = {
            n: PackedWindows(
                TokenShards(run.train_tokens(n)), self.cfg.seq_len, corpus_seed(self.cfg.seed, n)
            )
            for n in names
        }
        self.val = {
            n: validation_batches(
                PackedWindows(TokenShards(run.layout.corpus_tokens(n, "val")), self.cfg.seq_len, 0),
                self.cfg.eval_batches,
                self.cfg.micro_batch,
                self.rank,
                self.world,
            )
            for n in sorted(p.parent.name for p in run.layout.tokens.glob("*/val"))
        }  # every corpus's, read by the stage or not: what training on one costs the others shows
        shards_tokenizer = next(iter(self.train_windows.values())).shards.tokenizer_path
        self.tokenizer = corpus_tokenizer(shards_tokenizer, run.layout.tokenizer)
        torch.manual_seed(self.cfg.seed)
        extension = run.layout.tokenizer_extension
        model = build_model(
            self.cfg.model, self.cfg.init, self.tokenizer, self.cfg.tokenizer_check, extension
        )
        self.model = model.to(self.device)
        self.flops_per_token = flops_per_token(self.model, self.cfg.seq_len)
        apply_fsdp(
            self.model,
            self.device.type,
            self.world,
            self.bf16,
            self.cfg.activation_checkpointing,
            self.cfg.compile,
        )
        self.loggers = self._loggers()

    def fingerprint(self, stage: int) -> str:
        """What a checkpoint in stage `stage` was trained with: the settings, the stages up to it and
        their corpora (a rebuilt corpus, or another selection of the same size, is other data). Later
        stages are left out, so a finished stage resumes when the ones after it change (a fitted
        `mixture: auto`, an added stage)."""
        settings = self.cfg.model_dump(
            mode="json", exclude={"resume", "tensorboard", "wandb", "eval_every", "tokenizer_check"}
        )
        settings["stages"] = settings["stages"][: stage + 1]
        names = sorted({n for s in self.cfg.stages[: stage + 1] for n in s.corpora})
        corpus = {n: self.train_windows[n].shards.digest() for n in names}
        return hashlib.sha256(json.dumps([settings, corpus], sort_keys=True).encode()).hexdigest()[:16]

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _loggers(self) -> list:
        if self.rank != 0:
            return []
        loggers = []
        for key, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
            if getattr(self.cfg, key) and importlib.util.find_spec(module) is None:
                raise ValueError(f"train.{key} is set but `{module}` is not installed: pip install {module}")
        if self.cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out.tensorboard))
            loggers.append(lambda row: [writer.add_scalar(k, v, row["step"]) for k, v in _scalars(row)])
        if self.cfg.wandb:
            import wandb

            wandb.init(project=self.cfg.wandb, name=self.run.name, dir=str(self.out.root))
            loggers.append(lambda row: wandb.log(dict(_scalars(row)), step=row["step"]))
        return loggers

    def log(self, row: dict) -> None:
        if self.rank != 0:
            return
        with open(self.out.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the checkpoint that follows it
        for logger in self.loggers:
            logger(row)

    def _truncate_metrics(self, state: dict) -> None:
        """After a resume, the lines the interrupted run wrote past its checkpoint (a torn last line
        among them) are dropped: the resumed run writes them again."""
        if self.rank == 0 and self.out.metrics.is_file():
            step, stage = state["global_step"], state["stage_name"]
            kept = []
            for line in self.out.metrics.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row["step"] < step or (row["step"] == step and row["stage"] == stage):
                    kept.append(line + "\n")
            write_atomic(self.out.metrics, "".join(kept))

    # ---- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        losses = {}
        for name, batches in self.val.items():
            total = torch.zeros(2, dtype=torch.float64, device=self.device)
            for tokens, weights in batches:  # the same count on every rank: padding weighs 0
                weights = weights.to(self.device)
                per_sequence = sequence_losses(self.model, tokens.to(self.device)).double()
                total += torch.stack([(per_sequence * weights).sum(), weights.sum()])
            dist.all_reduce(total)
            losses[name] = round((total[0] / total[1]).item(), 5)
        self.model.train()
        return losses

    # ---- the loop ------------------------------------------------------------------------------
    def train(self) -> None:
        self.out.root.mkdir(parents=True, exist_ok=True)
        resume, state = self._starting_point()
        global_step = state["global_step"]
        for index, stage in enumerate(self.cfg.stages):
            total = stage.length(self.cfg.global_batch, self.cfg.seq_len)
            finished = index < state["stage"] or (index == state["stage"] and state["step"] >= total)
            if resume is not None and finished:
                export = self.out.export(stage.name)
                if index == state["stage"] and self.exports and not checkpoint.exported(export, state):
                    checkpoint.load(resume, self.model)  # the run was killed while exporting the stage
                    self._export(stage, state)
                continue
            if stage.mixture == "auto":
                raise MixtureNotFitted(
                    f"stage `{stage.name}` has `mixture: auto` and {self.run.layout.mixsweep_fit} does not "
                    "exist yet: run `make mixsweep`, then `make train` again (the stages before it are kept)"
                )
            optimizer = torch.optim.AdamW(
                self.model.parameters(),
                lr=stage.schedule.peak_lr,
                betas=self.cfg.betas,
                weight_decay=self.cfg.weight_decay,
                foreach=self.device.type == "cuda",
            )
            mixture = ReplayMixture(
                {n: self.train_windows[n] for n in stage.mixture},
                stage.mixture,
                self.cfg.global_batch,
                corpus_seed(self.cfg.seed, stage.name),
            )
            start = 0
            if resume is not None and index == state["stage"]:
                checkpoint.load(resume, self.model, optimizer)
                mixture.load_state_dict(state["data"])
                start = state["step"]
            elif resume is not None:  # the checkpoint ended an earlier stage: its weights carry over
                checkpoint.load(resume, self.model)
            resume = None
            end = self._train_stage(index, stage, total, start, global_step, optimizer, mixture)
            global_step = end["global_step"]
            self._export(stage, end)

    def _starting_point(self) -> tuple[Path | None, dict]:
        """The checkpoint to resume from (None for a fresh start) and the trainer state to start at."""
        resume = checkpoint.latest(self.out.checkpoints) if self.cfg.resume == "auto" else None
        if resume is None:
            if self.rank == 0:  # a fresh start: no checkpoint of an earlier run outranks or joins ours
                shutil.rmtree(self.out.checkpoints, ignore_errors=True)
                self.out.metrics.unlink(missing_ok=True)
            return None, {"stage": 0, "step": 0, "global_step": 0, "data": None}
        state = checkpoint.trainer_state(resume)
        if state.get("config") != self.fingerprint(state["stage"]):
            raise ValueError(
                f"{resume} was written with a different `train:` section or corpus; resuming "
                f"would continue in the wrong place: delete {self.out.root} or set `train.resume: never`"
            )
        self._truncate_metrics(state)
        if self.rank == 0:
            print(f"resuming from {resume} (stage `{state['stage_name']}`, step {state['step']})", flush=True)
        return resume, state

    def _export(self, stage: TrainStage, state: dict) -> None:
        """The stage's Hugging Face folder, from the weights of its last checkpoint (`state`)."""
        if not self.exports:
            return
        folder = self.out.export(stage.name)
        checkpoint.export_hf(self.model, self.tokenizer, folder, state)
        if self.rank == 0:
            print(f"stage `{stage.name}` done: Hugging Face model in {folder}", flush=True)

    def _train_stage(self, index, stage, total, start, global_step, optimizer, mixture) -> dict:
        """Steps `start`..`total` of the stage; returns the trainer state of its last checkpoint."""
        bar = tqdm(
            total=total, initial=start, desc=f"stage {stage.name}", disable=self.rank != 0, dynamic_ncols=True
        )
        if start == 0:
            self.log(
                {
                    "step": global_step,
                    "stage": stage.name,
                    "stage_step": 0,
                    "tokens": 0,
                    "val_loss": self.evaluate(),
                }
            )
        for step in range(start, total):
            began = time.perf_counter()
            lr = self._set_learning_rate(optimizer, stage.schedule, step, total)
            loss, grad_norm = self._optimizer_step(optimizer, mixture, stage, step)
            global_step += 1
            row = self._step_row(stage, step, global_step, loss, lr, grad_norm, time.perf_counter() - began)
            last = step + 1 == total
            if (step + 1) % self.cfg.eval_every == 0 or last:
                row["val_loss"] = self.evaluate()
            self.log(row)
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}")
            bar.update()
            if (step + 1) % self.cfg.checkpoint_every == 0 or last:
                state = self._save_checkpoint(index, stage, step + 1, global_step, optimizer, mixture)
        bar.close()
        return state

    @staticmethod
    def _set_learning_rate(optimizer, schedule: Schedule, step: int, total: int) -> float:
        lr = learning_rate(
            step,
            total,
            schedule.kind,
            schedule.peak_lr,
            schedule.final_lr,
            schedule.warmup_steps,
            schedule.decay_fraction,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _optimizer_step(self, optimizer, mixture, stage: TrainStage, step: int) -> tuple[float, float]:
        """One global batch (micro-batches accumulated), clipped, then the update: (loss, grad norm).
        A non-finite loss or gradient stops the run before the update, so the checkpoints stay good."""
        loss_sum = torch.zeros((), device=self.device)
        for tokens, _ in mixture.micro_batches(step, self.rank, self.world, self.cfg.micro_batch):
            loss = next_token_loss(self.model, tokens.to(self.device))
            (loss / self.accum).backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
        dist.all_reduce(loss_sum)
        loss_value, norm = loss_sum.item() / (self.accum * self.world), grad_norm.item()
        if not math.isfinite(loss_value) or not math.isfinite(norm):
            raise TrainingStopped(
                f"stage `{stage.name}` step {step}: the loss is {loss_value} "
                f"(grad norm {norm}); stopped before the optimizer step. The last good "
                f"checkpoint is kept in {self.out.checkpoints}: lower the learning rate, then run "
                "again to resume from it"
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss_value, norm

    def _step_row(self, stage: TrainStage, step: int, global_step: int, loss, lr, grad_norm, seconds) -> dict:
        """A training step's metrics line (the caller adds `val_loss` when validation is due)."""
        cfg = self.cfg
        tokens_per_s = cfg.global_batch * cfg.seq_len / seconds
        row = {
            "step": global_step,
            "stage": stage.name,
            "stage_step": step + 1,
            "loss": round(loss, 5),
            "lr": lr,
            "grad_norm": round(grad_norm, 5),
            "tokens_per_s": round(tokens_per_s, 1),
            "tokens": (step + 1) * cfg.global_batch * cfg.seq_len,  # since the stage began
            "seconds": round(seconds, 3),  # the step alone: no validation or checkpoint time
        }
        if self.device.type == "cuda":
            peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in torch.cuda.get_device_name()), None)
            if peak:
                row["mfu"] = round(self.flops_per_token * tokens_per_s / (peak * self.world), 4)
        return row

    def _save_checkpoint(
        self, index, stage: TrainStage, step: int, global_step: int, optimizer, mixture
    ) -> dict:
        """The trainer state after `step` steps of the stage, saved with the weights; returned for the
        export that ends the stage."""
        state = {
            "stage": index,
            "stage_name": stage.name,
            "step": step,
            "global_step": global_step,
            "data": mixture.state_dict(),
            "config": self.fingerprint(index),
        }
        checkpoint.save(
            checkpoint.checkpoint_dir(self.out.checkpoints, stage.name, step), self.model, optimizer, state
        )
        return state


def _scalars(row: dict):
    for key, value in row.items():
        if isinstance(value, (int, float)) and key != "step":
            yield key, value
        elif isinstance(value, dict):
            yield from ((f"{key}/{k}", v) for k, v in value.items())
