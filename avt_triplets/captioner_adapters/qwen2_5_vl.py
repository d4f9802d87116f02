"""Qwen2.5-VL (``Qwen/Qwen2.5-VL-3B-Instruct``): dynamic resolution. Each image becomes a variable number of
patch rows with its grid (``image_grid_thw``) and as many image tokens in the prompt; the vision tower is
``visual``, not ``vision``.
A clip's frames as one video (``--caption-unit clip``): ``pixel_values_videos`` with ``video_grid_thw`` and
``second_per_grid_ts`` (from the frames' rate)."""

from typing import Any

from avt_triplets.captioner_adapters.base import CaptionerAdapter, VideoInput

QWEN_PROMPT = "Describe this image in one sentence."


class QwenVLAdapter(CaptionerAdapter):
    def native_image_size(self, processor: Any) -> int | None:
        """Qwen takes any size up to ``max_pixels``; natively the frames go in as decoded."""
        return None


QWEN2_5_VL = QwenVLAdapter(
    name="qwen2.5-vl",
    model_types=("qwen2_5_vl", "qwen2_vl"),
    vision_tower=("visual",),
    chat_prompt=QWEN_PROMPT,
    image_keys=("image_grid_thw",),
    recommended_prompt=QWEN_PROMPT,
    video=VideoInput(("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")),
)
