"""Where this process stands among the processes one launch started: ``accelerate launch`` / ``torchrun``
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) or a bare ``srun`` (Slurm's task variables). Standard library only, so
the output lock and the run config can ask without importing the models' stack."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LaunchedProcess:
    """This process's place among the processes a launcher started."""

    rank: int
    world_size: int
    local_rank: int
    launcher: str  # "launcher" (RANK/WORLD_SIZE), "slurm" (srun's task variables) or "none"


def _in_srun_task(env: Mapping[str, str]) -> bool:
    """Whether this process is a task of an ``srun`` job step. The batch script of an ``sbatch --ntasks N`` job
    also sees ``SLURM_NTASKS=N`` and ``SLURM_PROCID=0``, but it is one process: only srun sets ``SLURM_STEP_ID``."""
    return all(name in env for name in ("SLURM_STEP_ID", "SLURM_PROCID", "SLURM_NTASKS"))


def launched_process() -> LaunchedProcess:
    """From the launcher's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (accelerate launch, torchrun); when they are
    absent, from Slurm's ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID`` of an ``srun`` task, so a bare
    ``srun avt generate ...`` splits the shards too; else rank 0 of 1."""
    env = os.environ
    if env.get("WORLD_SIZE"):
        local = int(env.get("LOCAL_RANK", "0") or 0)
        return LaunchedProcess(int(env.get("RANK", "0") or 0), int(env["WORLD_SIZE"]), local, "launcher")
    if _in_srun_task(env):
        world = int(env.get("SLURM_STEP_NUM_TASKS") or env["SLURM_NTASKS"])
        local = int(env.get("SLURM_LOCALID", "0") or 0)
        return LaunchedProcess(int(env["SLURM_PROCID"]), world, local, "slurm")
    return LaunchedProcess(0, 1, 0, "none")


MAX_DEFAULT_WORKERS = 8
NUM_WORKERS_HELP = (
    "default: the CPU cores this process may use, shared among its launch's processes on this node, minus one for "
    "the process itself, at most 8 (the same rule on every command; 0: work inline, no worker process)"
)


def default_num_workers() -> int:
    """The ``--num-workers`` of every command that is not given one (decode workers of `avt generate`, DataLoader
    workers of the training and evaluation commands): one rule, so a machine is used the same way by all of them.
    The cores are this process's affinity (what Slurm or taskset granted), not the machine's."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(0, min(MAX_DEFAULT_WORKERS, cores // max(1, local_world) - 1))


def launch_key() -> str | None:
    """What the processes of one multi-process launch, and no other concurrent launch, have in common (None: this
    process runs alone): the launcher's rendezvous address, or Slurm's job and step."""
    env = os.environ
    launched = launched_process()
    if launched.world_size <= 1:
        return None
    if launched.launcher == "slurm":
        return f"slurm:{env.get('SLURM_JOB_ID', '')}.{env['SLURM_STEP_ID']}"
    if env.get("MASTER_PORT"):
        return (
            f"launch:{env.get('MASTER_ADDR', '')}:{env['MASTER_PORT']}:{env.get('TORCHELASTIC_RUN_ID', '')}"
        )
    return None


__all__ = ["NUM_WORKERS_HELP", "LaunchedProcess", "default_num_workers", "launch_key", "launched_process"]
