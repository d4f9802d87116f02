"""The ``accelerate`` distributor: the processes of ``accelerate launch`` (or ``torchrun``, or a bare Slurm
``srun``) each run the ``local`` distributor on shards ``rank::world_size``.

The assignment is static: processes share nothing but the output folder and wait for each other only once, at
the start, to agree on the caption batch size (``--caption-batch-size auto``: the smallest any of them probed,
so every process forms the same batches: :meth:`AccelerateDistributor.agree`); whichever finishes last (sees
every shard done) writes the card. A rerun of the same command (with any number of processes, or another
distributor) skips the finished shards. The models are the run's :mod:`~avt_triplets.model_host`'s, loaded in
each process on its device (:func:`~avt_triplets.devices.process_device`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from avt_core.launch import launched_process
from avt_triplets import devices
from avt_triplets.distributors.local import LocalDistributor

logger = logging.getLogger(__name__)


def launched_world_size() -> int:
    """The number of processes a launcher (accelerate, torchrun, srun) started; 1 if none."""
    return launched_process().world_size


def resolve_rank() -> tuple[int, int, bool]:
    """(rank, world size, is local main process) from accelerate's launcher, else from Slurm's srun task.

    Shards only need a rank and a world size, no process group; if accelerate sees one process while the
    launcher's (or srun's) environment says otherwise, the environment wins, so processes never all act as rank 0
    and write the same shards.
    """
    state = devices.process_state()
    rank, world, local_main = state.process_index, state.num_processes, state.is_local_main_process
    launched = launched_process()
    if world == 1 and launched.world_size > 1:
        rank, world, local_main = launched.rank, launched.world_size, launched.local_rank == 0
        if launched.launcher == "slurm":
            logger.warning(  # a warning, so it shows at the default log level: the rank came from elsewhere
                "no RANK/WORLD_SIZE from a launcher: task SLURM_PROCID=%d of SLURM_NTASKS=%d (srun) takes shards "
                "%d::%d",
                rank,
                world,
                rank,
                world,
            )
        else:
            logger.warning(
                "accelerate reports one process but WORLD_SIZE=%d: using RANK=%d from the launcher",
                world,
                rank,
            )
    elif world == 1 and os.environ.get("SLURM_NTASKS", "1") not in ("", "1") and launched.launcher == "none":
        logger.warning(
            "SLURM_NTASKS=%s but this is not an srun task: running as one process on every shard "
            "(start it with srun to split the shards)",
            os.environ["SLURM_NTASKS"],
        )
    return rank, world, local_main


class AccelerateDistributor(LocalDistributor):
    """This process's share (``rank::world_size``) of a launcher's processes, each a ``local`` distributor."""

    name = "accelerate"

    def __init__(self) -> None:
        rank, world, local_main = resolve_rank()
        super().__init__(rank=rank, world_size=world, is_main=local_main)

    def agree(self, value: Any) -> Any:
        """The smallest ``value`` of the launch's processes (the caption batch size each probed on its GPU), so
        every process cuts the same batches."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return value  # no process group (the launcher's environment only): each process decides alone
        from accelerate.utils import gather_object

        agreed = min(gather_object([value]))
        if agreed != value:
            logger.info("caption batch size %s (the smallest of the %d processes)", agreed, self.world_size)
        return agreed

    def close(self) -> None:
        """Leave the process group before the interpreter exits: a gloo/NCCL group still alive at exit can abort
        the process ("terminate called without an active exception") after a run that succeeded."""
        super().close()
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["AccelerateDistributor", "launched_world_size", "resolve_rank"]
