"""Launch planning: a launch link's query arguments -> what to start for the learner.

One pure function, `plan_launch`, decides everything about a learner's server from plain
data: the link's arguments, the catalog, the image map and the deployment's settings. Both
spawners (Kubernetes in production, Docker locally) call it and only translate the plan into
their own terms, so the rules live here once and are tested and fuzzed without any I/O.

Rules:

- `course` must name a course of the catalog that has an image in the image map. A missing or
  unknown course is a `LaunchError` (HTTP 4xx) carrying the courses that can be launched; there
  is never a default image.
- `notebook` (optional) arrives URL-decoded once, as every query argument does. It must be one
  of the course's notebooks after normalization (`./a//b.ipynb` is `a/b.ipynb`). Absolute paths,
  `..` segments, backslashes, control characters and percent-encoded traversal are refused.
- `needs_gpu` (optional) is a boolean (`true/1/yes/on`, `false/0/no/off`). A GPU is given only
  to courses that allow one (`gpu = true`, or `gpu = [notebooks]`) and only where the deployment
  has GPUs. Without `needs_gpu`, the course decides (`Course.gpu_by_default`): every link of a
  `gpu = true` course plans a GPU, and of a `gpu = [...]` course only links to those notebooks.
  Any argument that is empty or blank (`needs_gpu=`, `needs_gpu=%20`) counts as not given.
- The image is the course's own (`<slug>` in the image map: CUDA for a GPU course) when the
  server gets a GPU; a GPU course's server without one runs the course's CPU image
  (`<slug>--cpu`, FROM the flavor's CPU base), so that CPU nodes never pull a CUDA image. A map
  without that image makes such a launch a 503, never a fallback to the CUDA image.
- `tag` (optional) is refused unless the deployment enables preview tags, and then only a tag
  published for that course; the server runs exactly that image (the course's own, with or
  without a GPU).
- Kept work: where the deployment keeps work (`KeptWorkSettings.days` > 0) and the course does
  not opt out (`[kept_work] enabled = false`), a signed-in person's server mounts their volume
  for the course (`WorkVolume`), named from the person's key (`person`, from the SSO gate) and
  the catalog's slug, never from the link's text; without a person (no SSO gate) nothing is kept.
- The plan is built from nothing but these inputs: nothing carries over between spawns.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from catalog import Catalog, Course, normalize_notebook_path
from catalog.image_facts import TAG_PATTERN

#: Query arguments a launch link may carry; anything else is ignored (e.g. `utm_source`).
ARGUMENTS = ("course", "notebook", "needs_gpu", "tag")
_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f"})
#: The learner's home folder in every course image (docker-stacks' jovyan).
HOME = "/home/jovyan"
#: Longest argument value echoed back in a message.
_ECHO_LIMIT = 80


@dataclass(frozen=True)
class GpuSettings:
    """How a deployment gives a server a GPU (Kubernetes terms; Docker uses `count`)."""

    count: int = 1
    resource_name: str = "nvidia.com/gpu"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class KeptWorkSettings:
    """Whether and where a deployment keeps learners' work (stack `keepWork`)."""

    #: A volume untouched this many days is deleted; 0: no work is kept (every server starts
    #: from the image, as before).
    days: int = 0
    #: Kubernetes: the storage class of the learners' volumes (EFS-backed for multi-AZ); None:
    #: the cluster's default. Docker volumes have none.
    storage_class: str | None = None
    #: Kubernetes: the most storage all kept-work claims of the stack may request, in bytes (a
    #: ResourceQuota, infra/kept_work.py); 0: no cap.
    quota: int = 0


@dataclass(frozen=True)
class WorkVolume:
    """One person's volume for one course, mounted over the learner's home."""

    name: str
    person: str
    course: str
    size: int
    mount_path: str = HOME


def work_volume_name(person: str, course: str) -> str:
    """`work-<person key>-<course slug>`: a Kubernetes object name and a Docker volume name."""
    return f"work-{person}-{course}"


@dataclass(frozen=True)
class LaunchSettings:
    """The deployment's launch rules (Helm values `custom.launch`)."""

    allow_preview_tags: bool = False
    #: slug -> tags published for that course, allowed as `?tag=` when enabled.
    preview_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: None: this deployment has no GPUs; GPU courses run on CPUs.
    gpu: GpuSettings | None = None
    #: A learner's server requests all the memory it may use (its course's memory_limit), so a
    #: node never holds more than it has and none is killed for a neighbour's use; False: the
    #: course's memory_guarantee (more servers per node, at that risk).
    memory_request_is_limit: bool = False
    kept_work: KeptWorkSettings = field(default_factory=KeptWorkSettings)


