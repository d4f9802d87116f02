"""The captioner contract and its family adapters (issue 20 §1): one table picks the adapter by ``model_type``,
an unknown family gets the generic one and the log says so and which path its frames take; the vision dtype is
found where each family keeps its tower; variable-size inputs keep their metadata through the decode workers'
shared memory and the batch backoff, and fall back to the model process when collating them would not equal the
processor's own batch; the manifest record carries every identity field."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from avt_triplets import captioner_adapters
from avt_triplets.batching import BackoffBatcher
from avt_triplets.captioner_adapters import ADAPTERS, GENERIC, adapter_for
from avt_triplets.captioner_contract import CaptionerIdentity
from avt_triplets.captioners import TransformersCaptioner, load_captioner, plan_inputs
from avt_triplets.decoding import DecodedItem, DecodeJob, _from_shared, _to_shared
from avt_triplets.image_batches import CollatedBatch, collate_rows
from avt_triplets.manifest import captioner_record, manifest_differences
from avt_triplets.model_inputs import AudioInputs, ModelInputs, frame_inputs


@pytest.fixture(scope="module")
def qwen(tiny_qwen2_5_vl):
    return load_captioner(tiny_qwen2_5_vl, device="cpu", max_new_tokens=4)


def _clip(width: int, count: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(width)
    return [rng.integers(0, 256, (224, width, 3), dtype=np.uint8) for _ in range(count)]


def test_every_family_is_found_by_its_model_type_and_others_get_the_generic_adapter():
    assert adapter_for("qwen2_5_vl").name == "qwen2.5-vl" and adapter_for("idefics3").name == "idefics3"
    assert adapter_for("blip-2").name == "blip-2" and adapter_for("llava").name == "llava"
    assert adapter_for("some_new_vlm") is GENERIC and adapter_for(None) is GENERIC
    assert all(model_type in adapter.model_types for model_type, adapter in ADAPTERS.items())


def test_the_vision_dtype_is_read_from_the_family_s_tower(tiny_qwen2_5_vl):
    """Qwen's tower is ``visual``: no parameter is named ``vision``, so the generic rule finds no tower there; the
    family's adapter reads the tower's dtype (part of the resume identity) and casts pixels to it."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2_5_vl, dtype=torch.float32)
    assert not any("vision" in name for name, _ in model.named_parameters())
    model.model.visual.to(torch.bfloat16)
    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    captioner = TransformersCaptioner(model, processor, name="q", revision=None, prompt=None)
    assert captioner.dtype == "bfloat16" and captioner.input_dtype == torch.bfloat16
    assert model.model.language_model.embed_tokens.weight.dtype == torch.float32
    assert captioner.identity().adapter == "qwen2.5-vl"


def test_an_unknown_family_runs_with_the_generic_adapter_and_the_log_says_which_path(
    tiny_llava, monkeypatch, caplog
):
    monkeypatch.delitem(captioner_adapters.ADAPTERS, "llava")
    with caplog.at_level(logging.INFO, logger="avt_triplets.captioners"):
        captioner = load_captioner(tiny_llava, device="cpu", max_new_tokens=4)
    assert captioner.identity().adapter == "generic"
    assert "no adapter is registered for model_type 'llava': the generic adapter is used" in caplog.text
    assert "adapter generic: frames preprocessed in the decode workers (fixed inputs)" in caplog.text


def test_inputs_that_would_not_collate_as_the_processor_batches_them_stay_in_the_model_process(
    qwen, monkeypatch
):
    def right_padded(rows, pad_id, pin=False):  # not what the processor does (it pads on the left)
        width = max(row["input_ids"].shape[-1] for row in rows)
        rows = [
            {**row, "input_ids": np.pad(row["input_ids"], [(0, 0), (0, width - row["input_ids"].shape[-1])])}
            for row in rows
        ]
        return collate_rows(rows, pad_id, pin)

    plan = plan_inputs(
        qwen.processor, qwen.adapter.render_prompt(qwen.processor, qwen.prompt, True), qwen.adapter
    )
    assert (plan.layout, plan.where) == ("variable", "decode workers")
    monkeypatch.setattr("avt_triplets.captioners.collate_rows", right_padded)
    plan = plan_inputs(
        qwen.processor, qwen.adapter.render_prompt(qwen.processor, qwen.prompt, True), qwen.adapter
    )
    assert (plan.layout, plan.where, plan.preprocess) == ("raw", "model process", None)
    assert "collated differ from the processor's batch" in plan.reason


def test_variable_inputs_cross_the_decode_workers_shared_memory_with_their_metadata(qwen):
    frames = frame_inputs(_clip(398), qwen.image_preprocessor())
    assert frames.preprocessed and set(frames.extra) >= {"image_grid_thw", "input_ids", "attention_mask"}
    item = DecodedItem(DecodeJob(0, 0, None), 0.0, inputs=ModelInputs(frames, AudioInputs(None, True)))
    expected = {key: value.copy() for key, value in {"pixel_values": frames.unique, **frames.extra}.items()}
    shared = _to_shared(item)
    assert isinstance(
        shared.inputs.frames.unique, torch.Tensor
    )  # the large pixel rows travel as shared memory
    back = _from_shared(shared).inputs.frames
    got = {"pixel_values": back.unique, **back.extra}
    assert set(got) == set(expected) and all(np.array_equal(got[k], expected[k]) for k in expected)


