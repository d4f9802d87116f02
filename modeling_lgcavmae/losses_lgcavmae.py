"""Loss math of LG-CAV-MAE: the terms of the pretraining objective as a table, and the functions they use.

``LOSS_TERMS`` lists each term once (its name, its weight's config field, whether it needs the global batch, how to
compute it, the values it reports). The model's forward computes the terms with the in-batch InfoNCE functions below;
a distributed training loss (``avt_training.losses.PretrainingLoss``) computes the global-batch ones with
all-gathering functions (``TermInputs.audio_visual_loss`` / ``text_loss``); ``pretraining_objective`` weighs the
values into the total loss for both, and the output, the logs and the run summary carry every term's values by name.
Patch helpers live here too because the reconstruction targets must use the token order of the embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

InfoNCE = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _as_scale(temperature: float | torch.Tensor) -> float | torch.Tensor:
    return 1.0 / temperature


def _full_precision(reference: torch.Tensor) -> torch.autocast:
    """Autocast off: under bf16 autocast even `a.float() @ b.float().t()` would run in bf16 and round the logits."""
    return torch.autocast(device_type=reference.device.type, enabled=False)


def cavmae_contrastive_loss(
    audio_embeds: torch.Tensor,
    visual_embeds: torch.Tensor,
    temperature: float | torch.Tensor = 0.05,
    bidirectional: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Official CAV-MAE audio-visual InfoNCE; returns `(loss, accuracy)`.

    Both inputs are pooled embeddings `[N, D]` (row i of each is the same clip), L2-normalised here. With
    `S = a @ v.T / temperature`, the default single-direction loss is `-mean(diag(log_softmax(S, dim=0)))`: for each
    visual sample (column) the softmax runs over the audio index. `bidirectional=True` averages it with the same term
    on `S.T`, like the official `bidirect_contrast=True`. Accuracy is the share of columns whose argmax is the diagonal.
    Computed in float32 so bf16 autocast does not change the loss scale.
    """
    with _full_precision(audio_embeds):
        audio = F.normalize(audio_embeds.float(), dim=-1)
        visual = F.normalize(visual_embeds.float(), dim=-1)
        similarity = audio @ visual.t() * _as_scale(temperature)
    targets = torch.arange(similarity.shape[0], device=similarity.device)

    def one_direction(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss = -torch.diagonal(F.log_softmax(scores, dim=0)).mean()
        accuracy = (scores.argmax(dim=0) == targets).float().mean()
        return loss, accuracy

    loss, accuracy = one_direction(similarity)
    if bidirectional:
        loss_t, accuracy_t = one_direction(similarity.t())
        loss, accuracy = (loss + loss_t) / 2, (accuracy + accuracy_t) / 2
    return loss, accuracy


def text_info_nce_loss(
    modality_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: float | torch.Tensor = 0.05,
    bidirectional: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE between projected audio (or visual) embeddings and caption embeddings; returns `(loss, accuracy)`.

    Both `[N, text_embed_dim]`, L2-normalised here. `S = m @ t.T / temperature`; the modality-to-text term is the
    cross-entropy of each row against its diagonal, the text-to-modality term the same on `S.T`. `bidirectional=True`
    (default) averages both, CLIP-style; `False` keeps modality-to-text only. Accuracy: share of modality rows (and,
    when bidirectional, text rows) whose argmax is the diagonal.
    """
    with _full_precision(modality_embeds):
        modality = F.normalize(modality_embeds.float(), dim=-1)
        text = F.normalize(text_embeds.float(), dim=-1)
        logits = modality @ text.t() * _as_scale(temperature)
    targets = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, targets)
    accuracy = (logits.argmax(dim=1) == targets).float().mean()
    if bidirectional:
        loss = (loss + F.cross_entropy(logits.t(), targets)) / 2
        accuracy = (accuracy + (logits.argmax(dim=0) == targets).float().mean()) / 2
    return loss, accuracy


@dataclass
class TermInputs:
    """What a loss term may read: one batch's embeddings, and, inside the model's forward, what the reconstruction
    needs. A term computed after the forward (one that needs the global batch) gets the embeddings only.

    Args:
        config: the `LGCavMaeConfig` (weights, temperatures, directions).
        audio_embeds, visual_embeds (`[N, D]`): pooled embeddings, as the contrastive loss sees them.
        audio_text_embeds, visual_text_embeds (`[N, T]`): the same projected into the text space.
        text_embeds (`[N, T]`): the captions' embeddings; None skips the text terms.
        text_temperature: overrides `config.text_temperature` (a learnt one).
        audio_values, pixel_values, reconstruction_audio, reconstruction_visual, mask_audio, mask_visual: the
            model's inputs, its decoder's predictions and its masks (forward only).
        audio_visual_loss, text_loss: the InfoNCE functions: in-batch ones by default, all-gathering ones for
            global-batch negatives (`avt_training.losses.PretrainingLoss`).
    """

    config: Any
    audio_embeds: torch.Tensor | None = None
    visual_embeds: torch.Tensor | None = None
    audio_text_embeds: torch.Tensor | None = None
    visual_text_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None
    text_temperature: float | torch.Tensor | None = None
    audio_values: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    reconstruction_audio: torch.Tensor | None = None
    reconstruction_visual: torch.Tensor | None = None
    mask_audio: torch.Tensor | None = None
    mask_visual: torch.Tensor | None = None
    audio_visual_loss: InfoNCE = cavmae_contrastive_loss
    text_loss: InfoNCE = text_info_nce_loss


TermValues = dict[str, torch.Tensor]


def reconstruction_term(inputs: TermInputs) -> TermValues:
    """MAE losses of the audio and the visual reconstruction, over masked patches only."""
    config = inputs.config
    audio_targets = patchify_audio(inputs.audio_values, config.patch_size)
    visual_targets = patchify_images(inputs.pixel_values, config.patch_size)
    return {
        "loss_reconstruction_audio": masked_patch_reconstruction_loss(
            inputs.reconstruction_audio, audio_targets, inputs.mask_audio, config.norm_pix_loss
        ),
        "loss_reconstruction_visual": masked_patch_reconstruction_loss(
            inputs.reconstruction_visual, visual_targets, inputs.mask_visual, config.norm_pix_loss
        ),
    }


def audio_visual_term(inputs: TermInputs) -> TermValues:
    """The official CAV-MAE audio-visual InfoNCE (unweighted, as logged) and its accuracy (official `c_acc`)."""
    config = inputs.config
    loss, accuracy = inputs.audio_visual_loss(
        inputs.audio_embeds,
        inputs.visual_embeds,
        config.contrastive_temperature,
        config.contrastive_bidirectional,
    )
    return {"loss_contrastive": loss, "contrastive_accuracy": accuracy.detach()}


def text_term(inputs: TermInputs) -> TermValues | None:
    """Audio-text and visual-text InfoNCE against the captions' embeddings; None without them."""
    config, text_embeds = inputs.config, inputs.text_embeds
    if text_embeds is None:
        return None
    # One tensor for both terms (the paper), or a pair: the audio-text term's and the visual-text term's texts
    # (modality captions, `avt pretrain --text-source modality`).
    audio_side, visual_side = text_embeds if isinstance(text_embeds, tuple | list) else (text_embeds,) * 2
    for side in (audio_side, visual_side):
        if side.shape != (inputs.audio_embeds.shape[0], config.text_embed_dim):
            raise ValueError(
                f"text_embeds must have shape [{inputs.audio_embeds.shape[0]}, {config.text_embed_dim}], "
                f"got {tuple(side.shape)}."
            )
    temperature = config.text_temperature if inputs.text_temperature is None else inputs.text_temperature
    bidirectional = config.text_loss_bidirectional
    audio_text, a2t_accuracy = inputs.text_loss(
        inputs.audio_text_embeds, audio_side, temperature, bidirectional
    )
    visual_text, v2t_accuracy = inputs.text_loss(
        inputs.visual_text_embeds, visual_side, temperature, bidirectional
    )
    return {
        "loss_audio_text": audio_text,
        "loss_visual_text": visual_text,
        "audio_text_accuracy": a2t_accuracy.detach(),
        "visual_text_accuracy": v2t_accuracy.detach(),
    }


@dataclass(frozen=True)
class LossTerm:
    """One row of the pretraining objective.

    Args:
        name: what the term is called in docs and messages.
        weight: the config field of its weight (declared in `loss_settings_lgcavmae`); at 0 it is not computed.
        global_batch: its negatives are the other clips of the batch, so a distributed loop computes it after the
            forward over the all-gathered batch (`return_contrastive_loss=False`); otherwise the forward does.
        compute: `TermInputs` -> its named values (None when its inputs are missing, e.g. no captions).
        losses: the values (output and log names) whose sum the weight multiplies into the total loss.
        metrics: the values reported beside them (accuracies, detached).
    """

    name: str
    weight: str
    global_batch: bool
    compute: Callable[[TermInputs], TermValues | None]
    losses: tuple[str, ...]
    metrics: tuple[str, ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.losses + self.metrics


# The objective, in summation order: `reconstruction_weight * (L_rec_a + L_rec_v) + contrastive_weight * L_c +
# text_contrastive_weight * (L_a2t + L_v2t)`. Add a row (and its weight in `loss_settings_lgcavmae` and the config)
# to add a term: the forward, the model output, `avt_training`'s distributed loss and the run summary iterate it.
LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm(
        "reconstruction",
        "reconstruction_weight",
        global_batch=False,
        compute=reconstruction_term,
        losses=("loss_reconstruction_audio", "loss_reconstruction_visual"),
    ),
    LossTerm(
        "audio-visual contrastive",
        "contrastive_weight",
        global_batch=True,
        compute=audio_visual_term,
        losses=("loss_contrastive",),
        metrics=("contrastive_accuracy",),
    ),
    LossTerm(
        "audio/visual-text contrastive",
        "text_contrastive_weight",
        global_batch=True,
        compute=text_term,
        losses=("loss_audio_text", "loss_visual_text"),
        metrics=("audio_text_accuracy", "visual_text_accuracy"),
    ),
)


def loss_term_outputs() -> tuple[str, ...]:
    """Every value a term can report, in table order (what the output, the logs and the summary carry)."""
    return tuple(name for term in LOSS_TERMS for name in term.outputs)


def compute_terms(inputs: TermInputs, global_batch: bool | None = None) -> TermValues:
    """The values of every term whose weight is not 0 and whose inputs are there; `global_batch` True / False keeps
    only the terms that need / do not need the global batch (None: all)."""
    values: TermValues = {}
    for term in LOSS_TERMS:
        if global_batch is not None and term.global_batch != global_batch:
            continue
        if getattr(inputs.config, term.weight) == 0:
            continue
        values.update(term.compute(inputs) or {})
    return values


def pretraining_objective(config, values: TermValues) -> torch.Tensor | None:
    """Each computed term's weight times the sum of its losses, summed in table order; None when none was."""
    weighted = []
    for term in LOSS_TERMS:
        parts = [values[name] for name in term.losses if values.get(name) is not None]
        if parts:
            weighted.append(getattr(config, term.weight) * sum(parts[1:], parts[0]))
    return sum(weighted[1:], weighted[0]) if weighted else None


def masked_patch_reconstruction_loss(
    predictions: torch.Tensor,
    target_patches: torch.Tensor,
    mask: torch.Tensor,
    norm_pix_loss: bool = True,
) -> torch.Tensor:
    """MAE loss: mean squared error per patch, averaged over masked patches only (`mask` is 1 where removed).

    With `norm_pix_loss`, each target patch is standardised with its own mean and *unbiased* variance + 1e-6,
    exactly as the official code (torch's default `var`).
    """
    target = target_patches.float()
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    per_patch = ((predictions.float() - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


def patchify_audio(audio_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`[B, T, F]` spectrogram -> `[B, (F/p) * (T/p), p * p]` patches, frequency-major like the audio tokens.

    The spectrogram is transposed to `[B, 1, F, T]` first (frequency as height), as the official embedding does;
    each patch is flattened in (frequency, time) order.
    """
    return patchify_images(audio_values.unsqueeze(1).transpose(2, 3), patch_size)


def unpatchify_audio(
    patches: torch.Tensor, patch_size: int, num_mel_bins: int, audio_length: int
) -> torch.Tensor:
    """Inverse of `patchify_audio`: `[B, L, p * p]` -> `[B, audio_length, num_mel_bins]`."""
    images = unpatchify_images(patches, patch_size, 1, num_mel_bins, audio_length)
    return images.squeeze(1).transpose(1, 2)


def patchify_images(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`[B, C, H, W]` -> `[B, (H/p) * (W/p), p * p * C]`, each patch flattened in (row, column, channel) order."""
    batch, channels, height, width = images.shape
    rows, cols = height // patch_size, width // patch_size
    x = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch, rows * cols, patch_size * patch_size * channels)


def unpatchify_images(
    patches: torch.Tensor, patch_size: int, channels: int, height: int, width: int
) -> torch.Tensor:
    """Inverse of `patchify_images`."""
    batch = patches.shape[0]
    rows, cols = height // patch_size, width // patch_size
    x = patches.reshape(batch, rows, cols, patch_size, patch_size, channels)
    x = x.permute(0, 5, 1, 3, 2, 4)
    return x.reshape(batch, channels, height, width)


__all__ = [
    "LOSS_TERMS",
    "LossTerm",
    "TermInputs",
    "cavmae_contrastive_loss",
    "compute_terms",
    "loss_term_outputs",
    "masked_patch_reconstruction_loss",
    "patchify_audio",
    "patchify_images",
    "pretraining_objective",
    "text_info_nce_loss",
    "unpatchify_audio",
    "unpatchify_images",
]
