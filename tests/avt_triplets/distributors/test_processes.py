"""`avt generate` as users run it: killed with SIGKILL and resumed, two accelerate processes, other backends."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from avt import cli
from avt_triplets import caption_compile, layout

METADATA = ["clip_id", "captions", "caption_scores", "caption", "caption_index", "text_embedding"]


def read_rows(root: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for data_file in sorted((root / layout.DATA_DIR).glob("shard-*.parquet")):
        for row in pq.read_table(data_file, columns=METADATA).to_pylist():
            assert row["clip_id"] not in rows, f"{row['clip_id']} written twice"
            rows[row["clip_id"]] = row
    return rows


def read_failure_ids(root: Path) -> list[str]:
    ids = []
    for path in sorted((root / layout.FAILURES_DIR).glob("shard-*.parquet")):
        ids += pq.read_table(path, columns=["clip_id"]).column("clip_id").to_pylist()
    return sorted(ids)


def assert_same_output(actual_root: Path, expected_root: Path) -> None:
    actual, expected = read_rows(actual_root), read_rows(expected_root)
    assert sorted(actual) == sorted(expected)
    for clip_id, row in expected.items():
        assert actual[clip_id]["captions"] == row["captions"], clip_id
        assert actual[clip_id]["caption_index"] == row["caption_index"], clip_id
        np.testing.assert_allclose(actual[clip_id]["caption_scores"], row["caption_scores"], atol=1e-5)
        np.testing.assert_allclose(actual[clip_id]["text_embedding"], row["text_embedding"], atol=1e-5)
    assert read_failure_ids(actual_root) == read_failure_ids(expected_root)
    assert len(list((actual_root / layout.STATS_DIR).glob("*_stats.json"))) == len(
        list((expected_root / layout.STATS_DIR).glob("*_stats.json"))
    )


def generate_args(
    inputs: Path, out: Path, captioner: Path, scorer: Path, options: dict, workers: int
) -> list[str]:
    return [
        "generate", str(inputs), "--output-dir", str(out),
        "--captioner", str(captioner), "--max-new-tokens", "4", "--scorer", str(scorer), "--device", "cpu",
        "--shard-size", str(options["shard_size"]),
        "--caption-batch-size", str(options["caption_batch_size"]),
        "--score-batch-size", str(options["score_batch_size"]),
        "--num-workers", str(workers), "--no-progress",
    ]  # fmt: skip


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_rows(
    reference_run, reference_options, gen_inputs, tiny_blip2, tiny_clap, subprocess_env, tmp_path
):
    out = tmp_path / "out"
    args = generate_args(gen_inputs["csv"], out, tiny_blip2, tiny_clap, reference_options, workers=1)
    total = len(list((reference_run / layout.STATS_DIR).glob("*_stats.json")))
    # Every caption batch sleeps a little so the kill lands between shards and inside one.
    env = {**subprocess_env, "AVT_TEST_CAPTION_DELAY_S": "0.3"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        done = len(list((out / layout.STATS_DIR).glob("*_stats.json")))
        if done >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, process.stdout.read().decode()[-3000:]
    os.killpg(process.pid, signal.SIGKILL)  # the process and its decode worker, mid-shard
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    finished = len(list((out / layout.STATS_DIR).glob("*_stats.json")))
    assert 0 < finished < total, "the kill must land mid-run"
    # The provisional card lists finished shards only, so a killed run's output reads as the rows
    # finished so far (never manifest.json or half-written files).
    assert (out / layout.CARD_FILE).is_file()
    try:
        partial = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    except datasets.exceptions.DataFilesNotFoundError:  # the card predates the first finished shard
        partial = None
    if partial is not None:
        reference_rows = datasets.load_dataset(
            str(reference_run), split="train", cache_dir=str(tmp_path / "c2")
        )
        assert 0 < len(partial) < len(reference_rows)
        assert set(partial["clip_id"]) <= set(reference_rows["clip_id"])

    assert cli.main(args) == 0  # the same command resumes
    assert_same_output(out, reference_run)
    stats = [json.loads(p.read_text()) for p in sorted((out / layout.STATS_DIR).glob("*_stats.json"))]
    assert sum(s["num_clips"] for s in stats) == len(gen_inputs["good"]) + len(gen_inputs["bad"])
    assert (out / layout.CARD_FILE).is_file()


# Runs the real CLI with a captioner slowed down by AVT_TEST_CAPTION_DELAY_S seconds per batch.
_SLOW_CLI = """
import os, sys, time
import avt_triplets.captioners as captioners
original = captioners.TransformersCaptioner._generate  # under caption() and caption_pixels() alike
delay = float(os.environ["AVT_TEST_CAPTION_DELAY_S"])
def slow(self, inputs):
    time.sleep(delay)
    return original(self, inputs)
