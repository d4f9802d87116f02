"""BLIP-2 (``Salesforce/blip2-opt-2.7b``, the paper's captioner): no chat template, plain captioning by default."""

from avt_triplets.captioner_adapters.base import CaptionerAdapter

BLIP2 = CaptionerAdapter(
    name="blip-2",
    model_types=("blip-2",),
    vision_tower=("vision_model",),
    recommended_prompt="(none: plain captioning; a prefix such as 'a photo of' steers it)",
)
