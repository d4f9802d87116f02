"""Triplets read in place (avt_data/parquet_index.py, parquet_rows.py, block_sampler.py): the rows and order of
``load_dataset`` for every config, no copy in the ``datasets`` cache, config filters applied while reading,
the block-shuffled order (seeded, local reads, windows, weights, mixup partners), one read per row group per
reader, and two real processes reading disjoint parts with an exact resume."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from torch.utils.data import DataLoader, Dataset

from avt_core.errors import UsageError
from avt_data.block_sampler import BlockShuffleSampler, batch_mixing
from avt_data.parquet_rows import ParquetTriplets, load_triplets, open_parquet_triplets

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ("audio", "frames", "text_embedding")
NUM_CLIPS = 90


@pytest.fixture(scope="module")
def generation_output(tmp_path_factory) -> Path:
    """90 small clips written by the generation writer (32-row row groups, shards of 40) with a card whose
    configs are the top/random 10/30/50 row filters."""
    from avt_training.synthetic import write_generation_output

    return write_generation_output(
        tmp_path_factory.mktemp("generated") / "out",
        NUM_CLIPS,
        seconds=1.3,
        frames_per_clip=3,
        frame_size=48,
        text_dim=32,
        shard_size=40,
    )


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def test_generation_writer_writes_small_row_groups(generation_output):
    from avt_triplets.layout import ROW_GROUP_ROWS

    sizes = [
        [pq.ParquetFile(f).metadata.row_group(g).num_rows for g in range(pq.ParquetFile(f).num_row_groups)]
        for f in sorted((generation_output / "data").glob("*.parquet"))
    ]
    assert ROW_GROUP_ROWS == 32 and sizes == [[32, 8], [32, 8], [10]]


def test_the_row_group_size_keeps_the_sampler_contract():
    """What ``layout.ROW_GROUP_ROWS`` promises the block sampler: a default shuffle window mixes 16 whole row
    groups, and a reader holds two windows plus two row groups."""
    from avt_data.block_sampler import DEFAULT_WINDOW
    from avt_triplets.layout import ROW_GROUP_ROWS

    sampler = BlockShuffleSampler(np.repeat(np.arange(64), ROW_GROUP_ROWS), batch_size=32, seed=3)
    order, _ = sampler.epoch_order(0)
    windows = order.reshape(-1, DEFAULT_WINDOW)
    assert [len(np.unique(sampler.block_ids[w])) for w in windows] == [16] * 4
    assert sampler.cache_rows(ROW_GROUP_ROWS) == 2 * DEFAULT_WINDOW + 2 * ROW_GROUP_ROWS


@pytest.mark.parametrize("config", [None, "top30", "random30", "top10", "random50"])
def test_rows_and_order_match_load_dataset(generation_output, tmp_path, config):
    spec = str(generation_output) + (f":{config}" if config else "")
    reference = datasets.load_dataset(str(generation_output), config, split="train", cache_dir=str(tmp_path))
    reference = reference.cast_column("audio", datasets.Audio(decode=False))
    for source in (spec, "file://" + spec):  # a local folder and the generic fsspec path
        rows = open_parquet_triplets([source], columns=None)
        assert rows["clip_id"] == list(reference["clip_id"])
        assert rows.column_names == reference.column_names
        for i in (0, len(rows) // 2, len(rows) - 1):
            assert rows[i]["audio"]["bytes"] == reference[i]["audio"]["bytes"]
            assert rows[i]["clap_score"] == reference[i]["clap_score"]
    if config:
        k = int(config.removeprefix("top").removeprefix("random"))
        assert len(rows) == round(NUM_CLIPS * k / 100)


def test_config_filter_is_applied_while_reading(generation_output, monkeypatch):
    """Opening reads Parquet footers and the filter's columns only; rows read later are the kept ones only."""
    reads: list[tuple[str, object]] = []
    real_read, real_read_row_group = pq.ParquetFile.read, pq.ParquetFile.read_row_group

    def read(self, columns=None, **kwargs):
        reads.append(("file", tuple(columns or ())))
        return real_read(self, columns=columns, **kwargs)

    def read_row_group(self, i, columns=None, **kwargs):
        reads.append(("row_group", tuple(columns or ())))
        return real_read_row_group(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", read)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", read_row_group)
    rows = open_parquet_triplets([f"{generation_output}:top30"], columns=["audio", "frames"])
    assert {r[0] for r in reads} == {"file"} and {c for r in reads for c in r[1]} == {"clap_score", "clip_id"}
    reads.clear()
    scores = [
        rows.select([i])["clap_score"][0] if "clap_score" in rows.column_names else None for i in range(1)
    ]
    assert scores == [None]  # the view has only the asked columns
    everything = open_parquet_triplets([str(generation_output)], columns=["clip_id", "clap_score"])
    threshold = sorted(everything["clap_score"], reverse=True)[len(rows) - 1]
    kept = open_parquet_triplets([f"{generation_output}:top30"], columns=["clap_score"])
    assert min(kept["clap_score"]) >= threshold and len(kept) == 27
    reads.clear()
    first = rows[0]
    assert set(first) == {"audio", "frames"} and reads == [("row_group", ("audio", "frames"))]


