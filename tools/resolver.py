"""Resolving requirements into locks inside an image, so that the image's Python decides markers.

`resolve(client, image, jobs)` starts one container of `image`, installs a pinned pip-tools in a
throwaway venv there, and runs `pip-compile --generate-hashes` per job against the package index.
A job's constraints are either given (the pins of the layers below) or the packages installed in
the image itself (`pip list`), so that what the image already has is kept at its version and left
out of the layer's lock (`tools.lock.render_lock`). The container's progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from tools.wheelhouse import fetch

#: The resolver's own tools, pinned so that the same index state gives the same lock.
PIP_TOOLS = ("pip==26.0.1", "pip-tools==7.6.2")
_WHEELHOUSE_MOUNT = "/wheelhouse"

# A Debian image without Python (the seeded `debian:bookworm-slim`) gets Debian's python3 first.
_PRELUDE = r"""
set -e
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "resolver: installing Debian's python3-venv" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
exec python3 -I -c "$RESOLVER_SCRIPT"
"""

_SCRIPT = r"""
import json, os, subprocess, sys, tempfile
spec = json.loads(os.environ["RESOLVER_JOBS"])
def say(text):
    print("resolver: " + text, file=sys.stderr, flush=True)
installed = subprocess.run(
    [sys.executable, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
    capture_output=True, text=True,
).stdout
work = tempfile.mkdtemp()
say("installing " + " ".join(spec["tools"]))
subprocess.run([sys.executable, "-m", "venv", work + "/venv"], check=True)
subprocess.run(
    [work + "/venv/bin/pip", "install", "--quiet", "--disable-pip-version-check", *spec["tools"]],
    check=True, stdout=sys.stderr,
)
results = {}
for job in spec["jobs"]:
    say("resolving " + job["name"])
    folder = tempfile.mkdtemp(dir=work)
    with open(folder + "/requirements.in", "w") as f:
        f.write(job["requirements"])
    with open(folder + "/constraints.txt", "w") as f:
        f.write(installed if job["constraints"] is None else job["constraints"])
    done = subprocess.run(
        [work + "/venv/bin/pip-compile", "--verbose", "--generate-hashes", "--allow-unsafe",
         "--strip-extras", "--no-header", "--no-emit-index-url", "--no-emit-trusted-host",
         "--no-emit-find-links", *(["--find-links", spec["find_links"]] if spec["find_links"] else []),
         "--constraint", folder + "/constraints.txt",
         "--output-file", folder + "/out.txt", folder + "/requirements.in"],
        capture_output=True, text=True, cwd=folder,
    )
    if done.returncode:
        results[job["name"]] = {"stdout": done.stdout, "stderr": done.stderr}
    else:
        with open(folder + "/out.txt") as f:
            compiled = f.read().replace(folder + "/", "")
        results[job["name"]] = {"compiled": compiled}
print(json.dumps({"installed": installed, "results": results}))
"""


class ResolveError(RuntimeError):
    """The resolver could not run, or a job's requirements cannot be resolved."""


def failure_text(stdout: str, stderr: str) -> str:
    """What a failed `pip-compile --verbose` says, for people: its error, not the traceback of
    the exception it raised after it, and pip's account of a conflict (which package needs
    what, against which pin), which pip logs on stdout."""
    said = stderr.split("Traceback (most recent call last)")[0].strip()
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "The conflict is caused by:" in line), None)
    if start is not None:
        end = next(
            (i for i in range(start, len(lines)) if "To fix this you could try" in lines[i]),
            len(lines),
        )
        said = "\n".join([said, *(line.strip() for line in lines[start:end] if line.strip())])
    return said.strip() or stderr.strip() or stdout.strip()[-2000:]


@dataclass(frozen=True)
class Job:
    name: str
    requirements: str
    #: `name==version` lines the resolution must keep; None: the image's installed packages.
    constraints: str | None = None


@dataclass(frozen=True)
class Resolved:
    installed: str  # `pip list --format=freeze` of the image's Python
    compiled: dict[str, str]  # job name -> pip-compile's output


