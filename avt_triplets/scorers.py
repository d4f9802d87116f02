"""Audio-text scorers: embed a clip's audio and the frame captions in a joint space, score by cosine.

Two backends share one protocol (:class:`AudioTextScorer`):

* ``msclap:2023`` (the paper's choice): Microsoft CLAP 2023 through the ``msclap`` package, 1024-d
  (see :mod:`avt_triplets.msclap_scorer`);
* any transformers CLAP id or folder, e.g. ``laion/clap-htsat-unfused``: ``ClapModel`` + ``ClapProcessor``.

**Whole-clip, deterministic audio embeddings.** Both upstream front-ends crop long audio at a *random* offset
(msclap's file API to 7 s, transformers' ``rand_trunc`` to 10 s; ``fusion`` picks random chunks and even flags a
random short clip as long), so the same clip would score differently from run to run and part of the clip would
be ignored. Instead, a clip longer than the backend's window is covered by windows of exactly the window length,
50 % overlap, the last one aligned to the clip's end (a 10 s clip gives msclap windows at 0 s and 3 s; a 12 s clip
at 0, 3.5 and 5 s). Each window is embedded, L2-normalised, the windows of a clip are averaged and the mean is
L2-normalised again. A clip no longer than the window is one window, padded the backend's own way (msclap repeats
the audio to 7 s; transformers CLAP repeat-pads to 10 s). Scores are therefore a pure function of the audio.

Embeddings are a pure function of the inputs of one call: nothing is cached across calls, so a caller that
fixes its batches (the worker does, per chunk) gets the same numbers in any process. Duplicate texts within a
call are embedded once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from avt_core.errors import UsageError
from avt_triplets.devices import default_device
from avt_triplets.model_sources import check_model_source, loading_errors, require_model_type
from avt_triplets.msclap_scorer import MSCLAP_VERSIONS, load_msclap_scorer
from avt_triplets.options import DEFAULT_SCORER
from avt_triplets.revisions import local_digest, resolve_commit_hash
from avt_triplets.windowed_scorer import ClipWindows, WindowedScorer, score, window_starts

if TYPE_CHECKING:
    import torch

__all__ = [
    "AudioTextScorer",
    "ClapScorer",
    "check_scorer_options",
    "load_scorer",
    "score",
    "window_starts",
]


@runtime_checkable
class AudioTextScorer(Protocol):
    """What the pipeline needs from a scorer (both backends implement it)."""

    name: str
    revision: str | None
    embed_dim: int
    sampling_rate: int  # the rate ``embed_audio`` expects its mono float32 waveforms at

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """[B, D] float32, L2-normalised, one row per waveform (whole clip, deterministic)."""
        ...

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """[N, D] float32, L2-normalised."""
        ...


class ClapFeatures(ClipWindows):
    """The windows of a clip as the CLAP feature extractor's log-mel ``input_features`` (``[windows, ...]``),
    computed per window exactly as one extractor call over a whole batch would."""

    def __init__(self, feature_extractor: Any):
        super().__init__(int(feature_extractor.nb_max_samples))
        self.feature_extractor = feature_extractor

    def prepare(self, windows: list[np.ndarray]) -> np.ndarray:
        features = self.feature_extractor(
            [w.astype(np.float64) for w in windows],
            sampling_rate=self.feature_extractor.sampling_rate,
            return_tensors="np",
        )
        return np.asarray(features["input_features"], dtype=np.float32)


class ClapScorer(WindowedScorer):
    """transformers CLAP (``ClapModel``): LAION CLAP checkpoints, fused or unfused, fp32.

    Windows are the feature extractor's ``max_length_s`` (10 s for LAION) at its ``sampling_rate`` (48 kHz).
    No window is longer than that, so ``rand_trunc`` never crops; for ``fusion`` checkpoints ``is_longer`` is
    set to False for every window, which disables the extractor's random "pretend one clip is long" flag and
    runs the deterministic global branch.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        device: torch.device,
        name: str,
        revision: str | None,
    ) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.feature_extractor = processor.feature_extractor
        self.tokenizer = processor.tokenizer
        self.device = device
        self.name = name
        self.revision = revision
        self.embed_dim = int(model.config.projection_dim)
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        self.window_samples = int(self.feature_extractor.nb_max_samples)

    def audio_preprocessor(self) -> ClapFeatures:
        return ClapFeatures(self.feature_extractor)

    def _embed_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        is_longer = torch.zeros((batch.shape[0], 1), dtype=torch.bool, device=batch.device)
        with torch.inference_mode():
            output = self.model.get_audio_features(
                input_features=batch.to(self.model.dtype), is_longer=is_longer
            )
        return getattr(output, "pooler_output", output)

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        import torch

        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            output = self.model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask")
            )
        return getattr(output, "pooler_output", output)


