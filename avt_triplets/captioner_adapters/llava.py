"""LLaVA-1.5 (``llava-hf/llava-1.5-7b-hf``): CLIP tower, ``USER: <image>\\n... ASSISTANT:`` chat format."""

from avt_triplets.captioner_adapters.base import DEFAULT_CHAT_PROMPT, CaptionerAdapter

LLAVA = CaptionerAdapter(
    name="llava",
    model_types=("llava",),
    vision_tower=("vision_tower",),
    recommended_prompt=DEFAULT_CHAT_PROMPT,
)
