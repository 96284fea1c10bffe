"""The recipe's `executor:` section: how datatrove runs a stage's tasks (here, on Slurm, on Ray). The
corpus stage runs on any of them; selection reads its task and worker counts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from contracts.recipe import Strict


class SlurmConfig(Strict):
    partition: str
    time: str = "04:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2
    sbatch_args: dict[str, Any] = {}


class ExecutorConfig(Strict):
    type: Literal["local", "slurm", "ray"] = "local"
    tasks: int = Field(4, ge=1)
    workers: int = Field(2, ge=1)
    # Slurm and Ray: tasks run one after another in each job (a Ray actor, a Slurm array job). Above 1
    # it saves a process start and the imports per task, at some cost in load balance.
    tasks_per_job: int = Field(1, ge=1)
    slurm: SlurmConfig | None = None

    @model_validator(mode="after")
    def _slurm_needs_settings(self) -> ExecutorConfig:
        if self.type == "slurm" and self.slurm is None:
            raise ValueError("type: slurm needs a `slurm:` section (at least `partition`)")
        if self.type == "local" and self.tasks_per_job != 1:
            raise ValueError("`tasks_per_job` is for type: slurm or ray (local workers run tasks in turn)")
        return self
