"""Loss math of LG-CAV-MAE as pure functions.

``contrastive_terms`` decides which contrastive terms a configuration computes and with which temperatures; it takes
the two InfoNCE functions as arguments, so the model's forward runs it with the in-batch ones below and a distributed
training loss (``avt_training.losses.PretrainingLoss``) with all-gathering ones, over the same choices.
``pretraining_objective`` weighs the terms into the total loss for both. Patch helpers live here too because the
reconstruction targets must use the token order of the embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
class ContrastiveTerms:
    """Unweighted contrastive terms of one batch; a term is None when the configuration skips it (zero weight, no
    text embeddings).

    Args:
        audio_visual (`[]`, float32, with gradients): the official CAV-MAE audio-visual InfoNCE
            (`cavmae_contrastive_loss` by default).
        audio_visual_accuracy (`[]`, float32, detached): share of clips in [0, 1] whose audio-visual arg-max is the
            right clip.
        audio_text (`[]`, float32, with gradients): InfoNCE between text-space audio embeddings and the captions'.
        visual_text (`[]`, float32, with gradients): the visual counterpart.
        audio_text_accuracy (`[]`, float32, detached): share in [0, 1] for audio-text (both directions averaged when
            bidirectional).
        visual_text_accuracy (`[]`, float32, detached): the visual counterpart.
    """

    audio_visual: torch.Tensor | None = None
    audio_visual_accuracy: torch.Tensor | None = None
    audio_text: torch.Tensor | None = None
    visual_text: torch.Tensor | None = None
    audio_text_accuracy: torch.Tensor | None = None
    visual_text_accuracy: torch.Tensor | None = None


def contrastive_terms(
    config,
    audio_embeds: torch.Tensor,
    visual_embeds: torch.Tensor,
    audio_text_embeds: torch.Tensor | None = None,
    visual_text_embeds: torch.Tensor | None = None,
    text_embeds: torch.Tensor | None = None,
    text_temperature: float | torch.Tensor | None = None,
    audio_visual_loss: InfoNCE = cavmae_contrastive_loss,
    text_loss: InfoNCE = text_info_nce_loss,
) -> ContrastiveTerms:
    """The contrastive terms ``config`` (an `LGCavMaeConfig`) asks for, from pooled `[N, hidden_size]` and projected
    `[N, text_embed_dim]` embeddings.

    The audio-visual term is computed when `contrastive_weight != 0`; the audio-text and visual-text terms when
    `text_contrastive_weight != 0` and `text_embeds` are given: one `[N, text_embed_dim]` tensor for both (the paper),
    or a pair (the audio-text term's, the visual-text term's: modality captions). `text_temperature` overrides the
    config's (a learnt one). The loss functions default to the in-batch ones; pass gathering ones for global-batch negatives.
    """
    terms = ContrastiveTerms()
    if config.contrastive_weight != 0:
        loss, accuracy = audio_visual_loss(
            audio_embeds, visual_embeds, config.contrastive_temperature, config.contrastive_bidirectional
        )
        terms.audio_visual, terms.audio_visual_accuracy = loss, accuracy.detach()
    if text_embeds is not None and config.text_contrastive_weight != 0:
        audio_side, visual_side = text_embeds if isinstance(text_embeds, tuple | list) else (text_embeds,) * 2
        for side in (audio_side, visual_side):
            if side.shape != (audio_embeds.shape[0], config.text_embed_dim):
                raise ValueError(
                    f"text_embeds must have shape [{audio_embeds.shape[0]}, {config.text_embed_dim}], "
                    f"got {tuple(side.shape)}."
                )
        temperature = config.text_temperature if text_temperature is None else text_temperature
        bidirectional = config.text_loss_bidirectional
        terms.audio_text, a2t_accuracy = text_loss(audio_text_embeds, audio_side, temperature, bidirectional)
        terms.visual_text, v2t_accuracy = text_loss(
            visual_text_embeds, visual_side, temperature, bidirectional
        )
        terms.audio_text_accuracy, terms.visual_text_accuracy = a2t_accuracy.detach(), v2t_accuracy.detach()
    return terms


def pretraining_objective(
    config,
    loss_reconstruction_audio: torch.Tensor | None,
    loss_reconstruction_visual: torch.Tensor | None,
    terms: ContrastiveTerms,
) -> torch.Tensor | None:
    """`reconstruction_weight * (L_rec_a + L_rec_v) + contrastive_weight * L_c + text_contrastive_weight * (L_a2t +
    L_v2t)` over the terms that were computed; None when none was."""
    weighted = []
    if loss_reconstruction_audio is not None:
        weighted.append(
            config.reconstruction_weight * (loss_reconstruction_audio + loss_reconstruction_visual)
        )
    if terms.audio_visual is not None:
        weighted.append(config.contrastive_weight * terms.audio_visual)
    if terms.audio_text is not None:
        weighted.append(config.text_contrastive_weight * (terms.audio_text + terms.visual_text))
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
    "ContrastiveTerms",
    "cavmae_contrastive_loss",
    "contrastive_terms",
    "masked_patch_reconstruction_loss",
    "patchify_audio",
    "patchify_images",
    "pretraining_objective",
    "text_info_nce_loss",
    "unpatchify_audio",
    "unpatchify_images",
]