def test_repeated_datasets_concatenate_in_order(generation_output, tmp_path):
    rows = open_parquet_triplets(
        [f"{generation_output}:top30", f"{generation_output}:random30"], columns=["clip_id", *COLUMNS]
    )
    top = datasets.load_dataset(str(generation_output), "top30", split="train", cache_dir=str(tmp_path))
    rand = datasets.load_dataset(str(generation_output), "random30", split="train", cache_dir=str(tmp_path))
    assert rows["clip_id"] == list(top["clip_id"]) + list(rand["clip_id"])
    assert rows[len(top)]["clip_id"] == rand[0]["clip_id"]
    view = rows.select([len(top) + 1, 0])
    assert view["clip_id"] == [rand[1]["clip_id"], top[0]["clip_id"]]

    from avt_training.synthetic import make_synthetic_triplets

    other = make_synthetic_triplets(
        tmp_path / "other", clips_per_class=1, text_dim=8, seconds=0.5, frame_size=32
    )
    with pytest.raises(UsageError, match="different sizes"):
        open_parquet_triplets([str(generation_output), str(other)], columns=COLUMNS)
    metadata_only = tmp_path / "meta"
    (metadata_only / "data").mkdir(parents=True)
    pq.write_table(pq.read_table(other / "data" / "shard-00000.parquet", columns=["clip_id", "text_embedding"]),
                   metadata_only / "data" / "shard-00000.parquet")  # fmt: skip
    with pytest.raises(UsageError, match="metadata-only"):
        open_parquet_triplets([str(metadata_only)], columns=COLUMNS)


def test_training_and_evaluation_leave_no_copy_in_the_datasets_cache(
    generation_output, fast_tiny_model, tmp_path, monkeypatch, single_thread
):
    from avt_data.cached import load_through_datasets_cache
    from avt_training.pretrain import PretrainConfig, pretrain
    from eval.loading import load_eval_dataset

    cache = tmp_path / "datasets_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    data_bytes = _folder_bytes(generation_output / "data")
    output = pretrain(
        PretrainConfig(
            datasets=[f"file://{generation_output}:top50"],
            eval_datasets=[f"{generation_output}:random10"],
            output_dir=str(tmp_path / "run"),
            model_name_or_path=str(fast_tiny_model),
            per_device_batch_size=8,
            max_steps=2,
            save_steps=None,
            num_workers=0,
            report_to=[],
        )
    )
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["clips"] == 45 and summary["steps"] == 2 and "eval_loss" in summary["last_eval"]
    evaluated = load_eval_dataset(f"{generation_output}:top30", "train")
    assert isinstance(evaluated, ParquetTriplets) and len(evaluated) == 27
    assert _folder_bytes(cache) < 0.01 * data_bytes
    # The measurement can fail: today's path writes a full Arrow copy there.
    load_through_datasets_cache([str(generation_output)], columns=COLUMNS)
    assert _folder_bytes(cache) > 0.5 * data_bytes


def test_fallback_for_datasets_that_are_not_parquet(tmp_path):
    rows = datasets.Dataset.from_dict({"clip_id": ["a", "b"], "labels": [["x"], ["y"]]})
    rows.to_json(str(tmp_path / "data" / "train.jsonl"))
    loaded = load_triplets([str(tmp_path)], columns=["clip_id", "labels"])
    assert isinstance(loaded, datasets.Dataset) and loaded["clip_id"] == ["a", "b"]


