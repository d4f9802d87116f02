"""CAV-MAE's "IN-initial": start pretraining from an ImageNet MAE (transformers `ViTMAEForPreTraining` weights).

Reproduces the official `src/adapt_vmae_weights.py` adaptation, reading the `facebook/vit-mae-base` layout instead
of the original MAE `.pth`:

* MAE blocks `0 .. S-1` (S = modality-specific depth, 11) are copied into *both* the audio and the visual stack;
  blocks `S .. S+U-1` (U shared layers, 1) go to the shared stack, whose audio and visual norms get copies of the
  block's norms; the separate q/k/v projections are concatenated into our fused `qkv` (timm order q, k, v);
* the final MAE norm goes to all three final norms (joint, audio, visual);
* the decoder blocks, `decoder_embed`, `decoder_norm` and `mask_token` are copied as they are;
* the visual tables are the MAE tables without the cls row (encoder and decoder);
* the audio patch embedding is the MAE patch embedding summed over RGB (bias copied);
* `decoder_pred_a` takes the first p*p rows of the MAE `decoder_pred`, `decoder_pred_v` all of it.

Not in MAE, so left as initialised: modality embeddings, the audio position tables (sin-cos), the LG text heads.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

# transformers < 5 / Hub-checkpoint names -> transformers 5 names of ViTMAEForPreTraining
_LEGACY_RENAMES = (
    (re.compile(r"encoder\.layer\."), "layers."),
    (re.compile(r"attention\.attention\.query"), "attention.q_proj"),
    (re.compile(r"attention\.attention\.key"), "attention.k_proj"),
    (re.compile(r"attention\.attention\.value"), "attention.v_proj"),
    (re.compile(r"attention\.output\.dense"), "attention.o_proj"),
    (re.compile(r"intermediate\.dense"), "mlp.fc1"),
    (re.compile(r"output\.dense"), "mlp.fc2"),
)


def _normalise_vitmae_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    normalised = {}
    for key, value in state_dict.items():
        for pattern, replacement in _LEGACY_RENAMES:
            key = pattern.sub(replacement, key)
        normalised[key] = value
    return normalised


def load_vitmae_state_dict(name_or_path: str | Path) -> dict[str, torch.Tensor]:
    """`ViTMAEForPreTraining.from_pretrained(...)` (Hub id or folder) -> its state dict in transformers 5 names."""
    from transformers import ViTMAEForPreTraining

    return ViTMAEForPreTraining.from_pretrained(name_or_path).state_dict()


def _layer(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """One ViTMAE layer -> our layer parameters (fused qkv)."""
    return {
        "layernorm_before.weight": state[f"{prefix}.layernorm_before.weight"],
        "layernorm_before.bias": state[f"{prefix}.layernorm_before.bias"],
        "layernorm_after.weight": state[f"{prefix}.layernorm_after.weight"],
        "layernorm_after.bias": state[f"{prefix}.layernorm_after.bias"],
        "attention.qkv.weight": torch.cat([state[f"{prefix}.attention.{p}_proj.weight"] for p in "qkv"]),
        "attention.qkv.bias": torch.cat([state[f"{prefix}.attention.{p}_proj.bias"] for p in "qkv"]),
        "attention.proj.weight": state[f"{prefix}.attention.o_proj.weight"],
        "attention.proj.bias": state[f"{prefix}.attention.o_proj.bias"],
        "mlp.fc1.weight": state[f"{prefix}.mlp.fc1.weight"],
        "mlp.fc1.bias": state[f"{prefix}.mlp.fc1.bias"],
        "mlp.fc2.weight": state[f"{prefix}.mlp.fc2.weight"],
        "mlp.fc2.bias": state[f"{prefix}.mlp.fc2.bias"],
    }


def vitmae_to_lgcavmae_state_dict(
    vitmae_state_dict: dict[str, torch.Tensor], config
) -> dict[str, torch.Tensor]:
    """The IN-initial mapping as a (partial) `LGCavMaeForPreTraining` state dict."""
    state = _normalise_vitmae_keys(vitmae_state_dict)
    num_mae_layers = len({key.split(".")[2] for key in state if key.startswith("vit.layers.")})
    specific, shared = config.num_modality_specific_layers, config.num_shared_layers
    if specific + shared != num_mae_layers:
        raise ValueError(
            f"The MAE has {num_mae_layers} layers but the config asks for {specific} modality-specific + {shared} "
            "shared; they must add up."
        )
    out: dict[str, torch.Tensor] = {}
    for index in range(specific):
        for name, value in _layer(state, f"vit.layers.{index}").items():
            out[f"cav_mae.audio_layers.{index}.{name}"] = value.clone()
            out[f"cav_mae.visual_layers.{index}.{name}"] = value.clone()
    for index in range(shared):
        layer = _layer(state, f"vit.layers.{specific + index}")
        for name, value in layer.items():
            out[f"cav_mae.shared_layers.{index}.{name}"] = value.clone()
        for modality in ("audio", "visual"):
            for norm in ("layernorm_before", "layernorm_after"):
                for kind in ("weight", "bias"):
                    out[f"cav_mae.shared_layers.{index}.{modality}_{norm}.{kind}"] = layer[
                        f"{norm}.{kind}"
                    ].clone()
    for norm in ("layernorm", "audio_layernorm", "visual_layernorm"):
        for kind in ("weight", "bias"):
            out[f"cav_mae.{norm}.{kind}"] = state[f"vit.layernorm.{kind}"].clone()

    patch_weight = state["vit.embeddings.patch_embeddings.projection.weight"]
    patch_bias = state["vit.embeddings.patch_embeddings.projection.bias"]
    out["cav_mae.visual_embeddings.projection.weight"] = patch_weight.clone()
    out["cav_mae.visual_embeddings.projection.bias"] = patch_bias.clone()
    out["cav_mae.audio_embeddings.projection.weight"] = patch_weight.sum(dim=1, keepdim=True)
    out["cav_mae.audio_embeddings.projection.bias"] = patch_bias.clone()
    out["cav_mae.visual_embeddings.position_embeddings"] = state["vit.embeddings.position_embeddings"][
        :, 1:
    ].clone()

    out["decoder.decoder_embed.weight"] = state["decoder.decoder_embed.weight"].clone()
    out["decoder.decoder_embed.bias"] = state["decoder.decoder_embed.bias"].clone()
    out["decoder.mask_token"] = state["decoder.mask_token"].clone()
    out["decoder.visual_position_embeddings"] = state["decoder.decoder_pos_embed"][:, 1:].clone()
    num_decoder_layers = len(
        {key.split(".")[2] for key in state if key.startswith("decoder.decoder_layers.")}
    )
    if num_decoder_layers != config.decoder_num_hidden_layers:
        raise ValueError(
            f"The MAE decoder has {num_decoder_layers} layers, the config {config.decoder_num_hidden_layers}."
        )
    for index in range(num_decoder_layers):
        for name, value in _layer(state, f"decoder.decoder_layers.{index}").items():
            out[f"decoder.layers.{index}.{name}"] = value.clone()
    out["decoder.layernorm.weight"] = state["decoder.decoder_norm.weight"].clone()
    out["decoder.layernorm.bias"] = state["decoder.decoder_norm.bias"].clone()
    pred_weight, pred_bias = state["decoder.decoder_pred.weight"], state["decoder.decoder_pred.bias"]
    audio_rows = config.patch_size**2
    out["decoder.audio_pred.weight"] = pred_weight[:audio_rows].clone()
    out["decoder.audio_pred.bias"] = pred_bias[:audio_rows].clone()
    out["decoder.visual_pred.weight"] = pred_weight.clone()
    out["decoder.visual_pred.bias"] = pred_bias.clone()
    return out


def init_from_vitmae(model, vitmae_state_dict_or_path: dict[str, torch.Tensor] | str | Path) -> list[str]:
    """Load the IN-initial weights into an `LGCavMaeForPreTraining` (or `LGCavMaeModel`) in place.

    Accepts a ViTMAEForPreTraining state dict (transformers 5 or legacy names) or anything `from_pretrained`
    takes (e.g. `"facebook/vit-mae-base"`). Returns our parameter names left as initialised (not in MAE).
    """
    if isinstance(vitmae_state_dict_or_path, (str, Path)):
        vitmae_state = load_vitmae_state_dict(vitmae_state_dict_or_path)
    else:
        vitmae_state = vitmae_state_dict_or_path
    mapped = vitmae_to_lgcavmae_state_dict(vitmae_state, model.config)
    if not any(key.startswith("cav_mae.") for key in model.state_dict()):  # a bare encoder
        mapped = {
            key.removeprefix("cav_mae."): value for key, value in mapped.items() if key.startswith("cav_mae.")
        }
    result = model.load_state_dict(mapped, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"IN-initial produced keys the model does not have: {result.unexpected_keys}")
    return list(result.missing_keys)


__all__ = ["init_from_vitmae", "load_vitmae_state_dict", "vitmae_to_lgcavmae_state_dict"]
