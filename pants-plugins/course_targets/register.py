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

import os
from collections.abc import Iterable
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

from catalog import METADATA_FILE, CatalogError, parse_course
from catalog.image_facts import (
    COURSE_REPOSITORY,
    CPU_IMAGE_TARGET,
    IMAGE_MAP,
    IMAGE_MAP_OUTPUT,
    IMAGE_TARGET,
    format_image_map,
    image_key,
    image_target_name,
)
from course_targets import quality
from course_targets.course_image import (
    COURSE_TEMPLATE,
    CourseImageError,
    RegistryOptions,
    course_file_globs,
    course_instructions,
    course_slug,
    image_naming,
    own_dockerfile_for,
    own_dockerfile_problem,
    published_reference,
)

COURSE_TEMPLATE_TARGET = "images/course:template"
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


def image_tag_fields(slug: str, registries: DockerRegistries) -> dict:
    """The `docker_image` fields that name a course image (see `image_naming`)."""
    naming = image_naming(slug, registries.registries)
    fields: dict = {DockerImageTagsField.alias: list(naming.tags)}
    if naming.extra_registries:
        fields[DockerImageRegistriesField.alias] = [
            ALL_DEFAULT_REGISTRIES,
            *naming.extra_registries,
        ]
    if naming.build_args:
        fields[DockerImageBuildArgsField.alias] = list(naming.build_args)
    return fields


def _invalid(address: Address, error: Exception) -> InvalidTargetException:
    """A course that cannot become targets, by its slug and its address."""
    return InvalidTargetException(f"Course `{course_slug(address.spec_path)}` ({address}): {error}")


@rule(desc="Generate course targets from course.toml", level=LogLevel.DEBUG)
async def generate_course_targets(
    request: GenerateCourseTargetsRequest, union_membership: UnionMembership, docker: DockerOptions
) -> GeneratedTargets:
    address = request.template_address
    directory = address.spec_path
    slug = course_slug(directory)
    snapshot, template, metadata = await MultiGet(
        Get(Snapshot, PathGlobs(course_file_globs(directory))),
        Get(DigestContents, PathGlobs([COURSE_TEMPLATE])),
        Get(DigestContents, PathGlobs([f"{directory}/{METADATA_FILE}"])),
    )
    if not metadata:
        raise InvalidTargetException(f"Course `{slug}`: {directory}/{METADATA_FILE} is missing")
    files = sorted(f[len(directory) + 1 :] for f in snapshot.files)
    try:
        course = parse_course(slug, metadata[0].content.decode(), files)
    except CatalogError as e:
        raise _invalid(address, e) from None
    content = [
        FileTarget(
            {**request.template, FileSourceField.alias: path},
            Address(directory, target_name=address.target_name, relative_file_path=path),
            union_membership,
        )
        for path in files
        if path not in EXCLUDED_FROM_CONTENT
    ]
    own = None
    if course.has_dockerfile:
        own_files = await Get(DigestContents, PathGlobs([f"{directory}/Dockerfile"]))
        own = own_files[0].content.decode()
        problem = own_dockerfile_problem(course, own)
        if problem:
            raise InvalidTargetException(f"Course `{slug}`: {directory}/Dockerfile {problem}")
    elif not template:
        raise InvalidTargetException(
            f"Course `{slug}`: the shared template {COURSE_TEMPLATE} is missing"
        )
    # The executable bit as git has it: Pants keeps it in its snapshot, but materializes large
    # files executable whatever it is, so the template sets every mode itself.
    entries = await Get(DigestEntries, Digest, snapshot.digest)
    executables = [
        entry.path[len(directory) + 1 :]
        for entry in entries
        if isinstance(entry, FileEntry) and entry.is_executable
    ]
    images = []
    # One image per image map key: the course's own, and a GPU course's CPU image (FROM the
    # flavor's CPU base, for its servers without a GPU).
    for key in course.image_keys:
        try:
            naming = image_tag_fields(key, docker.registries())
        except CourseImageError as e:
            raise _invalid(address, e) from None
        image_fields: dict = {
            **request.template,
            DockerImageContextRootField.alias: "./",
            DockerImageRepositoryField.alias: COURSE_REPOSITORY,
            **naming,
            DockerImageDependenciesField.alias: [
                *(tgt.address.spec for tgt in content),
                COURSE_TEMPLATE_TARGET,
            ],
        }
        if own is not None and key == slug:
            image_fields[DockerImageSourceField.alias] = "Dockerfile"
        else:
            try:
                instructions = (
                    own_dockerfile_for(course, own, key)
                    if own is not None
                    else course_instructions(template[0].content.decode(), course, executables, key)
                )
            except CourseImageError as e:
                raise _invalid(address, e) from None
            image_fields[DockerImageSourceField.alias] = None
            image_fields[DockerImageInstructionsField.alias] = instructions
        images.append(
            DockerImageTarget(
                image_fields,
                address.create_generated(image_target_name(key)),
                union_membership,
            )
        )
    # `#check`, `#smoke-test` (and `#smoke-test-cpu`): the course quality gate (quality.py).
    tests = quality.course_test_targets(
        request.template, address, course, content, images, union_membership
    )
    return GeneratedTargets(request.generator, [*images, *content, *tests])


# --- the image map --------------------------------------------------------------------------


class CoursesDirectoryField(StringField):
    alias = "courses_directory"
    default = "courses"
    value: str
    help = "The directory whose course targets (recursively) go into the map."


class CourseImageMapTarget(Target):
    alias = "course_image_map"
    help = (
        "Builds every course image under `courses_directory` and writes `course slug -> image "
        f"reference` (the immutable content tag) as JSON to {IMAGE_MAP}: what the hub "
        "and infra deploy, so that they never guess tags."
    )
    core_fields = (*COMMON_TARGET_FIELDS, CoursesDirectoryField)


@dataclass(frozen=True)
class CourseImageMapFieldSet(PackageFieldSet):
    required_fields = (CoursesDirectoryField,)
    courses_directory: CoursesDirectoryField


def image_map_entry(
    address: Address, image: BuiltDockerImage, registries: Iterable[RegistryOptions]
) -> tuple[str, str]:
    """`key -> <registry>/ol-course-notebooks:<key>-<hash>`: the image's published reference
    (`published_reference`, which the smoke test runs too); the key is the course's slug, or a
    GPU course's `<slug>--cpu` for its `#image-cpu`."""
    key = image_key(course_slug(address.spec_path), address.generated_name or "")
    try:
        return key, published_reference(key, image.tags, registries)
    except CourseImageError as e:
        raise InvalidTargetException(f"{address}: {e}") from None


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
    images = [
        tgt for tgt in targets if tgt.address.generated_name in (IMAGE_TARGET, CPU_IMAGE_TARGET)
    ]
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, images))
    packages = await MultiGet(
        Get(BuiltPackage, EnvironmentAwarePackageRequest(fs)) for fs in field_sets.field_sets
    )
    registries = docker.registries().registries.values()
    entries = dict(
        image_map_entry(tgt.address, artifact, registries)
        for tgt, package in zip(images, packages)
        for artifact in package.artifacts
        if isinstance(artifact, BuiltDockerImage)
    )
    path = IMAGE_MAP_OUTPUT
    digest = await Get(
        Digest, CreateDigest([FileContent(path, format_image_map(entries).encode())])
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
