"""Parts of the SLAVA training loop: model set-up, feature tables, stages, optimiser, gradient averaging, validation."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from avt_core.errors import UsageError
from avt_training.slava.config import FEATURE_CACHE_DIR, SlavaPretrainConfig

logger = logging.getLogger(__name__)


# -- set-up ------------------------------------------------------------------------------------------------------------


def _tower_revision(name_or_path: str | None) -> str | None:
    from avt_triplets.revisions import resolve_commit_hash

    return resolve_commit_hash(name_or_path) if name_or_path else None


def build_model(config: SlavaPretrainConfig, dtype: torch.dtype):
    """A SLAVA checkpoint to continue from, or a new one on the given towers (pinned to their Hub commits)."""
    import modeling_slava  # noqa: F401 - registers the Auto classes
    from avt_triplets.model_sources import loading_errors
    from modeling_slava import SlavaModel

    if config.model_name_or_path:
        with loading_errors("--model-name-or-path", config.model_name_or_path):
            model = SlavaModel.from_pretrained(config.model_name_or_path, load_towers=False)
            model.config.variant = config.variant
            model.load_towers(dtype=dtype)
        return model
    text_model = config.text_model or config.vision_model
    audio_model = config.audio_model
    with loading_errors("the towers (--vision-model, --text-model, --audio-model)", config.vision_model):
        model = _new_model(config, text_model, audio_model)
    if dtype != torch.float32:
        model.towers.to(dtype)
    return model


def _new_model(config: SlavaPretrainConfig, text_model: str, audio_model: str | None):
    """A new SLAVA model on the towers the options name."""
    from modeling_slava import SlavaModel

    return SlavaModel.from_towers(
        config.vision_model,
        audio_model,
        text_model,
        init_from_clip_projections=config.init_from_clip_projections,
        vision_model_revision=_tower_revision(config.vision_model),
        text_model_revision=_tower_revision(text_model),
        audio_model_revision=_tower_revision(audio_model) if config.audio_backend == "clap" else None,
        audio_backend=config.audio_backend,
        projection_dim=config.projection_dim,
        temperature=config.temperature,
        temperature_learnable=not config.fixed_temperature,
        variant=config.variant,
    )


def open_datasets(specs, split: str, accelerator) -> list[tuple[str, object]]:
    """`(spec text, dataset)` per `--dataset` argument, each with a caption column (checked before any tower
    loads: a labelled-only output of `avt generate --captioner none` cannot train SLAVA); ``accelerator`` None: this
    process alone (a dry run)."""
    import contextlib

    from avt_data.captions import CAPTION_COLUMNS, require_caption_columns
    from avt_training.data import load_triplet_datasets

    opened = []
    for text in specs:
        with accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext():
            hf_dataset = load_triplet_datasets(
                [text],
                columns=("clip_id", "audio", "frames"),
                split=split,
                optional_columns=("video_path", "start_s", "end_s", *CAPTION_COLUMNS),
            )
        require_caption_columns(hf_dataset.column_names, text)
        opened.append((text, hf_dataset))
    return opened


def load_tables(config, opened, split, model, processor, cache, accelerator):
    """One `FeatureTable` per opened dataset, from the cache (extracting what is missing)."""
    from avt_data.rows import DatasetSpec
    from avt_training.slava.features import ExtractionOptions

    options = ExtractionOptions(
        batch_size=config.feature_batch_size, num_workers=config.num_workers, progress=config.progress
    )
    tables = []
    for text, hf_dataset in opened:
        table = cache.features(
            model,
            processor,
            hf_dataset,
            DatasetSpec.parse(text).path,
            split,
            accelerator.device,
            options,
            accelerator.wait_for_everyone,
        )
        stats = {k: v for k, v in table.stats.items() if k != "failed_examples"}
        logger.info("features of %s: %s", text, stats)
        tables.append(table)
    return tables


# -- Hub ---------------------------------------------------------------------------------------------------------------


def pushed_exclusions(config: SlavaPretrainConfig, output_dir: Path) -> tuple[str, ...]:
    """What `--push-to-hub` leaves out of OUTPUT_DIR besides checkpoints and TensorBoard logs (`avt_training.hub`): the
    feature cache, wherever it lies inside OUTPUT_DIR. It holds tower features of the user's clips keyed by their
    clip ids (the data, in another form), is large, and serves only runs that read the same dataset."""
    patterns = [f"{FEATURE_CACHE_DIR}/*"]
    if config.feature_cache_dir:
        try:
            inside = Path(config.feature_cache_dir).resolve().relative_to(output_dir.resolve())
        except ValueError:
            inside = None
        if inside is not None:
            patterns.append(f"{inside.as_posix()}/*")
    return tuple(patterns)


def warn_local_towers(model_config) -> None:
    """A pushed model names its towers; local folders load only on machines that have them."""
    local = {
        name: ref for name, (ref, _) in model_config.tower_references().items() if ref and os.path.exists(ref)
    }
    if local:
        logger.warning(
            "--push-to-hub: the model names local tower folders %s; it loads only where they exist (train on Hub "
            "tower ids, e.g. the defaults, for a model anyone can load)",
            local,
        )


def broadcast_parameters(model, world: int) -> None:
    """Every process starts from rank 0's projections (what DDP would do at wrap time)."""
    if world > 1:
        import torch.distributed as dist

        for parameter in model.parameters():
            dist.broadcast(parameter.data, src=0)


