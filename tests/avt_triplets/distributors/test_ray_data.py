"""Issue 9 §2: the ``ray`` distributor on a local Ray instance (127.0.0.1) with the tiny models.

One Ray instance serves the whole module. Its workers compute with one torch thread; the ``local`` reference runs
with one thread too, because on a CPU torch's float results depend on its thread count (on a GPU they depend on
the batch only, which the chunk fixes): with equal kernels the two distributors write the same bytes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avt_core.errors import RunAborted
from avt_triplets import layout
from avt_triplets.captioner_contract import Captioner
from avt_triplets.options import ModelOptions
from avt_triplets.pipeline import generate_triplets

ray = pytest.importorskip("ray", reason="the ray distributor needs the avt[ray] extra (CI installs it)")

OPTIONS = {
    "shard_size": 3,
    "chunk_size": 2,
    "caption_batch_size": 8,
    "score_batch_size": 4,
    "progress": False,
}


@pytest.fixture(scope="module")
def ray_address():
    """A Ray instance for this module (3 logical CPUs: a decode task and two model actors at once). ``local``: a new
    instance of its own, never the cluster another test module may have started on this machine."""
    ray.init(
        address="local",
        num_cpus=3,
        object_store_memory=300 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def models(tiny_blip2, tiny_clap) -> ModelOptions:
    return ModelOptions(captioner=str(tiny_blip2), scorer=str(tiny_clap), device="cpu", max_new_tokens=4)


@pytest.fixture(scope="module")
def local_reference(gen_inputs, models, tmp_path_factory) -> Path:
    """The mixed list (good clips and one broken file per failure reason) through the local distributor."""
    import torch

    from avt_triplets.models import load_models

    out = tmp_path_factory.mktemp("ray_reference") / "local"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        captioner, scorer = load_models(models)
        summary = generate_triplets(
            gen_inputs["csv"], out, captioner, scorer, distributor="local", num_workers=0, **OPTIONS
        )
    finally:
        torch.set_num_threads(threads)
    assert summary.complete and summary.failures == len(gen_inputs["bad"]), summary.format()
    return out


def shard_files(root: Path) -> dict[str, bytes]:
    return {
        f"{folder}/{path.name}": path.read_bytes()
        for folder in (layout.DATA_DIR, layout.FAILURES_DIR)
        for path in sorted((root / folder).glob("*.parquet"))
    }


def _manifest(root: Path) -> dict:
    import json

    return json.loads((root / layout.MANIFEST_FILE).read_text())


def _finished_parts(root: Path) -> list[Path]:
    return list((root / layout.PARTS_DIR).glob("*/*.json"))


def _wait_until_idle(timeout: float = 60.0) -> None:
    """Until Ray has reclaimed every resource of a killed driver's job (its actors and tasks are gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU") == ray.cluster_resources().get("CPU"):
            return
        time.sleep(0.2)
    raise AssertionError("the killed driver's actors and tasks still hold resources")


