"""Pants support for course directories: `course()` targets and the image map.

A course's BUILD file is the single line `course()`. Its metadata is read by the catalog
library (the one place that knows the format) and turned into:

- one `file` target per file of the course (so `--changed-since` sees notebooks and data);
- `courses/<slug>:<slug>#image`, a `docker_image` built FROM `images/base:<flavor>` with the
  shared template `images/course/Dockerfile` (or the course's own `Dockerfile`), tagged with its
  immutable content tag `<slug>-<hash>`: the only tag `./pants publish` pushes. Where the
  local-only registry `[docker.registries.local]` is configured (pants.toml; CI's registries have
  none), the image is also named with the moving `localhost/ol-course-notebooks:<slug>` tag
  there, for people; that registry is `skip_push`, so the moving tag never leaves the machine.

`course_image_map` packages every course image and writes `course -> image reference` as JSON:
the hand-off from building to the hub and infra.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from pants.backend.docker.package_types import BuiltDockerImage
from pants.backend.docker.registries import ALL_DEFAULT_REGISTRIES, DockerRegistries
from pants.backend.docker.subsystems.docker_options import DockerOptions
from pants.backend.docker.target_types import (
    DockerImageBuildArgsField,
    DockerImageContextRootField,
    DockerImageDependenciesField,
    DockerImageInstructionsField,
    DockerImageRegistriesField,
    DockerImageRepositoryField,
    DockerImageSourceField,
    DockerImageTagsField,
    DockerImageTarget,
)
from pants.base.specs import RawSpecs, RecursiveGlobSpec
from pants.core.goals.package import (
    BuiltPackage,
    BuiltPackageArtifact,
    EnvironmentAwarePackageRequest,
    PackageFieldSet,
)
from pants.core.goals.tailor import (
    PutativeTarget,
    PutativeTargets,
    PutativeTargetsRequest,
)
from pants.core.target_types import FileSourceField, FileTarget
from pants.engine.addresses import Address
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    FileContent,
    FileEntry,
    PathGlobs,
    Snapshot,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    GeneratedTargets,
    GenerateTargetsRequest,
    InvalidTargetException,
    StringField,
    Target,
    TargetGenerator,
    Targets,
)
from pants.engine.unions import UnionMembership, UnionRule
from pants.util.logging import LogLevel

from catalog import METADATA_FILE, CatalogError, Course, parse_course
from course_targets import quality

COURSE_TEMPLATE = "images/course/Dockerfile"
COURSE_TEMPLATE_TARGET = "images/course:template"
IMAGE_REPOSITORY = "ol-course-notebooks"
# The local-only registry that carries the moving `:<slug>` tag: `[docker.registries.local]`,
# with `skip_push = true` and `extra_image_tags = ["{build_args.COURSE_SLUG}"]` (pants.toml).
LOCAL_REGISTRY = "local"
SLUG_BUILD_ARG = "COURSE_SLUG"
IMAGE_MAP_FILE = "courses/image-map.json"
# What the shared template's first line is replaced with: the base image as a Pants address, so
# that Pants infers the dependency on it and passes the built image's reference as a build arg.
BASE_IMAGE_ARG = "ARG BASE_IMAGE="
EXCLUDED_FROM_CONTENT = {"BUILD"}


class CourseTarget(TargetGenerator):
    alias = "course"
    help = (
        "A course: the directory's course.toml (read by the catalog library), its notebooks and "
        "data, built into an image FROM its base image flavor. Takes no arguments."
    )
    generated_target_cls = DockerImageTarget
    core_fields = COMMON_TARGET_FIELDS
    copied_fields = COMMON_TARGET_FIELDS
    moved_fields = ()


class GenerateCourseTargetsRequest(GenerateTargetsRequest):
    generate_from = CourseTarget


DATA_MARKER = "# @course-data"
EXECUTABLES_MARKER = "# @course-executables"


def course_instructions(
    template: str, course: Course, executables: Sequence[str] = ()
) -> list[str]:
    """The shared Dockerfile template filled in for one course: its base image, the files git
    has as executable (paths in the course directory), and its data."""
    lines = template.splitlines()
    for prefix in (BASE_IMAGE_ARG, EXECUTABLES_MARKER, DATA_MARKER):
        if sum(line.startswith(prefix) for line in lines) != 1:
            raise InvalidTargetException(
                f"{COURSE_TEMPLATE} must have exactly one line starting with `{prefix}`"
            )
    result = []
    for line in lines:
        if line.startswith(BASE_IMAGE_ARG):
            result.append(f"{BASE_IMAGE_ARG}{course.base_image}")
        elif line.startswith(EXECUTABLES_MARKER):
            if executables:
                result.append("RUN chmod 0755 " + " ".join(map(shlex.quote, sorted(executables))))
        elif line.startswith(DATA_MARKER):
            result.extend(
                f"RUN fetch-course-data {shlex.quote(d.sha256)} {shlex.quote(d.url)} {shlex.quote(d.path)}"
                for d in course.data
            )
        else:
            result.append(line)
    return result


def image_tag_fields(slug: str, registries: DockerRegistries) -> dict:
    """The tags of a course image, and where they go.

    `image_tags` is only the content tag `<slug>-<hash>`: immutable (it changes whenever any
    input changes), what the image map names, and all that `./pants publish` pushes (ECR's
    repositories refuse to move a tag). The moving `<slug>` tag, "the current image of this
    course" for people, is a tag of the local-only registry alone: its `extra_image_tags` name
    it from the COURSE_SLUG build arg (Pants 2.17 interpolates no other per-target value into a
    registry's tags), and `skip_push` keeps it off every registry. Without that registry (CI
    replaces the registries with ECR's), there is no moving tag and no COURSE_SLUG build arg.
    """
    fields: dict = {DockerImageTagsField.alias: [f"{slug}-{{pants.hash}}"]}
    local = registries.registries.get(f"@{LOCAL_REGISTRY}")
    if local is None:
        return fields
    if not local.skip_push or local.default:
        raise InvalidTargetException(
            f"[docker.registries.{LOCAL_REGISTRY}] names the moving `:<slug>` tag of course "
            "images, which must never be pushed: it needs `skip_push = true` and must not be "
            "a default registry"
        )
    fields[DockerImageRegistriesField.alias] = [ALL_DEFAULT_REGISTRIES, f"@{LOCAL_REGISTRY}"]
    fields[DockerImageBuildArgsField.alias] = [f"{SLUG_BUILD_ARG}={slug}"]
    return fields


@rule(desc="Generate course targets from course.toml", level=LogLevel.DEBUG)
async def generate_course_targets(
    request: GenerateCourseTargetsRequest, union_membership: UnionMembership, docker: DockerOptions
) -> GeneratedTargets:
    address = request.template_address
    directory = address.spec_path
    slug = directory.rsplit("/", 1)[-1]
    snapshot, template, metadata = await MultiGet(
        Get(Snapshot, PathGlobs([f"{directory}/**", f"!{directory}/**/.ipynb_checkpoints/**"])),
        Get(DigestContents, PathGlobs([COURSE_TEMPLATE])),
        Get(DigestContents, PathGlobs([f"{directory}/{METADATA_FILE}"])),
    )
    if not metadata:
        raise InvalidTargetException(f"Course `{slug}`: {directory}/{METADATA_FILE} is missing")
    files = sorted(f[len(directory) + 1 :] for f in snapshot.files)
    try:
        course = parse_course(slug, metadata[0].content.decode(), files)
    except CatalogError as e:
        raise InvalidTargetException(f"Course `{slug}` ({address}): {e}") from None

    content = [
        FileTarget(
            {**request.template, FileSourceField.alias: path},
            Address(directory, target_name=address.target_name, relative_file_path=path),
            union_membership,
        )
        for path in files
        if path not in EXCLUDED_FROM_CONTENT
    ]
    image_fields: dict = {
        **request.template,
        DockerImageContextRootField.alias: "./",
        DockerImageRepositoryField.alias: IMAGE_REPOSITORY,
        **image_tag_fields(slug, docker.registries()),
        DockerImageDependenciesField.alias: [
            *(tgt.address.spec for tgt in content),
            COURSE_TEMPLATE_TARGET,
        ],
    }
    if course.has_dockerfile:
        own = await Get(DigestContents, PathGlobs([f"{directory}/Dockerfile"]))
        expected = f"{BASE_IMAGE_ARG}{course.base_image}"
        if expected not in own[0].content.decode().splitlines():
            raise InvalidTargetException(
                f"Course `{slug}`: {directory}/Dockerfile must build FROM its flavor's base image: "
                f"add the line `{expected}` and use `FROM ${{BASE_IMAGE}}`"
            )
        image_fields[DockerImageSourceField.alias] = "Dockerfile"
    else:
        if not template:
            raise InvalidTargetException(
                f"Course `{slug}`: the shared template {COURSE_TEMPLATE} is missing"
            )
        # The executable bit as git has it: Pants keeps it in its snapshot, but materializes
        # large files executable whatever it is, so the template sets every mode itself.
        entries = await Get(DigestEntries, Digest, snapshot.digest)
        executables = [
            entry.path[len(directory) + 1 :]
            for entry in entries
            if isinstance(entry, FileEntry) and entry.is_executable
        ]
        image_fields[DockerImageSourceField.alias] = None
        image_fields[DockerImageInstructionsField.alias] = course_instructions(
            template[0].content.decode(), course, executables
        )
    image = DockerImageTarget(image_fields, address.create_generated("image"), union_membership)
    # `#check` and `#smoke-test`: the course quality gate (quality.py).
    tests = quality.course_test_targets(
        request.template, address, course, content, image, union_membership
    )
    return GeneratedTargets(request.generator, [image, *content, *tests])


# --- the image map --------------------------------------------------------------------------


class CoursesDirectoryField(StringField):
    alias = "courses_directory"
    default = "courses"
    help = "The directory whose course targets (recursively) go into the map."


class CourseImageMapTarget(Target):
    alias = "course_image_map"
    help = (
        "Builds every course image under `courses_directory` and writes `course slug -> image "
        f"reference` (the immutable content tag) as JSON to dist/{IMAGE_MAP_FILE}: what the hub "
        "and infra deploy, so that they never guess tags."
    )
    core_fields = (*COMMON_TARGET_FIELDS, CoursesDirectoryField)


@dataclass(frozen=True)
class CourseImageMapFieldSet(PackageFieldSet):
    required_fields = (CoursesDirectoryField,)
    courses_directory: CoursesDirectoryField


def image_map_entry(
    address: Address, image: BuiltDockerImage, local_only: Collection[str] = ()
) -> tuple[str, str]:
    """`slug -> <registry>/ol-course-notebooks:<slug>-<hash>`, in a registry that is pushed to
    (not one of the `local_only` addresses, whose names never leave the machine)."""
    slug = address.spec_path.rsplit("/", 1)[-1]
    content_tags = [
        tag
        for tag in image.tags
        if tag.rsplit(":", 1)[-1].startswith(f"{slug}-")
        and not any(tag.startswith(f"{registry}/") for registry in local_only)
    ]
    if not content_tags:
        raise InvalidTargetException(f"{address} has no content tag `{slug}-<hash>`: {image.tags}")
    return slug, sorted(content_tags)[0]


@rule(desc="Write the course image map", level=LogLevel.INFO)
async def package_course_image_map(
    field_set: CourseImageMapFieldSet, docker: DockerOptions
) -> BuiltPackage:
    directory = field_set.courses_directory.value
    targets = await Get(
        Targets,
        RawSpecs(
            recursive_globs=(RecursiveGlobSpec(directory),),
            description_of_origin=f"the `{CourseImageMapTarget.alias}` target {field_set.address}",
        ),
    )
    images = [tgt for tgt in targets if tgt.address.generated_name == "image"]
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, images))
    packages = await MultiGet(
        Get(BuiltPackage, EnvironmentAwarePackageRequest(fs)) for fs in field_sets.field_sets
    )
    local_only = {r.address for r in docker.registries().registries.values() if r.skip_push}
    entries = dict(
        image_map_entry(tgt.address, artifact, local_only)
        for tgt, package in zip(images, packages)
        for artifact in package.artifacts
        if isinstance(artifact, BuiltDockerImage)
    )
    path = IMAGE_MAP_FILE
    digest = await Get(
        Digest,
        CreateDigest(
            [
                FileContent(
                    path, (json.dumps(dict(sorted(entries.items())), indent=2) + "\n").encode()
                )
            ]
        ),
    )
    return BuiltPackage(digest, (BuiltPackageArtifact(path),))


# --- tailor: a course directory without a BUILD file gets `course()` --------------------------


@dataclass(frozen=True)
class PutativeCourseTargetsRequest(PutativeTargetsRequest):
    pass


@rule(desc="Find course directories without a BUILD file", level=LogLevel.DEBUG)
async def find_putative_courses(request: PutativeCourseTargetsRequest) -> PutativeTargets:
    # Course files are also owned by `courses:content`, so ownership cannot tell a new course:
    # a course directory is new when it has metadata but no BUILD file.
    found = await Get(Snapshot, PathGlobs, request.path_globs(METADATA_FILE, "BUILD", "BUILD.*"))
    with_build = {
        os.path.dirname(path) for path in found.files if "BUILD" in os.path.basename(path)
    }
    return PutativeTargets(
        PutativeTarget(
            path=os.path.dirname(path),
            name=os.path.basename(os.path.dirname(path)),
            type_alias=CourseTarget.alias,
            triggering_sources=[METADATA_FILE],
            owned_sources=(),  # course files are owned by the generated `file` targets
        )
        for path in found.files
        if os.path.basename(path) == METADATA_FILE
        and os.path.dirname(os.path.dirname(path)) == "courses"
        and os.path.dirname(path) not in with_build
    )


def target_types():
    return [CourseTarget, CourseImageMapTarget, *quality.target_types()]


def rules():
    return [
        *collect_rules(),
        UnionRule(GenerateTargetsRequest, GenerateCourseTargetsRequest),
        UnionRule(PackageFieldSet, CourseImageMapFieldSet),
        UnionRule(PutativeTargetsRequest, PutativeCourseTargetsRequest),
        *quality.rules(),
    ]
