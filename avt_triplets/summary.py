"""The stats summary printed at the end of every `avt generate` run: totals over every finished shard of the
output (not just this process's, read through :func:`avt_triplets.shards.collect_totals`) plus this run's work."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from avt_core import storage
from avt_triplets import layout, shards
from avt_triplets.stages.worker import PHASES

# Failure reasons that mean the clip decoded fine but a model gave up on it.
MODEL_FAILURE_REASONS = ("caption_failed", "score_failed")


@dataclass
class GenerationSummary:
    """Totals over every finished shard of an output (not just this process's), plus this run's work."""

    output_dir: Path
    shards_total: int
    shards_done: int
    clips: int
    triplets: int
    failures_by_reason: dict[str, int]
    seconds: dict[str, float]
    processed_this_run: int = 0
    distributor: str = "local"
    rank: int = 0
    world_size: int = 1
    wall_seconds: float = 0.0
    shard_errors: list[str] = field(default_factory=list)
    card_path: Path | None = None
    card_error: str | None = None
    skipped_inputs: tuple[str, ...] = ()  # files of a folder input that are not videos
    captioned: bool = True  # False: `--captioner none` (rows are labelled clips, no model ran)
    missing_videos: str | None = None  # more listed videos missing than --max-missing-fraction allows: why
    # distinct frames the captioner ran on (clip unit: captions made), over the finished shards
    captioned_frames: int = 0
    empty_captions: int = 0  # of which it captioned as empty
    caption_unit: str = "frame"  # the manifest's captioner.caption_unit: what captioned_frames counts

    @property
    def _captioned_things(self) -> str:
        """What ``captioned_frames`` counts, in words."""
        return "frames" if self.caption_unit == "frame" else "clip caption candidates"

    @property
    def _captions_counted(self) -> str:
        return "frame captions" if self.caption_unit == "frame" else "clip caption candidates"

    @property
    def complete(self) -> bool:
        return self.shards_done == self.shards_total and not self.shard_errors

    @property
    def failures(self) -> int:
        return sum(self.failures_by_reason.values())

    @property
    def captions_mostly_empty(self) -> bool:
        """More than half of the captioned frames got an empty caption: never a success, finished or not."""
        return self.captioned and self.empty_captions * 2 > self.captioned_frames > 0

    @property
    def empty_result(self) -> str | None:
        """Why a run that processed clips produced no usable result (None when it did): no triplet at all, or
        captions mostly empty (a captioner that loads but produces nothing: such triplets describe nothing)."""
        if self.captions_mostly_empty:
            return (
                f"the captioner gave {self.empty_captions} of {self.captioned_frames} {self._captioned_things} an "
                "empty caption: it "
                "is broken (NaN weights, or it emits only end-of-sequence tokens); check --captioner and --dtype"
            )
        if self.triplets or not self.clips:
            return None
        model_failed = sum(self.failures_by_reason.get(r, 0) for r in MODEL_FAILURE_REASONS)
        reasons = ", ".join(f"{r} {n}" for r, n in self.failures_by_reason.items())
        what = "triplets" if self.captioned else "rows"
        if model_failed:
            return f"no {what}: the models failed on all {model_failed} decodable clip(s) ({reasons})"
        return f"no {what}: none of the {self.clips} clip(s) could be decoded ({reasons})"

    def format(self) -> str:
        rows = f"triplets      {self.triplets}" if self.captioned else f"rows          {self.triplets}"
        lines = [
            f"output        {self.output_dir}",
            f"shards        {self.shards_done}/{self.shards_total} done",
            f"clips         {self.clips}",
            rows + ("" if self.captioned else "  (labelled clips, no captions: --captioner none)"),
            *(
                [f"empty         {self.empty_captions} of {self.captioned_frames} {self._captions_counted}"]
                if self.empty_captions
                else []
            ),
            f"failures      {self.failures}",
        ]
        lines += [f"  {reason:<20}{count}" for reason, count in self.failures_by_reason.items()]
        if self.skipped_inputs:
            lines.append(
                f"skipped       {len(self.skipped_inputs)} files: not video files (--log-level INFO lists them)"
            )
        lines += self._phase_lines()
        if self.processed_this_run:
            rate = self.processed_this_run / max(self.wall_seconds, 1e-9)
            lines.append(
                f"this run      {self.processed_this_run} clips in {self.wall_seconds:.1f} s ({rate:.2f} clips/s, "
                f"{self.distributor} distributor)"
            )
        if self.shard_errors:
            lines.append(
                f"shard errors  {len(self.shard_errors)} (rerun to retry): "
                + "; ".join(self.shard_errors[:3])
            )
        if self.card_error is not None:
            lines.append(f"card          FAILED ({self.card_error}); rerun `avt filter DIR` to write it")
        elif self.card_path is not None:
            lines.append(f"card          {self.card_path}")
        elif self.shards_done < self.shards_total:
            lines.append("card          not yet: written by the process that finishes the last shard")
        return "\n".join(lines)

    def _phase_lines(self) -> list[str]:
        per_clip = max(1, self.clips)
        waiting = "models" if self.captioned else "writer"
        lines = [
            "seconds per phase, summed over shards (decode runs in the decode processes, in parallel; wait = "
            f"{waiting} idle for lack of decoded clips)"
        ]
        for phase in PHASES if self.captioned else [s for s in PHASES if s not in ("caption", "score")]:
            value = self.seconds.get(phase, 0.0)
            lines.append(f"  {phase:<8}{value:10.1f} s  {1000 * value / per_clip:8.1f} ms/clip")
        return lines


def summarize(output_dir: str | os.PathLike, shards_total: int | None = None) -> GenerationSummary:
    """The totals of every finished shard of ``output_dir``; ``shards_total`` defaults to the manifest's count."""
    root = storage.as_path(output_dir)
    totals = shards.collect_totals(root)
    if shards_total is None:
        shards_total = totals.shards_total if totals.shards_total is not None else totals.shards_done
    manifest = shards.read_json(root / layout.MANIFEST_FILE) or {}
    return GenerationSummary(
        output_dir=root,
        shards_total=shards_total,
        shards_done=totals.shards_done,
        clips=totals.clips,
        triplets=totals.triplets,
        failures_by_reason=totals.failures_by_reason,
        seconds=totals.seconds,
        captioned=bool(manifest.get("captioned", True)),
        captioned_frames=int(totals.stats_sums.get("captioned_frames", 0)),
        empty_captions=int(totals.stats_sums.get("empty_captions", 0)),
        caption_unit=str((manifest.get("captioner") or {}).get("caption_unit", "frame")),
    )


__all__ = ["MODEL_FAILURE_REASONS", "GenerationSummary", "summarize"]
