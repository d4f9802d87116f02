"""The list files users really have, written byte for byte as they are in the wild (not by our writer): AudioSet's
segment CSVs as Google ships them and their cleaned copies, VGGSound's ``vggsound.csv`` and the widely copied
``ytid_start.mp4,label`` split files, class lists without their header, a UTF-8 BOM and CRLF line endings, and
lists a spreadsheet mangled."""

from __future__ import annotations

import pytest

from avt_core.errors import UsageError
from avt_triplets import layout
from avt_triplets.inputs import InputListError, load_inputs, read_clip_list, split_counts
from avt_triplets.labels import read_class_table

BOM = "\ufeff"

# The first lines of eval_segments.csv as downloaded (a space after each comma, ids quoted together), with a
# fractional start as in unbalanced_train_segments.csv.
AUDIOSET_EVAL = (
    "# Segments csv created Sun Mar  5 10:54:25 2017\n"
    "# num_ytids=20371, num_segs=20371, num_unique_labels=527, num_positive_labels=51804\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk"\n'
    '--BfvyPmVMo, 20.000, 30.000, "/m/03l9g"\n'
    '-0RWZT-miFs, 12.345, 22.345, "/m/09x0r,/m/05zppz"\n'
)
# vggsound.csv: no header, labels with commas quoted, the others not.
VGGSOUND = (
    "---g-f_I2yQ,1,people marching,test\n"
    '--0PQM4-hqg,30,"waterfall burbling",train\n'
    '-0jeONf82dE,21,"heart sounds, heartbeat",train\n'
)
# The split files copied from repository to repository: file name of the trimmed clip, label; no header.
SPLIT_FILE = "-0jeONf82dE_000021.mp4,playing hammond organ\n--0PQM4-hqg_000030.mp4,waterfall burbling\n"


def _write(path, text: str, bom: bool = False, crlf: bool = False):
    text = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return path


@pytest.mark.parametrize("bom, crlf", [(False, False), (True, True), (True, False)])
def test_audioset_segments_as_shipped_with_fractional_starts_bom_and_crlf(tmp_path, bom, crlf):
    listing = _write(tmp_path / "eval_segments.csv", AUDIOSET_EVAL, bom, crlf)
    clips = read_clip_list(listing)
    assert [c.clip_id for c in clips] == ["--4gqARaEJE_000000", "--BfvyPmVMo_000020", "-0RWZT-miFs_12.345"]
    assert clips[0].labels == ("/m/068hy", "/m/07q6cd_", "/m/0bt9lr", "/m/0jbk")
    assert clips[2].labels == ("/m/09x0r", "/m/05zppz")
    assert clips[1].video_path == "--BfvyPmVMo_000020.mp4"
    assert clips[2].original_start_s == pytest.approx(12.345) and clips[2].start_s == 0.0  # trimmed download


def test_the_cleaned_audioset_header_reads_the_same(tmp_path):
    cleaned = "YTID,start_seconds,end_seconds,positive_labels\n" + "\n".join(
        line.replace(", ", ",") for line in AUDIOSET_EVAL.splitlines()[3:]
    )
    listing = _write(tmp_path / "balanced_train_segments.csv", cleaned, bom=True, crlf=True)
    shipped = read_clip_list(_write(tmp_path / "eval_segments.csv", AUDIOSET_EVAL))
    assert read_clip_list(listing) == shipped


def test_vggsound_csv_with_bom_and_crlf_keeps_clean_ids(tmp_path):
    listing = _write(tmp_path / "vggsound.csv", VGGSOUND, bom=True, crlf=True)
    train = read_clip_list(listing, split="train")
    assert [(c.clip_id, c.labels) for c in train] == [
        ("--0PQM4-hqg_000030", ("waterfall burbling",)),
        ("-0jeONf82dE_000021", ("heart sounds, heartbeat",)),
    ]
    test = read_clip_list(listing, split="test")
    assert [c.clip_id for c in test] == ["---g-f_I2yQ_000001"]  # the BOM is not part of the first id
    assert split_counts(listing) == {"train": 2, "test": 1}


