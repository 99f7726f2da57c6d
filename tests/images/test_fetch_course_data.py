"""images/base/fetch-course-data, what a course image build runs for each [[data]] entry: run as
the build runs it (a script, the standard library, HOME the learner's home), against a real HTTP
server on loopback serving fixture files. course.toml allows https:// only; the script itself is
scheme-blind, so plain HTTP on loopback tests the same code path.

The image build's side (one `RUN --mount=type=cache,... fetch-course-data` line per entry) is
tested in tests/plugin/test_plugin_course_image.py.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path("images/base/fetch-course-data")


class Served:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        served = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                served.requests.append(self.path)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def add(self, name: str, content: bytes) -> str:
        (self.folder / name).write_bytes(content)
        return hashlib.sha256(content).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "www").mkdir()
    server = Served(tmp_path / "www")
    yield server
    server.server.shutdown()
    server.server.server_close()


def fetch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--cache", str(tmp_path / "cache"), *args],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def archive(kind: str, members: dict[str, bytes | str]) -> bytes:
    """A zip or tar.gz of `members`: name -> content, or for a tar, `"-> target"`: a symlink."""
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as z:
            for name, content in members.items():
                z.writestr(name, content)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as t:
            for name, content in members.items():
                info = tarfile.TarInfo(name)
                if isinstance(content, str):
                    info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("-> ")
                    t.addfile(info)
                    continue
                info.size = len(content)
                t.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_a_file_is_downloaded_once_verified_and_found_offline_afterwards(
    tmp_path: Path, served: Served
) -> None:
    sha = served.add("vectors.txt", b"the 0.1 0.2\n")
    done = fetch(tmp_path, sha, served.url("vectors.txt"), "data/vectors.txt")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home/data/vectors.txt").read_bytes() == b"the 0.1 0.2\n"
    assert served.requests == ["/vectors.txt"]
    # Another course (another home) with the same file: from the cache, the server not asked.
    served.server.shutdown()
    (tmp_path / "home/data/vectors.txt").unlink()
    again = fetch(tmp_path, sha, served.url("vectors.txt"), "data/vectors.txt")
    assert again.returncode == 0, again.stderr
    assert "in the cache" in again.stdout and served.requests == ["/vectors.txt"]
    assert (tmp_path / "home/data/vectors.txt").read_bytes() == b"the 0.1 0.2\n"


def test_a_cache_entry_that_is_not_its_file_is_downloaded_again(
    tmp_path: Path, served: Served
) -> None:
    """The cache is shared by every build on the machine: what it holds is checked."""
    sha = served.add("vectors.txt", b"the 0.1 0.2\n")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / sha).write_bytes(b"something else\n")
    done = fetch(tmp_path, sha, served.url("vectors.txt"), "data/vectors.txt")
    assert done.returncode == 0, done.stderr
    assert served.requests == ["/vectors.txt"]
    assert (tmp_path / "home/data/vectors.txt").read_bytes() == b"the 0.1 0.2\n"
    assert (tmp_path / "cache" / sha).read_bytes() == b"the 0.1 0.2\n"


def test_a_wrong_checksum_fails_and_leaves_nothing(tmp_path: Path, served: Served) -> None:
    served.add("vectors.txt", b"changed upstream\n")
    done = fetch(tmp_path, "0" * 64, served.url("vectors.txt"), "data/vectors.txt")
    assert done.returncode != 0
    assert "course.toml says 0000" in done.stderr
    assert not (tmp_path / "home/data/vectors.txt").exists()
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_archive_is_unpacked_where_the_library_looks(
    tmp_path: Path, served: Served, kind: str
) -> None:
    """nltk looks in ~/nltk_data; torchvision's datasets in the root a notebook names."""
    content = archive(kind, {"tokenizers/punkt/english.pickle": b"p", "corpora/stop.txt": b"s"})
    sha = served.add(f"nltk.{kind}", content)
    done = fetch(tmp_path, "--unpack", sha, served.url(f"nltk.{kind}"), "nltk_data")
    assert done.returncode == 0, done.stderr
    home = tmp_path / "home"
    found = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
    assert found == ["nltk_data/corpora/stop.txt", "nltk_data/tokenizers/punkt/english.pickle"]
    assert "(2 files) unpacked" in done.stdout
    assert (home / "nltk_data").stat().st_mode & 0o777 == 0o755  # the learner's to read


@pytest.mark.parametrize(
    ("kind", "members"),
    [
        ("tar.gz", {"../outside.txt": b"x"}),
        ("tar.gz", {"ok.txt": b"x", "/etc/passwd-like": b"y"}),
        ("tar.gz", {"link": "-> /etc/passwd"}),
        ("zip", {"ok.txt": b"x", "../outside.txt": b"y"}),
    ],
    ids=["tar-parent", "tar-absolute", "tar-symlink", "zip-parent"],
)
def test_an_archive_writing_outside_its_folder_is_refused(
    tmp_path: Path, served: Served, kind: str, members: dict[str, bytes | str]
) -> None:
    sha = served.add(f"evil.{kind}", archive(kind, members))
    done = fetch(tmp_path, "--unpack", sha, served.url(f"evil.{kind}"), "data/evil")
    assert done.returncode != 0 and "outside the folder" in done.stderr
    assert [p.name for p in (tmp_path / "home/data").iterdir()] == []  # no half-unpacked folder
    assert not (tmp_path / "home/outside.txt").exists()


def test_unpack_of_a_file_that_is_no_archive_says_so(tmp_path: Path, served: Served) -> None:
    sha = served.add("plain.csv", b"a,b\n1,2\n")
    done = fetch(tmp_path, "--unpack", sha, served.url("plain.csv"), "data/plain")
    assert done.returncode != 0 and "is no zip or tar archive" in done.stderr


def test_two_entries_with_one_path_are_refused(tmp_path: Path, served: Served) -> None:
    first, second = served.add("x.csv", b"1\n"), served.add("y.csv", b"2\n")
    assert fetch(tmp_path, first, served.url("x.csv"), "data/x.csv").returncode == 0
    done = fetch(tmp_path, second, served.url("y.csv"), "data/x.csv")
    assert done.returncode != 0 and "an earlier [[data]] entry has that path" in done.stderr
    assert (tmp_path / "home/data/x.csv").read_bytes() == b"1\n"
