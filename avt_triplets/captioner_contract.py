"""The captioner contract: everything a generation run needs from a captioner, declared in one place.

The pipeline reads nothing of a captioner that :class:`Captioner` does not declare:

* **identity** (:meth:`Captioner.identity`): what the manifest records and a resumed run must match (name,
  revision, weights digest, dtype, prompt, generation settings, adapter); :class:`CaptionerIdentity` has no
  defaults, so a captioner cannot leave a field out;
* **preprocessing** (:meth:`Captioner.input_plan`): the picklable function a decode worker runs on a clip's
  frames (no model), the batch layout it produces and where it runs (decode workers, or the model process, and
  why);
* **batch layout** (:meth:`Captioner.stack`): the rows of one batch as one host batch: one fixed-size tensor,
  or, for variable-resolution families (Qwen's ``image_grid_thw``, SmolVLM's image tiles), tensors collated with
  their metadata (:mod:`avt_triplets.image_batches`);
* **captioning** (:meth:`Captioner.caption` of PIL images, :meth:`Captioner.caption_pixels` of ready inputs;
  with ``caption_unit`` ``"clip"``, :meth:`Captioner.caption_video`: one caption of a clip's frames as one
  video, per prompt of ``clip_prompts``);
* **probe** (:func:`avt_triplets.preflight.check_captioner`) runs two synthetic frames through exactly these
  calls, as the decode workers and the model process will.

Test doubles and custom captioners subclass :class:`Captioner` and implement :meth:`Captioner.caption`; the
defaults caption raw frames in the model process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from avt_triplets.model_inputs import ImagePreprocessor

if TYPE_CHECKING:
    import torch
    from PIL import Image

Layout = Literal["fixed", "variable", "raw", "video"]
CaptionUnit = Literal["frame", "clip"]
CAPTION_UNITS: tuple[str, ...] = ("frame", "clip")
WORKERS, MODEL_PROCESS = "decode workers", "model process"
GREEDY = {"do_sample": False, "num_beams": 1}  # the generation settings of every transformers captioner


class ManifestIdentity:
    """A model's identity as a manifest record: a frozen dataclass whose every field is required (``what`` names
    the record in errors); shared by every model role's identity (captioner, audio captioner)."""

    what = "model"

    def record(self) -> dict[str, Any]:
        """The manifest's record: every field, JSON-ready."""
        record = asdict(self)
        if "generation" in record:
            record["generation"] = dict(record["generation"])
        return record

    @classmethod
    def require_fields(cls, record: Mapping[str, Any]) -> None:
        """Raise :class:`ValueError` naming the identity fields ``record`` lacks."""
        missing = [f.name for f in fields(cls) if f.name not in record]
        if missing:
            raise ValueError(f"{cls.what} record lacks identity field(s) {', '.join(missing)}")


@dataclass(frozen=True)
class CaptionerIdentity(ManifestIdentity):
    """What identifies a loaded captioner in the manifest; every field is required (no defaults)."""

    what = "captioner"

    name: str
    revision: str | None  # resolved Hub commit; None for a local folder
    weights_digest: str | None  # content of a local checkpoint; None for Hub models
    dtype: str | None  # the vision tower's dtype (what pixel_values are cast to)
    prompt: str | None  # the prompt actually used (None: plain captioning)
    max_new_tokens: int | None
    generation: Mapping[str, Any]  # generate() settings that decide the captions (greedy)
    image_size: int  # short side of the frames it captions (--caption-image-size; 0: the video's own size)
    adapter: str  # the family adapter (avt_triplets.captioner_adapters) that formats prompts and inputs
    # "frame": a caption per frame; "clip": candidates per clip window, its frames as one video
    caption_unit: str
    # "clip": the prompt of each candidate, in order (what caption_index points at); "frame": none
    clip_prompts: Sequence[str]

    def record(self) -> dict[str, Any]:
        """The manifest's ``captioner`` record: every field, JSON-ready."""
        record = asdict(self)
        record["generation"] = dict(self.generation)
        record["clip_prompts"] = list(self.clip_prompts)
        return record

    @classmethod
    def require_fields(cls, record: Mapping[str, Any]) -> None:
        """Raise :class:`ValueError` naming the identity fields ``record`` lacks."""
        missing = [f.name for f in fields(cls) if f.name not in record]
        if missing:
            raise ValueError(f"captioner record lacks identity field(s) {', '.join(missing)}")


