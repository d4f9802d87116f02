"""Issue 21 §1: on the ``ray`` distributor every model role the run asks for is its own actor pool with its own GPU
share (``--audio-captioner-gpus``), counted in the placement check made before any model loads; a role the run
does not ask for has no pool (no Ray needed: the plan is pure arithmetic over the cluster's nodes)."""

from __future__ import annotations

import pytest

from avt_core.errors import UsageError
from avt_triplets.distributors.ray_resources import Node, check_placeable, describe_requests, plan_resources
from avt_triplets.model_host import CORE_ROLES, role_named, roles_for
from avt_triplets.options import GenerationOptions, ModelOptions

AUDIO = {"audio_captioner": role_named("audio_captioner").pool}


def test_the_audio_captioner_is_one_more_pool_with_its_own_gpu_share():
    nodes = [Node(cpus=16, gpus=2)]
    plan = plan_resources(GenerationOptions(distributor="ray", audio_captioner_gpus=0.25), nodes, AUDIO)
    pool = plan.pool("audio_captioner")
    assert (pool.gpus, pool.cpus, pool.min_size, pool.max_size) == (0.25, 1.0, 1, 8)
    assert "1 audio captioner actor (0.25 GPU + 1 CPU)" in describe_requests(plan, captioned=True)
    default = plan_resources(GenerationOptions(distributor="ray"), nodes, AUDIO).pool("audio_captioner")
    assert (default.gpus, default.max_size) == (0.5, 4)  # unset: half a GPU on a cluster with GPUs
    cpu_only = plan_resources(GenerationOptions(distributor="ray"), [Node(cpus=4, gpus=0)], AUDIO)
    assert (cpu_only.pool("audio_captioner").gpus, cpu_only.pool("audio_captioner").cpus) == (0, 0.5)
    # a two-CPU machine still holds one actor of each of the three roles beside a decode task
    small = [Node(cpus=2, gpus=0)]
    check_placeable(
        plan_resources(GenerationOptions(distributor="ray"), small, AUDIO), small, True, "this machine"
    )
    without = plan_resources(GenerationOptions(distributor="ray"), nodes)
    assert "audio captioner" not in describe_requests(without, captioned=True)
    with pytest.raises(KeyError):
        without.pool("audio_captioner")


def test_a_share_the_cluster_cannot_hold_beside_the_others_is_refused_naming_the_option():
    options = GenerationOptions(
        distributor="ray", captioner_gpus=0.75, scorer_gpus=0.25, audio_captioner_gpus=0.5
    )
    plan = plan_resources(options, [Node(cpus=8, gpus=1)], AUDIO)
    with pytest.raises(UsageError, match="0.5 GPU.*--audio-captioner-gpus"):
        check_placeable(plan, [Node(cpus=8, gpus=1)], True, "this machine")
    with pytest.raises(UsageError, match="--audio-captioner-gpus only apply to --distributor ray"):
        GenerationOptions(audio_captioner_gpus=0.5)


def test_the_roles_of_a_run_are_the_ones_its_options_ask_for():
    plain = ModelOptions(captioner="c", scorer="s")
    assert tuple(role.name for role in roles_for(plain)) == CORE_ROLES
    audio = ModelOptions(captioner="c", scorer="s", audio_captioner="a")
    assert [role.name for role in roles_for(audio)] == ["captioner", "audio_captioner", "scorer"]
    with pytest.raises(UsageError, match="--captioner none loads no model, so --audio-captioner"):
        ModelOptions(captioner="none", audio_captioner="a")


def test_the_caption_kind_roles_run_in_order_each_with_its_own_pool():
    merged = ModelOptions(
        captioner="c", scorer="s", visual_scorer="v", audio_captioner="a", av_caption_from="llm:m"
    )
    names = [role.name for role in roles_for(merged)]
    assert names == [
        "captioner",
        "visual_scorer",
        "audio_captioner",
        "scorer",
        "caption_merger",
    ]  # merger after
    omni = ModelOptions(captioner="c", scorer="s", av_captioner="o", av_captions=3)
    assert [role.name for role in roles_for(omni)] == ["captioner", "av_captioner", "scorer"]
    extra = {name: role_named(name).pool for name in ("visual_scorer", "av_captioner", "caption_merger")}
    options = GenerationOptions(distributor="ray", av_captioner_gpus=1.0)
    plan = plan_resources(options, [Node(cpus=16, gpus=2)], extra)
    shares = {name: plan.pool(name).gpus for name in extra}
    assert shares == {"visual_scorer": 0.25, "av_captioner": 1.0, "caption_merger": 0.25}
    assert "1 av captioner actor (1 GPU + 1 CPU)" in describe_requests(plan, captioned=True)
    with pytest.raises(UsageError, match="Lower --captioner-gpus / --scorer-gpus / --visual-scorer-gpus / "
                                         "--av-captioner-gpus / --caption-merger-gpus \\(0"):  # fmt: skip
        check_placeable(
            plan_resources(options, [Node(cpus=16, gpus=1)], extra), [Node(cpus=16, gpus=1)], True, "x"
        )
