"""Wheels the package index does not serve as the images need them, fetched by the host's pip.

PyTorch's CPU build (`torch==2.13.0+cpu`, what the docker-stacks pytorch-notebook installs) is
published on PyTorch's own wheel index, not on the package index, whose Linux `torch` pulls
several GB of CUDA libraries. A pin with a local version label (`+cpu`) is such a wheel: the
host's pip downloads it with the host's own configuration (a find-links folder or an extra index
that has it: `PIP_FIND_LINKS`, `PIP_EXTRA_INDEX_URL`, pip.conf), for the images' platform, into
a folder that the resolver (`tools/resolver.py`) and the image build (`images/base:torch-wheels`)
read instead of the index. The lock's hashes still decide what may be installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

#: The platform of the images' Python (Debian bookworm's CPython 3.11 on x86_64), whatever the host.
PLATFORM_ARGS = (
    "--only-binary=:all:",
    "--platform=manylinux_2_28_x86_64",
    "--python-version=3.11",
    "--implementation=cp",
    "--abi=cp311",
)

_LOCAL_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!_-]+\+[A-Za-z0-9.]+)\s*$")


def local_pins(lines: Iterable[str]) -> list[str]:
    """The `name==version+label` requirements among `lines` (a requirements file, or lock pins)."""
    return [f"{m.group(1)}=={m.group(2)}" for m in map(_LOCAL_PIN.match, lines) if m]


def download_command(dest: Path, requirements: Iterable[str]) -> list[str]:
    """The host pip's `download` of exactly these requirements (no dependencies) into `dest`.

    `requirements` may be `-r LOCK`: then pip checks every file against the lock's hashes.
    """
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar=off",
        f"--dest={dest}", *PLATFORM_ARGS, *requirements,
    ]  # fmt: skip


def fetch(dest: Path, requirements: list[str]) -> None:
    """Downloads `requirements` into `dest`; SystemExit saying where such wheels come from."""
    if not requirements:
        return
    print(f"wheelhouse: fetching {' '.join(requirements)} with the host's pip", flush=True)
    done = subprocess.run(download_command(dest, requirements))
    if done.returncode:
        raise SystemExit(
            f"wheelhouse: the host's pip could not download {' '.join(requirements)}: point it "
            "at a wheel index or folder that has them (PIP_EXTRA_INDEX_URL or PIP_FIND_LINKS; "
            "for torch's CPU build, PyTorch's CPU wheel index)"
        )


if __name__ == "__main__":
    # python3 tools/wheelhouse.py DEST LOCK: every wheel of a lock, hashes checked (the build's
    # images/base:torch-wheels runs this with the host's Python, standard library only).
    fetch(Path(sys.argv[1]), ["--require-hashes", "-r", sys.argv[2]])
