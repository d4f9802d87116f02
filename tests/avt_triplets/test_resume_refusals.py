"""Issue 18 item 11: a refused resume lists EVERY difference at once, before any model loads, and a byte-identical
model folder at another path is the same model (digests are compared, not paths). Through `avt generate`."""

from __future__ import annotations

import json
import shutil

import pytest

from avt.cli import main
from avt_triplets import layout, models, shards


def _generate(inputs, out, captioner, scorer, *extra: str) -> list[str]:
    return [
        "generate", str(inputs), "-o", str(out), "--captioner", str(captioner), "--scorer", str(scorer),
        "--limit", "2", "--shard-size", "1", "--caption-batch-size", "8", "--max-new-tokens", "4",
        "--num-workers", "0", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture
def half_done(gen_inputs, tiny_blip2, tiny_clap, tmp_path):
    """``(output, captioner folder)``: a 2-shard output made with a copy of the tiny BLIP-2 and the tiny CLAP, its
    second shard gone (as if killed after the first)."""
    captioner = shutil.copytree(tiny_blip2, tmp_path / "blip2")
    out = tmp_path / "out"
    assert main(_generate(gen_inputs["good_csv"], out, captioner, tiny_clap)) == 0
    shards.remove_shard(out, 1)
    return out, captioner


def _refusal(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_refusal_lists_every_difference_before_the_models_load(
    half_done, gen_inputs, tiny_clap, tmp_path, capsys, monkeypatch
):
    from avt_triplets.tiny import make_tiny_blip2

    out, _ = half_done
    other = make_tiny_blip2(tmp_path / "other_blip2", seed=1)  # another captioner, other weights
    capsys.readouterr()

    def must_not_load(*args, **kwargs):
        raise AssertionError("the models loaded before the refusal")

    monkeypatch.setattr(models, "load_models", must_not_load)
    err = _refusal(capsys, main(_generate(gen_inputs["good_csv"], out, other, tiny_clap, "--fps", "2")))
    for difference in ("fps: 1.0 (existing) != 2.0 (now)", "captioner.name", "captioner.weights_digest"):
        assert difference in err, err
    assert not shards.is_done(out, 1)


def test_same_weights_at_another_path_resume(half_done, gen_inputs, tiny_clap, tmp_path):
    out, captioner = half_done
    moved = shutil.move(captioner, tmp_path / "moved" / "blip2")  # same bytes, another folder
    assert main(_generate(gen_inputs["good_csv"], out, moved, tiny_clap)) == 0
    assert shards.is_done(out, 1)
    recorded = json.loads((out / layout.MANIFEST_FILE).read_text())
    assert recorded["captioner"]["name"] == str(captioner)  # the output keeps its first record


def test_other_weights_at_the_recorded_path_are_refused(half_done, gen_inputs, tiny_clap, capsys):
    """The digest, not the path, decides: other bytes in the recorded folder are another model."""
    from avt_triplets.tiny import make_tiny_blip2

    out, captioner = half_done
    shutil.rmtree(captioner)
    make_tiny_blip2(captioner, seed=2)
    capsys.readouterr()
    err = _refusal(capsys, main(_generate(gen_inputs["good_csv"], out, captioner, tiny_clap)))
    assert "captioner.weights_digest" in err and "captioner.name" not in err, err
    assert not shards.is_done(out, 1)
