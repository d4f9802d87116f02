"""Issue 23 §3: the models are probed in the replicas that use them, not in probe tasks that load them again.

The replicas run in threads around one in-process :class:`ProbeBoard` (the ``ray`` distributor hosts the same
object in an actor); the driver's side is the real :class:`Settling` thread around the switchboard's real
``_settle``, so what is checked here is what a Ray run does between its actors and its driver.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

import pytest

from avt_core.errors import RunAborted
from avt_triplets import layout, manifest, model_host
from avt_triplets.distributors.ray_probing import Settling
from avt_triplets.model_host import DeferredHost, LoadedHost
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.pipeline import _settle
from avt_triplets.probe_board import ProbeBoard
from avt_triplets.run_plan import plan_run
from avt_triplets.stages.reader import pending_work
from avt_triplets.stages.writer import prepare_output


class NoProbeTasks:
    """A placement whose probe tasks must not run: the replicas probe."""

    hosts_models_here, probes_in_replicas, is_main = False, False, True

    def run_where(self, role, fn):
        raise AssertionError(f"a separate probe of the {role} ran")

    def agree(self, value):
        return value


@pytest.fixture(scope="module")
def model_options(tiny_blip2, tiny_clap) -> ModelOptions:
    return ModelOptions(captioner=str(tiny_blip2), scorer=str(tiny_clap), device="cpu", max_new_tokens=4)


def _run_replicas(host: DeferredHost, inputs, out, copies: int = 2):
    """``copies`` replicas of every role started side by side against one board, beside the driver's settling
    thread (the switchboard's ``_settle`` on a planned run); returns the board, the settling thread and each
    replica's step (or the :class:`RunAborted` it raised)."""
    options = GenerationOptions(caption_batch_size="auto", shard_size=3, progress=False)
    plan = plan_run(inputs, out, options, models=manifest.planned_models(host.source.options))
    prepare_output(plan.root, lambda index: True, True, False)
    plans = pending_work(plan.root, plan.shards, range(plan.num_shards), False)
    placement = NoProbeTasks()
    board = ProbeBoard([replica.role for replica in host.unprobed_replicas()])
    settling = Settling(
        board, partial(_settle, placement, host, plan, plans), lambda w: host.verdict(w.options)
    )

    def start(replica):
        try:
            return replica.start_probing(board, plan.options)
        except RunAborted as error:
            return error

    replicas = host.unprobed_replicas() * copies
    settling.start()
    with ThreadPoolExecutor(len(replicas)) as pool:
        started = list(pool.map(start, replicas))
    settling.join(timeout=120)
    return board, settling, started


def _given(host: DeferredHost, **models) -> DeferredHost:
    """``host`` whose replicas take these models as loaded (threads of one process must not load models side by
    side: transformers' loading context is per process; Ray's replicas are processes)."""
    host.source = replace(host.source, given=models)
    return host


@pytest.fixture
def probes(monkeypatch) -> list[str]:
    """The roles whose model was probed, one entry per probe."""
    seen: list[str] = []
    probe = model_host._load_and_probe

    def counted(role, *args):
        seen.append(role.name)
        return probe(role, *args)

    monkeypatch.setattr(model_host, "_load_and_probe", counted)
    return seen


def test_one_replica_per_role_probes_and_the_driver_settles_the_run_once(
    model_options, gen_inputs, blip2_captioner, clap_scorer, probes, tmp_path
):
    host = _given(DeferredHost(NoProbeTasks(), model_options), captioner=blip2_captioner, scorer=clap_scorer)
    accepted = []
    accept = host.accept
    host.accept = lambda probed: accepted.append(probed) or accept(probed)
    board, settling, started = _run_replicas(host, gen_inputs["good_csv"], tmp_path / "out")

    assert sorted(probes) == ["captioner", "scorer"]  # one probe per role, by the first of its two replicas
    assert len(accepted) == 1 and settling.error is None
    work = settling.settled()
    verdict = board.verdict()
    assert (
        work.options.caption_batch_size == verdict.options.caption_batch_size == 32
    )  # auto, probed on a CPU
    captioners = [step for step in started if isinstance(step, model_host._CaptionChunk)]
    assert len(captioners) == 2 and {step.step.batcher.batch_size for step in captioners} == {32}
    assert len(started) == 4 and not any(isinstance(step, Exception) for step in started)
    # the records a replica reported are those of the models loaded here, in the manifest the driver wrote
    loaded = LoadedHost(NoProbeTasks(), blip2_captioner, clap_scorer).records(work.options)
    written = json.loads((tmp_path / "out" / layout.MANIFEST_FILE).read_text())
    for name, record in loaded.items():
        assert model_host._plain(verdict.records[name]) == model_host._plain(record)
        assert written[name] == model_host._plain(record)
    assert written["caption_batch_size"] == 32
    prepare = verdict.settings.prepare  # the decode tasks' settings: the probed models' preprocessing
    assert prepare.image is not None and prepare.audio is not None
    assert verdict.settings.scorer_sampling_rate == clap_scorer.sampling_rate


def test_a_broken_model_stops_every_replica_with_its_one_line_before_anything_is_written(
    model_options, gen_inputs, clap_scorer, probes, tmp_path
):
    broken = ModelOptions(
        captioner=str(tmp_path / "no-such-model"), scorer=model_options.scorer, device="cpu"
    )
    host = _given(DeferredHost(NoProbeTasks(), broken), scorer=clap_scorer)
    out = tmp_path / "out"
    board, settling, started = _run_replicas(host, gen_inputs["good_csv"], out)

    assert isinstance(settling.error, RunAborted)
    line = str(settling.error)
    assert "no-such-model" in line and "\n" not in line
    with pytest.raises(RunAborted, match="no-such-model"):
        settling.settled()
    assert board.verdict().stopped == line
    assert all(isinstance(step, RunAborted) and str(step) == line for step in started)  # no replica went on
    assert not (out / layout.MANIFEST_FILE).exists()
    assert not [path for path in out.rglob("*") if path.is_file() and path.name != ".avt-lock"]
