"""LG-CAV-MAE for transformers: config, models, loss functions, checkpoint conversion.

Importing this package registers the Auto classes (`AutoConfig`, `AutoModel`, `AutoModelForPreTraining`,
`AutoModelForAudioClassification`) and marks the classes for `register_for_auto_class`, so `save_pretrained` /
`push_to_hub` write the model files and an `auto_map`, and the result loads with `trust_remote_code=True` even
where this package is not installed. A fine-tuned classifier also saves its `audio-visual-classification` pipeline
(`pipeline_lgcavmae.py`, registered here with transformers' `PIPELINE_REGISTRY`).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
)

from .configuration_lgcavmae import LGCavMaeConfig
from .init_from_vitmae import init_from_vitmae
from .losses_lgcavmae import (
    cavmae_contrastive_loss,
    masked_patch_reconstruction_loss,
    patchify_audio,
    patchify_images,
    text_info_nce_loss,
    unpatchify_audio,
    unpatchify_images,
)
from .modeling_lgcavmae import (
    LGCavMaeForAudioVisualClassification,
    LGCavMaeForAudioVisualClassificationOutput,
    LGCavMaeForPreTraining,
    LGCavMaeForPreTrainingOutput,
    LGCavMaeModel,
    LGCavMaeModelOutput,
    LGCavMaePreTrainedModel,
    build_2d_sincos_position_embedding,
    random_masking,
)
from .processing_lgcavmae import LGCavMaeProcessor


def _register_auto_classes() -> None:
    AutoConfig.register(LGCavMaeConfig.model_type, LGCavMaeConfig, exist_ok=True)
    AutoModel.register(LGCavMaeConfig, LGCavMaeModel, exist_ok=True)
    AutoModelForPreTraining.register(LGCavMaeConfig, LGCavMaeForPreTraining, exist_ok=True)
    AutoModelForAudioClassification.register(
        LGCavMaeConfig, LGCavMaeForAudioVisualClassification, exist_ok=True
    )
    LGCavMaeConfig.register_for_auto_class()
    LGCavMaeModel.register_for_auto_class("AutoModel")
    LGCavMaeForPreTraining.register_for_auto_class("AutoModelForPreTraining")
    LGCavMaeForAudioVisualClassification.register_for_auto_class("AutoModelForAudioClassification")
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipeline_lgcavmae import TASK, LGCavMaeAudioVisualClassificationPipeline

    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=LGCavMaeAudioVisualClassificationPipeline,
        pt_model=AutoModelForAudioClassification,
        type="multimodal",
    )


_register_auto_classes()

# Imported on first use, so `python -m modeling_lgcavmae.convert_cavmae_checkpoint` runs the module only once.
_LAZY = {
    "convert_cavmae_state_dict": "convert_cavmae_checkpoint",
    "load_cavmae_checkpoint": "convert_cavmae_checkpoint",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LGCavMaeConfig",
    "LGCavMaeForAudioVisualClassification",
    "LGCavMaeForAudioVisualClassificationOutput",
    "LGCavMaeForPreTraining",
    "LGCavMaeForPreTrainingOutput",
    "LGCavMaeModel",
    "LGCavMaeModelOutput",
    "LGCavMaePreTrainedModel",
    "LGCavMaeProcessor",
    "build_2d_sincos_position_embedding",
    "cavmae_contrastive_loss",
    "convert_cavmae_state_dict",
    "init_from_vitmae",
    "load_cavmae_checkpoint",
    "masked_patch_reconstruction_loss",
    "patchify_audio",
    "patchify_images",
    "random_masking",
    "text_info_nce_loss",
    "unpatchify_audio",
    "unpatchify_images",
]
