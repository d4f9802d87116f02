"""One writing command per output folder: ``avt generate``, ``avt filter`` and ``avt publish`` hold a lock while they write.

Two runs on one ``--output-dir`` would do every shard twice, or race on each other's files; ``avt filter`` or ``avt
publish`` during a run would write a card over a folder that is still changing. So each of them takes the output's
lock first (before any model loads) and a second one refuses in one line naming the holder (command, host, pid,
start time).

- **Local folders** (and shared filesystems with POSIX locks): ``DIR/.avt-lock`` is held with ``flock``, which the
  kernel drops when the holder dies, so a killed run never leaves a lock that blocks the next one; the file holds the
  holder's record for the message, and the holder deletes it when done.
- **Object stores** (and filesystems without locks) have none: ``DIR/.avt-lock`` is an object holding the record and a lease
  (``expires_at``), renewed by the holder every ``LEASE_SECONDS / 4``; a lease that was not renewed, or whose holder
  died on this host, is stale. The
  check happens once, at start (single writer by rule: two runs started within the same second may both pass).

The processes of one multi-process run (``accelerate launch``, ``torchrun``; each writes only its own shards) share
the lock: they pass the same ``run`` key (:func:`launch_run_key`) and join a lock held under that key.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avt_core import storage
from avt_core.errors import UsageError
from avt_core.launch import launch_key

logger = logging.getLogger(__name__)

LOCK_FILE = ".avt-lock"
LEASE_SECONDS = 120.0  # renewed every quarter of it
_RECORD_WAIT_SECONDS = 3.0  # a holder that just took the lock writes its record within this


class OutputInUseError(UsageError):
    """Another avt command holds the output's lock."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds an output's lock, as recorded in the lock file."""

    command: str
    host: str
    pid: int
    started_at: str
    run: str | None = None  # shared by the processes of one multi-process run
    token: str = ""
    expires_at: float | None = None  # object stores: the lease

    @classmethod
    def for_this_process(cls, command: str, run: str | None) -> LockHolder:
        return cls(
            command=command,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            run=run,
            token=uuid.uuid4().hex,
        )

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        try:
            data = json.loads(text)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError, AttributeError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, started {self.started_at})"


def launch_run_key(world_size: int | None = None) -> str | None:
    """The key the processes of one multi-process run share (None: a single process, which locks alone).

    A launcher (``accelerate launch``, ``torchrun``) gives every process its rendezvous address, which no two
    concurrent launches share, and ``srun`` its job and step (:func:`avt_core.launch.launch_key`); processes
    started with explicit ``--rank``/``--world-size`` share ``world_size``.
    """
    key = launch_key()
    if key is not None:
        return key
    if world_size is not None and world_size > 1:
        return f"ranks:{world_size}"
    return None


def pid_is_running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_use(root: Path, holder: LockHolder | None) -> OutputInUseError:
    who = holder.describe() if holder is not None else "another avt command (its lock record is unreadable)"
    lease = ""
    if holder is not None and holder.expires_at is not None:
        ends = _dt.datetime.fromtimestamp(holder.expires_at, _dt.UTC).isoformat(timespec="seconds")
        lease = f"; if it is not running any more, its lease ends at {ends}"
    return OutputInUseError(
        f"{root} is in use by {who}; wait for it to finish or stop it (one avt command writes an output at a "
        f"time){lease}"
    )


_HELD_FDS: set[int] = set()  # lock files this process holds open


def _close_held_in_child() -> None:
    """A forked child (a decode worker) must not keep its parent's lock alive: ``flock`` belongs to the open file,
    which the child shares, so a killed run whose workers still exit would block the rerun."""
    for fd in _HELD_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_FDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


class _LocalLock:
    """``flock`` on ``DIR/.avt-lock``: exclusive, or shared among the processes of one run."""

    def __init__(self, root: Path, me: LockHolder):
        self.path = root / LOCK_FILE
        self.me = me
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        deadline = time.monotonic() + _RECORD_WAIT_SECONDS
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if self._try_lock(fd, fcntl):
                    self.fd, fd = fd, None
                    _HELD_FDS.add(self.fd)
                    return
            finally:
                if fd is not None:
                    os.close(fd)
            if time.monotonic() > deadline:
                raise _in_use(self.path.parent, self._read())
            time.sleep(0.05)

    def _try_lock(self, fd: int, fcntl: Any) -> bool:
        """True once held; False to try again (the lock file was replaced, or its record is not written yet)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            exclusive = True
        except BlockingIOError:
            exclusive = False
        if exclusive:
            if not self._same_file(fd):
                return False
            self._write(fd)
            if self.me.run is None:
                return True
            fcntl.flock(fd, fcntl.LOCK_SH)  # let this run's other processes join
            return self._joined(self._read())
        holder = self._read()
        if self.me.run is None or holder is None or holder.run != self.me.run:
            if holder is None:
                return False  # its holder is writing the record: look again
            raise _in_use(self.path.parent, holder)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a process of this run is between taking the lock and sharing it
        return self._same_file(fd) and self._joined(self._read())

    def _joined(self, holder: LockHolder | None) -> bool:
        if holder is None or holder.run != self.me.run:
            raise _in_use(self.path.parent, holder)
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _write(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.me.to_json().encode("utf-8"), 0)
        os.fsync(fd)

    def _read(self) -> LockHolder | None:
        try:
            return LockHolder.parse(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def release(self) -> None:
        import fcntl

        if self.fd is None:
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the last process of the run deletes it
            storage.unlink(self.path)
        except BlockingIOError:
            pass
        finally:
            _HELD_FDS.discard(self.fd)
            os.close(self.fd)
            self.fd = None


class _LeaseLock:
    """An object with a lease on a store without locks; the holder renews it until released."""

    def __init__(self, root: Path, me: LockHolder):
        self.path = root / LOCK_FILE
        self.me = me
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._owner = False

    def _read(self) -> LockHolder | None:
        try:
            return LockHolder.parse(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _write(self) -> None:
        from dataclasses import replace

        record = replace(self.me, expires_at=time.time() + LEASE_SECONDS)
        self.path.write_text(record.to_json(), encoding="utf-8")

    def acquire(self) -> None:
        holder = self._read()
        live = holder is not None and (holder.expires_at or 0) > time.time()
        if live and holder.host == self.me.host and not pid_is_running(holder.pid):
            live = False  # its holder died on this host: no need to wait for the lease to end
        if live and (self.me.run is None or holder.run != self.me.run):
            raise _in_use(self.path.parent, holder)
        if live:
            return  # joined this run's lock; its first process renews it
        self._write()
        holder = self._read()
        if holder is None or holder.token != self.me.token:
            raise _in_use(self.path.parent, holder)
        self._owner = True
        self._renewer = threading.Thread(target=self._renew, name="avt-output-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 4):
            try:
                self._write()
            except Exception:  # noqa: BLE001 - a missed renewal is retried; the lease has slack
                logger.warning("could not renew the lock lease %s", self.path, exc_info=True)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._owner:
            holder = self._read()
            if holder is not None and holder.token == self.me.token:
                storage.unlink(self.path)
            self._owner = False


def check_not_held(root: str | os.PathLike) -> None:
    """:class:`OutputInUseError` (the line :func:`hold_output` would give) when another avt command holds the local
    output ``root`` now; nothing is created or written (the dry run of ``avt generate``). A store's lease is not
    looked at: it is judged when a real run takes it."""
    import fcntl

    root = storage.as_path(root)
    if storage.is_remote(root):
        return
    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY)
    except OSError:  # no lock file (or no folder): nobody holds it
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise _in_use(root, _LocalLock(root, LockHolder.for_this_process("", None))._read()) from None
    except OSError:  # a filesystem without POSIX locks: judged by the real run
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold_output(root: str | os.PathLike, command: str, run: str | None = None) -> Iterator[LockHolder]:
    """Hold ``root``'s lock for the block (created if missing); raises :class:`OutputInUseError` naming the holder
    when another avt command has it. ``run``: the key shared by the processes of one multi-process run."""
    root = storage.as_path(root)
    storage.makedirs(root)
    me = LockHolder.for_this_process(command, run)
    lock: _LocalLock | _LeaseLock = _LeaseLock(root, me) if storage.is_remote(root) else _LocalLock(root, me)
    try:
        lock.acquire()
    except (
        OSError
    ) as error:  # a filesystem without POSIX locks (ENOLCK, ENOTSUP): a lease, as on object stores
        if isinstance(error, BlockingIOError) or isinstance(lock, _LeaseLock):
            raise
        logger.warning("%s has no file locks (%s): using a lease lock", root, error)
        lock = _LeaseLock(root, me)
        lock.acquire()
    try:
        yield me
    finally:
        lock.release()


__all__ = [
    "LEASE_SECONDS",
    "LOCK_FILE",
    "LockHolder",
    "OutputInUseError",
    "check_not_held",
    "hold_output",
    "launch_run_key",
    "pid_is_running",
]
