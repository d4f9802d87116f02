"""Decode clips ahead of the models in CPU worker processes, in input order, with bounded prefetch.

A ``torch.utils.data.DataLoader`` over an ``IterableDataset`` runs the workers: worker ``w`` of
``n`` decodes jobs ``w, w + n, w + 2n, ...`` and the loader hands results back round-robin, so the
main process receives them exactly in job order while at most ``num_workers * prefetch`` decoded
clips wait in memory. Workers also do the CPU-side encoding of what gets stored (16 kHz WAV through
``datasets.Audio``, JPEG frames) and, given an :class:`~avt_triplets.model_inputs.InputPreparer`, the models'
preprocessing (distinct frames through the captioner's image processor, the scorer's audio windows and
features), so the main process only moves ready arrays to the device and runs the models. Those arrays cross
the process boundary as tensors in shared memory, not through the loader's pipe, so receiving a clip costs the
main process next to nothing.

A decoder that crashes its process (a segfault inside FFmpeg on a hostile file) would normally kill
the whole loader; here the clip that was being decoded is recorded as ``undecodable`` and the
loader restarts after it.

Workers never outlive the process they decode for: on Linux the kernel kills them when it dies
(``prctl(PR_SET_PDEATHSIG)``, effective even after a ``kill -9``, which would otherwise leave them blocked
on a full queue, holding their memory); elsewhere they stop before their next clip once their parent is
gone. They ignore Ctrl-C and SIGTERM: the process feeding the models handles those and shuts them down.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import multiprocessing
import os
import posixpath
import queue
import re
import shutil
import tempfile
import threading
import time
import traceback
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from avt_core.storage import as_path, is_url
from avt_triplets import schema
from avt_triplets.decode_pool import WorkerDied, become_worker, die_with_parent, iter_ordered
from avt_triplets.inputs import ClipSpec
from avt_triplets.media import MediaError, decode_clip
from avt_triplets.model_inputs import InputPreparer, ModelInputs

logger = logging.getLogger(__name__)

# A loader that keeps crashing is a broken environment, not a bad file: stop after this many.
MAX_DECODE_CRASHES = 16
__all__ = ["die_with_parent"]  # re-exported: it lives in the torch-free decode_pool


@dataclass(frozen=True)
class DecodeSettings:
    """How every clip is decoded and encoded; identical for all workers."""

    fps: float = 1.0
    clip_seconds: float = 10.0
    scorer_sampling_rate: int = schema.AUDIO_SAMPLING_RATE
    short_side: int = schema.FRAME_SHORT_SIDE
    jpeg_quality: int = 95
    decoder_threads: int = 1
    video_hwaccel: str | None = None  # FFmpeg hardware device for video, checked by media.usable_hwaccel
    model_inputs: bool = True  # False (`--captioner none`): only what is stored, no pixels or scorer audio
    # fsspec options for sources that are URLs (credentials: kept out of repr, never written anywhere)
    storage_options: dict | None = field(default=None, repr=False, compare=False)
    # the models' per-clip preprocessing (model_inputs.py); None: frames and audio stay raw
    prepare: InputPreparer | None = None


@dataclass(frozen=True)
class DecodeJob:
    """One clip of one shard; ``index`` is its position in this process's job list."""

    index: int
    shard: int
    clip: ClipSpec


@dataclass
class DecodedItem:
    """A decoded clip ready for the models, or the reason it can't be used."""

    job: DecodeJob
    seconds: float
    failure: tuple[str, str] | None = None
    start_s: float = 0.0
    end_s: float = 0.0
    # RGB uint8 (H, W, 3), what the captioner sees; empty when ``inputs`` is set
    frames: list[np.ndarray] = field(default_factory=list)
    frames_jpeg: list[bytes] = field(default_factory=list)  # what the dataset stores
    frame_times_s: list[float] = field(default_factory=list)
    audio_encoded: dict | None = None  # datasets.Audio-encoded 16 kHz mono
    scorer_audio: np.ndarray | None = None  # mono float32 at the scorer's rate; None when ``inputs`` is set
    inputs: ModelInputs | None = None  # frames and audio as the models take them (settings.prepare)


