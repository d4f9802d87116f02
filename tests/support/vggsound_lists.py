"""A partial VGGSound download: ``vggsound.csv`` as VGGSound ships it (no header, ``ytid,start,label,split``,
labels holding commas quoted) whose train and test rows have different label sets, next to the clips of only some
rows (``{ytid}_{start:06d}.mp4``): two labels appear only on rows whose videos were not downloaded."""

from __future__ import annotations

import csv
from pathlib import Path

from avt_triplets.tiny.label_lists import make_youtube_clips

TRAIN_ON_DISK = ["dog barking", "heart sounds, heartbeat", "dog barking", "heart sounds, heartbeat"]
TRAIN_MISSING = ["playing acoustic guitar", "dog barking"]
TEST_ON_DISK = ["engine accelerating, revving, vroom", "dog barking"]
TEST_MISSING = ["lions roaring"]
EVERY_CLASS = sorted({*TRAIN_ON_DISK, *TRAIN_MISSING, *TEST_ON_DISK, *TEST_MISSING})


def write_partial_vggsound_download(folder: Path) -> Path:
    """The clips on disk and ``folder/vggsound.csv`` listing them and three rows whose videos are missing."""
    clips = make_youtube_clips(folder, {"train": 4, "test": 2}, duration_s=1.0, size=(64, 48), seed=3)
    train, test = clips[:4], clips[4:]
    rows = [(c.ytid, c.start, label, "train") for c, label in zip(train, TRAIN_ON_DISK)]
    rows += [(c.ytid, c.start, label, "test") for c, label in zip(test, TEST_ON_DISK)]
    # interleaved as in the real file; these videos are not in the folder
    rows.insert(1, ("Zk3rYd1Kq0c", 30, TRAIN_MISSING[0], "train"))
    rows.insert(4, ("-u8x2Wq9pLs", 0, TEST_MISSING[0], "test"))
    rows.append(("b7Q1mVv0xYk", 120, TRAIN_MISSING[1], "train"))
    path = folder / "vggsound.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerows(rows)
    return path
