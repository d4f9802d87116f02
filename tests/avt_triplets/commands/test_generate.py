"""`avt generate` as a user meets it: what it refuses before any model loads, and how a run that cannot go on
ends (issue 8 items 2, 6, 11-14; issue 13 item 5)."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import shlex
import shutil
import signal
from pathlib import Path

import pytest

from avt import cli
from avt_triplets import layout
from avt_triplets.captioner_contract import Captioner


def generate_argv(inputs, out, *extra: str) -> list[str]:
    return [
        "generate", str(inputs), "--output-dir", str(out), "--device", "cpu", "--max-new-tokens", "4",
        "--shard-size", "2", "--caption-batch-size", "8", "--score-batch-size", "4", "--num-workers", "0",
        "--no-progress", *extra,
    ]  # fmt: skip


def one_error_line(stderr: str) -> str:
    """The command's whole complaint: exactly one line, starting with ``error:``, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def temporaries(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*.tmp")]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any model load fails the test: what is checked here must be checked before the models load."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs and options were checked")

    monkeypatch.setattr("avt_triplets.captioners.load_captioner", refuse)
    monkeypatch.setattr("avt_triplets.scorers.load_scorer", refuse)


@pytest.fixture
def session_models(monkeypatch, blip2_captioner, clap_scorer):
    """``use(captioner=None, scorer=None)``: `avt generate` gets these models instead of loading its own."""

    def use(captioner=None, scorer=None):
        monkeypatch.setattr(
            "avt_triplets.captioners.load_captioner", lambda *a, **k: captioner or blip2_captioner
        )
        monkeypatch.setattr("avt_triplets.scorers.load_scorer", lambda *a, **k: scorer or clap_scorer)

    return use


# ----------------------------------------------------------------------------------------------
# Refused before any model loads


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_avt_did_not_write_is_never_written_to(
    overwrite, gen_inputs, no_model_loads, tmp_path, capsys
):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my own notes\n")
    (mine / "data").mkdir()
    (mine / "data" / "table.csv").write_text("a,b\n")
    before = files_under(mine)
    extra = ("--overwrite",) if overwrite else ()
    assert cli.main(generate_argv(gen_inputs["good_csv"], mine, *extra)) == 2
    assert "not empty" in one_error_line(capsys.readouterr().err)
    assert files_under(mine) == before and sorted(p.name for p in mine.iterdir()) == ["README.md", "data"]


def test_a_read_only_output_folder_is_a_usage_error(
    gen_inputs, no_model_loads, make_read_only, tmp_path, capsys
):
    (tmp_path / "out").mkdir()
    out = make_read_only(tmp_path / "out")
    assert cli.main(generate_argv(gen_inputs["good_csv"], out)) == 2
    assert f"cannot write to {out}" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "models, message",
    [
        (
            ["--captioner", "/nonexistent/blip2-checkpoint"],
            "--captioner /nonexistent/blip2-checkpoint: no such",
        ),
        (["--scorer", "msclap:2022"], "msclap:2022 is not supported"),
        (["--scorer", "{tiny_clap}", "--scorer-weights", "{tiny_clap}"], "only apply to msclap"),
        (["--scorer-weights", "/nonexistent/CLAP_weights_2023.pth"], "--scorer-weights /nonexistent"),
        (["--dtype", "float99"], "unknown dtype 'float99'"),
    ],
)
def test_unusable_model_options_are_one_line_errors(
    models, message, gen_inputs, tiny_blip2, tiny_clap, no_model_loads, tmp_path, capsys
):
    models = [m.format(tiny_clap=tiny_clap) for m in models]
    argv = generate_argv(gen_inputs["good_csv"], tmp_path / "out", "--captioner", str(tiny_blip2), *models)
    assert cli.main(argv) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()  # checked before the output folder is even created


