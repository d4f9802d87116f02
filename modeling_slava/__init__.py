"""SLAVA for transformers: config, model (frozen CLIP / CLAP towers + trained projections), losses, processor.

Importing this package registers `AutoConfig` / `AutoModel` for `model_type="slava"` and marks the classes for
`register_for_auto_class`, so `save_pretrained` / `push_to_hub` write the model files and an `auto_map` and the
folder loads with `trust_remote_code=True` where this package is not installed. Relative imports only.
"""

from transformers import AutoConfig, AutoModel

from .configuration_slava import AUDIO_BACKENDS, VARIANTS, SlavaConfig
from .losses_slava import batch_recipe, batch_recipes, num_stages, slava_loss, symmetric_info_nce
from .modeling_slava import SlavaModel, SlavaOutput, SlavaPreTrainedModel
from .processing_slava import SlavaProcessor
from .towers_slava import SlavaTowers, load_towers


def _register_auto_classes() -> None:
    AutoConfig.register(SlavaConfig.model_type, SlavaConfig, exist_ok=True)
    AutoModel.register(SlavaConfig, SlavaModel, exist_ok=True)
    SlavaConfig.register_for_auto_class()
    SlavaModel.register_for_auto_class("AutoModel")


_register_auto_classes()

__all__ = [
    "AUDIO_BACKENDS",
    "VARIANTS",
    "SlavaConfig",
    "SlavaModel",
    "SlavaOutput",
    "SlavaPreTrainedModel",
    "SlavaProcessor",
    "SlavaTowers",
    "batch_recipe",
    "batch_recipes",
    "load_towers",
    "num_stages",
    "slava_loss",
    "symmetric_info_nce",
]
