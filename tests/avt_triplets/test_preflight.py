"""Issue 8.6: broken models are found before any video is decoded, not by recording every clip as failed."""

from __future__ import annotations

import pytest

from avt_core.errors import RunAborted
from avt_triplets import schema
from avt_triplets.captioner_contract import Captioner
from avt_triplets.pipeline import generate_triplets


class _BrokenCaptioner(Captioner):
    name, revision, prompt = "broken/captioner", None, None

    def caption(self, images):
        raise RuntimeError("size mismatch for vision_model.embeddings (weights are garbage)")


class _BrokenScorer:
    def __init__(self, inner):
        self.inner, self.name, self.revision = inner, "broken/scorer", None
        self.sampling_rate, self.embed_dim = inner.sampling_rate, inner.embed_dim

    def embed_audio(self, waveforms):
        raise ValueError("expected 64 mel bins, got 128")

    def embed_text(self, texts):
        return self.inner.embed_text(texts)


@pytest.mark.parametrize("broken", ["captioner", "scorer"])
def test_a_broken_model_stops_the_run_before_any_clip_is_decoded(
    broken, gen_inputs, blip2_captioner, clap_scorer, monkeypatch, tmp_path
):
    import avt_triplets.distributors.local as pipeline

    def no_decoding(*args, **kwargs):
        raise AssertionError("clips were decoded for a run whose model is broken")
        yield

    monkeypatch.setattr(pipeline, "iter_decoded", no_decoding)
    captioner = _BrokenCaptioner() if broken == "captioner" else blip2_captioner
    scorer = _BrokenScorer(clap_scorer) if broken == "scorer" else clap_scorer
    out = tmp_path / "out"
    with pytest.raises(RunAborted) as stopped:
        generate_triplets(
            gen_inputs["good_csv"], out, captioner, scorer, rank=0, world_size=1, progress=False
        )
    message = str(stopped.value)
    assert f"the {broken} 'broken/{broken}' fails on a synthetic test input" in message
    assert ("weights are garbage" if broken == "captioner" else "expected 64 mel bins") in message
    assert not (out / schema.DATA_DIR).exists() and not stopped.value.resumable