captioners.TransformersCaptioner._generate = slow
from avt.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _one_process_qwen_run(inputs: Path, captioner: Path, scorer: Path, options: dict, out: Path) -> list[str]:
    """The local distributor's rows of the tiny Qwen2.5-VL on two clips (one shard each, a frame every 4 s),
    with one torch thread as each launched process has; returns the extra options both runs take."""
    import torch

    extra = ["--limit", "2", "--fps", "0.25"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(generate_args(inputs, out, captioner, scorer, options, workers=0) + extra) == 0
    finally:
        torch.set_num_threads(threads)
    return extra


@pytest.mark.parametrize("family", ["blip-2", "qwen2.5-vl"])
def test_two_accelerate_processes_give_the_same_rows_as_one(
    family, request, reference_options, gen_inputs, tiny_clap, subprocess_env, tmp_path
):
    """Two accelerate processes write the one-process rows: BLIP-2 (fixed-size pixels) on the mixed list, and a
    variable-size family (Qwen2.5-VL: patch rows, grids and prompts collated per batch) on two clips."""
    out = tmp_path / "out"
    if family == "blip-2":
        captioner, inputs, options, extra = (
            request.getfixturevalue("tiny_blip2"),
            gen_inputs["csv"],
            reference_options,
            [],
        )
        reference = request.getfixturevalue("reference_run")
    else:
        captioner, inputs = request.getfixturevalue("tiny_qwen2_5_vl"), gen_inputs["good_csv"]
        options, reference = {**reference_options, "shard_size": 1}, tmp_path / "one"
        extra = _one_process_qwen_run(inputs, captioner, tiny_clap, options, reference)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "avt.cli",
    ]  # fmt: skip
    # One decode worker per process: each process gets its clips prepared for the models (pixel_values, scorer
    # windows) through shared memory, as a GPU run does.
    args = generate_args(inputs, out, captioner, tiny_clap, options, workers=1) + extra
    result = subprocess.run(launch + args, env=subprocess_env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_same_output(out, reference)
    ranks = {}
    for path in sorted((out / layout.STATS_DIR).glob("*_stats.json")):
        stats = json.loads(path.read_text())
        assert stats["world_size"] == 2
        ranks[stats["shard"]] = stats["rank"]
    assert ranks == {index: index % 2 for index in ranks} and len(ranks) >= 2  # shards rank::world, once each
    assert (out / layout.CARD_FILE).is_file()


AGREE_SCRIPT = """
import sys
from pathlib import Path
from avt_triplets.distributors.accelerate import AccelerateDistributor
from avt_triplets.model_host import LoadedHost
from avt_triplets.options import GenerationOptions
distributor = AccelerateDistributor()  # joins the launcher's (gloo) process group
own = 16 if distributor.rank == 0 else 8  # as if the two GPUs had different free memory
host = LoadedHost(distributor, None, None)  # the sizes are given: no captioner is asked
agreed = host.caption_batch_size(GenerationOptions(caption_batch_size=own), None)
line = f"rank {distributor.rank} of {distributor.world_size}: {own} -> {agreed}"
distributor.close()
Path(sys.argv[1], f"rank{distributor.rank}.txt").write_text(line)  # one file each: shared stdout interleaves
"""


def test_accelerate_processes_agree_on_the_smallest_caption_batch_size(subprocess_env, tmp_path):
    """Every process must cut the same caption batches (bit-exact rows whoever runs a shard): ``auto`` probed on
    each GPU is replaced by the smallest of them."""
    script = tmp_path / "agree.py"
    script.write_text(AGREE_SCRIPT)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0", str(script),
        str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(launch, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)]
    assert lines == ["rank 0 of 2: 16 -> 8", "rank 1 of 2: 8 -> 8"], result.stdout


@pytest.mark.parametrize("backend", ["llava", "msclap"])
def test_other_backends(
    backend, reference_options, gen_inputs, blip2_captioner, clap_scorer, request, tmp_path
):
    from avt_triplets.captioners import load_captioner
    from avt_triplets.pipeline import generate_triplets
    from avt_triplets.scorers import load_scorer

    captioner, scorer = blip2_captioner, clap_scorer
    if backend == "llava":
        captioner = load_captioner(request.getfixturevalue("tiny_llava"), device="cpu", max_new_tokens=4)
    else:
        scorer = load_scorer("msclap:2023", weights=request.getfixturevalue("tiny_msclap"), device="cpu")
    summary = generate_triplets(
        gen_inputs["good_csv"],
        tmp_path / "out",
        captioner,
        scorer,
        rank=0,
        world_size=1,
        num_workers=0,
        limit=2,
        **{**reference_options, "shard_size": 2},
    )
    assert summary.complete and summary.triplets == 2
    rows = read_rows(tmp_path / "out")
    for row in rows.values():
        assert row["caption_index"] == int(np.argmax(row["caption_scores"]))
        assert row["caption"] == row["captions"][row["caption_index"]] and row["caption"]
        assert len(row["text_embedding"]) == scorer.embed_dim
        assert np.linalg.norm(row["text_embedding"]) == pytest.approx(1.0, abs=1e-4)
    manifest = json.loads((tmp_path / "out" / layout.MANIFEST_FILE).read_text())
    assert manifest["captioner"]["name"] == captioner.name and manifest["scorer"]["name"] == scorer.name
    assert manifest["scorer"]["sampling_rate"] == scorer.sampling_rate