def test_a_killed_ray_driver_resumes_to_the_local_distributors_files_byte_for_byte(
    ray_address, gen_inputs, models, local_reference, subprocess_env, tmp_path
):
    """``avt generate --distributor ray`` joins the running Ray instance, is SIGKILLed once a chunk is finished,
    and a rerun completes the output: every data and failures file equals the local distributor's."""
    out = tmp_path / "out"
    argv = [
        sys.executable, "-m", "avt.cli", "generate", str(gen_inputs["csv"]), "--output-dir", str(out),
        "--distributor", "ray", "--ray-address", ray_address, "--captioner", models.captioner,
        "--scorer", models.scorer, "--device", "cpu", "--max-new-tokens", "4", "--shard-size", "3",
        "--chunk-size", "2", "--caption-batch-size", "8", "--score-batch-size", "4", "--no-progress",
    ]  # fmt: skip
    driver = subprocess.Popen(argv, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not _finished_parts(out) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()[-3000:]
        os.kill(driver.pid, signal.SIGKILL)  # mid-run: a chunk is finished, its shard is not committed yet
    finally:
        driver.kill()
        driver.wait()
        driver.stderr.close()
    assert len(list((out / layout.STATS_DIR).glob("*_stats.json"))) < 5
    kept = len(_finished_parts(out))
    _wait_until_idle()

    resumed = generate_triplets(gen_inputs["csv"], out, models=models, distributor="ray", **OPTIONS)
    assert resumed.complete and resumed.distributor == "ray", resumed.format()
    clips = len(gen_inputs["good"]) + len(gen_inputs["bad"])
    assert kept >= 1 and resumed.processed_this_run < clips  # the finished chunks were not redone
    expected = shard_files(local_reference)
    assert len(expected) == 10  # 5 shards: data + failures
    assert shard_files(out) == expected
    assert resumed.failures_by_reason == {reason: 1 for reason in gen_inputs["bad"].values()} | {
        "not_media": 3
    }
    for name in ("captioner", "scorer"):  # the probe tasks recorded the models the local run loaded
        assert _manifest(out)[name] == _manifest(local_reference)[name]
    assert not list((out / layout.PARTS_DIR).rglob("*.*"))  # committed shards leave no parts behind
    assert (out / layout.CARD_FILE).is_file()


class _FailsOnWideFrames(Captioner):
    """A captioner that is broken for 16:9 frames (398 px wide after resizing): not an input problem, a bug."""

    name, revision, prompt = "wide-frame-bug", None, None

    def caption(self, images):
        if any(image.width > 350 for image in images):
            raise RuntimeError("index out of range in self")
        return ["a frame"] * len(images)


def test_a_model_failing_on_one_item_stops_the_ray_run(ray_address, gen_inputs, clap_scorer, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors unpickle this module's class
    with pytest.raises(RunAborted) as stopped:
        generate_triplets(
            gen_inputs["good_csv"],
            tmp_path / "out",
            _FailsOnWideFrames(),
            clap_scorer,
            distributor="ray",
            **OPTIONS,
        )
    message = str(stopped.value)
    assert "a model failed on a single item" in message and "index out of range in self" in message
    assert stopped.value.resumable and "rerun the same command to resume" in message


def test_pools_default_to_a_captioner_and_a_scorer_sharing_each_gpu():
    from avt_triplets.distributors.ray_resources import Node, plan_pools
    from avt_triplets.options import GenerationOptions

    caption, score = plan_pools(GenerationOptions(distributor="ray"), [Node(cpus=32, gpus=8)])
    assert (caption.gpus, caption.min_size, caption.max_size) == (0.75, 1, 8)
    assert (score.gpus, score.min_size, score.max_size) == (0.25, 1, 2)
    assert caption.gpus * caption.max_size + score.gpus * score.max_size <= 8
    given = GenerationOptions(distributor="ray", captioner_gpus=0.5, scorer_gpus=0.25, captioner_replicas=3)
    caption, score = plan_pools(given, [Node(cpus=8, gpus=1), Node(cpus=8, gpus=1)])
    assert (caption.gpus, caption.min_size, caption.max_size) == (0.5, 3, 3)
    caption, score = plan_pools(GenerationOptions(distributor="ray"), [Node(cpus=4, gpus=0)])  # CPU-only
    assert (caption.gpus, caption.cpus, caption.max_size, score.gpus, score.max_size) == (0, 0.5, 1, 0, 1)


def test_ray_options_without_the_ray_distributor_are_refused():
    from avt_core.errors import UsageError
    from avt_triplets.options import GenerationOptions

    with pytest.raises(UsageError, match="--captioner-gpus only apply to --distributor ray"):
        GenerationOptions(captioner_gpus=0.5)


def test_a_labelled_only_ray_run_writes_the_local_distributors_files(ray_address, gen_inputs, tmp_path):
    """``--captioner none`` under Ray: decode and pack tasks only (no actor), the local run's bytes."""
    labelled = ModelOptions(captioner="none")
    local = generate_triplets(
        gen_inputs["csv"], tmp_path / "local", models=labelled, num_workers=0, **OPTIONS
    )
    ray_run = generate_triplets(
        gen_inputs["csv"], tmp_path / "ray", models=labelled, distributor="ray", **OPTIONS
    )
    assert local.complete and ray_run.complete and not ray_run.captioned, ray_run.format()
    assert shard_files(tmp_path / "ray") == shard_files(tmp_path / "local")
    assert _manifest(tmp_path / "ray")["captioner"] is None


def test_ray_decode_tasks_prepare_the_model_inputs_as_local_decode_workers_do(
    ray_address, gen_inputs, models
):
    """Issue 12 §1 under Ray: the preprocessors reported by the probe tasks (no weights in the driver) reach the
    decode tasks, whose clips arrive at the actors as ``pixel_values`` and scorer windows, equal to what the
    models' own preprocessing makes of the decoded frames; ``auto`` batch sizes are decided by the probe."""
    import numpy as np

    from avt_triplets.decoding import DecodeJob, decode_job
    from avt_triplets.distributors.ray_data import RayDistributor, decode_chunk
    from avt_triplets.inputs import load_inputs
    from avt_triplets.model_host import DeferredHost, decode_settings
    from avt_triplets.models import load_models
    from avt_triplets.options import GenerationOptions
    from avt_triplets.stages.reader import Chunk

    options = GenerationOptions(
        distributor="ray", ray_address=ray_address, **{**OPTIONS, "caption_batch_size": "auto"}
    )
    distributor = RayDistributor(options)
    host = DeferredHost(distributor, models)  # no weights here: probes in tasks with the pools' resources
    assert host.caption_batch_size(options, None) == 32  # the probe task's answer on a CPU
    assert host.caption_batch_size(options, 7) == 7  # a resumed output keeps its recorded size
    settings = host.decode_settings(options)
    assert settings.prepare.image is not None and settings.prepare.audio is not None

    clips = tuple(load_inputs(gen_inputs["good_csv"]).clips[:2])
    row = ray.get(ray.remote(decode_chunk).remote({"chunk": Chunk(0, 0, clips)}, settings))
    captioner, scorer = load_models(models)
    raw = decode_settings(options, scorer.sampling_rate)
    for job, item in zip((DecodeJob(i, 0, clip) for i, clip in enumerate(clips)), row["payload"]):
        reference = decode_job(job, raw)
        assert item.failure is None and item.frames == [] and item.scorer_audio is None
        frames, audio = item.inputs.frames, item.inputs.audio
        assert frames.preprocessed and frames.unique.dtype == np.float32
        firsts = [int(np.flatnonzero(frames.rows == row)[0]) for row in range(frames.num_unique)]
        expected = captioner.image_preprocessor()([reference.frames[k] for k in firsts])
        assert np.array_equal(frames.unique, expected["pixel_values"])
        assert audio.prepared and np.array_equal(
            audio.data, scorer.audio_preprocessor()(reference.scorer_audio)
        )


def _decode_listing_imports(row: dict, settings) -> list[str]:
    """``decode_chunk`` in this task, then which of the model libraries this worker process holds."""
    from avt_triplets.distributors.ray_data import decode_chunk

    assert not [name for name in ("torch", "transformers") if name in sys.modules], "a used worker"
    decode_chunk(row, settings)
    return [name for name in ("torch", "transformers") if name in sys.modules]


def test_a_labelled_only_ray_decode_task_imports_neither_torch_nor_transformers(ray_address, gen_inputs):
    """Issue 23 §2: a decode task without model preprocessing stays small; run in a worker process of its own (a
    runtime environment of its own: Ray starts a fresh worker for it, not one a model task used)."""
    from avt_triplets.inputs import load_inputs
    from avt_triplets.model_host import decode_settings
    from avt_triplets.options import GenerationOptions
    from avt_triplets.stages.reader import Chunk

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    clips = tuple(load_inputs(gen_inputs["good_csv"]).clips[:1])
    fresh = {"env_vars": {"AVT_TEST_FRESH_WORKER": str(os.getpid())}}
    task = ray.remote(_decode_listing_imports).options(runtime_env=fresh)
    row = {"chunk": Chunk(0, 0, clips)}
    assert ray.get(task.remote(row, decode_settings(GenerationOptions(), None))) == []


def test_a_variable_size_family_writes_the_local_distributors_files_through_ray(
    ray_address, gen_inputs, tiny_qwen2_5_vl, tiny_clap, tmp_path
):
    """Qwen2.5-VL (patch rows with ``image_grid_thw``, prompts whose image tokens depend on the frame) under Ray:
    its decode tasks prepare each frame's rows, the actors collate them, and the files equal the local run's."""
    import torch

    qwen = ModelOptions(captioner=str(tiny_qwen2_5_vl), scorer=str(tiny_clap), device="cpu", max_new_tokens=3)
    options = {**OPTIONS, "fps": 0.25, "limit": 3}  # 3 clips (16:9 and 4:3 frames), 2-3 frames each
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the Ray workers compute
    try:
        local = generate_triplets(
            gen_inputs["good_csv"], tmp_path / "local", models=qwen, num_workers=0, **options
        )
    finally:
        torch.set_num_threads(threads)
    ray_run = generate_triplets(
        gen_inputs["good_csv"], tmp_path / "ray", models=qwen, distributor="ray", **options
    )
    assert local.complete and ray_run.complete and ray_run.triplets == 3, ray_run.format()
    assert shard_files(tmp_path / "ray") == shard_files(tmp_path / "local")
    record = _manifest(tmp_path / "ray")["captioner"]
    assert record == _manifest(tmp_path / "local")["captioner"] and record["adapter"] == "qwen2.5-vl"