def _jpeg(image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_audio(samples: np.ndarray) -> dict:
    """16 kHz mono float32 -> the ``{"bytes", "path"}`` dict ``datasets.Audio`` stores (16-bit PCM WAV).

    Written with the standard library, not ``datasets.Audio.encode_example``: that one imports torch and
    torchcodec in every decode worker (~500 MB each) for a 44-byte header. Samples are converted as FFmpeg
    converts float to s16 (scaled by 32768, rounded to nearest, clipped), so the PCM data is the same.
    """
    pcm = np.clip(np.rint(np.asarray(samples, np.float32) * 32768.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(schema.AUDIO_SAMPLING_RATE)
        writer.writeframes(pcm.tobytes())
    return {"bytes": buffer.getvalue(), "path": None}


def decode_stored_audio(encoded: dict) -> np.ndarray:
    """What :func:`encode_audio` stored, back as 16 kHz mono float32 (samples / 32768): the audio a row holds,
    which the audio captioner hears, so a row's captions can be repeated from its ``audio`` column."""
    with wave.open(io.BytesIO(encoded["bytes"]), "rb") as reader:
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


@contextlib.contextmanager
def local_copy(source: str, storage_options: dict | None) -> Iterator[str]:
    """A local file to decode: ``source`` itself, or (a URL) a copy in the temporary folder, deleted afterwards.

    Scratch space stays bounded: each decode worker holds one video at a time. A source that can't be fetched
    is an ``unreadable_path`` failure of its clip.
    """
    if not is_url(source):
        yield source
        return
    suffix = posixpath.splitext(source)[1]
    with tempfile.NamedTemporaryFile(prefix="avt-scratch-", suffix=suffix) as scratch:
        try:
            with as_path(source, storage_options).open("rb") as remote:
                shutil.copyfileobj(remote, scratch, length=4 << 20)
        except (OSError, ValueError) as error:
            raise MediaError(
                "unreadable_path", f"cannot fetch {source}: {type(error).__name__}: {error}"
            ) from error
        scratch.flush()
        yield scratch.name


def decode_job(job: DecodeJob, settings: DecodeSettings) -> DecodedItem:
    """Decode and encode one clip; never raises (failures come back as ``item.failure``)."""
    started = time.perf_counter()
    try:
        rates = (schema.AUDIO_SAMPLING_RATE, settings.scorer_sampling_rate)
        with local_copy(job.clip.source, settings.storage_options) as source:
            clip = decode_clip(
                source,
                start_s=job.clip.start_s,
                duration_s=settings.clip_seconds,
                fps=settings.fps,
                sampling_rates=rates,
                short_side=settings.short_side,
                decoder_threads=settings.decoder_threads,
                hwaccel=settings.video_hwaccel,
                model_short_side=_model_short_side(settings),
            )
        item = DecodedItem(
            job=job,
            seconds=0.0,
            start_s=clip.start_s,
            end_s=clip.end_s,
            # arrays move between processes cheaply; nothing to move when no model will see them
            frames=[np.asarray(image) for image in clip.model_frames or clip.frames]
            if settings.model_inputs
            else [],
            frames_jpeg=[_jpeg(image, settings.jpeg_quality) for image in clip.frames],
            frame_times_s=clip.frame_times_s,
            audio_encoded=encode_audio(clip.audio[schema.AUDIO_SAMPLING_RATE]),
            scorer_audio=clip.audio[settings.scorer_sampling_rate] if settings.model_inputs else None,
        )
        if settings.prepare is not None:
            item.inputs = settings.prepare(item.frames, item.scorer_audio)
            item.frames, item.scorer_audio = [], None
    except MediaError as error:
        item = DecodedItem(job=job, seconds=0.0, failure=(error.reason, error.detail))
    except Exception as error:  # noqa: BLE001 - a clip must never stop the job
        detail = f"{type(error).__name__}: {error} | {traceback.format_exc(limit=3)}"
        item = DecodedItem(job=job, seconds=0.0, failure=("undecodable", detail))
    item.seconds = time.perf_counter() - started
    return item


def _model_short_side(settings: DecodeSettings) -> int | None:
    """The captioner's frame size (``--caption-image-size``) when it differs from the stored frames', else None."""
    side = None if settings.prepare is None else settings.prepare.image_short_side
    return None if side is None or side == settings.short_side or not settings.model_inputs else side


DecodeFn = Callable[[DecodeJob, DecodeSettings], DecodedItem]


def _identity(item):
    return item


def _init_decode_process(_worker_id: int, parent_pid: int) -> None:
    import torch

    become_worker(parent_pid)
    torch.set_num_threads(1)  # parallelism comes from the worker processes themselves


class _DecodeStream:
    """Worker ``w`` of ``n`` decodes jobs ``w::n``; the loader's round-robin restores job order.

    Module-level (not a closure) so it also pickles for the ``spawn`` start method (macOS).
    ``busy`` holds ``[pid, job index]`` per worker, to name the culprit if a worker dies; ``known``
    answers jobs that already crashed a worker without decoding them again. A worker whose parent
    (``parent_pid``) is gone stops before its next job.
    """

    def __init__(self, jobs: Sequence[DecodeJob], settings: DecodeSettings, decode_fn: DecodeFn, busy, known):
        self.jobs, self.settings, self.decode_fn, self.busy, self.known = (
            jobs,
            settings,
            decode_fn,
            busy,
            known,
        )
        self.parent_pid = os.getpid()

    def __iter__(self):
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.busy is not None:
            self.busy[2 * worker] = os.getpid()
        for position in range(worker, len(self.jobs), workers):
            if info is not None and os.getppid() != self.parent_pid:
                return  # orphaned: nobody reads what we decode
            job = self.jobs[position]
            if self.busy is not None:
                self.busy[2 * worker + 1] = job.index
            item = self.known[job.index] if job.index in self.known else self.decode_fn(job, self.settings)
            yield _to_shared(item) if info is not None else item


# Arrays at least this large travel as shared-memory tensors (one file descriptor each while alive); smaller ones
# are cheaper to pickle through the loader's pipe.
_SHARED_MIN_BYTES = 1 << 16


def _to_shared(item: DecodedItem) -> DecodedItem:
    """In a worker: the item's large model inputs as tensors, which the loader hands over in shared memory."""
    import torch

    if item.inputs is not None:
        item.inputs = item.inputs.map_arrays(
            lambda array: torch.from_numpy(array) if array.nbytes >= _SHARED_MIN_BYTES else array
        )
    return item


def _from_shared(item: DecodedItem) -> DecodedItem:
    """In the main process: numpy arrays again (views of the same shared memory, no copy)."""
    if item.inputs is not None:
        item.inputs = item.inputs.map_arrays(
            lambda value: value if isinstance(value, np.ndarray) else value.numpy()
        )
    return item


def _allow_open_files() -> None:
    """Raise this process's soft limit of open files to the hard limit: every shared-memory array it holds is an
    open file (a chunk's audio stays until its rows are made)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # not on this platform, or not allowed: keep the limit
        pass


_PIDS = re.compile(r"pid\(s\) ([\d, ]+)")


def _decode_stream_class() -> type:
    """``DecodeStream`` is made on first use: it subclasses torch's ``IterableDataset``, and importing this module
    must not import torch (a ``--captioner none`` run and a Ray decode task never need it)."""
    if "DecodeStream" not in globals():
        from torch.utils.data import IterableDataset

        stream = type("DecodeStream", (_DecodeStream, IterableDataset), {"__module__": __name__})
        stream.__doc__ = _DecodeStream.__doc__
        globals()["DecodeStream"] = stream
    return globals()["DecodeStream"]


def __getattr__(name: str):
    if name == "DecodeStream":  # how a spawned loader worker finds the class it unpickles
        return _decode_stream_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _decode_with(decode_fn: DecodeFn, settings: DecodeSettings, job: DecodeJob) -> DecodedItem:
    return decode_fn(job, settings)


def _iter_pooled(
    jobs: Sequence[DecodeJob], settings: DecodeSettings, num_workers: int, prefetch: int, decode_fn: DecodeFn
) -> Iterator[DecodedItem]:
    """Decode in torch-free worker processes (decode_pool): nothing here needs shared-memory tensors."""
    run = functools.partial(_decode_with, decode_fn, settings)
    remaining, known, crashes = list(jobs), {}, 0
    while remaining:
        delivered = 0
        try:
            spawn = bool(
                settings.video_hwaccel
            )  # a forked child can't use the CUDA driver its parent initialised
            for item in iter_ordered(
                remaining, run, num_workers=num_workers, prefetch=prefetch, spawn=spawn, known=known
            ):
                delivered += 1
                yield item
            return
        except WorkerDied as died:
            crashes += 1
            if crashes > MAX_DECODE_CRASHES:
                raise RuntimeError(f"decode workers crashed {crashes} times; giving up") from died
            logger.warning(
                "a decode worker died (%s); recording %s as undecodable", died, died.job.clip.clip_id
            )
            known[died.job.index] = DecodedItem(
                job=died.job, seconds=0.0, failure=("undecodable", f"decoder process crashed: {died}")
            )
            remaining = remaining[delivered:]


def iter_decoded(
    jobs: Sequence[DecodeJob],
    settings: DecodeSettings,
    *,
    num_workers: int = 0,
    prefetch: int = 4,
    decode_fn: DecodeFn = decode_job,
) -> Iterator[DecodedItem]:
    """Yield one :class:`DecodedItem` per job, in job order.

    ``num_workers=0`` decodes in this process (handy for debugging and tiny inputs). If a worker
    process dies, the job it was decoding is yielded as an ``undecodable`` failure and decoding
    resumes with the next job.
    """
    if num_workers <= 0:
        for job in jobs:
            yield decode_fn(job, settings)
        return
    if settings.prepare is None:  # no model inputs to hand over in shared memory: no torch needed
        yield from _iter_pooled(jobs, settings, num_workers, prefetch, decode_fn)
        return

    from torch.utils.data import DataLoader

    _allow_open_files()
    remaining = list(jobs)
    known: dict[int, DecodedItem] = {}  # jobs that crashed a worker: answered without decoding again
    crashes = 0
    while remaining:
        # [pid, job index] per worker, shared with the forked workers.
        busy = multiprocessing.Array("q", [-1] * (2 * num_workers), lock=False)
        loader = DataLoader(
            _decode_stream_class()(remaining, settings, decode_fn, busy, known),
            batch_size=None,
            num_workers=min(num_workers, len(remaining)),
            prefetch_factor=prefetch,
            collate_fn=_identity,
            worker_init_fn=functools.partial(_init_decode_process, parent_pid=os.getpid()),
            pin_memory=False,
            # A forked child can't use the CUDA driver its parent initialised: hardware decoders need fresh workers.
            multiprocessing_context="spawn" if settings.video_hwaccel else None,
        )
        delivered = 0
        try:
            for item in loader:
                delivered += 1
                yield _from_shared(item)
            return
        except RuntimeError as error:
            if "exited unexpectedly" not in str(error):
                raise
            crashes += 1
            if crashes > MAX_DECODE_CRASHES:
                raise RuntimeError(f"decode workers crashed {crashes} times; giving up") from error
            culprit = _crashed_job(remaining, delivered, busy, str(error))
            logger.warning(
                "a decode worker died (%s); recording %s as undecodable", error, culprit.clip.clip_id
            )
            known[culprit.index] = DecodedItem(
                job=culprit, seconds=0.0, failure=("undecodable", f"decoder process crashed: {error}")
            )
            remaining = remaining[delivered:]  # the restarted loader answers the culprit in its place
        finally:
            del loader


class ReceivedAhead(Iterator[DecodedItem]):
    """Iterates ``items`` in a background thread, ``ahead`` of the consumer, in order.

    Taking a clip from the loader costs its receiver a few milliseconds (the pipe, the shared-memory handles of
    its arrays, unpickling); in the thread that runs the models that is time the GPU waits. Here a thread
    receives the next clips while the models run (they release the GIL while the device works). Errors of the
    stream are raised to the consumer at the position they happened; :meth:`close` stops the thread, which
    closes the stream (and with it the decode workers).
    """

    _END = object()

    def __init__(self, items: Iterator[DecodedItem], ahead: int = 4):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead) + 1)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._receive, name="avt-receive-decoded", daemon=True)
        # The first clip is taken here, in the caller's thread: the loader forks its workers then, before this
        # process has a second thread (a fork copies locks other threads may hold, never those threads).
        first = self._take_first()
        self._queue.put(first)
        if isinstance(first, DecodedItem):
            self._thread.start()
        else:
            self._close_items()

    def _take_first(self):
        try:
            return next(self._items)
        except StopIteration:
            return self._END
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            return _Raised(error)

    def _close_items(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def _put(self, message) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _receive(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            self._put(_Raised(error))
        finally:
            self._close_items()

    def ready(self) -> bool:
        """Whether :meth:`__next__` would return (or end) without waiting for a clip to be decoded."""
        return self._done or not self._queue.empty()

    def __next__(self) -> DecodedItem:
        if self._done:
            raise StopIteration
        message = self._queue.get()
        if message is self._END:
            self._done = True
            raise StopIteration
        if isinstance(message, _Raised):
            self._done = True
            raise message.error
        return message

    def close(self, timeout: float = 10.0) -> None:
        """Stop receiving and wait (at most ``timeout`` s: a clip being decoded is finished first)."""
        self._done = True
        self._stop.set()
        while True:  # unblock a receiver waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.ident is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "the decode stream did not stop within %.0f s; it ends after its current clip", timeout
            )


@dataclass
class _Raised:
    error: BaseException


def _crashed_job(remaining: Sequence[DecodeJob], delivered: int, busy, message: str) -> DecodeJob:
    """The job the dead worker was decoding: the loader names the dead pids, ``busy`` maps pids to jobs.

    Without that record, blame the next job in line (everything before it was delivered).
    """
    match = _PIDS.search(message)
    dead = {int(pid) for pid in match.group(1).replace(" ", "").split(",") if pid} if match else set()
    by_index = {job.index: job for job in remaining[delivered:]}
    for worker in range(len(busy) // 2):
        pid, index = busy[2 * worker], busy[2 * worker + 1]
        if pid in dead and index in by_index:
            return by_index[index]
    return remaining[delivered]