def test_a_collated_batch_halves_into_collated_halves_with_the_same_captions(qwen):
    """Out of memory on a batch of two clips' frames (different patch counts): each half is that row's own
    batch, and the captions equal those of the whole batch on a larger device."""
    rows = [frame_inputs(_clip(width, 1), qwen.image_preprocessor()).row(0) for width in (398, 224)]
    batch = qwen.stack(rows, pin=False)
    assert isinstance(batch, CollatedBatch) and batch.tensors["image_grid_thw"].shape == (2, 3)
    whole = qwen.caption_pixels(batch)
    seen: list[int] = []

    def one_at_a_time(piece):
        seen.append(len(piece))
        if len(piece) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        assert torch.equal(piece.tensors["pixel_values"], collate_rows(piece.rows, 0)["pixel_values"])
        return qwen.caption_pixels(piece)

    assert BackoffBatcher(one_at_a_time, 2, "captioner")(batch) == whole
    assert seen == [2, 1, 1]


def test_the_manifest_records_every_identity_field(qwen):
    record = captioner_record(qwen)
    assert set(record) == {
        "name", "revision", "weights_digest", "dtype", "prompt", "max_new_tokens", "generation", "image_size",
        "adapter", "caption_unit", "clip_prompts",
    }  # fmt: skip
    assert record["generation"] == {"do_sample": False, "num_beams": 1} and record["adapter"] == "qwen2.5-vl"
    assert (record["caption_unit"], record["clip_prompts"]) == ("frame", [])  # the default --caption-unit
    assert record["image_size"] == 224  # the default --caption-image-size
    with pytest.raises(ValueError, match="lacks identity field\\(s\\) generation, adapter"):
        CaptionerIdentity.require_fields(
            {k: v for k, v in record.items() if k not in ("generation", "adapter")}
        )


def test_an_output_started_before_generation_settings_were_recorded_resumes():
    """Older manifests were always greedy: the missing record is implied, and another setting still differs."""
    old = {
        "captioned": True,
        "captioner": {"name": "m", "dtype": "float32"},
    }  # neither generation nor image_size
    now = {
        "captioned": True,
        "captioner": {"name": "m", "dtype": "float32", "generation": {"do_sample": False, "num_beams": 1}},
    }
    now["captioner"]["image_size"] = 224  # frames were 224 px before --caption-image-size
    keys = ("captioner.name", "captioner.dtype", "captioner.generation", "captioner.image_size")
    assert manifest_differences(old, now, keys) == []
    sampled = {**now, "captioner": {**now["captioner"], "generation": {"do_sample": True, "num_beams": 1}}}
    assert manifest_differences(old, sampled, keys) == [
        "captioner.generation: {'do_sample': False, 'num_beams': 1} (existing) != {'do_sample': True, 'num_beams': 1} (now)"
    ]
    larger = {**now, "captioner": {**now["captioner"], "image_size": 384}}
    assert manifest_differences(old, larger, keys) == ["captioner.image_size: 224 (existing) != 384 (now)"]
    labels_only = {"captioned": False, "captioner": None}
    assert manifest_differences(labels_only, labels_only, keys) == []


def test_an_output_started_before_caption_units_resumes_as_frame_captions_only():
    """Manifests older than --caption-unit hold frame captions: a frame run resumes them, a clip run is refused."""
    keys = ("captioner.caption_unit", "captioner.clip_prompts")
    old = {"captioned": True, "captioner": {"name": "m"}}
    frame = {"captioned": True, "captioner": {"name": "m", "caption_unit": "frame", "clip_prompts": []}}
    assert manifest_differences(old, frame, keys) == []
    clip = {
        "captioned": True,
        "captioner": {"name": "m", "caption_unit": "clip", "clip_prompts": ["Describe."]},
    }
    assert manifest_differences(old, clip, keys) == [
        "captioner.caption_unit: 'frame' (existing) != 'clip' (now)",
        "captioner.clip_prompts: [] (existing) != ['Describe.'] (now)",
    ]


def test_a_caption_image_size_that_cannot_work_is_refused_before_models_load(tmp_path, capsys):
    from avt import cli

    argv = ["generate", str(tmp_path), "-o", str(tmp_path / "out"), "--caption-image-size"]
    for bad, says in (("0", "--caption-image-size must be a positive number of pixels or 'native', got 0"),
                      ("large", "expected a number of pixels or 'native', got 'large'")):  # fmt: skip
        try:
            code = cli.main([*argv, bad])
        except SystemExit as exit_:  # argparse's own option errors exit from inside the parser
            code = exit_.code
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
