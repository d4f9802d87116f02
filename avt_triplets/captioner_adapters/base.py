"""The per-family part of a transformers captioner, and the generic adapter every unknown family gets.

An adapter says what differs between image-text-to-text families and nothing else: how the prompt is written
(chat template or raw text), the default prompt, where the vision tower is (its dtype is the input dtype and
part of the resume identity), which processor outputs besides ``pixel_values`` describe an image (Qwen's
``image_grid_thw``, Idefics3's ``pixel_attention_mask``) and the model's native input size
(``--caption-image-size native``), and whether and how the family takes a clip's frames as one video
(``--caption-unit clip``: :class:`VideoInput`). Batching, transport and the fast-path checks are the same for every
family (:mod:`avt_triplets.captioners`, :mod:`avt_triplets.image_batches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CHAT_PROMPT = "Describe this image in one short sentence."
# ``--caption-unit clip``: candidate k of a clip is captioned with prompt k (``--caption-prompt`` replaces the first),
# so CLAP chooses among differently worded descriptions of the same video, greedily and deterministically.
CLIP_PROMPTS = (
    "Describe this video in one short sentence.",
    "What is happening in this video? Answer in one sentence.",
    "Describe what makes the sounds in this video, in one sentence.",
    "Describe the scene and the action of this video in one sentence.",
)


@dataclass(frozen=True)
class VideoInput:
    """How a family takes a clip's sampled frames as one video: its processor's ``videos=`` path (frames already
    sampled: ``do_sample_frames=False``; their rate as ``video_metadata``, which Qwen turns into temporal position
    ids and Qwen3-VL into timestamps in the prompt) and a ``{"type": "video"}`` item in the chat template's user
    turn. ``keys``: the processor outputs that carry the video (for the log and the README)."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class CaptionerAdapter:
    """One family's conventions; instances are registered by ``model_type`` in
    :data:`avt_triplets.captioner_adapters.ADAPTERS`."""

    name: str  # recorded in the manifest (``captioner.adapter``)
    model_types: tuple[str, ...] = ()  # the config ``model_type``s this adapter serves
    vision_tower: tuple[str, ...] = ("vision",)  # parameter-name parts that mark the vision tower
    chat_prompt: str = DEFAULT_CHAT_PROMPT  # the default prompt of a model with a chat template
    plain_prompt: str | None = None  # the default prompt of a model without one (None: plain captioning)
    image_keys: tuple[str, ...] = ()  # processor outputs besides pixel_values that travel with each image
    # processor outputs generate() does not take (PaliGemma's training labels): dropped where they are made
    unused_keys: tuple[str, ...] = ()
    recommended_prompt: str = DEFAULT_CHAT_PROMPT  # what the README recommends for this family
    video: VideoInput | None = None  # None: the family captions images only (no --caption-unit clip)

    def default_prompt(self, uses_chat_template: bool) -> str | None:
        return self.chat_prompt if uses_chat_template else self.plain_prompt

    def render_prompt(self, processor: Any, prompt: str | None, uses_chat_template: bool) -> str | None:
        """The text that goes with every image: the chat-formatted prompt, the raw prompt, or None."""
        if prompt is None or not uses_chat_template:
            return prompt
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    def render_video_prompt(self, processor: Any, prompt: str) -> str:
        """The chat-formatted prompt of one video (a user turn with a video item, then ``prompt``)."""
        conversation = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
        return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    def video_inputs(self, processor: Any, text: str, frames: Sequence[np.ndarray], fps: float) -> Any:
        """The processor's inputs for one clip's RGB frames (sampled at ``fps``) as one video with ``text``."""
        import numpy as np

        count = len(frames)
        metadata = {"total_num_frames": count, "fps": float(fps), "frames_indices": list(range(count))}
        return processor(
            text=[text],
            videos=[np.stack([np.asarray(frame) for frame in frames])],
            video_metadata=[metadata],
            do_sample_frames=False,
            return_tensors="pt",
        )

    def vision_dtype(self, model: Any) -> Any:
        """The dtype of the vision tower (its first floating parameter whose name has one of
        :attr:`vision_tower`), else ``model.dtype``: BLIP-2 under float16 keeps its Q-Former in float32."""
        for name, parameter in model.named_parameters():
            if any(part in name for part in self.vision_tower) and parameter.is_floating_point():
                return parameter.dtype
        return model.dtype

    def native_image_size(self, processor: Any) -> int | None:
        """The short side the model's image processor brings frames to (``--caption-image-size native``), or
        None when it takes images at any size."""
        image_processor = getattr(processor, "image_processor", None)
        for key in ("crop_size", "size"):
            size = getattr(image_processor, key, None)
            if size is None:
                continue
            # a dict, or (transformers 5's image processors) a SizeDict with the same fields as attributes
            get = size.get if isinstance(size, dict) else (lambda k, size=size: getattr(size, k, None))
            sides = [side for k in ("shortest_edge", "height", "width") if isinstance(side := get(k), int)]
            if sides:
                return min(sides)
        return None


GENERIC = CaptionerAdapter(name="generic")
