"""Evaluation across the processes of an ``accelerate launch``: each process extracts its share of the clips, the
per-clip records are gathered, and the metrics are computed and written once, by the main process.

A single process (no launcher variables) never imports accelerate: the loader is used as built and nothing is
gathered. Under a launch, accelerate hands process r the batches r, r+n, ... of the loader (whole batches, the
last ones completed with repeated clips) and ``gather_for_metrics`` drops those repeats again, so the gathered
records are the dataset's clips once each; they are put back in dataset order by row index all the same, so
features stay aligned with clip ids whatever the launcher did.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from avt_core.errors import UsageError
from avt_core.launch import launched_process


class EvalProcesses:
    """This process's part in an evaluation: shards a loader, gathers per-clip records, says who writes."""

    def __init__(self, world_size: int):
        self.world_size = world_size
        self._accelerator = None
        if world_size > 1:
            import torch
            from accelerate import Accelerator

            # Several processes but no CUDA (`accelerate launch --multi_gpu` on a CPU box, as the tests do):
            # accelerate forms a gloo process group only when told to run on CPU (as in avt pretrain).
            self._accelerator = Accelerator(cpu=not torch.cuda.is_available(), device_placement=False)

    @property
    def rank(self) -> int:
        return 0 if self._accelerator is None else self._accelerator.process_index

    @property
    def is_main(self) -> bool:
        return self._accelerator is None or self._accelerator.is_main_process

    def device(self, requested: str) -> str:
        """The device this process runs the model on: under a launch ``auto`` / ``cuda`` is the process's own GPU
        (a fixed ``cuda:N`` would put every process on one card and is refused), ``cpu`` stays ``cpu``."""
        if self._accelerator is None or requested == "cpu":
            return requested
        if requested not in ("auto", "cuda"):
            raise UsageError(
                f"--device {requested} under a {self.world_size}-process launch would put every process on one "
                "device: use --device auto (each process its own GPU) or cpu"
            )
        return str(self._accelerator.device)

    def shard(self, loader) -> Iterable:
        """The loader's batches this process evaluates (all of them in a single process)."""
        if self._accelerator is None:
            return loader
        return self._accelerator.prepare_data_loader(loader, device_placement=False)

    def gather(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every process's records of the current batch (collective: each process calls it once per batch)."""
        if self._accelerator is None:
            return records
        return self._accelerator.gather_for_metrics(records, use_gather_object=True)


def in_dataset_order(records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records sorted by row ``index``, one per row (a repeat a launcher left would count a clip twice)."""
    by_index = {record["index"]: record for record in records}
    return [by_index[index] for index in sorted(by_index)]


@functools.cache
def eval_processes() -> EvalProcesses:
    """The processes of this launch (one :class:`EvalProcesses` per process: accelerate's state is global)."""
    return EvalProcesses(launched_process().world_size)


__all__ = ["EvalProcesses", "eval_processes", "in_dataset_order"]
