"""Issue 8.6: broken models are found before any video is decoded, not by recording every clip as failed."""

from __future__ import annotations

import pytest

from avt_core.errors import RunAborted
from avt_triplets import layout
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


def _stopped_before_decoding(gen_inputs, captioner, scorer, out, monkeypatch) -> RunAborted:
    """The error a run of these models stops with; decoding a clip fails the test."""
    import avt_triplets.distributors.local as pipeline

    def no_decoding(*args, **kwargs):
        raise AssertionError("clips were decoded for a run whose model is broken")
        yield

    monkeypatch.setattr(pipeline, "iter_decoded", no_decoding)
    with pytest.raises(RunAborted) as stopped:
        generate_triplets(
            gen_inputs["good_csv"], out, captioner, scorer, rank=0, world_size=1, progress=False
        )
    assert not (out / layout.DATA_DIR).exists() and not stopped.value.resumable
    return stopped.value


@pytest.mark.parametrize("broken", ["captioner", "scorer"])
def test_a_broken_model_stops_the_run_before_any_clip_is_decoded(
    broken, gen_inputs, blip2_captioner, clap_scorer, monkeypatch, tmp_path
):
    captioner = _BrokenCaptioner() if broken == "captioner" else blip2_captioner
    scorer = _BrokenScorer(clap_scorer) if broken == "scorer" else clap_scorer
    message = str(_stopped_before_decoding(gen_inputs, captioner, scorer, tmp_path / "out", monkeypatch))
    assert f"the {broken} 'broken/{broken}' fails on a synthetic test input" in message
    assert ("weights are garbage" if broken == "captioner" else "expected 64 mel bins") in message


# variable-size family -> (tiny model fixture, a processor setting that no longer matches the model, its value)
_MISMATCHED = {
    "qwen2.5-vl": ("tiny_qwen2_5_vl", ("image_processor", "merge_size"), 1),  # 4x the model's image tokens
    "smolvlm": ("tiny_smolvlm", ("image_seq_len",), 5),  # tokens per tile != the tower's 4
}


@pytest.mark.parametrize("family", list(_MISMATCHED))
def test_a_broken_variable_size_family_stops_the_run_before_any_clip_is_decoded(
    family, request, gen_inputs, clap_scorer, monkeypatch, tmp_path
):
    """A checkpoint whose processor disagrees with its model (image tokens vs image features, as a hand-edited
    or mixed-up processor_config.json gives) loads fine and takes the fast path; the pre-run check's captions
    of synthetic frames through the variable-size batch layout find it before anything is decoded."""
    import json
    import shutil

    from avt_triplets.captioners import load_captioner

    fixture, keys, value = _MISMATCHED[family]
    folder = shutil.copytree(request.getfixturevalue(fixture), tmp_path / "broken")
    config_path = folder / "processor_config.json"
    config = json.loads(config_path.read_text())
    *parents, leaf = keys
    target = config
    for key in parents:
        target = target[key]
    target[leaf] = value
    config_path.write_text(json.dumps(config))
    captioner = load_captioner(folder, device="cpu", max_new_tokens=2)
    assert captioner.input_plan().layout == "variable"
    message = str(_stopped_before_decoding(gen_inputs, captioner, clap_scorer, tmp_path / "out", monkeypatch))
    assert f"the captioner '{folder}' fails on a synthetic test input" in message
    assert "mismatch" in message.lower() or "do not match" in message.lower()  # the model's own shape check
