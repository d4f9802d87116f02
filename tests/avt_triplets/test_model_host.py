"""Issue 22 §1: the model host is the one place models are loaded, probed, sized and fed, whatever places them.

A recording placement stands in for a distributor: the probes must run through it, one per role in role order,
and the caption batch size must pass through its agreement, so a new distributor only has to place work.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from avt_core.errors import RunAborted
from avt_triplets import model_host
from avt_triplets.model_host import DeferredHost, LabelsOnlyHost, LoadedHost, Replica, host_for
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.stages.worker import ChunkWorker, PackStep

REPO = Path(__file__).resolve().parents[2]


class RecordingPlacement:
    """This process as the place of every role, remembering what the host asked of it."""

    hosts_models_here, probes_in_replicas = True, False

    def __init__(self, agreed: Any = None):
        self.roles: list[str] = []
        self.agreed, self.offered = agreed, []

    def run_where(self, role, fn):
        self.roles.append(role)
        return fn(None)

    def agree(self, value):
        self.offered.append(value)
        return value if self.agreed is None else self.agreed


@pytest.fixture(scope="module")
def model_options(tiny_blip2, tiny_clap) -> ModelOptions:
    return ModelOptions(captioner=str(tiny_blip2), scorer=str(tiny_clap), device="cpu", max_new_tokens=4)


def test_a_deferred_host_probes_each_role_where_the_placement_says_and_matches_loaded_models(
    model_options, blip2_captioner, clap_scorer
):
    options = GenerationOptions(caption_batch_size="auto")
    placement = RecordingPlacement(agreed=5)
    deferred = DeferredHost(placement, model_options)
    loaded = LoadedHost(RecordingPlacement(), blip2_captioner, clap_scorer)

    records = deferred.records(options)
    # a role the options do not ask for (the audio captioner) is absent: not probed, no record
    assert (
        placement.roles
        == [role.name for role in model_host.roles_for(model_options)]
        == ["captioner", "scorer"]
    )
    assert "audio_captioner" in [role.name for role in model_host.ROLES] and set(records) == {
        "captioner",
        "scorer",
    }
    assert model_host._plain(records) == model_host._plain(loaded.records(options))
    deferred.check(options)  # the probes already checked the models: no second round
    assert placement.roles == ["captioner", "scorer"]
    # auto on a CPU is 32 (the captioner's probe said so); the placement's agreement has the last word
    assert deferred.caption_batch_size(options, None) == 5 and placement.offered == [32]
    settings = deferred.decode_settings(options)
    assert settings.prepare.image is not None and settings.prepare.audio is not None
    assert settings.scorer_sampling_rate == clap_scorer.sampling_rate == records["scorer"]["sampling_rate"]
    assert [replica.role for replica in deferred.replicas(options)] == ["captioner", "scorer"]
    worker = deferred.worker(GenerationOptions(caption_batch_size=4))  # in a worker process: loads them
    assert isinstance(worker, ChunkWorker) and worker.caption.batcher.batch_size == 4
    assert str(worker.caption.captioner.device) == "cpu"  # --device cpu, whatever this machine has


def test_an_audio_captioner_asked_for_is_one_more_role_probed_placed_and_run_before_the_scorer(
    model_options, tiny_qwen2_audio
):
    from avt_triplets.stages.audio_captions import AudioCaptionStep

    models = replace(model_options, audio_captioner=str(tiny_qwen2_audio), audio_caption_windows=2)
    options = GenerationOptions(caption_batch_size=4, audio_caption_batch_size=3, clip_seconds=1.0)
    placement = RecordingPlacement()
    deferred = DeferredHost(placement, models)
    records = deferred.records(options)
    assert placement.roles == ["captioner", "audio_captioner", "scorer"]
    assert (
        records["audio_captioner"]["windows"] == 2 and records["audio_captioner"]["adapter"] == "qwen2_audio"
    )
    assert [replica.role for replica in deferred.replicas(options)] == placement.roles
    step = Replica("audio_captioner", deferred.source, records["audio_captioner"]).start(options)
    assert isinstance(step, AudioCaptionStep) and step.batcher.batch_size == 3
    settings = deferred.decode_settings(
        options
    )  # its audio is prepared in the model process, not the decoders
    assert settings.prepare.image is not None and settings.prepare.audio is not None


def test_a_replica_refuses_a_model_other_than_the_recorded_one(model_options, blip2_captioner):
    options = GenerationOptions(caption_batch_size=4)
    record = model_host.role_named("captioner").record(blip2_captioner)
    source = model_host.ModelSource(options=model_options)
    step = Replica("captioner", source, record).start(options)  # loads on this process's device
    assert isinstance(step, model_host._CaptionChunk) and step.step.batcher.batch_size == 4
    other = {**record, "weights_digest": "sha256:" + "0" * 64}
    with pytest.raises(RunAborted, match="a captioner replica loaded .* but the run records"):
        Replica("captioner", source, other).start(options)


def test_a_failing_probe_stops_the_run_with_its_one_line(model_options, tmp_path):
    broken = ModelOptions(
        captioner=str(tmp_path / "no-such-model"), scorer=model_options.scorer, device="cpu"
    )
    host = DeferredHost(RecordingPlacement(), broken)
    with pytest.raises(RunAborted) as stopped:
        host.records(GenerationOptions())
    assert "no-such-model" in str(stopped.value) and "\n" not in str(stopped.value)


def test_the_host_of_a_run_follows_its_models_and_its_placement(model_options, blip2_captioner, clap_scorer):
    here, elsewhere = RecordingPlacement(), RecordingPlacement()
    elsewhere.hosts_models_here = False
    labels = host_for(here, model_options=ModelOptions(captioner="none"))
    assert isinstance(labels, LabelsOnlyHost) and not labels.captioned
    assert (
        isinstance(labels.worker(GenerationOptions()), PackStep)
        and labels.replicas(GenerationOptions()) == []
    )
    assert labels.records(GenerationOptions()) == {"captioner": None, "scorer": None}
    given = host_for(elsewhere, blip2_captioner, clap_scorer)
    assert isinstance(given, LoadedHost) and given.captioner is blip2_captioner
    assert isinstance(given.worker(GenerationOptions(caption_batch_size=4)), ChunkWorker)
    assert isinstance(host_for(elsewhere, model_options=model_options), DeferredHost)  # nothing loads here
    assert elsewhere.roles == []


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_switchboard_reaches_the_distributors():
    """Nothing that hosts or runs models imports a distributor (the device lives in devices.py): placement sits
    on top of hosting, never beneath it."""
    package = REPO / "avt_triplets"
    reaching = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "distributors" not in path.parts
        and any(name.startswith("avt_triplets.distributors") for name in _imports(path))
    )
    assert reaching == ["pipeline.py"]
