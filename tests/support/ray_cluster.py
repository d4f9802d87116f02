"""A real multi-node Ray cluster on 127.0.0.1: one ``ray start --head --block`` and ``ray start --address --block``
process per node, each with its own temporary folder and free ports (other test runs on the machine may have
clusters of their own), token authentication on (``RAY_AUTH_MODE=token``, a token file), as the README describes.

Stopping sends SIGTERM to the ``ray start`` processes this helper started (``--block`` makes them stop their node's
processes), then SIGKILL to what is left of their process trees; ``ray stop`` is never used (it would stop every
Ray cluster on the machine).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
LOCK = Path(tempfile.gettempdir()) / "avt-tests-local-ray.lock"


@contextlib.contextmanager
def one_local_ray_at_a_time(timeout_s: float = 1800):
    """Held while a test module runs a multi-node cluster of its own: the test command runs two pytest workers
    (scripts/test.sh), and two clusters of one-CPU nodes on 2 cores would starve each other's runs."""
    from filelock import FileLock

    with FileLock(str(LOCK), timeout=timeout_s):
        yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRayCluster:
    """Nodes of ``cpus`` CPUs each, no GPU; ``address`` is the head's GCS ``127.0.0.1:PORT``."""

    def __init__(self, env: dict[str, str]):
        self.folder = Path(
            tempfile.mkdtemp(prefix="avt-ray-", dir="/tmp")
        )  # Unix socket paths must stay short
        token_file = self.folder / "auth_token"
        token_file.write_text(secrets.token_hex(16))
        token_file.chmod(0o600)
        self.auth_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
        # A node's `ray start --block` drains for up to 30 s on SIGTERM (Ray 2.5x, for Serve replicas) before it
        # stops its processes: stop() waited that out for every test module. Nothing here needs draining.
        self.env = {
            **env,
            **self.auth_env,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        }
        self.address = f"127.0.0.1:{free_port()}"
        self.nodes: list[subprocess.Popen] = []

    def _start(self, args: list[str], cpus: int) -> subprocess.Popen:
        name = f"n{len(self.nodes)}"
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        node = subprocess.Popen(
            [RAY, "start", *args, "--block", "--node-ip-address", "127.0.0.1", f"--num-cpus={cpus}",
             "--num-gpus=0", "--temp-dir", str(self.folder / name), "--disable-usage-stats",
             "--object-store-memory", str(150 * 2**20), f"--dashboard-agent-listen-port={free_port()}",
             f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        node.log = log
        self.nodes.append(node)
        return node

    def start_head(self, cpus: int = 1) -> None:
        port = self.address.rsplit(":", 1)[1]
        self._start(
            [
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
            ],
            cpus,
        )
        self.wait_for_nodes(1)

    def add_node(self, cpus: int = 1) -> subprocess.Popen:
        node = self._start([f"--address={self.address}"], cpus)
        self.wait_for_nodes(len(self.nodes))
        return node

    def alive_nodes(self) -> int:
        """``ray status`` with the token, as a user would run it: the number of active nodes."""
        status = subprocess.run(
            [RAY, "status", f"--address={self.address}"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if status.returncode != 0:
            return 0
        active = status.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return sum(1 for line in active.splitlines() if line.strip().startswith("1 node_"))

    def wait_for_nodes(self, count: int, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_nodes() < count:
            dead = [node.args for node in self.nodes if node.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in self.folder.glob("n*.log"))
                raise RuntimeError(f"the Ray cluster did not come up ({count} nodes): {logs}")
            time.sleep(2)

    def raylet_of(self, node: subprocess.Popen) -> int:
        """The pid of ``node``'s raylet (a child of its ``ray start --block``)."""
        import psutil

        children = psutil.Process(node.pid).children(recursive=True)
        return next(child.pid for child in children if child.name() == "raylet")

    def stop(self) -> None:
        """SIGTERM to every node at once, then one shared 30 s wait, then SIGKILL to what is left of each tree."""
        import psutil

        trees = {}
        for node in reversed(self.nodes):
            try:
                trees[node] = psutil.Process(node.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                trees[node] = []
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for node in reversed(self.nodes):
            try:
                node.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
            node.log.close()
            for child in trees[node]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()  # psutil checks it is still the same process
        shutil.rmtree(self.folder, ignore_errors=True)
