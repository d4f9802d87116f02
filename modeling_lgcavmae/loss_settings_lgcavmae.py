"""The numbers of the pretraining loss that a user sets: each term's weight and temperature, declared once.

`LGCavMaeConfig` takes its fields' defaults from here, and `avt pretrain` turns each setting into an option of the
same name with this help (its `--help` shows them). This module imports nothing, so the command line can read it
without loading torch or transformers. Which term each weight scales is the term table
(`losses_lgcavmae.LOSS_TERMS`).
"""

from typing import NamedTuple


class LossSetting(NamedTuple):
    """One float field of the model config that the loss reads.

    Args:
        name: the config field, also the `avt pretrain` option (`--contrastive-weight`).
        default: the config's default (official CAV-MAE / LG-CAV-MAE paper values).
        help: one line for `--help`.
        positive: a temperature must be > 0; a weight may be 0 (the term is skipped) but not negative.
    """

    name: str
    default: float
    help: str
    positive: bool = False


LOSS_SETTINGS: tuple[LossSetting, ...] = (
    LossSetting(
        "reconstruction_weight",
        1.0,
        "weight of the two MAE reconstruction terms (official mae_loss_weight 1); 0 skips the decoder",
    ),
    LossSetting("contrastive_weight", 0.01, "λ1 of the paper: weight of the audio-visual contrastive loss"),
    LossSetting(
        "contrastive_temperature",
        0.05,
        "temperature of the audio-visual InfoNCE (official CAV-MAE: 0.05, fixed)",
        positive=True,
    ),
    LossSetting(
        "text_contrastive_weight",
        0.01,
        "λ2 of the paper: weight of the audio-text + visual-text contrastive losses",
    ),
    LossSetting(
        "text_temperature",
        0.05,
        "temperature of the audio-text and visual-text InfoNCE (the paper states none: CAV-MAE's 0.05; the "
        "initial value when the model learns it, text_temperature_learnable)",
        positive=True,
    ),
)

LOSS_DEFAULTS: dict[str, float] = {setting.name: setting.default for setting in LOSS_SETTINGS}

__all__ = ["LOSS_DEFAULTS", "LOSS_SETTINGS", "LossSetting"]
