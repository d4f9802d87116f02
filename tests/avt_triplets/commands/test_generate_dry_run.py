"""Issue 19 §2, `avt generate --dry-run`: the figures a run would work with (inputs found and missing, shards planned,
done, damaged and pending, models and their revisions, output folder state, GPU-hours), exit 2 with the real run's
own line where a run would be refused, and nothing loaded or written (not even the lock or the run config)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
from support.fixtures.generation import labelled_argv

from avt import cli
from avt_core.cost_model import CLIPS_PER_GPU_HOUR
from avt_triplets import layout
from avt_triplets.output_lock import hold_output
from avt_triplets.revisions import content_digest

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (hidden ones too) with its bytes' digest and modification time."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): (
            p.is_dir(),
            p.stat().st_mtime_ns,
            None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
    }


def dry_run(capsys, argv: list[str]) -> tuple[int, str, dict | None]:
    """`avt ARGV --dry-run` in this process: exit code, stdout, and its final JSON line (None when refused)."""
    code = cli.main([*argv, "--dry-run"])
    out = capsys.readouterr().out
    plan = json.loads(out.strip().splitlines()[-1])["dry_run"] if code == 0 else None
    return code, out, plan


def refusal(capsys, argv: list[str]) -> str:
    """The one `error:` line of `avt ARGV` (exit 2)."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def finished_output(short_clips, tmp_path_factory) -> Path:
    """A finished `--captioner none` output of the six short clips: 3 shards of 2."""
    out = tmp_path_factory.mktemp("dry_run") / "finished"
    assert cli.main(labelled_argv(short_clips, out)) == 0
    return out


def test_a_new_output_plans_every_shard_counts_missing_videos_and_writes_nothing(
    short_clips, tmp_path, capsys
):
    listing = tmp_path / "list.csv"  # the six clips and one whose file is not there
    rows = short_clips.read_text().splitlines()
    listing.write_text("\n".join([*rows, "videos/gone.mp4,0.0,gone"]) + "\n")
    for video in (short_clips.parent / "videos").iterdir():
        (tmp_path / "videos").mkdir(exist_ok=True)
        (tmp_path / "videos" / video.name).symlink_to(video)
    out = tmp_path / "out"
    before = tree(tmp_path)
    code, text, plan = dry_run(capsys, labelled_argv(listing, out))
    assert code == 0, text
    assert tree(tmp_path) == before and not out.exists()
    clips = (len(rows) - 1) + 1  # the six listed clips (a header line first) and the missing one
    assert plan["clips"] == clips and plan["missing"]["missing"] == 1 and plan["missing"]["total"] == clips
    assert (
        plan["output_state"] == "new"
        and plan["shards_total"] == math.ceil(clips / 2) == plan["shards_pending"]
    )
    assert plan["shards_done"] == 0 and plan["clips_pending"] == clips and plan["models"] == []
    assert plan["gpu_hours"] == pytest.approx(clips / CLIPS_PER_GPU_HOUR["generate:none"])
    assert "1 of 7 listed videos are missing" in text and "first missing: " in text and "gone.mp4" in text
    assert f"{math.ceil(clips / 2)} planned" in text and "new folder" in text


def test_a_finished_output_with_a_damaged_shard_is_scanned_without_unmarking_it(
    finished_output, short_clips, tmp_path, capsys
):
    output = tmp_path / "out"
    shutil.copytree(finished_output, output)
    data = layout.data_path(output, 1)
    data.write_bytes(
        data.read_bytes()[:100]
    )  # truncated: the scan must find it and leave it for the run to redo
    before = tree(output)
    code, text, plan = dry_run(capsys, labelled_argv(short_clips, output))
    assert code == 0, text
    assert tree(output) == before  # no lock, no run config, the damaged shard's stats still there
    assert plan["output_state"] == "avt output" and plan["shards_total"] == 3 and plan["shards_done"] == 3
    assert list(plan["shards_damaged"]) == ["1"] and "shard-00001.parquet" in plan["shards_damaged"]["1"]
    assert plan["shards_pending"] == 1 and plan["clips_pending"] == 2
    assert "shard 1 is damaged" in text and "a run resumes it" in text
    # the real run agrees: it redoes exactly that shard
    assert cli.main(labelled_argv(short_clips, output)) == 0
    capsys.readouterr()
    assert dry_run(capsys, labelled_argv(short_clips, output))[2]["shards_pending"] == 0


