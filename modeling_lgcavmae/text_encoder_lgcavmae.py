"""Optional frozen text tower for LG-CAV-MAE users without cached caption embeddings.

Any transformers checkpoint whose model has `get_text_features` works (CLAP, CLIP, ...). Kept outside the model's
modules so it is never trained, saved or pushed with LG-CAV-MAE weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FrozenTextEncoder:
    """`texts -> [N, D]` L2-normalised sentence embeddings from a frozen transformers model."""

    def __init__(self, name_or_path: str, device: torch.device | str | None = None):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        self.model = AutoModel.from_pretrained(name_or_path).eval().requires_grad_(False)
        if not hasattr(self.model, "get_text_features"):
            raise ValueError(
                f"{name_or_path} has no `get_text_features`; use a CLAP- or CLIP-style checkpoint."
            )
        if device is not None:
            self.model.to(device)

    @torch.no_grad()
    def __call__(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        chunks = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt"
            )
            batch = {key: value.to(self.model.device) for key, value in batch.items()}
            features = self.model.get_text_features(**batch)
            # transformers 5 returns an output object whose `pooler_output` holds the projected features.
            features = features if isinstance(features, torch.Tensor) else features.pooler_output
            chunks.append(F.normalize(features.float(), dim=-1))
        return torch.cat(chunks)


__all__ = ["FrozenTextEncoder"]
