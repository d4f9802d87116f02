"""InternVL (``OpenGVLab/InternVL3-1B-hf``, transformers-native): InternViT tower, each image cut into tiles plus
a thumbnail (the tile count, and with it the rows of ``pixel_values`` and the image tokens of the prompt, depends
on the frame's shape). ChatML turns; InternVL's own prompt for a short description.
A clip's frames as one video (``--caption-unit clip``): one tile per frame in ``pixel_values``, ``<video>`` in the
user turn."""

from avt_triplets.captioner_adapters.base import CaptionerAdapter, VideoInput

INTERNVL_PROMPT = "Please describe the image shortly."

INTERNVL = CaptionerAdapter(
    name="internvl",
    model_types=("internvl",),
    vision_tower=("vision_tower",),
    chat_prompt=INTERNVL_PROMPT,
    recommended_prompt=INTERNVL_PROMPT,
    video=VideoInput(("pixel_values",)),
)
