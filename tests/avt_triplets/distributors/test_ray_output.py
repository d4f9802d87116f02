"""Issue 18 §15: while avt holds a Ray connection, Ray's own output of the driver process (its C++ core writes to
descriptor 2, its error subscriber prints raylet messages to stdout) goes to a log file; avt's lines do not."""

from __future__ import annotations

import subprocess
import sys

DRIVER = """
import logging, os, sys
from pathlib import Path
from avt_triplets.distributors.ray_output import DriverOutputToLog

logging.basicConfig(format="%(levelname)s %(message)s")
output = DriverOutputToLog()
output.start(Path(sys.argv[1]).with_name("before-connecting.log"))
os.write(2, b"[2026-12-06 07:28:21,908 W 6942 6942] gcs_client.cc:210: Failed to get cluster ID\\n")
output.move(Path(sys.argv[1]))  # connected: Ray's session folder is known
os.write(2, b"[2026-12-06 06:56:03,095 E 11015 11015] core_worker.cc:2465: Actor with class name ...\\n")
print("(raylet) A worker died or was killed while executing a task")
logging.getLogger("avt").warning("lost Ray node 127.0.0.1")
print("progress 1/4", file=sys.stderr)
output.stop()
os.write(2, b"after the run\\n")
print("summary")
"""


def test_ray_output_of_the_driver_goes_to_its_log_file_and_avts_lines_to_the_terminal(
    tmp_path, subprocess_env
):
    log = tmp_path / "logs" / "avt-driver.log"
    argv = [sys.executable, "-c", DRIVER, str(log)]
    run = subprocess.run(argv, env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == ["WARNING lost Ray node 127.0.0.1", "progress 1/4", "after the run"]
    assert run.stdout.splitlines() == ["summary"]
    kept = log.read_text().splitlines()
    assert "gcs_client.cc:210" in kept[0] and "core_worker.cc:2465" in kept[1]
    assert kept[2].startswith("(raylet) A worker died")
    assert not log.with_name("before-connecting.log").exists()
