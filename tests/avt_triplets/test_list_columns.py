"""Lists read a column at a time (pyarrow's CSV reader, whole-column clip making) give what the row reader gives,
for the real layouts as users have them, and hand every file they would read differently to the row reader."""

from __future__ import annotations

import csv
import gc
import io
import random

import pytest

from avt_triplets import inputs
from avt_triplets.inputs import InputListError, load_inputs, read_clip_list
from avt_triplets.list_columns import parse_columns

BOM = "\ufeff"
AUDIOSET_SHIPPED = (
    "# Segments csv created Sun Mar  5 10:54:25 2017\n"
    "# num_ytids=20371, num_segs=20371, num_unique_labels=527, num_positive_labels=51804\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk"\n'
    '--BfvyPmVMo, 20.000, 30.000, "/m/03l9g"\n'
    '-0RWZT-miFs, 12.345, 22.345, "/m/09x0r,/m/05zppz"\n'
)
VGGSOUND = (
    "---g-f_I2yQ,1,people marching,test\n"
    '--0PQM4-hqg,30,"waterfall burbling",train\n'
    '-0jeONf82dE,21,"heart sounds, heartbeat",train\n'
    "-1mN2Zr5A2s,300,people marching,test\n"
)
PATHS = (
    "video_path,start_s,labels\nvideos/a.mp4,0,dog\nvideos/b.mkv,12.5,dog;cat\nc.mp4,,\nd/e.f.mp4,3, bird \n"
)
CLASSES = (
    'index,mid,display_name\n0,/m/068hy,"Domestic animals, pets"\n1,/m/03l9g,Hammer\n2,/m/09x0r,Speech\n'
)


def _write(path, text: str, bom: bool = False, crlf: bool = False):
    text = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return path


def _both_ways(monkeypatch, read):
    """``read()`` a column at a time (the row reader refused), then row by row (the columns refused)."""
    with monkeypatch.context() as patch:
        patch.setattr(inputs, "_read_clips", _row_reader_called)
        columnar = read()
    with monkeypatch.context() as patch:
        patch.setattr(inputs._ListClips, "columnar", lambda self, *args: None)
        by_rows = read()
    return columnar, by_rows


def _row_reader_called(*args, **kwargs):
    raise AssertionError("a clean list went through the row reader")


@pytest.mark.parametrize("bom, crlf", [(False, False), (True, True)])
@pytest.mark.parametrize(
    "name, text, options",
    [
        ("eval_segments.csv", AUDIOSET_SHIPPED, {}),
        (
            "vggsound.csv",
            VGGSOUND,
            {"split": "all", "trimmed": False, "path_template": "Y{ytid}_{start_ms}.mkv"},
        ),
        ("vggsound.csv", VGGSOUND, {"split": "all"}),
        ("vggsound.csv", VGGSOUND, {"split": "test"}),
        ("vggsound.csv", VGGSOUND, {"split": "train", "path_template": "{split}/{ytid}_{start:06d}.mp4"}),
        ("list.csv", PATHS, {}),
        ("list.tsv", PATHS.replace(",", "\t"), {}),
        (
            "list.csv",
            "video_path,labels\nsub/x.mp4,a\nz.tar.mp4,c\nw.d/v,d\ne.,x\nf.é,x\n",
            {},
        ),  # ids: no extension
    ],
)
def test_real_lists_read_a_column_at_a_time_give_the_row_readers_clips(
    tmp_path, monkeypatch, name, text, options, bom, crlf
):
    listing = _write(tmp_path / name, text, bom, crlf)
    columnar, by_rows = _both_ways(monkeypatch, lambda: load_inputs(listing, **options))
    assert columnar.clips == by_rows.clips and columnar.classes == by_rows.classes
    assert [clip.split for clip in columnar.clips] == [clip.split for clip in by_rows.clips]
    assert len(columnar.clips) >= 2
    assert gc.isenabled()  # paused while the clips were made, on again after


def test_audioset_ids_become_display_names_a_column_at_a_time(tmp_path, monkeypatch):
    text = AUDIOSET_SHIPPED.replace("/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk", "/m/068hy").replace(
        "/m/05zppz", "/m/03l9g"
    )
    listing = _write(tmp_path / "eval_segments.csv", text)
    classes = _write(tmp_path / "class_labels_indices.csv", CLASSES)
    columnar, by_rows = _both_ways(monkeypatch, lambda: load_inputs(listing, label_csv=classes))
    assert columnar.clips == by_rows.clips
    assert [clip.labels for clip in columnar.clips] == [
        ("Domestic animals, pets",),
        ("Hammer",),
        ("Speech", "Hammer"),
    ]


def test_a_bad_row_among_clean_ones_is_still_named_by_its_line(tmp_path):
    rows = [f"abcdefghij{i % 10},{i},dog barking,train" for i in range(40)]
    rows[29] = "#NAME?,30,dog barking,train"
    listing = _write(tmp_path / "vggsound.csv", "\n".join(rows) + "\n")
    with pytest.raises(InputListError, match=r"vggsound\.csv:30: '#NAME\?' is not a YouTube id"):
        read_clip_list(listing, split="all")


@pytest.mark.parametrize(
    "data",
    [
        b'a,"b""c",d\n',  # a doubled quote inside a cell
        b'a, " b",c\n',  # a quoted cell starting with a space (the row reader keeps it)
        b'a,"b ",c\n',
        b'a,"b\nc",d\n',  # a line break inside a quoted cell
        b'a,b"c,d\n',  # a quote inside an unquoted cell
        b'a,"b" ,c\n',
        b"a,b,c\nd,e\n",  # rows of another width
        b"a,b\x00,c\n",
        b"a,\xff,c\n",  # not UTF-8
    ],
)
def test_files_the_row_reader_reads_differently_are_handed_back(data):
    assert parse_columns(data, 3, ",") is None


def test_every_file_the_columns_take_is_read_cell_for_cell_as_the_row_reader_does():
    """Random short files of commas, tabs, spaces, quotes and line ends: whatever :func:`parse_columns` does not
    hand back has exactly the row reader's (``csv``, ``skipinitialspace``) cells."""
    generator = random.Random(17)
    taken = 0
    for delimiter in (",", "\t"):
        alphabet = b'ab ,\t"\n\r'
        for _ in range(4000):
            data = bytes(generator.choice(alphabet) for _ in range(generator.randint(1, 16)))
            rows = [
                row
                for row in csv.reader(
                    io.StringIO(data.decode(), newline=""), delimiter=delimiter, skipinitialspace=True
                )
                if row
            ]
            widths = {len(row) for row in rows}
            if len(widths) != 1:
                continue
            columns = parse_columns(data, widths.pop(), delimiter)
            if columns is None:
                continue
            taken += 1
            assert [list(row) for row in zip(*(column.to_pylist() for column in columns))] == rows, data
    assert taken > 1000  # the check covers files the columns read, not only ones they hand back