@dataclass(frozen=True)
class InputPlan:
    """How a captioner's frames reach it: ``preprocess`` (picklable, run by the decode workers) and the
    ``layout`` of its output, or ``preprocess`` None (raw frames, captioned through ``caption`` in the model
    process); ``reason`` says why, for the log."""

    layout: Layout
    reason: str
    preprocess: ImagePreprocessor | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        return MODEL_PROCESS if self.preprocess is None else WORKERS

    def describe(self, adapter: str) -> str:
        return f"adapter {adapter}: frames preprocessed in the {self.where} ({self.layout} inputs): {self.reason}"


RAW_FRAMES = InputPlan("raw", "the captioner takes PIL images only")


class Captioner(ABC):
    """What the pipeline needs from a captioner (see the module's docstring)."""

    name: str = "captioner"
    revision: str | None = None
    prompt: str | None = None
    max_new_tokens: int | None = None
    # extra generate() options: --caption-compile's cache, the batch-size probe's min_new_tokens (None: none)
    generate_kwargs: dict[str, Any] | None = None
    caption_unit: CaptionUnit = "frame"  # "clip": caption_video per clip window instead of caption per frame
    clip_prompts: tuple[str, ...] = ()  # "clip": one candidate caption per prompt, in this order

    @property
    def device(self) -> torch.device | None:
        """Where the model runs (None: not a torch model); decides page-locked batches and the batch probe."""
        return None

    def image_short_side(self) -> int:
        """The short side frames are decoded at for this captioner (0: the video's own size); the stored frames
        stay at :data:`~avt_triplets.schema.FRAME_SHORT_SIDE` whatever it is."""
        from avt_triplets.schema import FRAME_SHORT_SIDE

        return FRAME_SHORT_SIDE

    def identity(self) -> CaptionerIdentity:
        """The manifest's record of this captioner."""
        return CaptionerIdentity(
            name=self.name,
            revision=self.revision,
            weights_digest=None,
            dtype=None,
            prompt=self.prompt,
            max_new_tokens=self.max_new_tokens,
            generation={},
            image_size=self.image_short_side(),
            adapter="custom",
            caption_unit=self.caption_unit,
            clip_prompts=self.clip_prompts,
        )

    def input_plan(self) -> InputPlan:
        """Where and how frames are preprocessed; the default: raw frames, captioned by :meth:`caption`."""
        return RAW_FRAMES

    def image_preprocessor(self) -> ImagePreprocessor | None:
        """The decode workers' per-clip preprocessing (:meth:`input_plan`'s), or None."""
        return self.input_plan().preprocess

    @abstractmethod
    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, for one batch."""

    def stack(self, rows: Sequence[Mapping[str, np.ndarray]], pin: bool) -> Any:
        """Preprocessed rows (``pixel_values`` and the layout's metadata) as one host batch for
        :meth:`caption_pixels`; runs in the stacking thread."""
        from avt_triplets.devices import stack_on_host

        return stack_on_host([row["pixel_values"] for row in rows], pin=pin)

    def caption_pixels(self, batch: Any) -> list[str]:
        """One caption per row of a batch made by :meth:`stack` (only called when :meth:`input_plan` has a
        preprocessor)."""
        raise NotImplementedError(f"{type(self).__name__} has no image preprocessor")

    def caption_video(self, frames: Sequence[np.ndarray], fps: float, prompt: str) -> str:
        """One caption of a clip's RGB frames (in time order, sampled at ``fps``) as one video, asked with
        ``prompt`` (one of ``clip_prompts``); only called when ``caption_unit`` is ``"clip"``."""
        raise NotImplementedError(f"{type(self).__name__} does not caption videos")


__all__ = [
    "CAPTION_UNITS",
    "GREEDY",
    "MODEL_PROCESS",
    "RAW_FRAMES",
    "WORKERS",
    "CaptionUnit",
    "Captioner",
    "CaptionerIdentity",
    "InputPlan",
    "ManifestIdentity",
    "Layout",
]
