"""Issue 8.1: a resumed run never mixes models. Everything that changes a row is in the manifest and checked."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from avt_triplets import layout, revisions, shards
from avt_triplets.captioners import load_captioner
from avt_triplets.manifest import IncompatibleOutputError
from avt_triplets.pipeline import generate_triplets
from avt_triplets.scorers import load_scorer
from modeling_slava.msclap_slava import WEIGHTS_FILENAME


def _perturb_weights(folder) -> None:
    """Other msclap weights in the same place: one tensor changed, the file rewritten."""
    path = folder / WEIGHTS_FILENAME
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    name = next(k for k, v in checkpoint["model"].items() if v.is_floating_point())
    checkpoint["model"][name] = checkpoint["model"][name] + 0.5
    torch.save(checkpoint, path)
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))


def test_resuming_with_other_weights_dtype_or_text_model_is_refused(
    gen_inputs, blip2_captioner, tiny_blip2, tiny_msclap, reference_options, tmp_path
):
    weights = shutil.copytree(tiny_msclap, tmp_path / "msclap")
    out = tmp_path / "out"
    options = {**reference_options, "shard_size": 1, "limit": 2, "num_workers": 0, "rank": 0, "world_size": 1}
    scorer = load_scorer("msclap:2023", weights=weights, device="cpu")
    assert generate_triplets(gen_inputs["good_csv"], out, blip2_captioner, scorer, **options).complete
    manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
    assert manifest["captioner"]["dtype"] == "float32" and manifest["scorer"]["dtype"] == "float32"
    assert manifest["captioner"]["weights_digest"] == revisions.content_digest(tiny_blip2)
    assert manifest["scorer"]["weights_digest"] and manifest["scorer"]["text_model"].endswith("gpt2")
    shards.remove_shard(out, 1)  # as if killed after shard 0

    _perturb_weights(weights)
    other = load_scorer("msclap:2023", weights=weights, device="cpu")
    with pytest.raises(IncompatibleOutputError, match="scorer.weights_digest"):
        generate_triplets(gen_inputs["good_csv"], out, blip2_captioner, other, **options)

    text_model = shutil.copytree(tiny_msclap / "gpt2", tmp_path / "other" / "gpt2")
    config = text_model / "config.json"  # another text model: same architecture, other content
    config.write_text(config.read_text().replace("{", '{"note": "fine-tuned elsewhere", ', 1))
    retexted = load_scorer("msclap:2023", weights=tiny_msclap, text_model=text_model, device="cpu")
    with pytest.raises(IncompatibleOutputError, match="scorer.text_model"):
        generate_triplets(gen_inputs["good_csv"], out, blip2_captioner, retexted, **options)

    half = load_captioner(tiny_blip2, device="cpu", dtype="bfloat16", max_new_tokens=4)
    with pytest.raises(
        IncompatibleOutputError, match="captioner.dtype: 'float32' \\(existing\\) != 'bfloat16'"
    ):
        generate_triplets(gen_inputs["good_csv"], out, half, scorer, **options)
    assert not shards.is_done(out, 1)  # nothing was mixed in


def test_weights_digest_is_cached_until_the_file_changes(tiny_msclap, tmp_path, monkeypatch):
    weights = shutil.copy(tiny_msclap / WEIGHTS_FILENAME, tmp_path / WEIGHTS_FILENAME)
    first = revisions.content_digest(weights)
    hashed = []
    real = revisions._hash_file
    monkeypatch.setattr(revisions, "_hash_file", lambda path: hashed.append(path.name) or real(path))
    assert revisions.content_digest(weights) == first
    assert hashed == []  # a resume does not read the weights again
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    later = weights.stat().st_mtime_ns + 10**9
    os.utime(weights, ns=(later, later))
    assert revisions.content_digest(weights) != first and hashed == [WEIGHTS_FILENAME]
