"""Run under `accelerate launch --num_processes 2 --cpu`: global-batch contrastive losses vs one process.

Every process builds the same tiny LG-CAV-MAE (float64) and the same global batch, runs its own shard
through the DDP-wrapped model with `--contrastive-scope global` (all-gather with gradients), and
back-propagates. Rank 0 then repeats the step in a single process on the whole global batch with the
model's own loss functions, and writes the loss and gradient differences as JSON to argv[1]. It also
records how far the per-process scope is from that reference, which shows the comparison can fail.
"""

from __future__ import annotations

import copy
import json
import sys

import torch


def main(out_path: str) -> None:
    from accelerate import Accelerator

    from avt_training.losses import PretrainingLoss
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining

    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    torch.manual_seed(0)
    config = LGCavMaeConfig(
        audio_length=32, num_mel_bins=32, image_size=32, hidden_size=16, num_attention_heads=2, intermediate_size=32,
        num_modality_specific_layers=1, decoder_hidden_size=16, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2, decoder_intermediate_size=32, text_embed_dim=8,
        contrastive_weight=0.5, text_contrastive_weight=0.25,
    )  # fmt: skip
    reference = LGCavMaeForPreTraining(config).double()
    local, total = 3, 3 * world
    batch = {
        "audio_values": torch.randn(total, 32, 32, dtype=torch.float64),
        "pixel_values": torch.randn(total, 3, 32, 32, dtype=torch.float64),
        "text_embeds": torch.randn(total, 8, dtype=torch.float64),
        "audio_noise": torch.rand(total, config.num_audio_patches, dtype=torch.float64),
        "visual_noise": torch.rand(total, config.num_visual_patches, dtype=torch.float64),
    }
    shard = {k: v[rank * local : (rank + 1) * local] for k, v in batch.items()}

    results = {}
    for scope in ("global", "per-process"):
        model = accelerator.prepare(copy.deepcopy(reference))
        output = model(**shard)
        loss, _ = PretrainingLoss(config, scope)(output, shard["text_embeds"], config.text_temperature)
        accelerator.backward(loss)  # DDP averages the gradients over processes
        mean_loss = accelerator.reduce(loss.detach(), reduction="mean")
        grads = {
            n: p.grad.clone()
            for n, p in accelerator.unwrap_model(model).named_parameters()
            if p.grad is not None
        }
        results[scope] = (float(mean_loss), grads)

    if rank == 0:
        single = copy.deepcopy(reference)
        output = single(**batch)  # one process, whole global batch: the model's own loss functions
        output.loss.backward()
        ref_grads = {n: p.grad for n, p in single.named_parameters() if p.grad is not None}
        report = {"world_size": world, "global_batch": total, "reference_loss": float(output.loss)}
        for scope, (loss_value, grads) in results.items():
            assert grads.keys() == ref_grads.keys(), (sorted(grads), sorted(ref_grads))
            report[scope] = {
                "loss": loss_value,
                "loss_abs_diff": abs(loss_value - float(output.loss)),
                "grad_max_abs_diff": max(float((grads[n] - ref_grads[n]).abs().max()) for n in ref_grads),
                "grad_max_abs": max(float(g.abs().max()) for g in ref_grads.values()),
                "num_parameters_compared": len(ref_grads),
            }
        with open(out_path, "w") as handle:
            json.dump(report, handle, indent=2)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # a gloo group alive at interpreter exit can abort the process


if __name__ == "__main__":
    main(sys.argv[1])