def test_the_split_file_ytid_start_mp4_label_is_a_list_of_trimmed_clips(tmp_path):
    listing = _write(tmp_path / "test.csv", SPLIT_FILE, bom=True, crlf=True)
    clips = load_inputs(listing).clips
    assert [(c.clip_id, c.video_path, c.start_s, c.labels) for c in clips] == [
        ("-0jeONf82dE_000021", "-0jeONf82dE_000021.mp4", 0.0, ("playing hammond organ",)),
        ("--0PQM4-hqg_000030", "--0PQM4-hqg_000030.mp4", 0.0, ("waterfall burbling",)),
    ]
    assert [c.original_start_s for c in clips] == [21.0, 30.0]


def test_a_class_list_without_its_header_and_with_a_bom_is_recognised(tmp_path):
    headerless = _write(
        tmp_path / "class_labels_indices.csv",
        '0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n',
        bom=True,
        crlf=True,
    )
    table = read_class_table(headerless)
    assert table.names == ("Speech", "Male speech, man speaking") and table.mids == ("/m/09x0r", "/m/05zppz")
    with_header = _write(
        tmp_path / "with_header.csv", 'index,mid,display_name\n0,/m/09x0r,"Speech"\n', bom=True
    )
    assert read_class_table(with_header).names == ("Speech",)
    (tmp_path / "names.csv").write_text("Speech\nMusic\n")
    with pytest.raises(UsageError, match=r"^--label-csv \S+names.csv: needs the columns index"):
        read_class_table(tmp_path / "names.csv")


@pytest.mark.parametrize(
    "text, line",
    [
        (
            "---g-f_I2yQ,1,people marching,test\n#NAME?,30,dog barking,train\n--0PQM4-hqg,30,dog barking,train\n",
            2,
        ),
        ("#NAME?,1,people marching,test\n--0PQM4-hqg,30,dog barking,train\n", 1),
        ("---g-f_I2yQ,1,people marching,test,,,,\n--0PQM4-hqg,30,dog barking,train,,,,\n", 1),
        (AUDIOSET_EVAL + '#NAME?, 30.000, 40.000, "/m/09x0r"\n', 7),
    ],
)
def test_a_list_a_spreadsheet_mangled_is_refused_naming_its_first_bad_line(tmp_path, text, line):
    listing = _write(tmp_path / "vggsound.csv", text)
    with pytest.raises(InputListError) as caught:
        load_inputs(listing, split="all")
    message = str(caught.value)
    assert message.startswith(f"{listing}:{line}: ") and "\n" not in message
    assert "spreadsheet" in message and len(message) < 400


def test_a_headerless_list_of_another_shape_is_one_line_naming_the_layouts(tmp_path):
    listing = _write(tmp_path / "clips.csv", "a.mp4;dog\nb.mp4;cat\n")
    with pytest.raises(
        InputListError, match=r"clips.csv:1: no header line, .*VGGSound's ytid,start,label,split"
    ):
        load_inputs(listing)


@pytest.mark.parametrize(
    "template, names",
    [
        ("{ytid}_{start}_{end}.mp4", ["--BfvyPmVMo_20_30.mp4", "-0RWZT-miFs_12_22.mp4"]),
        ("{ytid}_{start_ms}_{end_ms}.mp4", ["--BfvyPmVMo_20000_30000.mp4", "-0RWZT-miFs_12345_22345.mp4"]),
        ("Y{ytid}.mp4", ["Y--BfvyPmVMo.mp4", "Y-0RWZT-miFs.mp4"]),
        (
            "{label}/{ytid}_{start:06d}_{end_s:.1f}.mp4",
            ["_m_03l9g/--BfvyPmVMo_000020_30.0.mp4", "_m_09x0r/-0RWZT-miFs_000012_22.3.mp4"],
        ),
    ],
)
def test_path_templates_name_the_files_as_the_downloaders_do(tmp_path, template, names):
    listing = _write(tmp_path / "eval_segments.csv", AUDIOSET_EVAL)
    clips = read_clip_list(listing, path_template=template)[1:]
    assert [c.video_path for c in clips] == names
    assert clips[0].source == str(tmp_path / names[0])
    assert [c.clip_id for c in clips] == [
        "--BfvyPmVMo_000020",
        "-0RWZT-miFs_12.345",
    ]  # ids do not follow names


