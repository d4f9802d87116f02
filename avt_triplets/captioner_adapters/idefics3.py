"""SmolVLM / Idefics3 (``HuggingFaceTB/SmolVLM-256M-Instruct``): images resized to a longest edge and split
into tiles, so the tile count (and the image tokens of the prompt) depends on the frame's shape; tiles travel
with their ``pixel_attention_mask``."""

from typing import Any

from avt_triplets.captioner_adapters.base import CaptionerAdapter

SMOLVLM_PROMPT = "Describe this image in one short sentence."


class Idefics3Adapter(CaptionerAdapter):
    def native_image_size(self, processor: Any) -> int | None:
        """One tile's side (``max_image_size``): a frame of that short side is split into the fewest tiles."""
        size = getattr(getattr(processor, "image_processor", None), "max_image_size", None)
        if isinstance(size, dict) and isinstance(size.get("longest_edge"), int):
            return size["longest_edge"]
        return super().native_image_size(processor)


IDEFICS3 = Idefics3Adapter(
    name="idefics3",
    model_types=("idefics3", "smolvlm"),
    vision_tower=("vision_model",),
    chat_prompt=SMOLVLM_PROMPT,
    image_keys=("pixel_attention_mask",),
    recommended_prompt=SMOLVLM_PROMPT,
)
