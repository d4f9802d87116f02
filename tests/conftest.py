"""Session fixtures shared by every test area: tiny models, synthetic videos and a local Hub. (The one conftest:
each area's own fixtures are plain modules in tests/support/fixtures/, registered below with ``pytest_plugins``.)

Isolation from the outside world is set up HERE, at import time, before any test module imports
``huggingface_hub``/``transformers``/``datasets``: these libraries read ``HF_ENDPOINT``, ``HF_HOME``
and the offline flags into module constants when first imported. So:

- ``HF_ENDPOINT`` points at a port on 127.0.0.1 reserved now; the ``local_hub`` fixture starts the
  local Hub server on it (tests/support/hub_server.py). Nothing can reach huggingface.co.
- ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_DATASETS_CACHE`` live in a temporary folder removed at exit,
  so tests never read or write ``~/.cache``; ``HF_TOKEN`` is the local Hub's token, never a real one.
- ``HF_HUB_DISABLE_XET=1``: the local Hub implements the git-LFS upload protocol, not Xet.
- The autouse ``hf_offline_env`` fixture switches the libraries to offline mode for every test that
  does not request ``local_hub``, so a stray hub id fails at once with an offline error.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from support import hub_server  # tests/ is on sys.path (pyproject: pythonpath = ["tests"])
from support.slow_files import slow_first

# Fixtures of one area each, in plain modules (tests/support/fixtures/); loaded after this module has run, so
# after the isolation below. Names are unique across them: they all share one namespace.
pytest_plugins = [
    "support.fixtures.generation",
    "support.fixtures.dataset",
    "support.fixtures.model",
    "support.fixtures.training",
    "support.fixtures.eval",
    "support.fixtures.recipes",
    "support.fixtures.slava",
    "support.fixtures.families",
]

LOCAL_HUB_USER = "avt-tester"
LOCAL_HUB_TOKEN = "hf_avt_local_hub_token"
_SANDBOX = Path(tempfile.mkdtemp(prefix="avt-tests-"))
atexit.register(shutil.rmtree, _SANDBOX, ignore_errors=True)
_HUB_PORT = hub_server.free_port()
_HUB_ENDPOINT = f"http://127.0.0.1:{_HUB_PORT}"

_ENV = {
    "HF_ENDPOINT": _HUB_ENDPOINT,
    "HF_HOME": str(_SANDBOX / "hf_home"),
    "HF_HUB_CACHE": str(_SANDBOX / "hf_home" / "hub"),
    "HF_DATASETS_CACHE": str(_SANDBOX / "hf_home" / "datasets"),
    "HF_TOKEN": LOCAL_HUB_TOKEN,
    "HF_HUB_DISABLE_XET": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
for _key in (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_TOKEN_PATH",
    "HUGGINGFACE_HUB_CACHE",
):
    os.environ.pop(_key, None)
os.environ.update(_ENV)

_already_imported = [m for m in ("huggingface_hub", "datasets", "transformers") if m in sys.modules]
if _already_imported:  # a plugin imported them before us: their constants would point at the real Hub
    raise RuntimeError(
        f"{_already_imported} were imported before tests/conftest.py could isolate them from the real Hub"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (tests/support/slow_files.py): two xdist workers then end together instead of one
    running a long Ray file alone at the end."""
    items.sort(key=lambda item: slow_first(item.nodeid))


def _set_offline(monkeypatch: pytest.MonkeyPatch, offline: bool) -> None:
    """Flip the offline flags the libraries cached at import (and the env, for subprocesses)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if "datasets.config" in sys.modules:
        datasets_config = sys.modules["datasets.config"]
        monkeypatch.setattr(datasets_config, "HF_HUB_OFFLINE", offline)
        monkeypatch.setattr(datasets_config, "HF_DATASETS_OFFLINE", offline)


@pytest.fixture(autouse=True)
def hf_offline_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Offline mode for every test except those using ``local_hub``; returns whether offline."""
    offline = "local_hub" not in request.fixturenames
    _set_offline(monkeypatch, offline)
    return offline


