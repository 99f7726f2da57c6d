"""Launch links: one per notebook of every course, checked against the course image.

    ./pants run tools:links -- [COURSE ...] [--stack dev|stage|prod] [--base-url URL]
                               [--image-map FILE] [--no-image-check]

A link is `<base>/tmplogin?course=<slug>&notebook=<path>`, the path percent-encoded (UTF-8; `/`
kept). The base is the stack's URL (`https://<domain>`; infra/stack_config.py reads the stack
file), or the local hub's, http://127.0.0.1:8000. Each notebook is looked up in the course's image
from the image map (`./pants package courses::`); a course missing from the image map or a
notebook missing from its image makes the command exit 1, because its link would open nothing.
A link that plans a GPU server is marked `(GPU)` (course.toml's `gpu`: every notebook of a
`gpu = true` course, or the notebooks it lists).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog import Course, find_repo_root, load_catalog
from catalog.image_facts import ImageMapError, image_map_path, image_of, read_image_map
from hub.contract import launch_link
from infra.stack_config import StackConfigError, load_stack_config

LOCAL_BASE_URL = "http://127.0.0.1:8000"
COURSE_HOME = "/home/jovyan"


class LinkError(ValueError):
    pass


def base_url(stack: str | None, infra_dir: Path) -> str:
    """The hub's public URL for a Pulumi stack (its validated settings), or the local hub's."""
    if not stack or stack == "local":
        return LOCAL_BASE_URL
    try:
        return load_stack_config(infra_dir, stack).url
    except StackConfigError as e:
        raise LinkError(str(e)) from None


@dataclass(frozen=True)
class Link:
    course: str
    notebook: str
    url: str
    in_image: bool | None = None  # None: not checked
    #: Whether the link plans a GPU server where the hub has GPUs (`Course.gpu_by_default`).
    gpu: bool = False


def course_links(course: Course, base: str) -> list[Link]:
    return [
        Link(course.slug, n, launch_link(base, course.slug, n), gpu=course.gpu_by_default(n))
        for n in course.notebooks
    ]


# --- the image check (Docker) -------------------------------------------------------------------

_LOOKUP = "import json, os, sys; print(json.dumps([os.path.isfile(p) for p in sys.argv[1:]]))"


def notebooks_in_image(client: Any, image: str, notebooks: Sequence[str]) -> dict[str, bool]:
    output = client.containers.run(
        image,
        ["python3", "-c", _LOOKUP, *notebooks],
        working_dir=COURSE_HOME,
        network_mode="none",
        remove=True,
    )
    return dict(zip(notebooks, json.loads(output)))


def check_links(
    links: Sequence[Link], image_map: Mapping[str, str], client: Any
) -> tuple[list[Link], list[str]]:
    """The links with `in_image` filled in, and problems (no image for a course)."""
    checked, problems = [], []
    for slug in dict.fromkeys(link.course for link in links):
        mine = [link for link in links if link.course == slug]
        try:
            image = image_of(image_map, slug)
        except ImageMapError as e:
            problems.append(f"{slug}: {e}")
            checked += mine
            continue
        found = notebooks_in_image(client, image, [link.notebook for link in mine])
        checked += [
            Link(link.course, link.notebook, link.url, found[link.notebook], link.gpu)
            for link in mine
        ]
    return checked, problems


def render(links: Sequence[Link], titles: Mapping[str, str], base: str) -> str:
    lines = []
    for slug in dict.fromkeys(link.course for link in links):
        lines.append(f"{slug}: {titles.get(slug, '')}  {launch_link(base, slug)}")
        for link in (link for link in links if link.course == slug):
            mark = {None: "", True: "ok       ", False: "MISSING  "}[link.in_image]
            lines.append(f"  {mark}{link.url}" + ("  (GPU)" if link.gpu else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("courses", nargs="*", help="course slugs (default: every course)")
    parser.add_argument("--stack", help="Pulumi stack whose domain is the base URL (dev, prod...)")
    parser.add_argument("--base-url", help="the hub's URL (overrides --stack)")
    parser.add_argument("--image-map", type=Path, help="default: the checkout's, as built")
    parser.add_argument(
        "--no-image-check", action="store_true", help="do not look for notebooks in the images"
    )
    args = parser.parse_args(argv)
    root = find_repo_root()
    catalog = load_catalog(root)
    unknown = [slug for slug in args.courses if slug not in catalog]
    if unknown:
        parser.error(f"no such course: {', '.join(unknown)} (courses: {', '.join(catalog.slugs)})")
    try:
        base = args.base_url or base_url(args.stack, root / "infra")
    except LinkError as e:
        parser.error(str(e))
    courses = [c for c in catalog if not args.courses or c.slug in args.courses]
    links = [link for course in courses for link in course_links(course, base)]
    problems: list[str] = []
    if not args.no_image_check:
        try:
            image_map = read_image_map(args.image_map or image_map_path(root))
        except ImageMapError as e:
            parser.error(f"{e} (or --no-image-check)")
        import docker

        links, problems = check_links(links, image_map, docker.from_env())
    print(render(links, {c.slug: c.title for c in courses}, base))
    missing = [link for link in links if link.in_image is False]
    for link in missing:
        problems.append(f"{link.course}: {link.notebook} is not in the course image")
    for problem in problems:
        print(f"links: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