def resolve(client: Any, image: str, jobs: list[Job], local_wheels: Sequence[str] = ()) -> Resolved:
    """Runs every job in one container of `image` (docker SDK client); raises ResolveError.

    `local_wheels`: pins the index does not serve (`name==version+label`), fetched by the host's
    pip into a folder (`tools/wheelhouse.py`) that is mounted and searched before the index.
    """
    if local_wheels:
        with tempfile.TemporaryDirectory() as folder:
            fetch(Path(folder), list(local_wheels))
            return _resolve(client, image, jobs, Path(folder))
    return _resolve(client, image, jobs, None)


def _resolve(client: Any, image: str, jobs: list[Job], wheelhouse: Path | None) -> Resolved:
    spec = {
        "tools": list(PIP_TOOLS),
        "find_links": _WHEELHOUSE_MOUNT if wheelhouse else None,
        "jobs": [
            {"name": j.name, "requirements": j.requirements, "constraints": j.constraints}
            for j in jobs
        ],
    }
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ResolveError(
            f"the image {image} is not in the Docker engine: build it (./pants package images/base::)"
        ) from None
    output = _run(
        client,
        image,
        _PRELUDE,
        {"RESOLVER_SCRIPT": _SCRIPT, "RESOLVER_JOBS": json.dumps(spec)},
        wheelhouse,
        "the resolver",
    )
    data = json.loads(output)
    errors = {
        name: failure_text(r["stdout"], r["stderr"])
        for name, r in data["results"].items()
        if "compiled" not in r
    }
    if errors:
        raise ResolveError(
            "\n".join(f"{name}: cannot be resolved:\n{text}" for name, text in errors.items())
        )
    return Resolved(data["installed"], {name: r["compiled"] for name, r in data["results"].items()})


_RECORDS_SCRIPT = r"""
set -e
printf '%s' "$COURSE_LOCK" > /tmp/course.lock
python3 -m pip install --quiet --no-deps --require-hashes --target /tmp/installed \
  -r /tmp/course.lock >&2
exec python3 -I -c 'import glob, json
print(json.dumps([open(p).read() for p in sorted(glob.glob("/tmp/installed/*.dist-info/RECORD"))]))'
"""


def distribution_records(client: Any, image: str, lock: str) -> list[str]:
    """The RECORD file of every distribution in `lock` (a lock's text), as pip installs them
    (no dependencies, hashes checked) into a throwaway folder of a container of `image`: what
    each puts on sys.path, from its own files. Raises ResolveError."""
    output = _run(client, image, _RECORDS_SCRIPT, {"COURSE_LOCK": lock}, None, "the lock's install")
    return list(json.loads(output))


def _run(
    client: Any,
    image: str,
    script: str,
    environment: dict[str, str],
    wheelhouse: Path | None,
    what: str,
) -> str:
    """Runs a bash `script` as root in a fresh container of `image`, its progress (stderr) going
    to stderr; the last line of its output. Always removes the container; ResolveError if the
    script fails."""
    container = client.containers.run(
        image,
        ["bash", "-c", script],
        environment={
            **environment,
            # Trust the same CA bundle as the image's system (HTTPS proxies); pip's own otherwise.
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            "PIP_CONFIG_FILE": "/dev/null",
        },
        volumes=(
            {str(wheelhouse.resolve()): {"bind": _WHEELHOUSE_MOUNT, "mode": "ro"}}
            if wheelhouse
            else {}
        ),
        user="root",
        working_dir="/",
        entrypoint=[],
        detach=True,
    )
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=False, stderr=True):
            sys.stderr.write(chunk.decode(errors="replace"))
        status = container.wait()
        output = container.logs(stdout=True, stderr=False).decode()
    finally:
        container.remove(force=True)
    if status.get("StatusCode") != 0:
        raise ResolveError(f"{what} failed in {image} (exit {status.get('StatusCode')})")
    return output.strip().splitlines()[-1]
