"""LLaVA-OneVision (``llava-hf/llava-onevision-qwen2-0.5b-ov-hf``): SigLIP tower, any-resolution images (a base
tile plus the tiles of the best ``image_grid_pinpoints`` grid, so the image token count depends on the frame's
shape); ``image_sizes`` and ``batch_num_images`` travel with each frame's pixels. ChatML turns.
A clip's frames as one video (``--caption-unit clip``): ``pixel_values_videos``, ``<video>`` in the user turn."""

from avt_triplets.captioner_adapters.base import DEFAULT_CHAT_PROMPT, CaptionerAdapter, VideoInput

LLAVA_ONEVISION = CaptionerAdapter(
    name="llava-onevision",
    model_types=("llava_onevision",),
    vision_tower=("vision_tower",),
    image_keys=("image_sizes", "batch_num_images"),
    recommended_prompt=DEFAULT_CHAT_PROMPT,
    video=VideoInput(("pixel_values_videos",)),
)