# --------------------------------------------------------------------------------------------------
# The block-shuffled order
# --------------------------------------------------------------------------------------------------


def _blocks(sizes: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes)


def _lane_of_position(length: int, batch: int, lanes: int) -> np.ndarray:
    return (np.arange(length) // batch) % lanes


def test_block_order_is_seeded_local_and_mixed_in_windows():
    block_ids = _blocks([7, 12, 3, 9, 10, 5, 11, 8, 6, 9])  # 80 rows, row groups of uneven kept counts
    sampler = BlockShuffleSampler(block_ids, batch_size=4, seed=5, lanes=3, window=10)
    assert sampler.window == 8 and len(sampler) == 80
    order, partners = sampler.epoch_order(0)
    assert partners is None and sorted(order.tolist()) == list(range(80))
    assert np.array_equal(
        order, BlockShuffleSampler(block_ids, 4, seed=5, lanes=3, window=10).epoch_order(0)[0]
    )
    sampler.set_epoch(1)
    assert [k[1] for k in sampler] == [1] * 80 and not np.array_equal(order, sampler.epoch_order(1)[0])
    # Lane l owns batches l, l+3, ...: its rows are a contiguous run of the block stream, so lanes share at
    # most the row groups on their cuts, and each window is a permutation of one contiguous run.
    lane_of = _lane_of_position(80, 4, 3)
    lane_blocks = [set(block_ids[order[lane_of == lane]].tolist()) for lane in range(3)]
    assert sum(len(b) for b in lane_blocks) <= 10 + 2
    stream_rank = {}
    for lane in range(3):
        rows = order[lane_of == lane]
        for start in range(0, len(rows), 8):
            window_blocks = block_ids[rows[start : start + 8]]
            for block in set(window_blocks.tolist()):
                stream_rank.setdefault(block, (lane, start))
    # windows are shuffled: some batch mixes row groups, unlike reading row groups in order
    mixing = batch_mixing(order, 4, {"row_group": block_ids})["row_group"]
    assert mixing["batches_mixing_groups"] > 0.5
    # the length never depends on the lanes, so a resume may restore the checkpoint's lanes
    relaned = BlockShuffleSampler(block_ids, 4, seed=5, lanes=7, window=10)
    assert len(relaned) == len(sampler)
    relaned.set_lanes(3)
    assert np.array_equal(relaned.epoch_order(0)[0], order)


def test_block_order_drops_less_than_a_batch_and_keeps_the_tail_for_evaluation():
    block_ids = _blocks([5, 6, 4])
    training_order = BlockShuffleSampler(block_ids, batch_size=4, lanes=2).epoch_order(0)[0]
    assert len(training_order) == 12 and len(set(training_order.tolist())) == 12
    every = BlockShuffleSampler(block_ids, batch_size=4, lanes=2, shuffle=False, drop_last=False)
    assert sorted(every.epoch_order(0)[0].tolist()) == list(range(15)) and len(every) == 15


def test_weighted_draws_and_window_partners():
    block_ids = _blocks([20] * 10)
    weights = np.ones(200)
    weights[0] = 200.0  # one clip as likely as all the others together
    sampler = BlockShuffleSampler(
        block_ids, batch_size=5, seed=1, lanes=2, window=20, weights=weights, partners=True
    )
    keys = list(sampler)
    indices = np.asarray([k[0] for k in keys])
    assert len(keys) == 200 and 0.35 < np.mean(indices == 0) < 0.65
    order, partners = sampler.epoch_order(0)
    lane_of = _lane_of_position(200, 5, 2)
    for lane in range(2):
        rows, mates = order[lane_of == lane], partners[lane_of == lane]
        for start in range(0, len(rows), 20):
            assert set(mates[start : start + 20].tolist()) <= set(rows[start : start + 20].tolist())


class _ReadLog(Dataset):
    """Reads row ``key[0]`` and returns this process's id and row-group reads so far."""

    def __init__(self, rows: ParquetTriplets):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        self.rows[int(key[0])]
        return {"pid": os.getpid(), "index": int(key[0]), "reads": dict(self.rows.reads)}


def test_each_dataloader_worker_reads_its_row_groups_once(generation_output):
    from avt_data.block_sampler import sampler_for_rows

    rows = open_parquet_triplets([str(generation_output)], columns=["audio"])
    sampler = sampler_for_rows(rows, 5, seed=2, lanes=2, window=15)
    loader = DataLoader(_ReadLog(rows), batch_size=5, sampler=sampler, num_workers=2, collate_fn=list)
    last_reads: dict[int, dict[int, int]] = {}
    seen = []
    for batch in loader:
        for example in batch:
            last_reads[example["pid"]] = example["reads"]
            seen.append(example["index"])
    assert sorted(seen) == sorted(sampler.epoch_order(0)[0].tolist())
    assert len(last_reads) == 2  # two worker processes, the main process read nothing
    assert all(count == 1 for reads in last_reads.values() for count in reads.values())
    blocks = [set(reads) for reads in last_reads.values()]
    assert len(blocks[0] & blocks[1]) <= 1 and len(blocks[0] | blocks[1]) == 5  # the cut's row group only
    assert rows.reads == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_read_disjoint_parts_and_resume_exactly(generation_output, tmp_path):
    prefix = tmp_path / "rank"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        str(REPO / "tests" / "support" / "parquet_reading_check.py"), f"file://{generation_output}:top50", str(prefix),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads(Path(f"{prefix}{r}.json").read_text()) for r in range(2)]
    batch, block_of = ranks[0]["batch"], np.asarray(ranks[0]["block_of_row"])
    assert ranks[0]["lanes"] == 2 and len(block_of) == 45
    order1 = ranks[0]["order1"]
    for epoch in ("epoch0", "epoch1"):
        got = [[i for i, _ in r[epoch]] for r in ranks]
        assert not set(got[0]) & set(got[1]) and len(got[0]) == len(got[1]) == 20
        assert {e for r in ranks for _, e in r[epoch]} == {int(epoch[-1])}
    # accelerate gives rank r the order's batches r, r+2, ...: exactly the sampler's global order
    assert [i for i, _ in ranks[0]["epoch1"]] == [i for b in range(0, 40, 8) for i in order1[b : b + batch]]
    for rank in ranks:
        # each process reads only the row groups of the clips it trains on, each once (epoch 1 finds some
        # of them still in the cache from epoch 0)
        own_blocks = set(block_of[[i for i, _ in rank["epoch0"]]].tolist())
        assert {int(b) for b in rank["reads0"]} == own_blocks and set(rank["reads0"].values()) == {1}
        assert {int(b) for b in rank["reads1"]} <= set(block_of[[i for i, _ in rank["epoch1"]]].tolist())
        # a resumed epoch gives the same clips in the same order after the skipped batches
        assert rank["epoch1_resumed"] == rank["epoch1"][ranks[0]["skipped_batches"] * batch :]
    shared = set(ranks[0]["reads0"]) & set(ranks[1]["reads0"])
    assert len(shared) <= 1, "only the row group on the lane cut is read by both processes"