def test_split_and_label_folders_of_vggsound_downloads(tmp_path):
    listing = _write(tmp_path / "vggsound.csv", VGGSOUND)
    clips = read_clip_list(listing, split="all", path_template="{split}/{label}/{ytid}_{start:06d}.mp4")
    assert [c.video_path for c in clips] == [
        "test/people marching/---g-f_I2yQ_000001.mp4",
        "train/waterfall burbling/--0PQM4-hqg_000030.mp4",
        "train/heart sounds, heartbeat/-0jeONf82dE_000021.mp4",
    ]
    # VGGSound has no end column: {end} is start + the clip length
    ends = read_clip_list(listing, split="all", path_template="{ytid}_{end}.mp4", clip_seconds=5.0)
    assert ends[1].video_path == "--0PQM4-hqg_35.mp4"


@pytest.mark.parametrize(
    "template, message",
    [
        ("{ytid}_{stop}.mp4", r"unknown field \{stop\}; known fields: \{ytid\}, \{start\}, .*\{split\}$"),
        ("{ytid}_{start:06s}.mp4", r"Unknown format code 's'.*; known fields: \{ytid\}"),
        ("{ytid}_{}.mp4", r"unknown field \{\}"),
    ],
)
def test_a_bad_path_template_is_one_line_naming_the_known_fields(tmp_path, template, message):
    listing = _write(tmp_path / "vggsound.csv", VGGSOUND)
    with pytest.raises(UsageError, match=message) as caught:
        load_inputs(listing, split="all", path_template=template)
    assert "\n" not in str(caught.value)
    segments = _write(tmp_path / "eval_segments.csv", AUDIOSET_EVAL)
    with pytest.raises(UsageError, match=r"uses \{split\}, but .*eval_segments.csv has no split column"):
        load_inputs(segments, path_template="{split}/{ytid}.mp4")


def test_whole_video_column_says_what_a_video_path_row_start_means(tmp_path):
    listing = _write(
        tmp_path / "clips.csv",
        "video_path,start_s,labels,whole_video\n"
        "full/abc.mp4,30,dog,true\n"
        "trimmed/abc_000030.mp4,30,dog,false\n"
        "plain/abc.mp4,12.5,dog,\n",
    )
    clips = read_clip_list(listing)
    assert [(c.video_path, c.start_s, c.original_start_s) for c in clips] == [
        ("full/abc.mp4", 30.0, 30.0),  # the whole video: cut at its start
        ("trimmed/abc_000030.mp4", 0.0, 30.0),  # already the window: decoded from 0, the start is kept
        ("plain/abc.mp4", 12.5, 12.5),  # no say: a video_path row's start is a time inside its file
    ]
    _write(tmp_path / "bad.csv", "video_path,start_s,whole_video\na.mp4,3,maybe\n")
    with pytest.raises(InputListError, match=r"bad.csv:2: whole_video 'maybe' is not true or false"):
        read_clip_list(tmp_path / "bad.csv")
    vggsound = _write(tmp_path / "vggsound.csv", VGGSOUND)
    untrimmed = read_clip_list(vggsound, split="train", trimmed=False)
    assert [(c.start_s, c.original_start_s) for c in untrimmed] == [(30.0, 30.0), (21.0, 21.0)]


