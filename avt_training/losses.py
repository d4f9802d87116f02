"""The pretraining loss object: every LG-CAV-MAE term, with the contrastive ones over the global batch.

``PretrainingLoss`` is open_clip's ``ClipLoss`` for LG-CAV-MAE: it knows the distribution (rank, world size) and,
under several processes with ``scope="global"``, all-gathers the embeddings *with gradients*
(``torch.distributed.nn.functional.all_gather``; ``accelerator.gather`` has no autograd) and computes the loss of its
*own rows* against *all columns*. The mean of the per-process losses, which DDP's gradient averaging optimises, is
then exactly the loss of one process holding the whole global batch (the math of ``modeling_lgcavmae``), at a cost of
``local x global`` logits per process instead of ``global x global``. Which terms exist and how they are weighed is
decided once, in the term table ``modeling_lgcavmae.losses_lgcavmae.LOSS_TERMS`` (``compute_terms``,
``pretraining_objective``), for the model's own forward and for this object; the logs carry every term's values.

``scope="per-process"`` keeps the official CAV-MAE behaviour (negatives from the local batch only) with the model
package's in-batch functions; so does a single process, where both scopes coincide.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F

from avt_training.pretrain_config import ContrastiveScope


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


def _global_info_nce(
    rows: torch.Tensor, columns: torch.Tensor, temperature, bidirectional: bool, rank: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of this process's ``rows`` against every process's ``columns`` (both L2-normalised here, in
    float32), averaged with ``columns`` against every process's ``rows`` when ``bidirectional``."""
    rank = distributed_world()[0] if rank is None else rank
    rows = F.normalize(rows.float(), dim=-1)
    columns = F.normalize(columns.float(), dim=-1)
    targets = _local_targets(rows.shape[0], rank, rows.device)
    scale = 1.0 / temperature
    loss, accuracy = _rows_vs_all(rows, gather_with_grad(columns), scale, targets)
    if bidirectional:
        loss_t, accuracy_t = _rows_vs_all(columns, gather_with_grad(rows), scale, targets)
        loss, accuracy = (loss + loss_t) / 2, (accuracy + accuracy_t) / 2
    return loss, accuracy


def global_cavmae_contrastive_loss(
    audio_embeds: torch.Tensor,
    visual_embeds: torch.Tensor,
    temperature: float | torch.Tensor = 0.05,
    bidirectional: bool = False,
    rank: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CAV-MAE's audio-visual InfoNCE (``cavmae_contrastive_loss``) with global-batch negatives.

    The official single direction is, for each *visual* sample, a softmax over the *audio* index: here each
    process's visual rows against all gathered audio. ``bidirectional`` averages it with audio rows against
    all visual. Returns ``(loss, accuracy)`` over this process's rows; ``rank`` defaults to this process's.
    """
    return _global_info_nce(visual_embeds, audio_embeds, temperature, bidirectional, rank)


def global_text_info_nce_loss(
    modality_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: float | torch.Tensor = 0.05,
    bidirectional: bool = True,
    rank: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The audio/visual-to-text InfoNCE (``text_info_nce_loss``) with global-batch negatives.

    Modality-to-text: local modality rows against all gathered texts; text-to-modality: local text rows
    against all gathered modality embeddings; averaged when ``bidirectional`` (CLIP-style).
    """
    return _global_info_nce(modality_embeds, text_embeds, temperature, bidirectional, rank)


class PretrainingLoss:
    """Total LG-CAV-MAE loss of one step and the scalars to log (every term's values and ``loss``), from a forward
    run with ``return_contrastive_loss=False`` (the terms that need no other clips, plus the pooled / projected
    embeddings).

    The terms that need the global batch (the contrastive ones) are computed here, outside the model's autocast region (bf16 never rounds the logits), over
    the all-gathered global batch (``global`` under several processes) or the local one.
    """

    def __init__(self, model_config, scope: ContrastiveScope = "global"):
        self.config = model_config
        self.scope = scope
        self.rank, self.world_size = distributed_world()

    @property
    def gathers(self) -> bool:
        return self.scope == "global" and self.world_size > 1

    def __call__(
        self, output, text_embeds=None, text_temperature=None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from modeling_lgcavmae.losses_lgcavmae import (
            LOSS_TERMS,
            TermInputs,
            compute_terms,
            pretraining_objective,
        )

        functions = {}
        if self.gathers:
            functions["audio_visual_loss"] = functools.partial(global_cavmae_contrastive_loss, rank=self.rank)
            functions["text_loss"] = functools.partial(global_text_info_nce_loss, rank=self.rank)
        inputs = TermInputs(
            self.config,
            audio_embeds=output.audio_embeds,
            visual_embeds=output.visual_embeds,
            audio_text_embeds=output.audio_text_embeds,
            visual_text_embeds=output.visual_text_embeds,
            text_embeds=text_embeds,
            text_temperature=text_temperature,
            **functions,
        )
        # The forward computed the terms that need no other clips; the global-batch ones are computed here.
        values = {
            name: output.get(name) for term in LOSS_TERMS if not term.global_batch for name in term.outputs
        }
        values.update(compute_terms(inputs, global_batch=True))
        loss = pretraining_objective(self.config, values)
        if loss is None:
            raise ValueError("every pretraining loss weight is 0: nothing to train")
        logged = {**values, "loss": loss}
        return loss, {k: v.detach() for k, v in logged.items() if v is not None}