@dataclass(frozen=True)
class LaunchPlan:
    """Everything a spawner needs to start one learner's server."""

    course: str
    notebook: str | None
    image: str
    memory_limit: int
    memory_guarantee: int
    cpu_limit: float
    cpu_guarantee: float
    #: Path below the single-user server's root to open, e.g. `/lab/tree/lectures/a.ipynb`.
    url: str
    gpu_count: int = 0
    gpu_resource_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    tag: str | None = None
    #: The person's kept work for the course, mounted over the home folder; None: nothing kept.
    work: WorkVolume | None = None

    @property
    def gpu(self) -> bool:
        return self.gpu_count > 0

    def user_options(self) -> dict[str, str]:
        """The normalized arguments that reproduce this plan (stored as JupyterHub user_options)."""
        options = {"course": self.course, "needs_gpu": "true" if self.gpu else "false"}
        if self.notebook is not None:
            options["notebook"] = self.notebook
        if self.tag is not None:
            options["tag"] = self.tag
        return options


@dataclass(frozen=True)
class CourseLink:
    """A course a learner can launch, for error pages."""

    slug: str
    title: str
    notebooks: tuple[str, ...]


class LaunchError(Exception):
    """The link cannot be launched. `message` is written for the learner; `status` is HTTP."""

    def __init__(
        self, status: int, reason: str, message: str, courses: Sequence[CourseLink] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.courses = tuple(courses)


def launchable_courses(catalog: Catalog, image_map: Mapping[str, str]) -> tuple[CourseLink, ...]:
    """Courses of the catalog that have an image, in catalog order."""
    return tuple(
        CourseLink(course.slug, course.title, course.notebooks)
        for course in catalog
        if isinstance(image_map.get(course.slug), str) and image_map[course.slug]
    )


def query_arguments(query_string: str) -> dict[str, list[str]]:
    """A raw query string as JupyterHub hands it to the spawner (for tests and tools).

    Decodes once like Tornado, then applies JupyterHub's rule for `opt-` prefixed names: when
    any argument has the prefix, only prefixed ones count (with the prefix removed).
    """
    arguments: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        arguments.setdefault(key, []).append(value)
    for reserved in ("next", "display_name"):
        arguments.pop(reserved, None)
    prefixed = {key[4:]: value for key, value in arguments.items() if key.startswith("opt-")}
    return prefixed if prefixed else arguments


def _echo(value: str) -> str:
    """A user-supplied value, shortened and made printable, for messages."""
    printable = "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in value)
    if len(printable) > _ECHO_LIMIT:
        printable = printable[: _ECHO_LIMIT - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return printable


def _single(query: Mapping[str, Any], name: str, courses: Sequence[CourseLink]) -> str | None:
    """The one value of argument `name`, or None when absent, empty or blank."""
    label = name.replace("_", "-")
    raw = query.get(name)
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)):
        values: list[Any] = [raw]
    elif isinstance(raw, (list, tuple)):
        values = list(raw)
    else:
        raise LaunchError(400, f"bad-{label}", f"The link's {name} is not text.", courses)
    texts = []
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if not isinstance(value, str):
            raise LaunchError(400, f"bad-{label}", f"The link's {name} is not text.", courses)
        texts.append(value)
    distinct = {text for text in texts if text.strip() != ""}
    if len(distinct) > 1:
        raise LaunchError(
            400,
            f"ambiguous-{label}",
            f"The link gives more than one {name}; a launch link names exactly one.",
            courses,
        )
    return distinct.pop() if distinct else None


def _is_unsafe_path(path: str) -> bool:
    if any(unicodedata.category(ch) == "Cc" for ch in path) or "\\" in path:
        return True
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return True
    return ".." in path.split("/")


def _notebook(course: Course, value: str | None, courses: Sequence[CourseLink]) -> str | None:
    if value is None:
        return None
    if _is_unsafe_path(value):
        raise LaunchError(
            400,
            "unsafe-notebook",
            f"The notebook path {_echo(value)!r} is not allowed: notebooks are named by their path "
            f"inside the course, like {course.notebooks[0]!r}.",
            courses,
        )
    if "%" in value and _is_unsafe_path(_fully_unquoted(value)):
        raise LaunchError(
            400,
            "unsafe-notebook",
            f"The notebook path {_echo(value)!r} is not allowed: it hides a path outside the "
            "course in percent-encoding.",
            courses,
        )
    normalized = normalize_notebook_path(value)
    if normalized is None or normalized not in course.notebooks:
        raise LaunchError(
            404,
            "unknown-notebook",
            f"The course {course.title!r} has no notebook {_echo(value)!r}. Its notebooks are: "
            + ", ".join(course.notebooks)
            + ".",
            courses,
        )
    return normalized


def _fully_unquoted(value: str, rounds: int = 5) -> str:
    for _ in range(rounds):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value