def test_cli_options_reach_the_decoder_and_the_captioner(
    gen_inputs, tiny_blip2, tiny_clap, reference_options, tmp_path, monkeypatch, caplog
):
    """`avt generate --video-hwaccel cuda --caption-compile` writes the rows of a plain run."""
    options = {**reference_options, "shard_size": 2}
    plain = generate_args(gen_inputs["good_csv"], tmp_path / "plain", tiny_blip2, tiny_clap, options, 0)
    assert cli.main([*plain, "--limit", "2"]) == 0

    compiled = []
    real_compile = caption_compile.compile_captioner

    def spy(captioner, **kwargs):
        compiled.append(captioner.name)
        return real_compile(captioner, **kwargs)

    monkeypatch.setattr(caption_compile, "compile_captioner", spy)
    # inductor builds C++ kernels for minutes on CPU; aot_eager traces the same graphs
    monkeypatch.setattr(caption_compile, "DEFAULT_BACKEND", "aot_eager")
    caplog.set_level(logging.INFO)
    args = generate_args(gen_inputs["good_csv"], tmp_path / "gpu", tiny_blip2, tiny_clap, options, 0)
    assert cli.main([*args, "--limit", "2", "--video-hwaccel", "cuda", "--caption-compile"]) == 0
    assert compiled == [str(tiny_blip2)]
    assert "static KV cache + torch.compile (aot_eager)" in caplog.text
    assert "cuda video decoding unavailable" in caplog.text or "decoding video with cuda" in caplog.text
    assert_same_output(tmp_path / "gpu", tmp_path / "plain")


