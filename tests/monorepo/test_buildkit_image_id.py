"""The image id Pants records for a build (docker-info.json), from real `docker build` output.

The output below is BuildKit's plain progress from Debian's docker.io 20.10 client, where the
image is written within one progress update and where it spans two (then a duration precedes
`done`; Pants 2.17's own pattern misses it, see pants-plugins/buildkit_image_id/parse.py).
"""

from __future__ import annotations

import pytest

from buildkit_image_id.parse import UNKNOWN, parse_image_id

ID = "sha256:bfd2e641b61205e2ba26c406bdbf8cc102286f6ec9010672ecfbb657a1ddd143"
EXPORT = "#8 exporting to image\n#8 exporting layers done\n{writing}\n#8 naming to bench:a done\n"


@pytest.mark.parametrize(
    "writing",
    [
        f"#8 writing image {ID} done",
        f"#8 writing image {ID}\n#8 writing image {ID} 0.0s done",
        f"#8 writing image {ID} 0.1s done",
    ],
    ids=["one update", "two updates", "duration only"],
)
def test_buildkit_output(writing: str) -> None:
    stderr = EXPORT.format(writing=writing).encode()
    assert parse_image_id(b"", stderr) == ID


def test_the_containerd_image_store_names_the_manifest_list() -> None:
    stderr = f"#9 exporting manifest list {ID} done\n#9 naming to x:y done\n".encode()
    assert parse_image_id(b"", stderr) == ID


def test_legacy_builder_output() -> None:
    stdout = (
        b"Step 3/3 : COPY Dockerfile /df\n ---> 055569da03f3\nSuccessfully built 055569da03f3\n"
    )
    assert parse_image_id(stdout, b"") == "055569da03f3"


def test_no_image_id() -> None:
    assert parse_image_id(b"", b"ERROR: failed to solve\n") == UNKNOWN
