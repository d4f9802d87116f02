"""The list of slow test files the test command starts first (tests/support/slow_files.py) names real files."""

from pathlib import Path

from support.slow_files import SLOW_FILES, slow_first

REPO = Path(__file__).resolve().parents[2]


def test_every_listed_slow_file_exists_once():
    assert [path for path in SLOW_FILES if not (REPO / path).is_file()] == []
    assert len(set(SLOW_FILES)) == len(SLOW_FILES)


def test_listed_files_sort_first_in_their_order_and_the_rest_keep_theirs():
    ids = ["tests/a/test_x.py::t1", f"{SLOW_FILES[1]}::t", "tests/a/test_y.py::t", f"{SLOW_FILES[0]}::t[1]"]
    assert sorted(ids, key=slow_first) == [ids[3], ids[1], ids[0], ids[2]]