def parse_bool(value: str) -> bool | None:
    """`true/1/yes/on` -> True, `false/0/no/off` -> False, anything else (blank too) -> None."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def image_with_tag(reference: str, tag: str) -> str:
    """`registry:5000/repo:old` or `repo@sha256:...` -> the same repository with `tag`."""
    repository = reference.split("@", 1)[0]
    head, _, last = repository.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}:{tag}" if head else f"{name}:{tag}"


def lab_url(notebook: str | None) -> str:
    """The single-user server path that opens `notebook` in JupyterLab (or the home folder)."""
    if notebook is None:
        return "/lab"
    return "/lab/tree/" + quote(notebook, safe="/")


def _unavailable(course: Course, courses: Sequence[CourseLink]) -> LaunchError:
    return LaunchError(
        503,
        "course-unavailable",
        f"The course {course.title!r} cannot be started right now (it has no published "
        "image). Please try again later or choose another course.",
        courses,
    )


def plan_launch(
    query: Mapping[str, Any],
    catalog: Catalog,
    image_map: Mapping[str, str],
    settings: LaunchSettings,
    person: str | None = None,
) -> LaunchPlan:
    """The launch plan for a link's query arguments, or `LaunchError` for the learner.

    `query` maps argument names to a string or a list of strings, already URL-decoded once (as
    JupyterHub passes them to `Spawner.options_from_query`, or `query_arguments()` returns).
    `person`: the signed-in person's key (hub.sso.identity_of), None without the SSO gate.
    """
    courses = launchable_courses(catalog, image_map)
    if not isinstance(query, Mapping):
        raise LaunchError(400, "no-course", "The link does not say which course to open.", courses)
    slug = _single(query, "course", courses)
    if slug is None:
        raise LaunchError(
            400,
            "no-course",
            "The link does not say which course to open. Choose one of the courses below.",
            courses,
        )
    slug = slug.strip()
    course = catalog.get(slug)
    if course is None:
        raise LaunchError(
            404,
            "unknown-course",
            f"There is no course called {_echo(slug)!r}. Check the link, or choose one of the "
            "courses below.",
            courses,
        )
    if not isinstance(image_map.get(slug), str) or not image_map[slug]:
        raise _unavailable(course, courses)
    notebook = _notebook(course, _single(query, "notebook", courses), courses)

    needs_gpu_text = _single(query, "needs_gpu", courses)
    needs_gpu = (
        course.gpu_by_default(notebook) if needs_gpu_text is None else parse_bool(needs_gpu_text)
    )
    if needs_gpu is None:
        raise LaunchError(
            400,
            "bad-needs-gpu",
            f"needs_gpu must be true or false, not {_echo(needs_gpu_text or '')!r}.",
            courses,
        )

    tag = _single(query, "tag", courses)
    if tag is not None:
        if not settings.allow_preview_tags:
            raise LaunchError(
                403,
                "tag-refused",
                "This hub does not open preview versions of courses (the link's 'tag'). Remove "
                "'tag' from the link to open the published course.",
                courses,
            )
        published = tuple(settings.preview_tags.get(slug, ()))
        if tag not in published or not TAG_PATTERN.match(tag):
            raise LaunchError(
                403,
                "tag-refused",
                f"{_echo(tag)!r} is not a published preview of {course.title!r}."
                + (f" Published previews: {', '.join(published)}." if published else ""),
                courses,
            )

    gpu = settings.gpu
    with_gpu = bool(course.gpu and needs_gpu and gpu is not None and gpu.count > 0)
    image = image_map.get(course.image_key(with_gpu))
    if not isinstance(image, str) or not image:
        raise _unavailable(course, courses)
    if tag is not None:
        image = image_with_tag(image, tag)
    resources = course.resources
    return LaunchPlan(
        course=slug,
        notebook=notebook,
        image=image,
        memory_limit=resources.memory_limit,
        memory_guarantee=(
            resources.memory_limit
            if settings.memory_request_is_limit
            else resources.memory_guarantee
        ),
        cpu_limit=resources.cpu_limit,
        cpu_guarantee=resources.cpu_guarantee,
        url=lab_url(notebook),
        gpu_count=gpu.count if with_gpu and gpu else 0,
        gpu_resource_name=gpu.resource_name if with_gpu and gpu else None,
        node_selector=dict(gpu.node_selector) if with_gpu and gpu else {},
        tolerations=tuple(dict(t) for t in gpu.tolerations) if with_gpu and gpu else (),
        tag=tag,
        work=(
            WorkVolume(work_volume_name(person, slug), person, slug, course.kept_work.size)
            if person and settings.kept_work.days > 0 and course.kept_work.enabled
            else None
        ),
    )
