"""Synthetic clips named like downloaded YouTube clips, listed the way VGGSound and AudioSet list theirs.

The files look like the real ones, so the code that reads them is tested on what users have:

- VGGSound's ``vggsound.csv``: no header, ``ytid,start,label,split`` rows; a label holding a comma is quoted
  (``"heart sounds, heartbeat"``), the others are not.
- AudioSet's segment lists (``balanced_train_segments.csv``, ``eval_segments.csv``): three ``#`` comment
  lines, the last one the header, then ``YTID, start_seconds, end_seconds, positive_labels`` rows with a
  space after each comma and the ontology ids quoted together (``"/m/09x0r,/m/05zppz"``).
- AudioSet's ``class_labels_indices.csv``: ``index,mid,display_name`` with every display name quoted.

Video files are named by ``DEFAULT_PATH_TEMPLATE`` (``{ytid}_{start:06d}.mp4``), as VGGSound/AudioSet
downloaders name trimmed clips; each clip sounds and looks like its synthetic class (:mod:`.videos`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avt_triplets.inputs import DEFAULT_PATH_TEMPLATE
from avt_triplets.tiny.videos import SYNTHETIC_CLASSES, write_synthetic_video

# Real AudioSet ontology ids and display names (some names hold commas, as many real ones do).
AUDIOSET_CLASSES: tuple[tuple[str, str], ...] = (
    ("/m/09x0r", "Speech"),
    ("/m/05zppz", "Male speech, man speaking"),
    ("/m/04rlf", "Music"),
    ("/m/0bt9lr", "Dog"),
    ("/m/01yrx", "Cat"),
    ("/m/068hy", "Domestic animals, pets"),
)
# Real VGGSound class names, two with commas.
VGGSOUND_CLASSES: tuple[str, ...] = (
    "dog barking",
    "heart sounds, heartbeat",
    "playing acoustic guitar",
    "engine accelerating, revving, vroom",
)
_YTID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class YoutubeClip:
    """One synthetic clip as a list row knows it: YouTube id, start second, class index, split."""

    ytid: str
    start: int
    klass: int
    split: str


def youtube_id(rng: np.random.Generator) -> str:
    """An 11-character id from YouTube's alphabet."""
    chars = rng.choice(list(_YTID_ALPHABET), size=11)
    return "".join(chars)


def make_youtube_clips(
    folder: str | Path,
    splits: dict[str, int],
    num_classes: int = 4,
    duration_s: float = 2.0,
    size: tuple[int, int] = (96, 64),
    seed: int = 0,
) -> list[YoutubeClip]:
    """Write ``splits[name]`` clips per split (classes in turn) into ``folder`` as ``{ytid}_{start:06d}.mp4``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips = []
    for split, count in splits.items():
        for i in range(count):
            ytid = ("-" if i % 2 else "") + youtube_id(rng)[: 11 - (i % 2)]  # many real ids start with '-'
            clip = YoutubeClip(ytid, int(rng.integers(0, 300)), i % num_classes, split)
            write_synthetic_video(
                folder / DEFAULT_PATH_TEMPLATE.format(ytid=clip.ytid, start=clip.start),
                (SYNTHETIC_CLASSES[clip.klass],),
                duration_s=duration_s,
                size=size,
                seed=int(rng.integers(0, 2**31)),
            )
            clips.append(clip)
    return clips


def write_vggsound_csv(path: str | Path, clips: Sequence[YoutubeClip]) -> Path:
    """``vggsound.csv`` as VGGSound publishes it: no header, minimal quoting."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        for clip in clips:
            writer.writerow([clip.ytid, clip.start, VGGSOUND_CLASSES[clip.klass], clip.split])
    return path


def write_audioset_segments(
    path: str | Path, clips: Sequence[YoutubeClip], extra_labels: dict[str, Sequence[int]] | None = None
) -> Path:
    """An AudioSet segment list: comment lines (the last the header), then rows with a space after each comma.

    Each clip is labelled with its class's ontology id plus ``extra_labels[ytid]`` (class indices).
    """
    extra_labels = extra_labels or {}
    lines = [
        "# Segments csv created Sun Mar  5 10:54:31 2017",
        f"# num_ytids={len(clips)}, num_segs={len(clips)}, num_unique_labels={len(AUDIOSET_CLASSES)}, "
        f"num_positive_labels={len(clips) + sum(len(v) for v in extra_labels.values())}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    for clip in clips:
        mids = [AUDIOSET_CLASSES[k][0] for k in (clip.klass, *extra_labels.get(clip.ytid, ()))]
        lines.append(f'{clip.ytid}, {clip.start:.3f}, {clip.start + 10:.3f}, "{",".join(mids)}"')
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def write_class_labels_indices(
    path: str | Path, classes: Sequence[tuple[str, str]] = AUDIOSET_CLASSES
) -> Path:
    """AudioSet's ``class_labels_indices.csv``: ``index,mid,display_name``, display names quoted."""
    lines = ["index,mid,display_name"] + [f'{i},{mid},"{name}"' for i, (mid, name) in enumerate(classes)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


__all__ = [
    "AUDIOSET_CLASSES",
    "VGGSOUND_CLASSES",
    "YoutubeClip",
    "make_youtube_clips",
    "write_audioset_segments",
    "write_class_labels_indices",
    "write_vggsound_csv",
    "youtube_id",
]