@pytest.fixture(scope="session")
def local_hub():
    """The local Hub on ``HF_ENDPOINT``: ``.endpoint``, ``.token``, ``.user`` (namespace), ``.repo_id(name)``."""
    hub = hub_server.start_local_hub(
        port=_HUB_PORT, root=_SANDBOX / "local_hub", user=LOCAL_HUB_USER, token=LOCAL_HUB_TOKEN
    )
    assert hub.endpoint == os.environ["HF_ENDPOINT"]
    yield hub
    hub.stop()


@pytest.fixture(scope="session")
def tiny_blip2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a random-weight BLIP-2 (model + Blip2Processor), loadable with from_pretrained."""
    from avt_triplets.tiny import make_tiny_blip2

    return make_tiny_blip2(tmp_path_factory.mktemp("tiny_blip2"))


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a random-weight LLaVA-1.5-style model + LlavaProcessor with a chat template."""
    from avt_triplets.tiny import make_tiny_llava

    return make_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a random-weight Qwen2.5-VL (dynamic resolution: image_grid_thw) + Qwen2_5_VLProcessor."""
    from avt_triplets.tiny import make_tiny_qwen2_5_vl

    return make_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny_qwen2_5_vl"))


@pytest.fixture(scope="session")
def tiny_smolvlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a random-weight SmolVLM (Idefics3: image tiles + pixel_attention_mask) + Idefics3Processor."""
    from avt_triplets.tiny import make_tiny_smolvlm

    return make_tiny_smolvlm(tmp_path_factory.mktemp("tiny_smolvlm"))


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a random-weight transformers ClapModel + ClapProcessor (unfused, rand_trunc)."""
    from avt_triplets.tiny import make_tiny_clap

    return make_tiny_clap(tmp_path_factory.mktemp("tiny_clap"))


@pytest.fixture(scope="session")
def tiny_msclap(tmp_path_factory: pytest.TempPathFactory):
    """What ``make_tiny_msclap`` returns (avt_triplets/tiny/msclap.py): a tiny msclap 2023 model on disk."""
    from avt_triplets.tiny import make_tiny_msclap

    return make_tiny_msclap(tmp_path_factory.mktemp("tiny_msclap"))


@pytest.fixture(scope="session")
def tiny_lgcavmae(tmp_path_factory: pytest.TempPathFactory):
    """What ``make_tiny_lgcavmae`` returns (avt_triplets/tiny/lgcavmae.py): a tiny LG-CAV-MAE folder."""
    from avt_triplets.tiny import make_tiny_lgcavmae

    return make_tiny_lgcavmae(tmp_path_factory.mktemp("tiny_lgcavmae"))


@pytest.fixture(scope="session")
def synthetic_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of ``labels.csv`` (columns video_path,start_s,labels) over a small synthetic video set:
    4 classes x 2 clips, 4-12 s, H.264 + AAC, two frame sizes. Videos sit next to the CSV."""
    from avt_triplets.tiny import make_synthetic_videos

    return make_synthetic_videos(
        tmp_path_factory.mktemp("synthetic_videos"), num_classes=4, clips_per_class=2
    )


