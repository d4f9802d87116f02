"""Run under ``accelerate launch --num_processes 2``: each process reads a triplet dataset in place through the
block-shuffled order and accelerate's batch sharding, and reports which clips it got and which row groups it
read, for one full epoch and for an epoch resumed after ``skip_first_batches``.

    accelerate launch ... tests/support/parquet_reading_check.py DATASET REPORT_PREFIX
"""

from __future__ import annotations

import json
import sys

import numpy as np
from torch.utils.data import DataLoader, Dataset

BATCH, WINDOW, SKIPPED = 4, 8, 3


class KeyRecorder(Dataset):
    """Reads the row (through the row-group cache) and returns its index and epoch."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        self.rows[int(key[0])]
        return [int(key[0]), int(key[1])]


def _collate(examples):
    return examples


def main(dataset: str, prefix: str) -> None:
    from accelerate import Accelerator

    from avt_data.block_sampler import sampler_for_rows
    from avt_data.parquet_rows import open_parquet_triplets

    accelerator = Accelerator(cpu=True)
    rows = open_parquet_triplets([dataset], columns=["audio", "frames"])
    sampler = sampler_for_rows(rows, BATCH, seed=3, lanes=accelerator.num_processes, window=WINDOW)
    loader = accelerator.prepare(
        DataLoader(KeyRecorder(rows), batch_size=BATCH, sampler=sampler, collate_fn=_collate, drop_last=True)
    )
    report = {"rank": accelerator.process_index, "world": accelerator.num_processes}
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        loader.set_epoch(epoch)
        rows.reads.clear()
        report[f"epoch{epoch}"] = [key for batch in loader for key in batch]
        report[f"reads{epoch}"] = {str(k): v for k, v in rows.reads.items()}
    sampler.set_epoch(1)
    loader.set_epoch(1)
    resumed = accelerator.skip_first_batches(loader, SKIPPED)
    report["epoch1_resumed"] = [key for batch in resumed for key in batch]
    report["block_of_row"] = rows.block_ids().tolist()
    report["order1"] = sampler.epoch_order(1)[0].tolist()
    report["skipped_batches"] = SKIPPED
    report["batch"] = BATCH
    report["lanes"] = sampler.lanes
    report["row_groups"] = int(len(np.unique(rows.block_ids())))
    with open(f"{prefix}{accelerator.process_index}.json", "w") as handle:
        json.dump(report, handle)
    accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