def load_clap_scorer(
    name_or_path: str, *, device: str | torch.device | None = None, revision: str | None = None
) -> ClapScorer:
    """A transformers CLAP checkpoint (Hub id or local folder) as a scorer."""
    from transformers import ClapModel, ClapProcessor

    check_model_source(name_or_path, "--scorer")
    commit = resolve_commit_hash(name_or_path, revision)
    load_revision = commit or revision
    with loading_errors("the scorer", name_or_path):
        _require_clap(name_or_path, load_revision)
        model = ClapModel.from_pretrained(name_or_path, revision=load_revision, dtype="float32")
        processor = ClapProcessor.from_pretrained(name_or_path, revision=load_revision)
    scorer = ClapScorer(
        model,
        processor,
        device=default_device(device),
        name=str(name_or_path),
        revision=commit,
    )
    scorer.weights_digest = local_digest(name_or_path)
    return scorer


def _require_clap(name_or_path: str | os.PathLike, revision: str | None = None) -> None:
    """The model's config is a transformers CLAP one."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    require_model_type("--scorer", name_or_path, config, ("clap",), "a transformers CLAP model ('clap')")


def _msclap_version(spec: str) -> str | None:
    """``"2023"`` for ``msclap:2023`` (or bare ``msclap``), None when ``spec`` is not an msclap spec."""
    if spec != "msclap" and not spec.startswith("msclap:"):
        return None
    return spec.partition(":")[2] or "2023"


def check_scorer_options(
    spec: str,
    weights: str | os.PathLike | None = None,
    text_model: str | os.PathLike | None = None,
) -> None:
    """Raise :class:`UsageError` for a scorer spec or msclap-only option that cannot work (nothing loaded)."""
    version = _msclap_version(spec)
    if version is None:
        if weights is not None or text_model is not None:
            raise UsageError(
                f"--scorer-weights / --scorer-text-model only apply to msclap; {spec!r} is loaded with "
                "ClapModel.from_pretrained (pass a local folder as the scorer itself instead)"
            )
        check_model_source(spec, "--scorer")
        if os.path.isdir(spec):  # a local folder's config costs nothing to read: a wrong model fails here
            with loading_errors("the scorer", spec):
                _require_clap(spec)
        return
    if version not in MSCLAP_VERSIONS:
        raise UsageError(
            f"--scorer {spec}: msclap:{version} is not supported; use one of "
            f"{[f'msclap:{v}' for v in MSCLAP_VERSIONS]} or a transformers CLAP id/folder"
        )
    if weights is not None and not os.path.exists(weights):
        raise UsageError(f"--scorer-weights {weights}: no such file or folder")
    if text_model is not None:
        check_model_source(text_model, "--scorer-text-model")


def load_scorer(
    spec: str = DEFAULT_SCORER,
    *,
    weights: str | os.PathLike | None = None,
    text_model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    revision: str | None = None,
) -> AudioTextScorer:
    """Build a scorer from a spec.

    * ``msclap:2023`` (or ``msclap``): Microsoft CLAP 2023. ``weights`` is a ``CLAP_weights_2023.pth`` file or a
      folder holding one (plus, optionally, a ``gpt2/`` text-model folder and a ``msclap_config.yml``);
      ``text_model`` a local GPT-2 folder whose path contains "gpt". Without them msclap downloads
      ``microsoft/msclap`` and ``gpt2`` from the Hub, as its users normally run it.
    * anything else: a transformers CLAP Hub id or local folder (``weights``/``text_model`` do not apply).

    Options that cannot work raise :class:`~avt_core.errors.UsageError` before anything is loaded.
    """
    check_scorer_options(spec, weights, text_model)
    version = _msclap_version(spec)
    if version is not None:
        return load_msclap_scorer(version, weights=weights, text_model=text_model, device=device)
    return load_clap_scorer(spec, device=device, revision=revision)