def _children(pid: int) -> set[int]:
    """Child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; it only waits to be reaped


def _start_slow_generate(args, env, log: Path, delay_s: float) -> subprocess.Popen:
    """The real CLI in its own session, with every caption batch slowed down (see _SLOW_CLI)."""
    return subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, *args],
        env={**env, "AVT_TEST_CAPTION_DELAY_S": str(delay_s)},
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# Decodes the list with two workers for a consumer as slow as a busy GPU: the workers fill their queues.
_SLOW_CONSUMER = """
import sys, time
from avt_triplets.decoding import DecodeJob, DecodeSettings, iter_decoded
from avt_triplets.inputs import read_clip_list
clips = read_clip_list(sys.argv[1])
jobs = [DecodeJob(i, 0, clip) for i, clip in enumerate(clips)]
for item in iter_decoded(jobs, DecodeSettings(clip_seconds=2.0), num_workers=2, prefetch=2):
    print("decoded", item.job.clip.clip_id, flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_decode_workers_exit_when_the_parent_is_killed(gen_inputs, subprocess_env, tmp_path):
    """Issue 8.10: `kill -9` of `avt generate` used to leave its decode workers running for minutes."""
    log = tmp_path / "log"
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CONSUMER, str(gen_inputs["good_csv"])],
        env=subprocess_env,
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    workers: set[int] = set()
    try:
        _wait_until(lambda: "decoded" in log.read_text() or process.poll() is not None, 120, "a decoded clip")
        time.sleep(0.5)  # the workers go on decoding until their queues are full, then block
        workers = _children(process.pid)
        assert len(workers) == 2 and process.poll() is None, log.read_text()[-3000:]
        os.kill(process.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "decode workers outlived their parent"
    finally:
        for pid in [process.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_cleanly_and_prints_how_to_resume(
    gen_inputs, reference_options, tiny_blip2, tiny_clap, subprocess_env, tmp_path
):
    """Issue 8.11: one line saying what is finished and the command to resume; no traceback, no .tmp.

    SIGTERM takes the same path (tests/avt_triplets/commands/test_generate.py checks it in process).
    """
    out = tmp_path / "out"
    args = generate_args(gen_inputs["csv"], out, tiny_blip2, tiny_clap, reference_options, workers=1)
    log = tmp_path / "log"
    process = _start_slow_generate(args, subprocess_env, log, delay_s=0.5)
    try:
        stats = lambda: len(list((out / layout.STATS_DIR).glob("*_stats.json")))  # noqa: E731
        _wait_until(lambda: stats() >= 1 or process.poll() is not None, 240, "a finished shard")
        assert process.poll() is None, log.read_text()[-3000:]
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C signals the whole group, workers too
        process.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    output = log.read_text()
    assert process.returncode == 130, output[-3000:]
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1, output[-3000:]
    done = stats()
    assert f"interrupted: {done} of 5 shards are finished in {out}" in lines[0] and 1 <= done < 5
    assert not list(out.rglob("*.tmp"))
    # The printed command is the same command, which resumes to the uninterrupted rows (see the SIGKILL test).
    assert shlex.split(lines[0].split("resume with: ", 1)[1]) == ["avt", *args]


# What srun sets for task 1 of 2 on one node (no RANK / WORLD_SIZE / LOCAL_RANK: no torchrun, no accelerate launch).
SRUN_TASK = {
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_ID": "0",
    "SLURM_PROCID": "1",
    "SLURM_NTASKS": "2",
    "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "0",
}
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _srun_task(env: dict[str, str], rank: int) -> dict[str, str]:
    env = {k: v for k, v in env.items() if k not in LAUNCHER_VARIABLES and not k.startswith("SLURM_")}
    return {**env, **SRUN_TASK, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)}


def test_bare_srun_tasks_split_the_shards_as_one_process_would_write_them(
    gen_inputs, subprocess_env, tmp_path
):
    """Issue 17.6: under `srun -n 2 avt generate ...` each task reads SLURM_PROCID / SLURM_NTASKS and takes shards
    rank::2; together they write what one process writes. (One task leaves --distributor to auto, the other names
    accelerate: both must see the two tasks.)"""
    common = [str(gen_inputs["good_csv"]), "--captioner", "none", "--shard-size", "2", "--num-workers", "0"]
    one = tmp_path / "one"
    assert cli.main(["generate", *common, "--output-dir", str(one), "--no-progress"]) == 0
    out = tmp_path / "srun"
    tasks = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "avt.cli",
                "generate",
                *common,
                "--output-dir",
                str(out),
                "--no-progress",
                *extra,
            ],
            env=_srun_task(subprocess_env, rank),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank, extra in ((0, []), (1, ["--distributor", "accelerate"]))
    ]
    logs = [task.communicate(timeout=300)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], "\n".join(logs)[-4000:]
    ranks = {}
    for path in sorted((out / layout.STATS_DIR).glob("*_stats.json")):
        stats = json.loads(path.read_text())
        assert stats["world_size"] == 2, stats
        ranks[stats["shard"]] = stats["rank"]
    assert ranks == {0: 0, 1: 1, 2: 0}  # shards rank::world, each exactly once
    columns = ["clip_id", "labels", "start_s", "end_s", "frame_times_s"]
    assert datasets.load_dataset(str(out), split="train").select_columns(columns).sort(
        "clip_id"
    ).to_list() == (
        datasets.load_dataset(str(one), split="train").select_columns(columns).sort("clip_id").to_list()
    )
    assert all("SLURM_PROCID" in log and "(srun)" in log for log in logs), logs


def test_srun_task_variables_give_the_rank_and_the_local_gpu(monkeypatch, caplog):
    import torch

    from avt_triplets import devices
    from avt_triplets.distributors import accelerate

    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in SRUN_TASK.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.INFO, logger="avt_triplets.distributors.accelerate"):
        assert accelerate.resolve_rank() == (1, 2, False)
    assert "SLURM_PROCID=1 of SLURM_NTASKS=2 (srun)" in caplog.text
    # Every GPU of the node visible to every task: SLURM_LOCALID picks this task's.
    monkeypatch.setattr(
        devices, "process_state", lambda device=None: type("S", (), {"device": torch.device("cuda")})
    )
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert devices.process_device() == torch.device("cuda", 1)
    assert devices.process_device("cuda:3") == "cuda:3"  # --device given: taken as it is
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # srun --gpus-per-task=1: one visible GPU
    assert devices.process_device() == torch.device("cuda")


def test_an_sbatch_script_with_several_tasks_is_one_process(monkeypatch, caplog):
    """The batch script itself sees SLURM_NTASKS=2 and SLURM_PROCID=0 but is not an srun task: acting as rank 0 of 2
    would leave half the shards undone."""
    from avt_triplets.distributors import accelerate

    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in SRUN_TASK.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.delenv("SLURM_STEP_ID")
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS")
    assert accelerate.launched_world_size() == 1
    with caplog.at_level(logging.WARNING, logger="avt_triplets.distributors.accelerate"):
        assert accelerate.resolve_rank() == (0, 1, True)
    assert "not an srun task" in caplog.text and "srun" in caplog.text
