"""tools/lock.py, tools/wheelhouse.py and the resolver's words: reading pip-compile's output,
layering it, the header that ties a lock to its requirements, which pins come from the host's pip,
and what a failed resolution tells people. Plain data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.lock import (
    course_lock,
    freeze_versions,
    modules_from_record,
    parse_lock,
    pex_lock_versions,
    pinned_by,
    render_lock,
)
from tools.resolver import failure_text
from tools.wheelhouse import download_command, local_pins

H1, H2, H3 = ("1" * 64, "2" * 64, "3" * 64)
COMPILED = f"""numpy==2.4.6 \\
    --hash=sha256:{H1}
    # via
    #   pandas
    #   tabulate
Tabulate==0.9.0 \\
    --hash=sha256:{H2} \\
    --hash=sha256:{H3}
    # via -r requirements.in
"""


def test_pins_keep_every_hash_and_their_annotations() -> None:
    lock = parse_lock(COMPILED)
    assert lock.versions() == {"numpy": "2.4.6", "tabulate": "0.9.0"}
    assert lock.pins["tabulate"].hashes == (H2, H3)
    assert lock.pins["numpy"].block.endswith("#   tabulate")
    assert lock.input_digest is None


def test_a_layer_lock_leaves_out_what_is_installed_below_at_that_version() -> None:
    text = render_lock(
        ["a layer"], "requirements.txt", "tabulate==0.9.0\n", COMPILED, {"NumPy": "2.4.6"}
    )
    lock = parse_lock(text)
    assert lock.versions() == {"tabulate": "0.9.0"}
    assert text.startswith("# a layer\n# input: requirements.txt sha256:")
    assert lock.matches("tabulate==0.9.0\n") and not lock.matches("tabulate==0.9.1\n")
    # Another version below is not the same package: the layer keeps its pin.
    assert "numpy" in parse_lock(render_lock([], "r", "", COMPILED, {"numpy": "1.26.4"})).pins


def test_freeze_output_is_normalized() -> None:
    text = "Jupyter_Core==5.9.1\nruamel.yaml==0.18.6\n# comment\nsomething @ file:///x\n"
    assert freeze_versions(text) == {"jupyter-core": "5.9.1", "ruamel-yaml": "0.18.6"}


@pytest.mark.parametrize(
    ("asked", "have", "expected"),
    [
        pytest.param("2.13.0", "2.13.0", True, id="same"),
        pytest.param("2.13.0", "2.13.0+cpu", True, id="a-local-build-of-the-asked-release"),
        pytest.param("2.13.0+cpu", "2.13.0+cpu", True, id="same-local-build"),
        pytest.param("2.13.0+cpu", "2.13.0", False, id="asked-a-local-build-got-the-release"),
        pytest.param("2.13.0+cu121", "2.13.0+cpu", False, id="another-local-build"),
        pytest.param("2.13.0", "2.13.1+cpu", False, id="another-release"),
        pytest.param("2.13", "2.13.0+cpu", False, id="prefix-is-not-a-match"),
    ],
)
def test_pinned_by_follows_pep_440_local_labels(asked: str, have: str, expected: bool) -> None:
    assert pinned_by(asked, have) is expected


def test_local_pins_are_the_wheels_the_index_does_not_serve() -> None:
    lines = ["# comment", "torch==2.13.0+cpu", "numpy==2.4.6", "  Foo_Bar==1.0+local.2  ", "x>=1"]
    assert local_pins(lines) == ["torch==2.13.0+cpu", "Foo_Bar==1.0+local.2"]


def test_the_host_pip_downloads_for_the_images_platform_without_dependencies() -> None:
    command = download_command(Path("/w"), ["--require-hashes", "-r", "torch.lock"])
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--dest=/w" in command
    assert {"--only-binary=:all:", "--python-version=3.11", "--abi=cp311"} <= set(command)
    assert command[-3:] == ["--require-hashes", "-r", "torch.lock"]
    # pip takes --platform literally; the CUDA libraries' wheels carry older manylinux tags.
    platforms = {arg.split("=", 1)[1] for arg in command if arg.startswith("--platform=")}
    assert {"manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64"} <= platforms
    assert "manylinux_2_37_x86_64" not in platforms  # newer than bookworm's glibc (2.36)


# What `pip-compile --verbose` printed for the tensorflow layer on a stand-in whose h5py was too
# new (2026-12-05; progress lines shortened): the error on stderr, pip's account on stdout.
CONFLICT_STDERR = """  ERROR: Cannot install -r r.in (line 1) because these package versions have \
conflicting dependencies.
Traceback (most recent call last):
  File "/tmp/v/lib/python3.11/site-packages/pip/_internal/resolution/resolvelib/resolver.py", \
