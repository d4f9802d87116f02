"""Convert official CAV-MAE checkpoints (`CAVMAE` pretraining, `CAVMAEFT` fine-tuning `.pth`) to LG-CAV-MAE.

    python -m modeling_lgcavmae.convert_cavmae_checkpoint --checkpoint audio_model.25.pth --output-dir cav-mae-scale

Released files are saved from `nn.DataParallel`, so keys carry a `module.` prefix; it is stripped. Every official
tensor maps to one of ours except the `norm*_a` / `norm*_v` LayerNorms of the modality-specific and decoder blocks:
the official `Block` class owns them everywhere but only the shared block uses them, so they are dropped (listed in
the report). Loading is strict: any official key we do not recognise, or any of our parameters left without a
value, is an error, except the LG text projections, which CAV-MAE does not have (freshly initialised, reported).
"""

from __future__ import annotations

import argparse
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# (official pattern, our name) for per-block parameters; `{p}` is our prefix for that block.
_BLOCK_PARTS = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.qkv": "attention.qkv",
    "attn.proj": "attention.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_SHARED_ONLY_PARTS = {
    "norm1_a": "audio_layernorm_before",
    "norm2_a": "audio_layernorm_after",
    "norm1_v": "visual_layernorm_before",
    "norm2_v": "visual_layernorm_after",
}
_BLOCK_GROUPS = {
    "blocks_a": "cav_mae.audio_layers",
    "blocks_v": "cav_mae.visual_layers",
    "blocks_u": "cav_mae.shared_layers",
    "decoder_blocks": "decoder.layers",
}
_TOP_LEVEL = {
    "modality_a": "cav_mae.audio_embeddings.modality_embedding",
    "modality_v": "cav_mae.visual_embeddings.modality_embedding",
    "pos_embed_a": "cav_mae.audio_embeddings.position_embeddings",
    "pos_embed_v": "cav_mae.visual_embeddings.position_embeddings",
    "patch_embed_a.proj.weight": "cav_mae.audio_embeddings.projection.weight",
    "patch_embed_a.proj.bias": "cav_mae.audio_embeddings.projection.bias",
    "patch_embed_v.proj.weight": "cav_mae.visual_embeddings.projection.weight",
    "patch_embed_v.proj.bias": "cav_mae.visual_embeddings.projection.bias",
    "norm_a.weight": "cav_mae.audio_layernorm.weight",
    "norm_a.bias": "cav_mae.audio_layernorm.bias",
    "norm_v.weight": "cav_mae.visual_layernorm.weight",
    "norm_v.bias": "cav_mae.visual_layernorm.bias",
    "norm.weight": "cav_mae.layernorm.weight",
    "norm.bias": "cav_mae.layernorm.bias",
    "mask_token": "decoder.mask_token",
    "decoder_modality_a": "decoder.audio_modality_embedding",
    "decoder_modality_v": "decoder.visual_modality_embedding",
    "decoder_pos_embed_a": "decoder.audio_position_embeddings",
    "decoder_pos_embed_v": "decoder.visual_position_embeddings",
    "decoder_embed.weight": "decoder.decoder_embed.weight",
    "decoder_embed.bias": "decoder.decoder_embed.bias",
    "decoder_norm.weight": "decoder.layernorm.weight",
    "decoder_norm.bias": "decoder.layernorm.bias",
    "decoder_pred_a.weight": "decoder.audio_pred.weight",
    "decoder_pred_a.bias": "decoder.audio_pred.bias",
    "decoder_pred_v.weight": "decoder.visual_pred.weight",
    "decoder_pred_v.bias": "decoder.visual_pred.bias",
    "mlp_head.0.weight": "classifier.layernorm.weight",
    "mlp_head.0.bias": "classifier.layernorm.bias",
    "mlp_head.1.weight": "classifier.dense.weight",
    "mlp_head.1.bias": "classifier.dense.bias",
}
_BLOCK_KEY = re.compile(r"^(blocks_a|blocks_v|blocks_u|decoder_blocks)\.(\d+)\.(.+)\.(weight|bias)$")