def test_inputs_are_checked_before_the_models_load(gen_inputs, no_model_loads, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(generate_argv(tmp_path / "empty", tmp_path / "out")) == 2
    assert "no clips found" in one_error_line(capsys.readouterr().err)

    good = gen_inputs["good"][0]
    for bad_start in ("nan", "inf", "-2"):
        listing = tmp_path / f"clips_{bad_start}.csv"
        video = gen_inputs["root"] / good["video_path"]
        listing.write_text(f"video_path,start_s\n{video},0\n{video},{bad_start}\n")
        argv = generate_argv(listing, tmp_path / "out", "--input-root", str(gen_inputs["root"]))
        assert cli.main(argv) == 2
        assert f"{listing.name}:3" in one_error_line(capsys.readouterr().err)

    for option, value in (("--num-workers", "-1"), ("--fps", "nan"), ("--shard-size", "0")):
        assert cli.main(generate_argv(gen_inputs["good_csv"], tmp_path / "out", option, value)) == 2
        assert f"{option} must be" in one_error_line(capsys.readouterr().err)


def test_cli_defaults_are_the_option_dataclasses_defaults():
    from avt_triplets.options import GenerationOptions, ModelOptions

    parser = cli.build_parser(only="generate")
    args = parser.parse_args(["generate", "videos/", "--output-dir", "out"])
    for options in (GenerationOptions, ModelOptions):
        for field in dataclasses.fields(options):
            if "help" in field.metadata:
                assert getattr(args, field.name) == field.default, field.name
    flags = {a.dest for a in parser._subparsers._group_actions[0].choices["generate"]._actions}
    library_only = {"prefetch", "jpeg_quality", "decoder_threads", "write_card", "rank", "world_size"}
    assert {f.name for f in dataclasses.fields(GenerationOptions)} - flags == library_only
    assert {f.name for f in dataclasses.fields(ModelOptions)} <= flags
    assert isinstance(args, argparse.Namespace) and args.progress is True and args.trimmed is True


# ----------------------------------------------------------------------------------------------
# Runs that cannot go on


class _KernelCrashCaptioner(Captioner):
    """The tiny BLIP-2, except that the frames of the 256x144 videos (398 px wide) crash it: not memory."""

    def __init__(
        self, inner, error: type[BaseException] = RuntimeError, message: str = "CUBLAS kernel crashed"
    ):
        self.inner, self.name, self.revision, self.prompt = inner, "crashy-blip2", None, None
        self.error, self.message = error, message

    def caption(self, images):
        if any(image.width > 350 for image in images):
            raise self.error(self.message)
        return self.inner.caption(images)


class _OutOfMemoryCaptioner(Captioner):
    """Captions the preflight's square frame, runs out of memory on every real frame."""

    name, revision, prompt = "oom-captioner", None, None

    def caption(self, images):
        if any(image.width != image.height for image in images):
            raise RuntimeError("CUDA out of memory (simulated)")
        return ["a test caption"] * len(images)


def test_a_model_failing_on_one_item_stops_the_run_and_says_how_to_resume(
    gen_inputs, blip2_captioner, session_models, tmp_path, capsys
):
    session_models(captioner=_KernelCrashCaptioner(blip2_captioner))
    out = tmp_path / "out"
    argv = generate_argv(gen_inputs["good_csv"], out)
    assert cli.main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "captioner failed on a single item: RuntimeError: CUBLAS kernel crashed" in line
    assert "clip " in line and "1 of 3 shards are finished" in line
    assert line.endswith("resume with: avt " + " ".join(argv))
    assert layout.stats_path(out, 0).is_file() and not layout.stats_path(out, 1).exists()
    assert not layout.data_path(out, 1).exists() and temporaries(out) == []


def test_zero_triplets_from_decodable_clips_is_not_a_success(gen_inputs, session_models, tmp_path, capsys):
    session_models(captioner=_OutOfMemoryCaptioner())
    assert cli.main(generate_argv(gen_inputs["good_csv"], tmp_path / "out")) == 1
    captured = capsys.readouterr()
    assert "triplets      0" in captured.out
    assert "no triplets: the models failed on all 6 decodable clip(s) (caption_failed 6)" in captured.err


def _broken_blip2(source: Path, target: Path, how: str) -> Path:
    """A copy of the tiny BLIP-2 that loads but captions nothing: every weight NaN (a diverged fine-tune), or an
    output layer whose only answer is end-of-sequence (the final norm gives every position the same state, and
    only the EOS row of the tied output embeddings points along it)."""
    import json

    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    weights = load_file(target / "model.safetensors")
    if how == "nan":
        weights = {
            k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()
        }
    else:
        eos = json.loads((target / "config.json").read_text())["text_config"]["eos_token_id"]
        decoder = "language_model.model.decoder"
        state = torch.ones_like(weights[f"{decoder}.final_layer_norm.bias"])
        weights[f"{decoder}.final_layer_norm.weight"] = torch.zeros_like(state)
        weights[f"{decoder}.final_layer_norm.bias"] = state
        embeddings = torch.zeros_like(weights[f"{decoder}.embed_tokens.weight"])
        embeddings[eos] = state
        weights[f"{decoder}.embed_tokens.weight"] = embeddings
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.mark.parametrize("how", ["nan", "eos_only"])
def test_a_captioner_that_captions_nothing_is_refused_before_any_video(
    how, gen_inputs, tiny_blip2, tiny_clap, tmp_path, capsys
):
    """Issue 18 item 4: it loads, so only its (empty) captions of the preflight's frames can tell."""
    captioner = _broken_blip2(tiny_blip2, tmp_path / f"blip2_{how}", how)
    out = tmp_path / "out"
    argv = generate_argv(
        gen_inputs["good_csv"], out, "--captioner", str(captioner), "--scorer", str(tiny_clap)
    )
    assert cli.main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(captioner) in line and "captions synthetic test frames as ['', '']" in line
    assert not layout.stats_path(out, 0).exists()  # refused before any shard


class _EmptyCaptioner(Captioner):
    """Captions the preflight's frames, then gives every real frame an empty caption (``keep`` 0), or all but
    every ``keep``-th frame of each batch."""

    name, revision, prompt = "empty-captioner", None, None

    def __init__(self, keep: int = 0):
        self.keep, self.calls = keep, 0

    def caption(self, images):
        self.calls += 1
        if self.calls == 1:
            return ["a red square on a gradient"] * len(images)
        return [f"a word {i}" if self.keep and i % self.keep == 0 else "" for i in range(len(images))]


def test_a_batch_of_empty_captions_stops_the_run(gen_inputs, session_models, tmp_path, capsys):
    session_models(captioner=_EmptyCaptioner())
    out = tmp_path / "out"
    assert cli.main(generate_argv(gen_inputs["good_csv"], out)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "empty caption" in line and "resume with: avt generate" in line
    assert not layout.stats_path(out, 0).exists()  # nothing of it was recorded as done


def test_mostly_empty_captions_are_not_a_success(gen_inputs, session_models, tmp_path, capsys):
    import datasets

    session_models(captioner=_EmptyCaptioner(keep=3))
    out = tmp_path / "out"
    assert cli.main(generate_argv(gen_inputs["good_csv"], out)) == 1
    captured = capsys.readouterr()
    assert "empty caption" in one_error_line(captured.err)
    rows = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert len(rows) and all(
        caption.startswith("a word") for caption in rows["caption"]
    )  # never an empty one


def test_a_full_disk_stops_with_a_clear_message_and_leaves_no_temporaries(
    gen_inputs, session_models, monkeypatch, tmp_path, capsys
):
    from avt_triplets.shards import ShardWriter

    real_write = ShardWriter.write_row

    def write_row(self, row):
        if self.index == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, row)

    monkeypatch.setattr(ShardWriter, "write_row", write_row)
    session_models()
    out = tmp_path / "out"
    assert cli.main(generate_argv(gen_inputs["good_csv"], out)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "no space left on the device" in line and "1 of 3 shards are finished" in line
    assert temporaries(out) == [] and not layout.stats_path(out, 1).exists()


def test_a_folder_input_counts_and_lists_what_it_skipped(
    gen_inputs, session_models, tmp_path, capsys, caplog
):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(gen_inputs["root"] / gen_inputs["good"][0]["video_path"], videos / "clip.mp4")
    (videos / "notes.txt").write_text("not a video\n")
    shutil.copy(gen_inputs["root"] / "bad/audio_only.mp4", videos / "sound.m4a")
    session_models()
    with caplog.at_level(logging.INFO, logger="avt_triplets.inputs"):
        assert cli.main(generate_argv(videos, tmp_path / "out", "--log-level", "INFO")) == 0
    assert "skipped       2 files: not video files" in capsys.readouterr().out
    skipped = [r.getMessage() for r in caplog.records if r.name == "avt_triplets.inputs"]
    assert any(m.startswith("skipped notes.txt") for m in skipped) and any("sound.m4a" in m for m in skipped)
    assert layout.stats_path(tmp_path / "out", 0).is_file()  # the one video made a finished shard


def test_no_token_reaches_a_file_or_the_log(gen_inputs, session_models, monkeypatch, tmp_path, capfd):
    secret = "hf_avtSecretTokenThatMustNeverBeWritten0123"
    monkeypatch.setenv("HF_TOKEN", secret)
    session_models()
    out = tmp_path / "out"
    assert cli.main(generate_argv(gen_inputs["good_csv"], out, "--limit", "2", "--log-level", "DEBUG")) == 0
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err
    assert all(secret.encode() not in data for data in files_under(out).values())
    assert files_under(out)  # the run wrote its files


class _StoppedByScheduler(Captioner):
    """The tiny BLIP-2, until a batch of shard 1: then the process gets SIGTERM, as from `scancel` or `kill`."""

    def __init__(self, inner):
        self.inner, self.name, self.revision, self.prompt = inner, inner.name, inner.revision, inner.prompt
        self.calls = 0

    def caption(self, images):
        self.calls += 1
        if self.calls == 6:  # the first call is the preflight; shard 0 takes calls 2-4
            os.kill(os.getpid(), signal.SIGTERM)
        return self.inner.caption(images)


def test_sigterm_drops_the_shard_in_flight_and_prints_how_to_resume(
    gen_inputs, blip2_captioner, session_models, tmp_path, capsys
):
    """Issue 8.11 for SIGTERM (Ctrl-C runs in a real process group in test_processes.py)."""
    session_models(captioner=_StoppedByScheduler(blip2_captioner))
    out = tmp_path / "out"
    argv = generate_argv(gen_inputs["good_csv"], out, "--caption-batch-size", "2")

    def unhandled(signum, frame):  # without avt's own handler, SIGTERM would end this test session
        raise AssertionError("avt generate did not handle SIGTERM")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert cli.main(argv) == 130
        assert signal.getsignal(signal.SIGTERM) is unhandled  # avt put the caller's handler back
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.strip()]
    done = len(list((out / layout.STATS_DIR).glob("*_stats.json")))
    assert line.startswith(f"interrupted: {done} of 3 shards are finished in {out}") and 1 <= done < 3
    assert shlex.split(line.split("resume with: ", 1)[1]) == ["avt", *argv]
    assert temporaries(out) == []


def test_sigterm_while_a_shard_commits_waits_for_the_writer_and_leaves_no_temporary(
    gen_inputs, monkeypatch, tmp_path, capsys
):
    """The Ctrl-C flake of test_processes.py: a signal reaching the main thread while it waited for the writer
    thread to commit a shard (``ShardWriterThread.close``) ended the process with that daemon thread mid-commit,
    its ``.tmp`` left behind. Here shard 1's commit (in the writer thread) sends SIGTERM to the main thread and
    holds until the main thread aborts the writer; the command must wait for the writer, then say how to resume."""
    import threading

    from avt_triplets import shards
    from avt_triplets.stages.writer import ShardWriterThread

    main = threading.main_thread()
    if threading.current_thread() is not main:
        pytest.skip("signals reach the main thread only")
    aborted, commit, abort = threading.Event(), shards.ShardWriter.commit, ShardWriterThread.abort
    held: list[bool] = []

    def signalled_commit(self, stats):
        if self.index == 1:
            signal.pthread_kill(main.ident, signal.SIGTERM)
            # The handler may run while the main thread waits in close(), and then it aborts the writer (True), or
            # only once that wait returns (CPython re-checks signals in a lock acquire on EINTR only; seen in
            # pytest-xdist workers), and then the writer finishes the commit alone after this bound (False).
            # Either way the process must end with the shard whole and no temporary, which the old code did not.
            held.append(aborted.wait(timeout=10))
        commit(self, stats)

    def observed_abort(self):
        aborted.set()
        abort(self)

    monkeypatch.setattr(shards.ShardWriter, "commit", signalled_commit)
    monkeypatch.setattr(ShardWriterThread, "abort", observed_abort)
    out = tmp_path / "out"
    argv = ["generate", str(gen_inputs["good_csv"]), "--output-dir", str(out), "--captioner", "none",
            "--shard-size", "2", "--num-workers", "0", "--no-progress"]  # fmt: skip
    previous = signal.signal(signal.SIGTERM, lambda *_: pytest.fail("avt generate did not handle SIGTERM"))
    try:
        code = cli.main(argv)
        left = temporaries(out)  # before the held writer is released: what a process exiting now would leave
    finally:
        aborted.set()
        signal.signal(signal.SIGTERM, previous)
    assert code == 130 and len(held) == 1
    assert left == []
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    done = len(list((out / layout.STATS_DIR).glob("*_stats.json")))
    assert done == 2  # shard 1, whose commit was under way, is complete; shard 2 never started
    assert line.startswith(f"interrupted: 2 of 3 shards are finished in {out}")
    assert shards.check_finished_shards(out).damaged == {}
