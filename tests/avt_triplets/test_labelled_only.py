"""`avt generate --captioner none`: labelled clips stored without loading any model, in the same output layout,
with the same resume / fail-fast machinery and the same media as a captioned run; `avt filter` on such output."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from avt.cli import main as avt_main
from avt_triplets import layout
from avt_triplets.tiny.label_lists import AUDIOSET_CLASSES, VGGSOUND_CLASSES

LABELLED_COLUMNS = [
    "clip_id",
    "video_path",
    "start_s",
    "end_s",
    "original_start_s",
    "audio",
    "frames",
    "frame_times_s",
    "labels",
    "sample_key",
]


@pytest.fixture
def no_models(monkeypatch):
    """Any attempt to load or run a model fails the test."""
    from avt_triplets import captioners, models, preflight, scorers

    def refuse(*args, **kwargs):
        raise AssertionError("a --captioner none run must not load or run a model")

    for module, name in (
        (models, "load_models"),
        (captioners, "load_captioner"),
        (scorers, "load_scorer"),
        (preflight, "check_models"),
    ):
        monkeypatch.setattr(module, name, refuse)


def _rows(output):
    return pq.read_table(sorted((output / layout.DATA_DIR).glob("*.parquet"))).to_pylist()


def test_vggsound_split_is_stored_with_labels_and_no_caption_columns(
    tmp_path, label_lists, no_models, capsys
):
    out = tmp_path / "vggsound-test"
    argv = [
        "generate",
        str(label_lists["vggsound"]),
        "-o",
        str(out),
        "--captioner",
        "none",
        "--split",
        "test",
    ]
    assert avt_main([*argv, "--shard-size", "3", "--num-workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "rows          4  (labelled clips, no captions" in printed and "caption " not in printed

    names = pq.read_schema(out / "data" / "shard-00000.parquet").names
    assert names == LABELLED_COLUMNS  # caption columns are absent, not null
    rows = _rows(out)
    expected = {f"{c.ytid}_{c.start:06d}": VGGSOUND_CLASSES[c.klass] for c in label_lists["clips"]["test"]}
    assert {r["clip_id"]: r["labels"] for r in rows} == {k: [v] for k, v in expected.items()}
    assert all(len(r["frames"]) == 2 and r["frame_times_s"] == [0.0, 1.0] for r in rows)  # 2 s at 1 fps

    manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
    assert manifest["captioned"] is False and manifest["captioner"] is None and manifest["scorer"] is None
    assert manifest["input"]["split"] == "test" and manifest["input"]["clips"] == 4
    card = (out / layout.CARD_FILE).read_text()
    assert "`avt generate --captioner none`" in card and "4 of 4 rows have at least one label" in card
    assert "clap_score histogram" not in card and not (out / "clap_score_hist.png").exists()

    import datasets

    loaded = datasets.load_dataset(str(out), split="train")
    assert loaded.column_names == LABELLED_COLUMNS and len(loaded) == 4
    assert loaded.features["audio"].sampling_rate == 16_000

    # The same command resumes (nothing left to do); the identity check still works without models.
    assert avt_main([*argv, "--shard-size", "3", "--no-progress"]) == 0
    assert avt_main([*argv, "--shard-size", "2", "--no-progress"]) == 2
    assert "shard_size: 3 (existing) != 2 (now)" in capsys.readouterr().err


def test_labelled_rows_hold_the_media_and_failures_of_a_captioned_run(
    tmp_path, gen_inputs, reference_run, no_models
):
    """Same clips, windows, audio bytes, JPEG frames, labels and failure reasons as the captioned reference run."""
    from avt_triplets.options import ModelOptions
    from avt_triplets.pipeline import generate_triplets

    out = tmp_path / "labelled"
    summary = generate_triplets(
        gen_inputs["csv"],
        out,
        models=ModelOptions(captioner="none"),
        shard_size=3,
        num_workers=2,
        progress=False,
    )
    assert summary.complete and not summary.captioned
    reference = {r["clip_id"]: r for r in _rows(reference_run)}
    labelled = {r["clip_id"]: r for r in _rows(out)}
    assert labelled.keys() == reference.keys()
    for clip_id, row in labelled.items():
        assert row == {k: reference[clip_id][k] for k in LABELLED_COLUMNS}, clip_id

    def failures(root):
        return sorted(
            (f["clip_id"], f["reason"]) for f in pq.read_table(root / layout.FAILURES_DIR).to_pylist()
        )

    assert failures(out) == failures(reference_run) and len(failures(out)) == 7


def test_captioned_and_labelled_runs_never_share_an_output(
    tmp_path, gen_inputs, reference_run, no_models, capsys
):
    argv = ["generate", str(gen_inputs["csv"]), "--shard-size", "3", "--no-progress"]
    assert avt_main([*argv, "-o", str(reference_run), "--captioner", "none"]) == 2
    error = capsys.readouterr().err
    assert (
        "this output holds captioned triplets" in error
        and "captioned: True (existing) != False (now)" in error
    )

    from avt_triplets.manifest import check_manifest, manifest_differences

    labelled = tmp_path / "labelled"
    assert avt_main([*argv, "-o", str(labelled), "--captioner", "none", "--limit", "3"]) == 0
    recorded = json.loads((labelled / layout.MANIFEST_FILE).read_text())
    captioned_now = {**recorded, "captioned": True}
    with pytest.raises(Exception, match="was made with --captioner none"):
        check_manifest(labelled, captioned_now)
    # A manifest written before the key existed is a captioned run's.
    older = {k: v for k, v in recorded.items() if k != "captioned"}
    assert manifest_differences(older, recorded, ["captioned"]) == [
        "captioned: True (existing) != False (now)"
    ]
    assert manifest_differences(older, captioned_now, ["captioned"]) == []


def test_model_options_with_captioner_none_and_bad_splits_stop_before_any_work(
    tmp_path, label_lists, no_models, capsys
):
    out = tmp_path / "out"
    base = ["generate", str(label_lists["vggsound"]), "-o", str(out), "--captioner", "none"]
    assert (
        avt_main([*base, "--split", "train", "--scorer", "laion/clap-htsat-unfused", "--dtype", "bfloat16"])
        == 2
    )
    assert "--dtype, --scorer would have no effect" in capsys.readouterr().err
    assert avt_main(base) == 2
    assert "splits test (4 rows), train (8 rows): pass --split NAME" in capsys.readouterr().err
    assert avt_main([*base, "--split", "validation"]) == 2
    assert "--split validation: no row" in capsys.readouterr().err
    eval_list = ["generate", str(label_lists["eval"]), "-o", str(out), "--captioner", "none"]
    assert avt_main([*eval_list, "--split", "test"]) == 2
    assert "AudioSet's split is the file" in capsys.readouterr().err
    assert not out.exists()  # nothing was written


def test_audioset_eval_segments_store_display_names_and_filter_makes_random_k_only(
    tmp_path, label_lists, no_models, capsys
):
    out = tmp_path / "audioset-eval"
    argv = ["generate", str(label_lists["eval"]), "-o", str(out), "--captioner", "none", "--no-progress"]
    assert avt_main([*argv, "--label-csv", str(label_lists["class_labels"])]) == 0
    names = dict(AUDIOSET_CLASSES)
    listed = {}  # what the list says, read here independently: "YTID, start, end, \"mid,mid\""
    for line in label_lists["eval"].read_text().splitlines()[3:]:
        ytid, start, _end, mids = (cell.strip() for cell in line.split(", ", 3))
        listed[f"{ytid}_{int(float(start)):06d}"] = [names[m] for m in mids.strip('"').split(",")]
    rows = {r["clip_id"]: r["labels"] for r in _rows(out)}
    assert rows == listed and any(len(labels) > 1 for labels in rows.values())
    assert any("," in label for labels in rows.values() for label in labels)  # "Male speech, man speaking"
    capsys.readouterr()

    assert avt_main(["filter", str(out), "--top", "50"]) == 2
    assert "top50 ranks clips by clap_score, and these rows have none" in capsys.readouterr().err
    assert avt_main(["filter", str(out), "--random", "50"]) == 0
    subsets = json.loads((out / layout.SUBSETS_FILE).read_text())
    assert list(subsets["subsets"]) == ["random50"] and subsets["subsets"]["random50"]["size"] == 2

    import datasets

    half = datasets.load_dataset(str(out), "random50", split="train")
    assert len(half) == 2 and set(half["clip_id"]) <= set(rows)
