"""The user's datasets (VGGSound, Kinetics-700, AudioSet) as `avt generate` inputs, and the models the recipes load.

Each dataset is a folder of videos or a CSV/JSONL list that `avt generate` reads (see `avt generate --help`), plus
the folder its paths are relative to. VGGSound's own CSV (``ytid,start,label,split``) may be passed once for both
splits: `avt generate --split train` / `--split test` then read one split each, so no test clip is ever pretrained
or fine-tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avt_core.errors import UsageError
from avt_triplets.inputs import LIST_EXTENSIONS, split_counts

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
    split: str | None = None  # the rows of this split of a list with a split column (`avt generate --split`)

    def generate_args(self) -> list[str]:
        root = ["--input-root", str(self.root)] if self.root else []
        return [str(self.path), *root, *(["--split", self.split] if self.split else [])]

    def count(self) -> int:
        """Clips in the input (the list's rows or the folder's videos), checked the way `avt generate` will."""
        from avt_triplets.inputs import load_inputs

        return len(load_inputs(self.path, input_root=self.root, split=self.split).clips)


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


def _split_to_pick(path: Path, split: str) -> str | None:
    """``split`` when ``path`` is a list holding several splits (`avt generate --split` then picks its rows),
    else None (a folder, or a list of one split)."""
    if not path.is_file() or path.suffix.lower() not in LIST_EXTENSIONS:
        return None
    return split if len({name for name in split_counts(path) if name is not None}) > 1 else None


def vggsound_inputs(vggsound: Path, vggsound_test: Path | None, root: Path | None) -> dict[str, DataInput]:
    """VGGSound's train and test inputs: two inputs, or one CSV whose split column `avt generate --split` reads."""
    root = root or (vggsound.parent if vggsound.is_file() else None)
    if vggsound_test is not None:
        return {
            "vggsound-train": DataInput(vggsound, root, _split_to_pick(vggsound, "train")),
            "vggsound-test": DataInput(vggsound_test, root, _split_to_pick(vggsound_test, "test")),
        }
    train = DataInput(vggsound, root, _split_to_pick(vggsound, "train"))
    if train.split is None:
        return {"vggsound-train": train}
    return {"vggsound-train": train, "vggsound-test": DataInput(vggsound, root, "test")}


__all__ = [
    "DATASET_OPTIONS",
    "DataInput",
    "Models",
    "Sources",
    "vggsound_inputs",
]
