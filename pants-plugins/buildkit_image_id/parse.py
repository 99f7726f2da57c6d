"""The image id in `docker build` output, whatever BuildKit's progress printer puts after it.

Pants 2.17 looks for `writing image sha256:<id> done`, but BuildKit's plain progress prints
`writing image sha256:<id> 0.0s done` when writing the image spans two progress updates (3 builds
in 20 of one cached image on these machines). Pants then records the id as `<unknown>`, and as an
upstream image's docker-info.json (with that id) is part of every downstream build context, every
course image built FROM it gets another content tag. Pants fixed its pattern upstream
(pantsbuild/pants#21000, in releases after 2.17); this is the same fix.
"""

from __future__ import annotations

import re

IMAGE_ID = re.compile(
    "|".join(
        (
            # BuildKit, the engine's own image store.
            r"writing image (?P<digest>sha256:[0-9a-f]{64})",
            # BuildKit, the containerd image store (the id is the manifest list's digest).
            r"exporting manifest list (?P<manifest_list>sha256:[0-9a-f]{64})",
            # The legacy builder.
            r"Successfully built (?P<short_id>[0-9a-f]+)\b",
        )
    )
)

UNKNOWN = "<unknown>"


def parse_image_id(*outputs: bytes) -> str:
    """The last image id in the first output that has one (the docker build stdout, stderr)."""
    for output in outputs:
        for line in reversed(output.decode(errors="replace").splitlines()):
            match = IMAGE_ID.search(line)
            if match:
                return str(
                    match.group("digest") or match.group("manifest_list") or match.group("short_id")
                )
    return UNKNOWN
