"""Wheels for the images, fetched by the host's pip.

The stand-in's torch layer (PyTorch, torchvision and several GB of CUDA libraries) is installed
from wheels the host's pip downloads with the host's own configuration (a find-links folder or an
extra index: `PIP_FIND_LINKS`, `PIP_EXTRA_INDEX_URL`, pip.conf), for the images' platform, into
the build context (`images/base:torch-wheels`): fetched once per lock and cached by Pants, never
by each cold image build. A pin with a local version label (`torch==2.13.0+cpu`: builds that live
on PyTorch's own wheel index) is fetched the same way for the resolver (`tools/resolver.py`).
The lock's hashes still decide what may be installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

#: The platform of the images' Python (Debian bookworm's CPython 3.11 on x86_64, glibc 2.36),
#: whatever the host. pip takes `--platform` literally: every manylinux tag that bookworm's glibc
#: runs is named (the CUDA libraries' wheels are tagged 2_27, 2_18, 2010...).
_MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
]  # fmt: skip
PLATFORM_ARGS = (
    "--only-binary=:all:",
    *(f"--platform={tag}" for tag in _MANYLINUX),
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
            "at a wheel index or folder that has them (PIP_EXTRA_INDEX_URL or PIP_FIND_LINKS)"
        )


if __name__ == "__main__":
    # python3 tools/wheelhouse.py DEST LOCK: every wheel of a lock, hashes checked (the build's
    # images/base:torch-wheels runs this with the host's Python, standard library only).
    fetch(Path(sys.argv[1]), ["--require-hashes", "-r", sys.argv[2]])
