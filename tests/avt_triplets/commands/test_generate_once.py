"""Issue 22 §4: one pass before a run. `avt generate` checks its inputs and output folder once and builds the
manifest (which hashes every clip spec) once, in a fresh output as in a resumed one."""

from __future__ import annotations

from collections import Counter

import pytest

from avt import cli
from avt_triplets import layout, manifest, output_folder, preflight

COUNTED = (
    (preflight, "load_inputs"),  # the input list read
    (preflight, "check_missing_videos"),  # one stat per listed video
    (output_folder, "check_generation_output"),  # the output folder checked
    (manifest, "run_manifest"),  # the manifest built
    (manifest, "inputs_digest"),  # every clip spec hashed
)


@pytest.fixture
def calls(monkeypatch, blip2_captioner, clap_scorer) -> Counter:
    """How often each pre-run step ran; the session's tiny models stand in for loading."""
    counts: Counter = Counter()

    def counting(name, real):
        def counted(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return counted

    for module, name in COUNTED:
        monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    monkeypatch.setattr("avt_triplets.captioners.load_captioner", lambda *a, **k: blip2_captioner)
    monkeypatch.setattr("avt_triplets.scorers.load_scorer", lambda *a, **k: clap_scorer)
    return counts


def test_a_generate_run_checks_and_builds_its_manifest_once(
    gen_inputs, calls, tiny_blip2, tiny_clap, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = [
        "generate", str(gen_inputs["good_csv"]), "--output", str(out), "--captioner", str(tiny_blip2),
        "--scorer", str(tiny_clap), "--device", "cpu", "--max-new-tokens", "4",
        "--limit", "2", "--shard-size", "2", "--caption-batch-size", "8", "--num-workers", "0", "--no-progress",
    ]  # fmt: skip
    once = {name: 1 for _, name in COUNTED}
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert dict(calls) == once
    assert len(list((out / layout.DATA_DIR).glob("*.parquet"))) == 1
    calls.clear()
    assert cli.main(argv) == 0, capsys.readouterr().err  # a rerun: the output's manifest is compared, once
    assert dict(calls) == once
