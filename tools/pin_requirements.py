"""Locks a course's requirements.txt against its flavor: `courses/<slug>/requirements.lock`.

    ./pants package images/base::   (the flavors, once)
    ./pants run tools:pin-requirements -- <slug> [<slug> ...]   (default: every course)

The requirements are resolved in the course's flavor image, so that what the flavor already has
counts: its packages stay at their versions, and the lock holds only what the course's own layer
adds, with the whole tree pinned and hashed. The course image installs exactly that lock
(`pip install --no-deps --require-hashes`), and the static check `requirements-lock` fails when
requirements.txt changes without a new lock.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import docker

from catalog import CatalogError, read_course
from tools.course_check.cli_common import course_directories
from tools.course_check.dependencies import parse_requirements
from tools.course_check.inventory import built_base_image
from tools.lock import (
    LOCK_FILE,
    REQUIREMENTS_FILE,
    course_lock,
    freeze_versions,
    modules_from_record,
    parse_lock,
)
from tools.lock_base_images import FLAVOR_LAYERS
from tools.resolver import Job, ResolveError, distribution_records, resolve
from tools.wheelhouse import local_pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("courses", nargs="*", metavar="COURSE", help="slug or path; default: all")
    args = parser.parse_args(argv)
    by_flavor = defaultdict(list)
    for directory in course_directories(args.courses):
        try:
            by_flavor[read_course(directory).flavor].append(directory)
        except CatalogError as e:
            parser.error(str(e))
    for flavor, directories in sorted(by_flavor.items()):
        requirements = {d.name: (d / REQUIREMENTS_FILE).read_text() for d in directories}
        # No requirement lines: nothing to resolve, the lock is its header.
        compiled = {
            slug: "" for slug, text in requirements.items() if not parse_requirements(text)[0]
        }
        installed: dict[str, str] = {}
        to_resolve = [
            Job(slug, text) for slug, text in requirements.items() if slug not in compiled
        ]
        if to_resolve:
            image = built_base_image(flavor)
            names = ", ".join(job.name for job in to_resolve)
            print(
                f"pin-requirements: resolving {names} in the {flavor} flavor ({image})", flush=True
            )
            # The flavor's wheels that the index does not serve (local builds such as `+cpu`), so that a
            # requirement on them resolves to the version the flavor has.
            flavor_pins = [
                f"{name}=={version}"
                for layer in FLAVOR_LAYERS[flavor]
                for name, version in parse_lock(layer.lock.read_text()).versions().items()
            ]
            try:
                resolved = resolve(docker.from_env(), image, to_resolve, local_pins(flavor_pins))
            except ResolveError as e:  # this flavor's locks stay as they were
                print(
                    f"pin-requirements: {e}\n(what the {flavor} flavor has stays at its version, "
                    "images/base/*.lock: a requirement must accept that version)",
                    file=sys.stderr,
                )
                return 1
            compiled.update(resolved.compiled)
            installed = freeze_versions(resolved.installed)
        for directory in directories:
            slug = directory.name
            text = course_lock(slug, flavor, requirements[slug], compiled[slug], installed)
            if parse_lock(text).pins:
                # What each locked distribution lets notebooks import, from its own files: the
                # import check needs no `# provides:` where a name differs (foo-grader -> foo).
                print(f"pin-requirements: {slug}: reading what the locked packages install")
                try:
                    records = distribution_records(docker.from_env(), image, text)
                except ResolveError as e:
                    print(f"pin-requirements: {e}", file=sys.stderr)
                    return 1
                found = [m for m in map(modules_from_record, records) if m]
                modules = {name: names for name, _, names in found}
                text = course_lock(
                    slug, flavor, requirements[slug], compiled[slug], installed, modules
                )
            (directory / LOCK_FILE).write_text(text)
            count = len(parse_lock(text).pins)
            print(f"pin-requirements: wrote {directory / LOCK_FILE} ({count} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
