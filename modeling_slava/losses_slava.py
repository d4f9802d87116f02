"""SLAVA's loss recipes: pairwise symmetric InfoNCE terms chosen per variant, batch and stage.

Terms (each CLIP-style, both directions averaged, one shared temperature): `av` audio-visual, `at` audio-text,
`vt` visual-text. Which caption a batch's text is (`audio`, `visual` or `av` captions) and which terms it trains:

| variant     | batches                                   | terms                                 |
|-------------|-------------------------------------------|---------------------------------------|
| `a&v`       | alternate: audio captions, visual captions | audio: av + at; visual: av + vt       |
| `av`        | audio-visual captions                     | at + vt                               |
| `av+avloss` | audio-visual captions                     | at + vt + av                          |
| `audioclip` | audio captions                            | av + at + vt (AudioCLIP, one stage)   |
| `wav2clip`  | stage 1 visual captions, stage 2 audio    | stage 1: vt; stage 2: at (Wav2CLIP)   |

The functions take an optional `gather` (all-gather with gradients) and the row `offset` of this process, so a
training loop spread over processes computes each process's rows against the global batch's columns; without
them they are the single-process losses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

TERMS: dict[str, tuple[str, str]] = {
    "av": ("audio", "visual"),
    "at": ("audio", "text"),
    "vt": ("visual", "text"),
}
TERM_LOSS_NAMES = {"av": "loss_audio_visual", "at": "loss_audio_text", "vt": "loss_visual_text"}

_RECIPES: dict[tuple[str, int], tuple[tuple[str, tuple[str, ...]], ...]] = {
    # (variant, stage) -> ((caption kind, terms), ...) cycled over batches
    ("a&v", 1): (("audio", ("av", "at")), ("visual", ("av", "vt"))),
    ("av", 1): (("av", ("at", "vt")),),
    ("av+avloss", 1): (("av", ("at", "vt", "av")),),
    ("audioclip", 1): (("audio", ("av", "at", "vt")),),
    ("wav2clip", 1): (("visual", ("vt",)),),
    ("wav2clip", 2): (("audio", ("at",)),),
}


def num_stages(variant: str) -> int:
    """Wav2CLIP trains in two stages, every other variant in one."""
    return 2 if variant == "wav2clip" else 1


def batch_recipe(variant: str, step: int = 0, stage: int = 1) -> tuple[str, tuple[str, ...]]:
    """`(caption kind, terms)` of the batch trained at optimizer step `step` (A&V alternates by step parity)."""
    try:
        recipes = _RECIPES[(variant, stage)]
    except KeyError:
        raise ValueError(f"no stage {stage} in variant {variant!r}") from None
    return recipes[step % len(recipes)]


def batch_recipes(variant: str, stage: int = 1) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every `(caption kind, terms)` a stage of `variant` uses."""
    return _RECIPES[(variant, stage)]


MODALITIES: tuple[str, ...] = ("audio", "visual", "text")


def modalities_of(terms: tuple[str, ...]) -> tuple[str, ...]:
    """The modalities a set of terms reads, always in the order `audio, visual, text`: the gathers of a training
    step are collectives, so every process must issue them in the same order (a set's order varies per process)."""
    used = {modality for term in terms for modality in TERMS[term]}
    return tuple(m for m in MODALITIES if m in used)


def symmetric_info_nce(
    x: torch.Tensor,
    y: torch.Tensor,
    logit_scale: torch.Tensor | float,
    x_all: torch.Tensor | None = None,
    y_all: torch.Tensor | None = None,
    offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's symmetric InfoNCE between L2-normalised rows `x[i]` and `y[i]`; returns `(loss, accuracy)`.

    `x_all` / `y_all` are the columns (the global batch when gathered; default `x` / `y`) and `offset` the global
    index of this process's first row: each local row is scored against every column, target `offset + i`.
    """
    x_all = x if x_all is None else x_all
    y_all = y if y_all is None else y_all
    targets = torch.arange(x.shape[0], device=x.device) + offset
    logits_xy = logit_scale * x @ y_all.t()
    logits_yx = logit_scale * y @ x_all.t()
    loss = (F.cross_entropy(logits_xy, targets) + F.cross_entropy(logits_yx, targets)) / 2
    accuracy = (
        (logits_xy.argmax(1) == targets).float().mean() + (logits_yx.argmax(1) == targets).float().mean()
    ) / 2
    return loss, accuracy.detach()


def slava_loss(
    embeds: dict[str, torch.Tensor],
    terms: tuple[str, ...],
    logit_scale: torch.Tensor | float,
    gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    offset: int = 0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of the `terms` over projected embeddings `{"audio", "visual", "text"}` (normalised here, in float32).

    Returns the total and a dict of the unweighted terms (`loss_audio_visual`, ...) and their accuracies.
    """
    normalised = {m: F.normalize(embeds[m].float(), dim=-1) for m in modalities_of(terms)}
    gathered = {m: (gather(v) if gather is not None else v) for m, v in normalised.items()}
    total = torch.zeros((), device=next(iter(normalised.values())).device)
    logs: dict[str, torch.Tensor] = {}
    for term in terms:
        left, right = TERMS[term]
        loss, accuracy = symmetric_info_nce(
            normalised[left], normalised[right], logit_scale, gathered[left], gathered[right], offset
        )
        total = total + loss
        name = TERM_LOSS_NAMES[term]
        logs[name] = loss
        logs[name.replace("loss_", "accuracy_")] = accuracy
    return total, logs


__all__ = [
    "TERMS",
    "TERM_LOSS_NAMES",
    "batch_recipe",
    "batch_recipes",
    "modalities_of",
    "num_stages",
    "slava_loss",
    "symmetric_info_nce",
]