def average_gradients(parameters: list[torch.nn.Parameter], world: int) -> None:
    """Mean of the gradients over processes, in one all-reduce (the model is a few linear layers)."""
    if world == 1:
        return
    import torch.distributed as dist

    with_grad = [p for p in parameters if p.grad is not None]
    flat = torch.cat([p.grad.reshape(-1) for p in with_grad])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for parameter in with_grad:
        size = parameter.grad.numel()
        parameter.grad.copy_(flat[offset : offset + size].view_as(parameter.grad))
        offset += size


# -- stages ------------------------------------------------------------------------------------------------------------


def steps_per_epoch(clips: int, per_device_batch_size: int, num_processes: int) -> int:
    """Global batches per epoch; none is a :class:`UsageError` (nothing would train)."""
    global_batch = per_device_batch_size * num_processes
    if clips // global_batch == 0:
        raise UsageError(
            f"{clips} usable clips are fewer than one global batch ({global_batch}); lower --per-device-batch-size"
        )
    return clips // global_batch


def stage_steps(config: SlavaPretrainConfig, steps_per_epoch: int) -> list[int]:
    """Optimizer steps of each stage (Wav2CLIP splits the budget between its two stages)."""
    from modeling_slava import num_stages

    total = config.max_steps or config.num_epochs * steps_per_epoch
    if num_stages(config.variant) == 1:
        return [total]
    first = max(1, round(total * config.wav2clip_stage1_fraction))
    return [first, max(1, total - first)]


def set_trainable(model, config: SlavaPretrainConfig, stage: int) -> list[torch.nn.Parameter]:
    """Projections this stage trains: those its terms read; Wav2CLIP's stage 2 keeps the visual one (and the text
    one unless `--wav2clip-text-projection trainable`) frozen. Returns the trainable parameters."""
    from modeling_slava import batch_recipes
    from modeling_slava.losses_slava import modalities_of

    used = set().union(*(modalities_of(terms) for _, terms in batch_recipes(config.variant, stage)))
    if config.variant == "wav2clip" and stage == 2:
        used.discard("visual")
        if config.wav2clip_text_projection == "frozen":
            used.discard("text")
    for modality in ("audio", "visual", "text"):
        getattr(model, f"{modality}_projection").requires_grad_(modality in used)
    model.logit_scale.requires_grad_(model.config.temperature_learnable)
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(parameters, config: SlavaPretrainConfig, total_steps: int):
    """AdamW with weight decay on projection weights only (not on biases or the temperature), and its schedule."""
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    decay = [p for p in parameters if p.ndim >= 2]
    no_decay = [p for p in parameters if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
    )
    if config.lr_scheduler == "cosine":
        scheduler = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, total_steps)
    elif config.lr_scheduler == "constant":
        scheduler = get_constant_schedule_with_warmup(optimizer, config.warmup_steps)
    else:
        raise ValueError(f"unknown lr scheduler {config.lr_scheduler!r}")
    return optimizer, scheduler


@torch.no_grad()
def evaluate(model, features, variant: str, stage: int, batch_size: int) -> dict[str, float]:
    """Validation loss of the stage's recipes on the held-out clips (first caption of each kind), in chunks of the
    global batch size so its negatives match training; the recipes' losses are averaged."""
    from modeling_slava import batch_recipes, slava_loss

    totals: dict[str, list[float]] = {}
    chunks = max(1, len(features) // batch_size)
    bounds = [round(i * len(features) / chunks) for i in range(chunks + 1)]
    for kind, terms in batch_recipes(variant, stage):
        rows = features.caption_rows(kind, 0, 0, first=True)
        for start, stop in zip(bounds, bounds[1:]):
            indices = torch.arange(start, stop, device=rows.device)
            output = model(**features.batch(indices, kind, rows), return_loss=False)
            embeds = {
                "audio": output.audio_embeds,
                "visual": output.visual_embeds,
                "text": output.text_embeds,
            }
            loss, logs = slava_loss(embeds, terms, output.logit_scale)
            totals.setdefault("eval_loss", []).append(float(loss))
            for name, value in logs.items():
                totals.setdefault(f"eval_{name}", []).append(float(value))
    return {name: sum(values) / len(values) for name, values in totals.items()}


__all__ = [
    "average_gradients",
    "broadcast_parameters",
    "build_model",
    "build_optimizer",
    "evaluate",
    "load_tables",
    "open_datasets",
    "pushed_exclusions",
    "set_trainable",
    "stage_steps",
    "warn_local_towers",
]