def test_an_output_keeps_the_youtube_start_next_to_the_start_in_the_file(tmp_path, label_lists):
    import pyarrow.parquet as pq

    from avt.cli import main as avt_main

    out = tmp_path / "out"
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
    assert avt_main([*argv, "--num-workers", "0", "--no-progress"]) == 0
    rows = pq.read_table(out / "data" / "shard-00000.parquet").to_pylist()
    starts = {f"{c.ytid}_{c.start:06d}": c.start for c in label_lists["clips"]["test"]}
    assert {r["clip_id"]: (r["start_s"], r["original_start_s"]) for r in rows} == {
        clip_id: (0.0, float(start)) for clip_id, start in starts.items()
    }


def test_an_output_started_before_original_start_s_keeps_its_columns_on_resume(tmp_path):
    from avt_triplets import layout, shards
    from avt_triplets.stages.worker import row_features

    (tmp_path / layout.MANIFEST_FILE).write_text(
        '{"format": "avt-triplets/1", "fps": 1.0}'
    )  # an older manifest
    assert shards.recorded_row_layout(tmp_path) == 1
    assert "original_start_s" not in row_features(False, shards.recorded_row_layout(tmp_path))
    assert "original_start_s" in row_features(False, shards.recorded_row_layout(tmp_path / "new"))


def test_an_output_started_before_the_visual_caption_columns_keeps_its_columns_on_resume(tmp_path):
    """Row layout 3 adds the visual-caption columns to captioned rows; a layout-2 output resumed writes none, so
    its shards keep one schema (the writer's rows carry them; the layout's features drop them when encoding)."""
    from avt_triplets import schema, shards
    from avt_triplets.stages.worker import row_features

    (tmp_path / layout.MANIFEST_FILE).write_text('{"format": "avt-triplets/1", "row_layout": 2}')
    old = row_features(True, shards.recorded_row_layout(tmp_path))
    new = row_features(True, shards.recorded_row_layout(tmp_path / "new"))
    assert not set(schema.VISUAL_CAPTION_COLUMNS) & set(old) and "original_start_s" in old
    assert list(new)[list(new).index("text_embedding") + 1 :][:3] == list(schema.VISUAL_CAPTION_COLUMNS)
    assert not set(schema.MODALITY_CAPTION_COLUMNS) & set(row_features(False))  # --captioner none: no caption
    row = {"visual_caption": "a dog", "clip_id": "a"}
    assert (
        "visual_caption" not in old.encode_example(row)
        and new.encode_example(row)["visual_caption"] == "a dog"
    )


@pytest.mark.parametrize(
    "header, rows",
    [
        ("video_path,start_s,labels", ["a/b.mp4,0,dog", "a/b.mp4,12.5,dog;cat", "c.mkv,,", "d/.e.mp4,1,x"]),
        ("video_path,labels", ["sub/x.mp4,a", "./y.mp4,b", "z.tar.mp4,c", "w/v,d"]),
        ("ytid,start,end,positive_labels", ["--4gqARaEJE,0.000,10.000,/m/068hy", "-0RWZT-miFs,12.345,,"]),
        ("ytid,start,label,split", ["---g-f_I2yQ,1,people marching,test", "abcdefghijk,30,a;b,train"]),
    ],
)
def test_the_quick_path_of_common_rows_gives_what_the_general_one_does(tmp_path, header, rows):
    plain = _write(tmp_path / "plain.csv", "\n".join([header, *rows]) + "\n")
    # an empty whole_video column changes no row, but sends every row through the general path
    general = _write(
        tmp_path / "general.csv", "\n".join([header + ",whole_video", *(r + "," for r in rows)]) + "\n"
    )
    for template in ("{ytid}_{start:06d}.mp4", "{split}/{ytid}_{start_ms}.mp4"):
        if "{split}" in template and "split" not in header:
            continue
        options = {"split": "all", "path_template": template}
        assert read_clip_list(plain, **options) == read_clip_list(general, **options)