line 99, in resolve
pip._internal.exceptions.DistributionNotFound: ResolutionImpossible: for help visit \
https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts
""".replace(
    "\\\n", ""
)
CONFLICT_STDOUT = """Using indexes:
  Collecting ml_dtypes<1.0.0,>=0.5.1 (from tensorflow-cpu==2.21.0->-r r.in (line 1))
  INFO: pip is looking at multiple versions of tensorflow-cpu to determine which version ...
  The conflict is caused by:
      tensorflow-cpu 2.21.0 depends on h5py<3.15.0 and >=3.11.0
      The user requested (constraint) h5py==3.16.0

  Additionally, some packages in these conflicts have no matching distributions available:
      h5py

  To fix this you could try to:
  1. loosen the range of package versions you've specified
"""


def test_a_conflict_says_which_packages_want_what() -> None:
    assert failure_text(CONFLICT_STDOUT, CONFLICT_STDERR).splitlines() == [
        "ERROR: Cannot install -r r.in (line 1) because these package versions have "
        "conflicting dependencies.",
        "The conflict is caused by:",
        "tensorflow-cpu 2.21.0 depends on h5py<3.15.0 and >=3.11.0",
        "The user requested (constraint) h5py==3.16.0",
        "Additionally, some packages in these conflicts have no matching distributions available:",
        "h5py",
    ]


def test_other_failures_keep_the_error_without_the_traceback() -> None:
    stderr = "ERROR: No matching distribution found for nosuchpackage\nTraceback (most recent call last):\n  File ..."
    assert failure_text("Collecting nosuchpackage\n", stderr) == (
        "ERROR: No matching distribution found for nosuchpackage"
    )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            "foo/__init__.py,sha256=a,10\nfoo/sub/x.py,sha256=b,5\nfoo_utils.py,sha256=c,3\n"
            "foo_grader-1.0.dist-info/METADATA,sha256=d,9\nfoo_grader-1.0.dist-info/RECORD,,\n"
            "../../bin/foo-grade,sha256=e,4\n",
            ("foo-grader", "1.0", {"foo", "foo_utils"}),
            id="import-name-differs-from-the-distribution",
        ),
        pytest.param(
            "_cffi.cpython-311-x86_64-linux-gnu.so,sha256=a,1\nLICENSE,sha256=b,2\n"
            "x.pth,sha256=c,3\n__pycache__/y.cpython-311.pyc,,\nz-2.0.data/scripts/z,sha256=d,1\n"
            "Cffi_Thing-2.0.dist-info/RECORD,,\n",
            ("cffi-thing", "2.0", {"_cffi"}),
            id="extension-module-and-stray-files",
        ),
        pytest.param("foo.py,sha256=a,1\n", None, id="no-dist-info"),
    ],
)
def test_modules_from_record(record: str, expected: tuple | None) -> None:
    assert modules_from_record(record) == expected


def test_modules_round_trip_through_the_lock_header() -> None:
    text = course_lock(
        "demo", "pytorch", "Foo-Grader==1.0\n", modules={"Foo_Grader": ["foo", "foo_utils"]}
    )
    assert "# modules: foo-grader = foo, foo_utils\n" in text
    assert parse_lock(text).modules == {"foo-grader": ("foo", "foo_utils")}


def test_a_pants_lockfile_gives_every_locked_version_by_normalized_name() -> None:
    """The project's resolve (3rdparty/python/default.lock): `//` header lines, then pex's JSON."""
    text = (
        "// This lockfile was autogenerated by Pants.\n"
        '// {"version": 3}\n'
        '{"locked_resolves": [{"locked_requirements": ['
        '{"project_name": "Jupyter_Hub", "version": "6.1.1"},'
        '{"project_name": "tornado", "version": "6.5.2"}]}]}\n'
    )
    assert pex_lock_versions(text) == {"jupyter-hub": "6.1.1", "tornado": "6.5.2"}
