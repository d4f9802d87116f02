"""Check a folder of wheels meant for the lent GPU machine before spending device time on it.

* every ``Requires-Dist`` of every wheel (markers evaluated for CPython 3.12 on Linux x86-64, extras ignored) is met
  by another carried wheel of a matching version, or by a package the machine's image already holds;
* one version per distribution (two stop ``pip install --no-deps`` of the whole folder);
* the folder plus this repository's tracked files fit the 64 MiB that travel with a device call.

msclap's own pins (transformers<5, numpy<2, pandas<3, librosa<0.11) are stale and deliberately not installed
(``avt_triplets.msclap_scorer`` adapts it), so only the presence of its requirements is checked. Prints a summary;
exits 1 on a problem.

    python bench/check_gpu_wheels.py .whl
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LIMIT_MIB = 64
# What the device machines' image holds (docs of the device tool, read 2026-11-17); versions where they were listed.
MACHINE_VERSIONS = {
    "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0",
    "numpy": "2.5.2",
    "safetensors": "0.8.0",
    "tokenizers": "0.23.2",
    "torch": "2.11.0",
    "torchaudio": "2.11.0",
    "torchvision": "0.26.0",
    "transformers": "5.17.0",
    "triton": "3.6.0",
    "sentencepiece": "0.2.2",
}
MACHINE_PACKAGES = set(MACHINE_VERSIONS) | {
    *"""aiohttp anyio attrs certifi charset-normalizer click cloudpickle filelock fsspec h11 hf-xet httpcore httpx
    idna jinja2 joblib lazy-loader llvmlite markupsafe matplotlib msgpack networkx numba nvidia-ml-py packaging
    pandas pillow protobuf psutil pyarrow python-dateutil pyyaml requests rich scikit-learn scipy six sympy
    tensorboard threadpoolctl tqdm typer typing-extensions urllib3 xxhash""".split()
}
NO_VERSION_CHECK = {"msclap"}  # installed --no-deps on purpose; its pins predate transformers 5 / numpy 2


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def _environment() -> dict[str, str]:
    env = default_environment()
    env.update(
        python_version="3.12",
        python_full_version="3.12.3",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine="x86_64",
        os_name="posix",
    )
    return env


def _problems(carried: dict[str, tuple[str, list[str]]]) -> list[str]:
    env, problems = _environment(), []
    for name, (_version, requires) in sorted(carried.items()):
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({**env, "extra": ""}):
                continue
            needed = canonicalize_name(requirement.name)
            if needed in carried:
                have = carried[needed][0]
            elif needed in MACHINE_PACKAGES:
                have = MACHINE_VERSIONS.get(needed)
                if have is None:
                    continue  # on the machine, version not listed: pip check there reports a mismatch
            else:
                problems.append(f"{name} needs {requirement}: neither carried nor on the machine")
                continue
            if name not in NO_VERSION_CHECK and not requirement.specifier.contains(
                Version(have), prereleases=True
            ):
                problems.append(
                    f"{name} needs {requirement}, but {needed} {have} is what the machine will import"
                )
    return problems


def _tracked_bytes(repo: Path) -> int:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    return sum((repo / f).stat().st_size for f in files.decode().split("\0") if f and (repo / f).is_file())


def main(folder: str) -> int:
    wheels = sorted(Path(folder).glob("*.whl"))
    carried: dict[str, tuple[str, list[str]]] = {}
    problems = []
    for wheel in wheels:
        meta = _metadata(wheel)
        name = canonicalize_name(meta["Name"])
        if name in carried:
            problems.append(f"two versions of {name}: {carried[name][0]} and {meta['Version']}")
        carried[name] = (meta["Version"], meta.get_all("Requires-Dist") or [])
    problems += _problems(carried)
    wheel_mib = sum(w.stat().st_size for w in wheels) / 2**20
    tree_mib = _tracked_bytes(Path(__file__).resolve().parents[1]) / 2**20
    if wheel_mib + tree_mib > LIMIT_MIB:
        problems.append(f"{wheel_mib:.1f} MiB of wheels + {tree_mib:.1f} MiB of repository > {LIMIT_MIB} MiB")
    for name, (version, _) in sorted(carried.items()):
        print(f"  {name} {version}")
    print(
        f"{len(wheels)} wheels, {wheel_mib:.1f} MiB (+ {tree_mib:.1f} MiB of tracked files; limit {LIMIT_MIB} MiB)"
    )
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems or not wheels else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else ".whl"))
