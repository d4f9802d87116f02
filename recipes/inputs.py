"""The user's datasets (VGGSound, Kinetics-700, AudioSet) as `avt generate` inputs, and the models the recipes load.

Each dataset is a folder of videos or a CSV/JSONL list that `avt generate` reads (see `avt generate --help`), plus
the folder its paths are relative to. VGGSound's own CSV (``ytid,start,label,split``) may be passed once for both
splits: the recipe writes the train and test rows to two lists in the work directory, so no test clip is ever
pretrained or fine-tuned on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from avt_triplets.errors import UsageError

# The datasets a recipe may need, with the option that names each.
DATASET_OPTIONS = {
    "vggsound-train": "--vggsound",
    "vggsound-test": "--vggsound-test (or --vggsound with a split column)",
    "kinetics": "--kinetics",
    "audioset-20k": "--audioset-train",
    "audioset-eval": "--audioset-eval",
}


@dataclass(frozen=True)
class DataInput:
    """One dataset as `avt generate` reads it: a folder or list, and the root of the list's paths."""

    path: Path
    root: Path | None = None

    def generate_args(self) -> list[str]:
        return [str(self.path), *(["--input-root", str(self.root)] if self.root else [])]

    def count(self) -> int:
        """Clips in the input (the list's rows or the folder's videos), checked the way `avt generate` will."""
        from avt_triplets.inputs import load_inputs

        return len(load_inputs(self.path, input_root=self.root).clips)


@dataclass(frozen=True)
class Models:
    """The models the recipes load: Hub ids or local folders (offline clusters pass folders)."""

    blip2: str = "Salesforce/blip2-opt-2.7b"
    llava: str = "llava-hf/llava-1.5-7b-hf"
    scorer: str = "msclap:2023"
    scorer_weights: str | None = None  # a local CLAP_weights_2023.pth instead of msclap's download
    scorer_text_model: str | None = None  # a local GPT-2 folder for msclap's text encoder
    vitmae: str = "facebook/vit-mae-base"  # IN-initial
    lgcavmae_config: str | None = None  # None: the paper's architecture

    def captioner(self, name: str) -> str:
        return {"blip2": self.blip2, "llava": self.llava}[name]


@dataclass
class Sources:
    """The datasets the user passed, by name (see ``DATASET_OPTIONS``), and AudioSet's class list."""

    inputs: dict[str, DataInput] = field(default_factory=dict)
    audioset_labels: Path | None = None

    def get(self, name: str) -> DataInput | None:
        return self.inputs.get(name)

    def require(self, names: set[str]) -> None:
        """Stop before any work when a dataset the recipe needs was not given (all missing ones at once)."""
        missing = sorted(name for name in names if name not in self.inputs)
        if missing:
            options = ", ".join(DATASET_OPTIONS[name] for name in missing)
            raise UsageError(f"this recipe needs {', '.join(missing)}: pass {options} (or --tiny)")


def split_column(path: Path) -> int | None:
    """Index of the split column of a VGGSound-style CSV: a ``split`` header, or the 4th column of the headerless
    ``ytid,start,label,split`` file; None when there is none."""
    if path.suffix.lower() != ".csv":
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        first = next(csv.reader(handle, skipinitialspace=True), None)
    if not first:
        return None
    cells = [cell.strip() for cell in first]
    if "split" in cells:
        return cells.index("split")
    known = {"video_path", "path", "ytid", "youtube_id", "start", "start_s", "labels", "label"}
    return 3 if len(cells) >= 4 and not known & set(cells) else None


def write_split(path: Path, split: str, output: Path) -> Path:
    """Write the rows of ``split`` (and the header, if any) of a CSV with a split column to ``output``.

    The one place where the recipes cut VGGSound's CSV into splits: when `avt generate` honours the split column
    itself (issue 10 §2), pass it its split option here instead of a filtered copy.
    """
    column = split_column(path)
    if column is None:
        raise UsageError(f"{path} has no split column (ytid,start,label,split or a 'split' header)")
    output.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(path, newline="", encoding="utf-8") as src, open(output, "w", newline="") as dst:
        reader, writer = csv.reader(src, skipinitialspace=True), csv.writer(dst)
        for number, cells in enumerate(reader):
            has_header = number == 0 and "split" in [c.strip() for c in cells]
            if has_header or (len(cells) > column and cells[column].strip() == split):
                writer.writerow(cells)
                kept += not has_header
    if not kept:
        raise UsageError(f"{path}: no row has split {split!r}")
    return output


def vggsound_inputs(
    vggsound: Path, vggsound_test: Path | None, root: Path | None, lists_dir: Path
) -> dict[str, DataInput]:
    """VGGSound's train and test inputs: two inputs, or one CSV with a split column cut in two."""
    root = root or (vggsound.parent if vggsound.is_file() else None)
    if vggsound_test is not None:
        return {"vggsound-train": DataInput(vggsound, root), "vggsound-test": DataInput(vggsound_test, root)}
    if vggsound.is_file() and split_column(vggsound) is not None:
        return {
            f"vggsound-{split}": DataInput(
                write_split(vggsound, split, lists_dir / f"vggsound-{split}.csv"), root
            )
            for split in ("train", "test")
        }
    return {"vggsound-train": DataInput(vggsound, root)}


__all__ = [
    "DATASET_OPTIONS",
    "DataInput",
    "Models",
    "Sources",
    "split_column",
    "vggsound_inputs",
    "write_split",
]
