"""Qwen3-VL (``Qwen/Qwen3-VL-2B-Instruct``): dynamic resolution as Qwen2.5-VL (patch rows per image with its
``image_grid_thw``), 16 px patches, a DeepStack vision tower named ``visual``, ``mm_token_type_ids`` beside the
prompt ids.
A clip's frames as one video (``--caption-unit clip``): ``pixel_values_videos`` with ``video_grid_thw``, each
frame's time written into the prompt (from the frames' rate)."""

from avt_triplets.captioner_adapters.base import VideoInput
from avt_triplets.captioner_adapters.qwen2_5_vl import QWEN_PROMPT, QwenVLAdapter

QWEN3_VL = QwenVLAdapter(
    name="qwen3-vl",
    model_types=("qwen3_vl", "qwen3_vl_moe"),
    vision_tower=("visual",),
    chat_prompt=QWEN_PROMPT,
    image_keys=("image_grid_thw",),
    recommended_prompt=QWEN_PROMPT,
    video=VideoInput(("pixel_values_videos", "video_grid_thw")),
)
