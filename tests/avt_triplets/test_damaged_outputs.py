"""Issue 18 item 2: damaged finished shards. Each shard's stats record its files' sizes and checksums; a rerun of
`avt generate` redoes a shard whose files do not match (and says so), `--verify` also compares checksums, and every
reader (filter, publish, the in-place reader of training and evaluation) names the damaged file in one line.
Old stats without the new fields still resume. A truncated manifest.json is named as damaged, not as missing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from support.fixtures.generation import labelled_argv

from avt import cli
from avt_triplets import layout, shards

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


@pytest.fixture(scope="module")
def finished_output(short_clips, tmp_path_factory) -> Path:
    """A finished `--captioner none` output: 3 shards of 2 clips."""
    out = tmp_path_factory.mktemp("damaged") / "finished"
    assert cli.main(labelled_argv(short_clips, out)) == 0
    return out


@pytest.fixture
def output(finished_output, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(finished_output, copy)
    return copy


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_bytes(path: Path, count: int = 2048) -> None:
    """``count`` bytes inverted in the middle of the file (the media pages): same size, still a Parquet file."""
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start : start + count] = bytes(b ^ 0xFF for b in data[start : start + count])
    path.write_bytes(bytes(data))


def rows(root: Path) -> dict[str, dict]:
    found = {}
    for index in sorted(shards.done_shard_indices(root)):
        for row in shards.read_rows(layout.data_path(root, index)):
            found[row["clip_id"]] = row
    return found


def test_stats_record_each_files_size_and_checksum(finished_output):
    import hashlib

    stats = shards.read_stats(finished_output, 0)
    for path in (layout.data_path(finished_output, 0), layout.failures_path(finished_output, 0)):
        record = stats["files"][f"{path.parent.name}/{path.name}"]
        assert record == {
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }


def test_a_rerun_redoes_truncated_deleted_and_unrecorded_shards_and_says_so(
    finished_output, output, short_clips, caplog, capsys
):
    expected = rows(finished_output)
    truncate(layout.data_path(output, 0))
    layout.data_path(output, 1).unlink()  # its stats file stays
    layout.stats_path(output, 2).write_text("")  # emptied
    # Readers name the damaged file in one line, before any rerun.
    assert cli.main(["filter", str(output)]) == 2
    assert f"{layout.data_path(output, 0)} has " in one_error_line(capsys.readouterr().err)
    with caplog.at_level(logging.WARNING):
        assert cli.main(labelled_argv(short_clips, output)) == 0
    said = caplog.text
    assert f"finished shard 0 is damaged: {layout.data_path(output, 0)} has " in said
    assert f"finished shard 1 is damaged: {layout.data_path(output, 1)} is missing" in said
    assert f"finished shard 2 is damaged: {layout.stats_path(output, 2)} is empty or not valid JSON" in said
    assert "shards        3/3 done" in capsys.readouterr().out
    assert rows(output) == expected
    assert shards.check_finished_shards(output, verify=True).damaged == {}


def test_flipped_bytes_are_found_by_verify_in_generate_and_filter(
    finished_output, output, short_clips, capsys
):
    flip_bytes(layout.data_path(output, 1))
    assert cli.main(["filter", str(output)]) == 0  # same size: only the checksum tells
    capsys.readouterr()
    assert cli.main(["filter", str(output), "--verify"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"finished shard 1 is damaged: {layout.data_path(output, 1)} does not match the checksum" in line
    assert cli.main(labelled_argv(short_clips, output, "--verify")) == 0
    assert layout.data_path(output, 1).read_bytes() == layout.data_path(finished_output, 1).read_bytes()
    assert cli.main(["filter", str(output), "--verify"]) == 0


def test_the_in_place_reader_and_publish_name_a_truncated_shard(output, capsys):
    from avt_core.errors import UsageError
    from avt_data.parquet_rows import load_triplets

    truncate(layout.data_path(output, 2))
    with pytest.raises(UsageError) as raised:
        load_triplets([str(output)], None)
    message = str(raised.value)
    assert str(layout.data_path(output, 2)) in message and "\n" not in message
    assert cli.main(["publish", str(output), "--push-to-hub", "someone/never-pushed"]) == 2
    assert str(layout.data_path(output, 2)) in one_error_line(capsys.readouterr().err)


def test_a_truncated_manifest_is_named_as_damaged_not_missing(output, short_clips, capsys):
    manifest = output / layout.MANIFEST_FILE
    manifest.write_bytes(manifest.read_bytes()[:200])
    for argv in (labelled_argv(short_clips, output), ["filter", str(output)]):
        assert cli.main(argv) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"{manifest} is damaged" in line and "no avt manifest.json" not in line, line


def test_stats_of_an_older_avt_still_resume_and_are_checked_by_their_footers(
    finished_output, output, short_clips, caplog, capsys
):
    for index in range(3):  # stats as avt wrote them before they recorded files
        stats = shards.read_stats(output, index)
        del stats["files"]
        layout.stats_path(output, index).write_text(json.dumps(stats))
    before = {i: layout.data_path(output, i).stat().st_mtime_ns for i in range(3)}
    with caplog.at_level(logging.WARNING):
        assert cli.main(labelled_argv(short_clips, output)) == 0
    assert "3 finished shard(s) have stats written by an older avt" in caplog.text
    assert {i: layout.data_path(output, i).stat().st_mtime_ns for i in range(3)} == before  # nothing redone
    truncate(layout.data_path(output, 1))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cli.main(labelled_argv(short_clips, output)) == 0
    assert (
        f"finished shard 1 is damaged: {layout.data_path(output, 1)} is damaged, not a readable Parquet"
        in (caplog.text)
    )
    assert rows(output) == rows(finished_output)
    assert "files" in shards.read_stats(output, 1)  # the redone shard records them