# Our parameters that official CAV-MAE has no counterpart for (LG-CAV-MAE additions), initialised fresh.
LG_ONLY_PATTERNS = (re.compile(r"^(audio|visual)_text_projection\."), re.compile(r"^text_logit_scale$"))


@dataclass
class ConversionReport:
    """What happened to each official tensor."""

    converted: dict[str, str] = field(default_factory=dict)  # official -> ours
    dropped_unused_norms: list[str] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    newly_initialised: list[str] = field(default_factory=list)
    kind: str = ""

    def summary(self) -> str:
        lines = [f"checkpoint kind: {self.kind}", f"converted tensors: {len(self.converted)}"]
        if self.dropped_unused_norms:
            lines.append(
                f"dropped {len(self.dropped_unused_norms)} unused LayerNorm tensors (norm1_a/_v, norm2_a/_v of the "
                "modality-specific and decoder blocks; the official code never calls them)"
            )
        if self.newly_initialised:
            lines.append(
                f"newly initialised (LG-CAV-MAE additions, not in CAV-MAE): {', '.join(self.newly_initialised)}"
            )
        if self.unrecognised:
            lines.append(f"UNRECOGNISED official keys: {', '.join(self.unrecognised)}")
        return "\n".join(lines)


def strip_data_parallel_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the `module.` prefix `nn.DataParallel` adds to every key of the released checkpoints."""
    return {key.removeprefix("module."): value for key, value in state_dict.items()}


def _map_key(key: str) -> tuple[str | None, str]:
    """Our name for an official key, and its fate: 'converted', 'dropped' or 'unrecognised'."""
    if key in _TOP_LEVEL:
        return _TOP_LEVEL[key], "converted"
    match = _BLOCK_KEY.match(key)
    if match is None:
        return None, "unrecognised"
    group, index, part, kind = match.groups()
    prefix = f"{_BLOCK_GROUPS[group]}.{index}"
    if part in _BLOCK_PARTS:
        return f"{prefix}.{_BLOCK_PARTS[part]}.{kind}", "converted"
    if part in _SHARED_ONLY_PARTS:
        if group == "blocks_u":
            return f"{prefix}.{_SHARED_ONLY_PARTS[part]}.{kind}", "converted"
        return None, "dropped"
    return None, "unrecognised"


def convert_cavmae_state_dict_with_report(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Official `CAVMAE` / `CAVMAEFT` state dict (with or without `module.`) -> our names, plus a report."""
    state_dict = strip_data_parallel_prefix(state_dict)
    report = ConversionReport()
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        ours, fate = _map_key(key)
        if fate == "converted":
            converted[ours] = value
            report.converted[key] = ours
        elif fate == "dropped":
            report.dropped_unused_norms.append(key)
        else:
            report.unrecognised.append(key)
    report.kind = checkpoint_kind(state_dict)
    return converted, report