@pytest.mark.parametrize("problem", ["foreign folder", "other options", "held"])
def test_an_output_a_run_would_refuse_is_refused_with_the_runs_own_line(
    problem, finished_output, short_clips, tmp_path, capsys
):
    output = tmp_path / "out"
    extra: tuple[str, ...] = ()
    if problem == "foreign folder":
        output.mkdir()
        (output / "notes.txt").write_text("mine")
    else:
        shutil.copytree(finished_output, output)
        extra = ("--shard-size", "3") if problem == "other options" else ()
    argv = [*labelled_argv(short_clips, output), *extra]
    if problem == "held":
        with hold_output(output, "avt filter"):
            dry = refusal(capsys, [*argv, "--dry-run"])
            assert dry == refusal(capsys, argv) and "in use by avt filter" in dry
        return
    before = tree(output)
    dry = refusal(capsys, [*argv, "--dry-run"])
    assert tree(output) == before
    assert dry == refusal(capsys, argv)  # the same words a real run gives, before it writes anything
    assert ("not an avt generation output" if problem == "foreign folder" else "shard_size: 2") in dry


def test_models_are_named_by_digest_or_commit_and_never_loaded(
    short_clips, tiny_blip2, tiny_clap, tmp_path, capsys, monkeypatch
):
    from avt_triplets import captioners, revisions, scorers

    captioner = tmp_path / "blip2"
    shutil.copytree(tiny_blip2, captioner)
    for weights in captioner.glob(
        "*.safetensors"
    ):  # a run would fail to load it; the dry run must not notice
        weights.write_bytes(b"not a safetensors file")
    for module, name in ((captioners, "load_captioner"), (scorers, "load_scorer")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("a dry run loaded a model"))
    # every module that binds resolve_commit_hash by name is imported first: one imported while it is patched would
    # keep the stand-in for the rest of the session (another test's card would name this made-up commit)
    import avt_triplets.audio_captioners
    import avt_triplets.extra_models  # noqa: F401

    commit = "0123456789abcdef0123456789abcdef01234567"
    asked = []
    monkeypatch.setattr(
        revisions, "resolve_commit_hash", lambda name, rev: asked.append((name, rev)) or commit
    )
    out = tmp_path / "out"
    argv = [
        "generate", str(short_clips), "-o", str(out), "--captioner", str(captioner), "--scorer", str(tiny_clap),
        "--shard-size", "4", "--no-progress",
    ]  # fmt: skip
    code, text, plan = dry_run(capsys, argv)
    assert code == 0, text
    assert not out.exists()
    cap, score = plan["models"]
    assert (
        cap["where"] == "local"
        and cap["revision"] == content_digest(captioner)
        and cap["model_type"] == "blip-2"
    )
    assert score["where"] == "local" and score["revision"] == content_digest(tiny_clap)
    assert plan["cost_kind"] == "generate:blip2" and plan["shards_total"] == 2
    assert plan["gpu_hours"] == pytest.approx(6 / CLIPS_PER_GPU_HOUR["generate:blip2"])
    assert f"content digest {content_digest(captioner)[:16]}" in text
    # a Hub id is named by the commit its revision resolves to (no model file fetched)
    hub_argv = [*argv[:5], "Salesforce/blip2-opt-2.7b", "--captioner-revision", "v1", *argv[6:]]
    code, text, plan = dry_run(capsys, hub_argv)
    assert code == 0, text
    assert asked == [("Salesforce/blip2-opt-2.7b", "v1")]
    assert plan["models"][0] == {**plan["models"][0], "where": "hub", "revision": commit, "requested": "v1"}
    assert f"revision v1: commit {commit}" in text


def test_a_process_given_its_rank_plans_its_own_shards(finished_output, short_clips, tmp_path):
    from avt_triplets.generation_plan import plan_generation
    from avt_triplets.options import GenerationOptions, ModelOptions

    output = tmp_path / "out"
    shutil.copytree(finished_output, output)
    layout.stats_path(
        output, 2
    ).unlink()  # shard 2 unfinished; rank 1 of 2 takes shard 1 only, rank 0 shards 0, 2
    options = dict(shard_size=2, num_workers=0, progress=False, world_size=2)
    labelled = ModelOptions(captioner="none")
    theirs = plan_generation(str(short_clips), str(output), GenerationOptions(rank=1, **options), labelled)
    ours = plan_generation(str(short_clips), str(output), GenerationOptions(rank=0, **options), labelled)
    assert (theirs.shards_done, theirs.shards_pending, theirs.clips_pending) == (1, 0, 0)
    assert (ours.shards_done, ours.shards_pending, ours.clips_pending) == (1, 1, 2)
    assert "rank 0 of world size 2" in ours.format()