@pytest.fixture(scope="session")
def label_lists(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Synthetic clips named like downloaded YouTube clips (``{ytid}_{start:06d}.mp4``, 2 s, 4 classes: 8 train
    and 4 test) listed as the real files list them (avt_triplets/tiny/label_lists.py): ``vggsound`` (both
    splits, no header), AudioSet's ``balanced_train`` / ``eval`` segment lists (comment header, spaces after
    commas, quoted ids; two clips of each carry a second label) and its ``class_labels`` CSV; ``clips`` per split."""
    from avt_triplets.tiny.label_lists import (
        make_youtube_clips,
        write_audioset_segments,
        write_class_labels_indices,
        write_vggsound_csv,
    )

    root = tmp_path_factory.mktemp("label_lists")
    clips = make_youtube_clips(root / "clips", {"train": 8, "test": 4}, num_classes=4)
    train = [c for c in clips if c.split == "train"]
    test = [c for c in clips if c.split == "test"]
    second = {clip.ytid: [4 + i % 2] for i, clip in enumerate(clips) if i % 4 == 1}
    return {
        "root": root / "clips",
        "clips": {"train": train, "test": test},
        "vggsound": write_vggsound_csv(root / "clips" / "vggsound.csv", clips),
        "balanced_train": write_audioset_segments(
            root / "clips" / "balanced_train_segments.csv", train, second
        ),
        "eval": write_audioset_segments(root / "clips" / "eval_segments.csv", test, second),
        "class_labels": write_class_labels_indices(root / "class_labels_indices.csv"),
    }


@pytest.fixture(scope="session")
def labelled_sets(label_lists, tmp_path_factory) -> dict:
    """Labelled-only outputs (`avt generate --captioner none`: no caption columns), (train, test) per source:
    VGGSound's one list split by its split column (8 + 4 clips), AudioSet's two segment files."""
    from avt.cli import main as avt_main

    root = tmp_path_factory.mktemp("labelled_sets")

    def generate(listing, output, *extra) -> None:
        argv = ["generate", str(listing), "-o", str(output), "--captioner", "none", "--num-workers", "0"]
        assert avt_main([*argv, "--no-progress", *extra]) == 0

    classes = ["--label-csv", str(label_lists["class_labels"])]
    generate(label_lists["vggsound"], root / "vgg_train", "--split", "train")
    generate(label_lists["vggsound"], root / "vgg_test", "--split", "test")
    generate(label_lists["balanced_train"], root / "as_train", *classes)
    generate(label_lists["eval"], root / "as_eval", *classes)
    return {
        "vggsound": (root / "vgg_train", root / "vgg_test"),
        "audioset": (root / "as_train", root / "as_eval"),
    }


# Class-correlated synthetic triplets (avt_training/synthetic.py) small enough for CPU learning checks: 1.3 s of audio,
# 48 x 48 frames, 8 classes.
SYNTHETIC = {"seconds": 1.3, "frame_size": 48, "num_classes": 8}


@pytest.fixture
def single_thread():
    """One intra-op thread: on 2 shared cores, 2 threads per process thrash (10x slower steps)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def synthetic_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 clips, 8 classes."""
    from avt_training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("triplets_train"), clips_per_class=16, seed=1, **SYNTHETIC
    )


@pytest.fixture(scope="session")
def synthetic_heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 other clips of the same 8 classes."""
    from avt_training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("triplets_heldout"), clips_per_class=6, seed=2, **SYNTHETIC
    )


@pytest.fixture(scope="session")
def synthetic_modality(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 clips of 8 classes whose audio and frames show different classes by design, with audio, visual and
    audio-visual caption columns and their CLAP-style text embeddings (issue 21)."""
    from avt_training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("triplets_modality"),
        clips_per_class=4,
        seed=3,
        modality_captions=True,
        **SYNTHETIC,
    )


@pytest.fixture
def make_read_only():
    """``make_read_only(folder)``: nothing can be created in ``folder`` until the test ends.

    chmod for ordinary users; root ignores permissions, so as root the folder is made immutable with
    ``chattr +i``. Skips only where neither works (then no read-only folder can exist here at all).
    """
    import subprocess

    undo = []

    def make(folder: Path) -> Path:
        folder = Path(folder)
        if os.geteuid() == 0:
            if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0:
                undo.append(lambda: subprocess.run(["chattr", "-i", str(folder)], check=False))
        else:
            mode = folder.stat().st_mode
            folder.chmod(0o555)
            undo.append(lambda: folder.chmod(mode))
        try:
            (folder / ".write-probe").touch()
        except OSError:
            return folder
        (folder / ".write-probe").unlink()
        pytest.skip("this machine cannot make a read-only folder")

    yield make
    for step in reversed(undo):
        step()