def test_hub_dataset_is_read_in_place(local_hub, generation_output, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    repo_id = local_hub.repo_id("triplets-read-in-place")
    api = HfApi(token=local_hub.token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, repo_type="dataset", folder_path=str(generation_output),
        allow_patterns=["README.md", "subsets.json", "data/*"],
    )  # fmt: skip
    cache = tmp_path / "datasets_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_TOKEN", local_hub.token)
    rows = open_parquet_triplets([f"{repo_id}:top30"], columns=["clip_id", "audio"])
    local = open_parquet_triplets([f"{generation_output}:top30"], columns=["clip_id", "audio"])
    assert rows.index.files[0].startswith("hf://datasets/")
    assert rows["clip_id"] == local["clip_id"] and rows[5]["audio"] == local[5]["audio"]
    assert _folder_bytes(cache) < 0.01 * _folder_bytes(generation_output / "data")


def test_a_batch_reads_its_row_groups_together(generation_output):
    from avt_training.data import ClipDataset

    rows = open_parquet_triplets([str(generation_output)], columns=list(COLUMNS))
    blocks = rows.block_ids()
    picked = [int(np.flatnonzero(blocks == b)[0]) for b in range(5)]  # one row of each row group, 3 files
    clips = ClipDataset(rows, seed=0)
    examples = clips.__getitems__([(i, 0) for i in picked])
    assert sorted(rows.reads) == [0, 1, 2, 3, 4] and set(rows.reads.values()) == {1}
    assert [e["index"] for e in examples] == picked and all(e["decode_error"] is None for e in examples)
    assert examples[2]["waveform"].shape == clips[(picked[2], 0)]["waveform"].shape  # served from the cache
    assert set(rows.reads.values()) == {1}


