"""SLAVA's loss recipes per variant and the gathered (global-batch) form of its InfoNCE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modeling_slava import batch_recipe, num_stages, slava_loss, symmetric_info_nce


def test_recipes_follow_the_paper():
    # A&V: minibatches alternate audio captions (L_av + L_at) and visual captions (L_av + L_vt)
    assert [batch_recipe("a&v", step) for step in range(3)] == [
        ("audio", ("av", "at")),
        ("visual", ("av", "vt")),
        ("audio", ("av", "at")),
    ]
    assert batch_recipe("av") == ("av", ("at", "vt"))
    assert batch_recipe("av+avloss") == ("av", ("at", "vt", "av"))
    assert batch_recipe("audioclip") == ("audio", ("av", "at", "vt"))
    assert num_stages("wav2clip") == 2 and num_stages("a&v") == 1
    assert batch_recipe("wav2clip", 5, stage=1) == ("visual", ("vt",))
    assert batch_recipe("wav2clip", 5, stage=2) == ("audio", ("at",))
    with pytest.raises(ValueError, match="no stage 2"):
        batch_recipe("av", stage=2)


def test_modalities_come_in_one_order_on_every_process():
    """The gathers of a step are collectives: their order must not depend on a set's (per-process) hash order."""
    from modeling_slava.losses_slava import modalities_of

    assert modalities_of(("vt", "av")) == ("audio", "visual", "text")
    assert modalities_of(("vt",)) == ("visual", "text")
    assert modalities_of(("at",)) == ("audio", "text")


def test_symmetric_info_nce_is_clips_loss():
    generator = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    y = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    loss, _ = symmetric_info_nce(x, y, 10.0)
    logits = 10.0 * x @ y.t()
    expected = (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.t(), torch.arange(6))) / 2
    torch.testing.assert_close(loss, expected)


def test_rows_against_gathered_columns_equal_the_global_batch():
    """Two simulated processes: the mean of their local losses and the sum of their gradients equal one
    process holding the global batch; without the gathered columns they do not."""
    generator = torch.Generator().manual_seed(1)
    embeds = {m: torch.randn(8, 5, generator=generator) for m in ("audio", "visual", "text")}
    terms = ("av", "at", "vt")
    full = {m: v.clone().requires_grad_(True) for m, v in embeds.items()}
    global_loss, _ = slava_loss(full, terms, 14.0)
    global_loss.backward()

    def shards(local: bool):
        leaves = {m: v.clone().requires_grad_(True) for m, v in embeds.items()}
        losses = []
        for rank in (0, 1):
            rows = {m: v[rank * 4 : (rank + 1) * 4] for m, v in leaves.items()}
            everything = {m: F.normalize(v, dim=-1) for m, v in leaves.items()}
            gather = None if local else (lambda t, e=everything, r=rows: e[_modality_of(t, r)])
            loss, _ = slava_loss(rows, terms, 14.0, gather=gather, offset=0 if local else rank * 4)
            losses.append(loss)
        mean = (losses[0] + losses[1]) / 2
        mean.backward()
        return mean, leaves

    mean, leaves = shards(local=False)
    torch.testing.assert_close(mean, global_loss)
    for modality in embeds:
        torch.testing.assert_close(leaves[modality].grad, full[modality].grad)
    local_mean, _ = shards(local=True)
    assert abs(float(local_mean.detach()) - float(global_loss.detach())) > 1e-3


def _modality_of(normalised_rows: torch.Tensor, rows: dict) -> str:
    """Which modality a normalised local shard belongs to (the stand-in gather returns that modality's columns)."""
    for modality, value in rows.items():
        if torch.equal(F.normalize(value, dim=-1), normalised_rows):
            return modality
    raise AssertionError("unknown tensor")
