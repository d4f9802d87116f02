"""Microsoft CLAP 2023 (the paper's scorer) through the ``msclap`` package, adapted to this stack.

Loading is :func:`modeling_slava.msclap_slava.load_msclap_wrapper`, the one msclap loader (msclap's own
``CLAPWrapper(model_fp=...)`` plus a key check, the GPT-2 text-model checks, tiny/variant configs and quiet
imports; SLAVA's msclap audio tower loads through it too, also as Hub remote code where avt is not installed).
What scoring adds, and why:

* **Tokenisation.** transformers 5 removed ``encode_plus`` (used by msclap's ``preprocess_text``). We tokenise the
  same string msclap builds (``caption + ' <|endoftext|>'``) with the tokenizer's ``__call__`` and pad with id 0 to
  ``text_len`` (77). msclap never truncated (a longer caption crashed its collate); we keep the first 76 tokens and
  the final ``<|endoftext|>``, so the embedding is still read at that token.
* **Audio.** msclap's file API decodes through torchaudio and crops clips longer than 7 s at a random offset. We
  call ``clap.audio_encoder`` on 44.1 kHz tensors ourselves: clips shorter than 7 s are repeated to 7 s exactly as
  msclap does, longer clips are covered by 7 s windows (see :mod:`avt_triplets.scorers`). fp32 throughout.
* **Provenance.** The Hub commit of downloaded weights, else a digest of the local weights and the config next to
  them, for the manifest and the card.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avt_triplets.devices import default_device
from avt_triplets.revisions import (
    commit_hash_from_cache_path,
    content_digest,
    local_digest,
    resolve_commit_hash,
)
from avt_triplets.windowed_scorer import RepeatedWindows, WindowedScorer

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["MSCLAP_VERSIONS", "MsclapScorer", "load_msclap_scorer"]

MSCLAP_VERSIONS = ("2023",)
_END_OF_TEXT = " <|endoftext|>"


class MsclapScorer(WindowedScorer):
    """msclap CLAP as an :class:`~avt_triplets.scorers.AudioTextScorer` (44.1 kHz audio, 7 s windows)."""

    def __init__(self, wrapper: Any, *, device: torch.device, name: str, revision: str | None) -> None:
        args = wrapper.args
        self.wrapper = wrapper  # msclap's CLAPWrapper, for users who want its own API
        self.model = wrapper.clap.to(device).eval()
        self.tokenizer = wrapper.tokenizer
        self.device = device
        self.name = name
        self.revision = revision
        self.embed_dim = int(args.d_proj)
        self.sampling_rate = int(args.sampling_rate)
        self.window_samples = int(args.duration * args.sampling_rate)
        self.text_len = int(args.text_len)
        self.text_model = str(args.text_model)
        self.text_model_revision = resolve_commit_hash(self.text_model)  # Hub text model; None when local
        self.text_model_digest = local_digest(self.text_model)  # local text model; None on the Hub
        self.weights_file: Path | None = None  # set by the loader; provenance for the dataset card

    def audio_preprocessor(self) -> RepeatedWindows:
        """7 s windows at 44.1 kHz, a short clip repeated to 7 s as msclap's ``load_audio_into_tensor`` does."""
        return RepeatedWindows(self.window_samples)

    def _embed_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.model.audio_encoder(batch)[0]

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """msclap's ``preprocess_text`` without ``encode_plus``: GPT-2 ids + EOS, padded with id 0 to text_len."""
        import torch

        encoded = self.tokenizer([t + _END_OF_TEXT for t in texts], add_special_tokens=True)["input_ids"]
        input_ids = torch.zeros((len(texts), self.text_len), dtype=torch.long)
        attention_mask = torch.zeros((len(texts), self.text_len), dtype=torch.long)
        for row, ids in enumerate(encoded):
            if len(ids) > self.text_len:
                ids = ids[: self.text_len - 1] + ids[-1:]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.model.caption_encoder(self.tokenize(texts))


def load_msclap_scorer(
    version: str = "2023",
    *,
    weights: str | os.PathLike | None = None,
    text_model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> MsclapScorer:
    """Load Microsoft CLAP through msclap's ``model_fp`` path, every weight checked loaded
    (:func:`~modeling_slava.msclap_slava.load_msclap_wrapper`: ``weights`` and ``text_model`` as it takes them).
    """
    # imported when loading: the model package brings torch and transformers, which option checks must not wait for
    from modeling_slava.msclap_slava import CONFIG_FILENAME, load_msclap_wrapper

    if version not in MSCLAP_VERSIONS:
        raise ValueError(
            f"msclap:{version} is not supported; use one of {[f'msclap:{v}' for v in MSCLAP_VERSIONS]}"
        )
    wrapper = load_msclap_wrapper(weights, text_model)
    loaded_from = Path(wrapper.model_fp)
    scorer = MsclapScorer(
        wrapper,
        device=default_device(device),
        name=f"msclap:{version}",
        revision=commit_hash_from_cache_path(loaded_from),
    )
    scorer.weights_file = loaded_from
    if scorer.revision is None:  # local weights: their content (and the config next to them) identifies them
        config_file = loaded_from.parent / CONFIG_FILENAME
        scorer.weights_digest = content_digest(loaded_from, *([config_file] if config_file.is_file() else []))
    logger.info("loaded %r", scorer)
    return scorer
