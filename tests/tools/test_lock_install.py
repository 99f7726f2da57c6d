"""A course image installs exactly its lock, or its build fails with the reason (real base image).

Runs the course template's own install line (images/course/Dockerfile, the `RUN` that installs
requirements.lock) in a container of the real `images/base:pytorch`, against wheels made here
and served from a folder (no index, no network): a lock whose hash does not match the file is
refused, and so is a lock that leaves out a dependency (`--no-deps` installs it, `pip check`
fails the build).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import docker
import pytest

TEMPLATE = Path("images/course/Dockerfile")
LOCK_IN_IMAGE = "/tmp/course-requirements.lock"


def install_command() -> str:
    """The template's RUN instruction that installs the course lock, continuation lines joined."""
    text = TEMPLATE.read_text().replace("\\\n", " ")
    lines = [
        line for line in text.splitlines() if line.startswith("RUN ") and LOCK_IN_IMAGE in line
    ]
    assert len(lines) == 1, f"{TEMPLATE} should install {LOCK_IN_IMAGE} in one RUN: {lines}"
    return lines[0][len("RUN ") :]


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> str:
    """A minimal pure-Python wheel in `folder`; returns its sha256."""
    stem = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}/__init__.py": f"VERSION = {version!r}\n",
        f"{stem}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{stem}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},{len(text.encode())}"
        for path, text in files.items()
    ]
    files[f"{stem}.dist-info/RECORD"] = "\n".join([*record, f"{stem}.dist-info/RECORD,,"]) + "\n"
    path = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, text in files.items():
            archive.writestr(name_in_zip, text)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin(name: str, version: str, sha256: str) -> str:
    return f"{name}=={version} \\\n    --hash=sha256:{sha256}\n"


@pytest.fixture
def wheels(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "wheels"
    folder.mkdir()
    hashes = {
        "demo-dep": make_wheel(folder, "demo-dep", "1.0"),
        "demo-course-pkg": make_wheel(folder, "demo-course-pkg", "2.0", ("demo-dep>=1",)),
    }
    for path in (tmp_path, folder, *folder.iterdir()):
        path.chmod(0o755)  # the container runs as the learner (uid 1000)
    return folder, hashes


def install(client: docker.DockerClient, image: str, wheels: Path, lock: str) -> tuple[int, str]:
    (wheels.parent / "requirements.lock").write_text(lock)
    (wheels.parent / "requirements.lock").chmod(0o644)
    container = client.containers.run(
        image,
        ["bash", "-c", f"cp /in/requirements.lock {LOCK_IN_IMAGE} && {install_command()}"],
        environment={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/in/wheels"},
        volumes={str(wheels.parent): {"bind": "/in", "mode": "ro"}},
        network_mode="none",
        detach=True,
    )
    try:
        status = container.wait(timeout=300)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_lock_installs_exactly(client, base_images, wheels) -> None:
    folder, hashes = wheels
    lock = pin("demo-course-pkg", "2.0", hashes["demo-course-pkg"]) + pin(
        "demo-dep", "1.0", hashes["demo-dep"]
    )
    status, output = install(client, base_images["pytorch"], folder, lock)
    assert status == 0, output


def test_a_hash_mismatch_fails_the_build(client, base_images, wheels) -> None:
    folder, hashes = wheels
    lock = pin("demo-course-pkg", "2.0", "0" * 64) + pin("demo-dep", "1.0", hashes["demo-dep"])
    status, output = install(client, base_images["pytorch"], folder, lock)
    assert status != 0
    assert "DO NOT MATCH THE HASHES" in output and "demo_course_pkg-2.0" in output, output


def test_a_lock_missing_a_dependency_fails_the_build(client, base_images, wheels) -> None:
    folder, hashes = wheels
    status, output = install(
        client,
        base_images["pytorch"],
        folder,
        pin("demo-course-pkg", "2.0", hashes["demo-course-pkg"]),
    )
    assert status != 0
    assert "demo-course-pkg 2.0 requires demo-dep" in output, output
