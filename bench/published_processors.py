"""Each captioner family's processor at its published image-processor settings, without a download.

The tiny builders (:mod:`avt_triplets.tiny`) give every family's real processor class with a tiny tokenizer
carrying the family's special tokens and chat template, but tiny images (32 px tiles) so tests run in
milliseconds. A benchmark of preprocessing cost needs the published image sizes: here the same processor class is
rebuilt around the tiny tokenizer with the image processor and image-token counts written out from each
checkpoint's ``preprocessor_config.json`` / ``processor_config.json`` (values below, checkpoint named per entry).
The tokenizer is tiny, the pixels are the real workload: resize, rescale, normalise, tiles or patch rows.

    processor = published_processor("qwen2_5_vl", workdir)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
_HALF = [0.5, 0.5, 0.5]


def _blip2(tiny: Any) -> Any:  # Salesforce/blip2-opt-2.7b
    from transformers import Blip2Processor, BlipImageProcessor

    image = BlipImageProcessor(size={"height": 224, "width": 224}, image_mean=_CLIP_MEAN, image_std=_CLIP_STD)
    return Blip2Processor(image, tiny.tokenizer, num_query_tokens=32)


def _llava(tiny: Any) -> Any:  # llava-hf/llava-1.5-7b-hf
    from transformers import CLIPImageProcessor, LlavaProcessor

    image = CLIPImageProcessor(
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
    )
    return LlavaProcessor(
        image_processor=image,
        tokenizer=tiny.tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        chat_template=tiny.chat_template,
        num_additional_image_tokens=1,
    )


def _qwen2_5_vl(tiny: Any) -> Any:  # Qwen/Qwen2.5-VL-3B-Instruct
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor

    image = Qwen2VLImageProcessor(
        min_pixels=3136,
        max_pixels=12845056,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
    )
    return Qwen2_5_VLProcessor(
        image_processor=image,
        tokenizer=tiny.tokenizer,
        video_processor=tiny.video_processor,
        chat_template=tiny.chat_template,
    )


def _smolvlm(tiny: Any) -> Any:  # HuggingFaceTB/SmolVLM-256M-Instruct
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    image = Idefics3ImageProcessor(
        size={"longest_edge": 2048},
        max_image_size={"longest_edge": 512},
        do_image_splitting=True,
        resample=1,  # Lanczos
        image_mean=_HALF,
        image_std=_HALF,
    )
    return Idefics3Processor(
        image_processor=image, tokenizer=tiny.tokenizer, image_seq_len=64, chat_template=tiny.chat_template
    )


def _gemma3(tiny: Any) -> Any:  # google/gemma-3-4b-it
    from transformers import Gemma3Processor
    from transformers.models.gemma3 import Gemma3ImageProcessor

    image = Gemma3ImageProcessor(size={"height": 896, "width": 896}, image_mean=_HALF, image_std=_HALF)
    return Gemma3Processor(
        image_processor=image,
        tokenizer=tiny.tokenizer,
        chat_template=tiny.chat_template,
        image_seq_length=256,
    )


def _paligemma(tiny: Any) -> Any:  # google/paligemma-3b-mix-224
    from transformers import PaliGemmaProcessor
    from transformers.models.siglip import SiglipImageProcessor

    image = SiglipImageProcessor(
        size={"height": 224, "width": 224}, image_seq_length=256, image_mean=_HALF, image_std=_HALF
    )
    return PaliGemmaProcessor(image_processor=image, tokenizer=tiny.tokenizer)


def _llava_onevision(tiny: Any) -> Any:  # llava-hf/llava-onevision-qwen2-0.5b-ov-hf
    from transformers import LlavaOnevisionProcessor
    from transformers.models.llava_onevision import LlavaOnevisionImageProcessor

    pinpoints = [[384 * i, 384 * j] for i in range(1, 7) for j in range(1, 7)]
    image = LlavaOnevisionImageProcessor(
        size={"height": 384, "width": 384}, image_grid_pinpoints=pinpoints, image_mean=_HALF, image_std=_HALF
    )
    return LlavaOnevisionProcessor(
        image_processor=image,
        tokenizer=tiny.tokenizer,
        video_processor=tiny.video_processor,
        num_image_tokens=729,
        vision_feature_select_strategy="full",
        chat_template=tiny.chat_template,
        vision_aspect_ratio="anyres_max_9",
    )


def _internvl(tiny: Any) -> Any:  # OpenGVLab/InternVL3-1B-hf
    from transformers import InternVLProcessor
    from transformers.models.got_ocr2 import GotOcr2ImageProcessor

    image = GotOcr2ImageProcessor(
        size={"height": 448, "width": 448},
        crop_to_patches=True,
        min_patches=1,
        max_patches=12,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    return InternVLProcessor(
        image_processor=image,
        tokenizer=tiny.tokenizer,
        video_processor=tiny.video_processor,
        image_seq_length=256,
        chat_template=tiny.chat_template,
    )


def _qwen3_vl(tiny: Any) -> Any:  # Qwen/Qwen3-VL-2B-Instruct
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor

    image = Qwen2VLImageProcessor(
        size={"shortest_edge": 65536, "longest_edge": 16777216},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=_HALF,
        image_std=_HALF,
    )
    return Qwen3VLProcessor(
        image_processor=image,
        tokenizer=tiny.tokenizer,
        video_processor=tiny.video_processor,
        chat_template=tiny.chat_template,
    )


# model_type -> (tiny builder, the published processor around the tiny one's tokenizer)
PUBLISHED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "blip-2": ("make_tiny_blip2", _blip2),
    "llava": ("make_tiny_llava", _llava),
    "qwen2_5_vl": ("make_tiny_qwen2_5_vl", _qwen2_5_vl),
    "idefics3": ("make_tiny_smolvlm", _smolvlm),
    "gemma3": ("make_tiny_gemma3", _gemma3),
    "paligemma": ("make_tiny_paligemma", _paligemma),
    "llava_onevision": ("make_tiny_llava_onevision", _llava_onevision),
    "internvl": ("make_tiny_internvl", _internvl),
    "qwen3_vl": ("make_tiny_qwen3_vl", _qwen3_vl),
}


def tiny_folder(model_type: str, workdir: Path) -> Path:
    """The family's tiny checkpoint folder under ``workdir`` (built once)."""
    import avt_triplets.tiny as tiny

    folder = Path(workdir) / f"tiny_{model_type}"
    if not (folder / "config.json").exists():
        getattr(tiny, PUBLISHED[model_type][0])(folder)
    return folder


def published_processor(model_type: str, workdir: Path) -> Any:
    """The family's processor class at its published image settings, with the tiny checkpoint's tokenizer."""
    from transformers import AutoProcessor

    tiny = AutoProcessor.from_pretrained(tiny_folder(model_type, workdir))
    tiny.tokenizer.model_max_length = 1 << 20  # published images make prompts of thousands of image tokens
    return PUBLISHED[model_type][1](tiny)


__all__ = ["PUBLISHED", "published_processor", "tiny_folder"]