def convert_cavmae_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official CAV-MAE state dict -> LG-CAV-MAE state dict (keys as in `LGCavMaeForPreTraining` /
    `LGCavMaeForAudioVisualClassification`). Unused block norms are dropped; an unknown key is an error."""
    converted, report = convert_cavmae_state_dict_with_report(state_dict)
    if report.unrecognised:
        raise ValueError(f"Not an official CAV-MAE checkpoint; unrecognised keys: {report.unrecognised}")
    return converted


def checkpoint_kind(state_dict: dict[str, torch.Tensor]) -> str:
    """'finetuning' (`CAVMAEFT`, has `mlp_head`), 'pretraining' (`CAVMAE`, has the decoder) or 'encoder'."""
    keys = strip_data_parallel_prefix(state_dict).keys()
    if any(key.startswith("mlp_head.") for key in keys):
        return "finetuning"
    if "decoder_embed.weight" in keys:
        return "pretraining"
    return "encoder"


def config_from_cavmae_state_dict(state_dict: dict[str, torch.Tensor], **overrides: Any):
    """Infer an `LGCavMaeConfig` from tensor shapes. Head counts cannot be read from shapes: like the official
    code they default to head width 64 in the encoder and 32 in the decoder (12 and 16 heads at full size)."""
    from .configuration_lgcavmae import LGCavMaeConfig

    sd = strip_data_parallel_prefix(state_dict)

    def count(group: str) -> int:
        return len({key.split(".")[1] for key in sd if key.startswith(group + ".")})

    patch_weight = sd["patch_embed_v.proj.weight"]
    hidden_size, num_channels, patch_size, _ = patch_weight.shape
    num_mel_bins = overrides.pop("num_mel_bins", 128)
    num_audio_patches = sd["pos_embed_a"].shape[1]
    num_visual_patches = sd["pos_embed_v"].shape[1]
    values: dict[str, Any] = {
        "hidden_size": hidden_size,
        "num_channels": num_channels,
        "patch_size": patch_size,
        "num_mel_bins": num_mel_bins,
        "audio_length": num_audio_patches // (num_mel_bins // patch_size) * patch_size,
        "image_size": round(num_visual_patches**0.5) * patch_size,
        "num_attention_heads": hidden_size // 64,
        "intermediate_size": sd["blocks_a.0.mlp.fc1.weight"].shape[0],
        "num_modality_specific_layers": count("blocks_a"),
        "num_shared_layers": count("blocks_u"),
    }
    if "decoder_embed.weight" in sd:
        decoder_hidden_size = sd["decoder_embed.weight"].shape[0]
        values.update(
            decoder_hidden_size=decoder_hidden_size,
            decoder_num_attention_heads=decoder_hidden_size // 32,
            decoder_num_hidden_layers=count("decoder_blocks"),
            decoder_intermediate_size=sd["decoder_blocks.0.mlp.fc1.weight"].shape[0],
        )
    if "mlp_head.1.weight" in sd:
        values["num_labels"] = sd["mlp_head.1.weight"].shape[0]
    values.update(overrides)
    return LGCavMaeConfig(**values)


def load_cavmae_checkpoint(
    checkpoint: str | Path | dict[str, torch.Tensor], **config_overrides: Any
) -> tuple[torch.nn.Module, ConversionReport]:
    """Build the matching LG-CAV-MAE model from an official checkpoint (path or state dict) and load it strictly.

    Pretraining checkpoints give `LGCavMaeForPreTraining` (text projections newly initialised), fine-tuning ones
    `LGCavMaeForAudioVisualClassification`, encoder-only ones `LGCavMaeModel`. Anything else that does not map is
    an error naming the keys.
    """
    from .modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining, LGCavMaeModel

    state_dict = load_state_dict_file(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    converted, report = convert_cavmae_state_dict_with_report(state_dict)
    if report.unrecognised:
        raise ValueError(f"Not an official CAV-MAE checkpoint; unrecognised keys: {report.unrecognised}")
    config = config_from_cavmae_state_dict(state_dict, **config_overrides)
    if report.kind == "finetuning":
        model = LGCavMaeForAudioVisualClassification(config)
    elif report.kind == "pretraining":
        model = LGCavMaeForPreTraining(config)
    else:
        model = LGCavMaeModel(config)
        converted = {key.removeprefix("cav_mae."): value for key, value in converted.items()}
    target_keys = set(model.state_dict())
    missing = sorted(target_keys - converted.keys())
    unexpected = sorted(converted.keys() - target_keys)
    report.newly_initialised = [key for key in missing if any(p.search(key) for p in LG_ONLY_PATTERNS)]
    not_loaded = [key for key in missing if key not in report.newly_initialised]
    if not_loaded or unexpected:
        raise ValueError(
            f"Checkpoint does not match the inferred config: missing {not_loaded}, unexpected {unexpected}."
        )
    model.load_state_dict(converted, strict=False)  # shape mismatches still raise; key sets checked above
    return model, report


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """`torch.load(weights_only=True)` a `.pth` (also unwraps `{'model': ...}` / `{'state_dict': ...}`)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict.")
    return state