def test_the_next_window_is_read_ahead_and_every_row_group_once(generation_output):
    from avt_data.block_sampler import sampler_for_rows

    rows = open_parquet_triplets([str(generation_output)], columns=["clip_id"])
    sampler = sampler_for_rows(rows, 5, seed=4, lanes=1, window=15)
    keys = list(sampler)
    blocks = rows.block_ids()
    assert sorted(sampler.next_window_rows(0, keys[3][0]).tolist()) == sorted(k[0] for k in keys[15:30])
    rows.prefetch([k[0] for k in keys[:5]], epoch=0)
    for future in list(rows._pending.values()):
        future.result()  # the background read of window 1
    rows[keys[0][0]]  # any access moves finished reads into the cache
    assert set(rows.reads) >= set(blocks[[k[0] for k in keys[15:30]]].tolist())
    for start in range(
        5, len(keys), 5
    ):  # the rest of the epoch, batch by batch, as a DataLoader worker reads
        batch = [k[0] for k in keys[start : start + 5]]
        rows.prefetch(batch, epoch=0)
        assert [rows[i]["clip_id"] for i in batch] == [rows.select([i])["clip_id"][0] for i in batch]
    assert sorted(rows.reads) == sorted(set(blocks.tolist())) and set(rows.reads.values()) == {1}


def test_a_missing_split_is_a_usage_error_that_optional_splits_can_skip(generation_output):
    from avt_data.parquet_index import NoSuchSplitError

    for spec in (str(generation_output), f"file://{generation_output}:top30"):
        with pytest.raises(NoSuchSplitError, match="has no split 'test'") as caught:
            open_parquet_triplets([spec], columns=["clip_id"], split="test")
        assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)


# The remote half runs in a fresh interpreter: tracemalloc.stop() while other threads allocate (this worker's
# local Hub server threads, tqdm monitors) can crash CPython 3.11 (a race fixed in 3.12.9 / 3.13.2).
_REMOTE_READ_CHECK = """
import gc, json, sys, tracemalloc
import fsspec, pyarrow.parquet as pq
from avt_data.parquet_index import open_parquet

path, columns = sys.argv[1], sys.argv[2].split(",")
memory = fsspec.filesystem("memory")
with open(path, "rb") as source:
    memory.pipe("/avt-test/shard.parquet", source.read())
remote = open_parquet("memory://avt-test/shard.parquet")
gc.collect()
tracemalloc.start()  # a remote file's reads arrive as Python bytes
table = remote.read_row_group(0, columns=columns, use_threads=False)
gc.collect()
held, _ = tracemalloc.get_traced_memory()
tracemalloc.stop()
same = table.equals(pq.read_table(path, columns=columns).slice(0, table.num_rows))
second = remote.read_row_group(1, columns=["clip_id"]).num_rows == remote.metadata.row_group(1).num_rows
print(json.dumps({"held": held, "nbytes": table.nbytes, "same": same, "second": second}))
"""


def test_an_open_file_keeps_no_copy_of_the_row_group_it_read(generation_output, subprocess_env):
    """pyarrow's default pre-buffering kept each open file's last row group as raw bytes until its next read: a
    reader (up to MAX_OPEN_FILES open files) held a second copy of what it had read."""
    import pyarrow as pa

    from avt_data.parquet_index import open_parquet

    path = sorted((generation_output / "data").glob("*.parquet"))[0]
    local = open_parquet(str(path))
    before = pa.total_allocated_bytes()
    table = local.read_row_group(0, columns=list(COLUMNS), use_threads=False)
    assert table.nbytes > 1_000_000  # 32 clips of media
    assert pa.total_allocated_bytes() - before < table.nbytes * 1.1  # the table only, with its handle open
    del table

    command = [sys.executable, "-c", _REMOTE_READ_CHECK, str(path), ",".join(COLUMNS)]
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["nbytes"] > 1_000_000
    assert remote["held"] < remote["nbytes"] / 4, (
        f"the open remote file holds {remote['held']} bytes after a read"
    )
    assert remote["same"] and remote["second"]
