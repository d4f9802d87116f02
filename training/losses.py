"""Contrastive terms over the global batch under several processes (open_clip's local-loss semantics).

Every process all-gathers the embeddings *with gradients* (``torch.distributed.nn.functional.all_gather``;
``accelerator.gather`` has no autograd) and computes the loss of its *own rows* against *all columns*.
The mean of the per-process losses, which DDP's gradient averaging optimises, is then exactly the loss of
one process holding the whole global batch (the math of ``modeling_lgcavmae.losses_lgcavmae``), at a cost
of ``local x global`` logits per process instead of ``global x global``.

Gradient accumulation does not add negatives: the negatives are the global batch of one forward pass,
``per_device_batch_size x num_processes``.

``scope="per-process"`` keeps the official CAV-MAE behaviour (negatives from the local batch only) and calls
the model package's loss functions directly; so does a single process, where both scopes coincide.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F

ContrastiveScope = Literal["global", "per-process"]


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process along dim 0, keeping the autograd graph.

    The backward sums the gradients every process computed for this process's rows and returns them here.
    All processes must pass the same shape (the training loader drops the last incomplete batch).
    """
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # torch >= 2.6 marks it deprecated in favour of a private functional-collectives API; it is still the
        # public autograd all-gather (the one open_clip uses) and works with NCCL and gloo.
        warnings.filterwarnings("ignore", message=".*all_gather is deprecated", category=FutureWarning)
        return torch.cat(all_gather(tensor), dim=0)


def _local_targets(local_size: int, rank: int, device: torch.device) -> torch.Tensor:
    return torch.arange(local_size, device=device) + rank * local_size


def _rows_vs_all(rows: torch.Tensor, columns_all: torch.Tensor, scale, targets: torch.Tensor):
    """Cross-entropy and accuracy of each local row against every gathered column."""
    logits = rows @ columns_all.t() * scale
    loss = F.cross_entropy(logits, targets)
    accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return loss, accuracy


def global_cavmae_contrastive_loss(
    audio_embeds: torch.Tensor,
    visual_embeds: torch.Tensor,
    temperature: float | torch.Tensor = 0.05,
    bidirectional: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CAV-MAE's audio-visual InfoNCE (``cavmae_contrastive_loss``) with global-batch negatives.

    The official single direction is, for each *visual* sample, a softmax over the *audio* index: here each
    process's visual rows against all gathered audio. ``bidirectional`` averages it with audio rows against
    all visual. Returns ``(loss, accuracy)`` over this process's rows.
    """
    rank, world = distributed_world()
    audio = F.normalize(audio_embeds.float(), dim=-1)
    visual = F.normalize(visual_embeds.float(), dim=-1)
    audio_all, visual_all = gather_with_grad(audio), gather_with_grad(visual)
    targets = _local_targets(audio.shape[0], rank, audio.device)
    scale = 1.0 / temperature
    loss, accuracy = _rows_vs_all(visual, audio_all, scale, targets)
    if bidirectional:
        loss_t, accuracy_t = _rows_vs_all(audio, visual_all, scale, targets)
        loss, accuracy = (loss + loss_t) / 2, (accuracy + accuracy_t) / 2
    return loss, accuracy


def global_text_info_nce_loss(
    modality_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: float | torch.Tensor = 0.05,
    bidirectional: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The audio/visual-to-text InfoNCE (``text_info_nce_loss``) with global-batch negatives.

    Modality-to-text: local modality rows against all gathered texts; text-to-modality: local text rows
    against all gathered modality embeddings; averaged when ``bidirectional`` (CLIP-style).
    """
    rank, world = distributed_world()
    modality = F.normalize(modality_embeds.float(), dim=-1)
    text = F.normalize(text_embeds.float(), dim=-1)
    targets = _local_targets(modality.shape[0], rank, modality.device)
    scale = 1.0 / temperature
    loss, accuracy = _rows_vs_all(modality, gather_with_grad(text), scale, targets)
    if bidirectional:
        loss_t, accuracy_t = _rows_vs_all(text, gather_with_grad(modality), scale, targets)
        loss, accuracy = (loss + loss_t) / 2, (accuracy + accuracy_t) / 2
    return loss, accuracy


@dataclass
class ContrastiveTerms:
    """Unweighted contrastive terms of one step (losses carry gradients, accuracies are detached)."""

    audio_visual: torch.Tensor
    audio_visual_accuracy: torch.Tensor
    audio_text: torch.Tensor | None = None
    visual_text: torch.Tensor | None = None
    audio_text_accuracy: torch.Tensor | None = None
    visual_text_accuracy: torch.Tensor | None = None


def contrastive_terms(
    audio_embeds: torch.Tensor,
    visual_embeds: torch.Tensor,
    audio_text_embeds: torch.Tensor | None,
    visual_text_embeds: torch.Tensor | None,
    text_embeds: torch.Tensor | None,
    config,
    scope: ContrastiveScope = "global",
    text_temperature: float | torch.Tensor | None = None,
) -> ContrastiveTerms:
    """All contrastive terms of LG-CAV-MAE from the pooled / projected embeddings of one forward pass.

    ``config`` supplies the temperatures and directions (``LGCavMaeConfig``); ``text_temperature`` overrides
    the config's when the model learns it.
    """
    from modeling_lgcavmae.losses_lgcavmae import cavmae_contrastive_loss, text_info_nce_loss

    _, world = distributed_world()
    use_global = scope == "global" and world > 1
    av_loss = global_cavmae_contrastive_loss if use_global else cavmae_contrastive_loss
    text_loss = global_text_info_nce_loss if use_global else text_info_nce_loss
    loss, accuracy = av_loss(
        audio_embeds,
        visual_embeds,
        temperature=config.contrastive_temperature,
        bidirectional=config.contrastive_bidirectional,
    )
    terms = ContrastiveTerms(audio_visual=loss, audio_visual_accuracy=accuracy.detach())
    if text_embeds is not None and audio_text_embeds is not None and visual_text_embeds is not None:
        temperature = config.text_temperature if text_temperature is None else text_temperature
        bidirectional = config.text_loss_bidirectional
        terms.audio_text, a2t_accuracy = text_loss(audio_text_embeds, text_embeds, temperature, bidirectional)
        terms.visual_text, v2t_accuracy = text_loss(
            visual_text_embeds, text_embeds, temperature, bidirectional
        )
        terms.audio_text_accuracy, terms.visual_text_accuracy = a2t_accuracy.detach(), v2t_accuracy.detach()
    return terms
