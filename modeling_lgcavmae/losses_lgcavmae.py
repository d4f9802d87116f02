"""Loss math of LG-CAV-MAE as pure functions.

The model's forward calls exactly these functions, so a distributed training loop can call them again on
all-gathered embeddings (global-batch negatives) and get the same math, and a test can check that equality.
Patch helpers live here too because the reconstruction targets must use the token order of the embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    "cavmae_contrastive_loss",
    "masked_patch_reconstruction_loss",
    "patchify_audio",
    "patchify_images",
    "text_info_nce_loss",
    "unpatchify_audio",
    "unpatchify_images",
]