def read_official_label_csv(path: str | Path) -> dict[int, str]:
    """`index,mid,display_name` label CSV of the official repo -> id2label (display names)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {int(row["index"]): row["display_name"] for row in csv.DictReader(handle)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modeling_lgcavmae.convert_cavmae_checkpoint",
        description="Convert an official CAV-MAE .pth (CAVMAE pretraining or CAVMAEFT fine-tuning) to a "
        "transformers folder (safetensors, config, model card, remote code).",
    )
    parser.add_argument("--checkpoint", required=True, help="Official .pth file (keys may carry 'module.').")
    parser.add_argument("--output-dir", required=True, help="Folder to write the converted model to.")
    parser.add_argument(
        "--text-embed-dim",
        type=int,
        default=1024,
        help="Size of the text embeddings the new LG projections map to (MS-CLAP 2023: 1024).",
    )
    parser.add_argument(
        "--num-attention-heads", type=int, default=None, help="Encoder heads (default: width / 64 = 12)."
    )
    parser.add_argument(
        "--decoder-num-attention-heads",
        type=int,
        default=None,
        help="Decoder heads (default: width / 32 = 16).",
    )
    parser.add_argument(
        "--labels-csv",
        default=None,
        help="Official class_labels_indices CSV, to name the classifier's labels.",
    )
    parser.add_argument(
        "--problem-type",
        choices=["single_label_classification", "multi_label_classification"],
        default=None,
        help="Fine-tuned checkpoints: multi-label for AudioSet, single-label for VGGSound.",
    )
    parser.add_argument(
        "--classifier-mode",
        choices=["audio_visual", "audio", "visual", "missing_visual", "missing_audio"],
        default=None,
        help="Fine-tuned checkpoints: which official inference mode the classifier uses (default audio_visual).",
    )
    parser.add_argument(
        "--push-to-hub", default=None, metavar="REPO_ID", help="Also upload to this Hub repo."
    )
    parser.add_argument(
        "--hub-private", dest="private", action="store_true", help="Create the Hub repo as private."
    )
    parser.add_argument("--private", action="store_true", help=argparse.SUPPRESS)  # its former name (avt 0.x)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .model_card_lgcavmae import write_model_card

    overrides: dict[str, Any] = {"text_embed_dim": args.text_embed_dim}
    if args.num_attention_heads:
        overrides["num_attention_heads"] = args.num_attention_heads
    if args.decoder_num_attention_heads:
        overrides["decoder_num_attention_heads"] = args.decoder_num_attention_heads
    if args.labels_csv:
        id2label = read_official_label_csv(args.labels_csv)
        overrides.update(id2label=id2label, label2id={name: index for index, name in id2label.items()})
    if args.problem_type:
        overrides["problem_type"] = args.problem_type
    if args.classifier_mode:
        overrides["classifier_mode"] = args.classifier_mode

    model, report = load_cavmae_checkpoint(args.checkpoint, **overrides)
    print(report.summary())
    output_dir = Path(args.output_dir)
    source = f"Converted from the official CAV-MAE checkpoint `{Path(args.checkpoint).name}`."
    model.save_pretrained(output_dir)
    write_model_card(output_dir, model, source=source, conversion_report=report.summary())
    print(f"saved {type(model).__name__} to {output_dir}")
    if args.push_to_hub:
        model.push_to_hub(
            args.push_to_hub, private=args.private, card_source=source, conversion_report=report.summary()
        )
        print(f"pushed to {args.push_to_hub}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
