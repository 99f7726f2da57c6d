"""`./pants run infra:deploy -- --stack dev [--preview | --render DIR]`.

- `--render DIR` writes what the stack would deploy (Helm values, the hub's configuration, the
  release settings, ECR lifecycle policies) for review and diffs. No Pulumi CLI, no cloud.
- otherwise runs the Pulumi program for the stack with the Automation API (`pulumi up`, or
  `pulumi preview` with `--preview`). That needs the Pulumi CLI, AWS credentials and a Pulumi
  backend (PULUMI_BACKEND_URL). Each stack's secrets are encrypted with its own KMS key (the
  stack file's `secretsprovider`); other stacks' outputs are read without their secrets
  (`pulumi stack output --json`, no `--show-secrets`), so dev's role needs no key of prod's.

Images come from the image map (`./pants package courses::`) and the hub image from Pants'
docker-info of `hub:image` (`./pants package hub:image`), or from the flags; where those files
are is `catalog.image_facts`'s to say.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from catalog import Catalog, CatalogError, find_repo_root, load_catalog
from catalog.image_facts import HUB_IMAGE_INFO as HUB_DOCKER_INFO
from catalog.image_facts import IMAGE_MAP, ImageMapError, read_image_map
from dashboards.build import build as dashboards_build
from infra import monitoring
from infra.images import (
    COURSE_REPOSITORY,
    HUB_REPOSITORY,
    ImageError,
    ImageRef,
    course_images,
    hub_image,
    hub_image_from_docker_info,
    preview_tags,
)
from infra.monitoring import hub_service_monitor
from infra.prepull import gpu_prepuller
from infra.registry import PolicyError, lifecycle_policy
from infra.stack_config import PROJECT, STACKS, StackConfig, StackConfigError, load_stack_config
from infra.values import (
    DB_HOST_PLACEHOLDER,
    helm_values,
    hub_configuration,
    migration_job,
    release_settings,
)

INSTALL_PULUMI = (
    "The Pulumi CLI is not installed: install it as https://www.pulumi.com/docs/install/ "
    "describes (one binary on PATH), then run this again, or use --render DIR, which needs no CLI."
)
EXIT_NO_CLI = 2
#: How many published versions of each course a preview link may open (newest first).
PREVIEW_TAGS_PER_COURSE = 20
RENDER_HEADER = (
    "# Rendered by `./pants run infra:deploy -- --stack {stack} --render DIR`: what stack "
    "{stack} deploys.\n# Generated from the catalog, the image map and infra/Pulumi.{stack}.yaml; "
    "do not edit.\n# Images: {images}\n"
)


class DeployError(Exception):
    """A problem the user can fix, said in one message."""


def repo_root() -> Path:
    """The repository (`catalog.find_repo_root`), or a DeployError that says where to run this."""
    try:
        return find_repo_root()
    except FileNotFoundError as e:
        raise DeployError(str(e)) from None


@dataclass(frozen=True)
class Inputs:
    stack: StackConfig
    catalog: Catalog
    image_map: dict[str, str] | None  # None: not built (render only)
    hub_image: str | None  # None: not built (render only)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DeployError(f"cannot read the {what} {path}: {e}") from None


def load_inputs(args: argparse.Namespace, root: Path, *, allow_unbuilt: bool) -> Inputs:
    stack = load_stack_config(root / "infra", args.stack)
    catalog = load_catalog(root)

    map_path = Path(args.image_map) if args.image_map else root / IMAGE_MAP
    image_map = None
    if map_path.is_file() or args.image_map or not allow_unbuilt:
        try:
            image_map = read_image_map(map_path)
        except ImageMapError as e:
            raise DeployError(str(e)) from None

    hub_ref = args.hub_image
    if hub_ref is None:
        info_path = Path(args.hub_image_info) if args.hub_image_info else root / HUB_DOCKER_INFO
        if info_path.is_file():
            info = _read_json(info_path, "hub image info")
            hub_ref = hub_image_from_docker_info(info if isinstance(info, dict) else {})
        elif args.hub_image_info or not allow_unbuilt:
            raise DeployError(
                f"no hub image info at {info_path}: build it with `./pants package hub:image` "
                "or pass --hub-image"
            )
    return Inputs(stack=stack, catalog=catalog, image_map=image_map, hub_image=hub_ref)


def _placeholder_images(catalog: Catalog) -> dict[str, ImageRef]:
    return {
        key: ImageRef(f"<registry>/{COURSE_REPOSITORY}", f"{key}-<content-hash>")
        for key in catalog.image_keys
    }


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=100)


def render(inputs: Inputs, directory: Path) -> list[Path]:
    """Writes what the stack deploys: the hub release's values and the hub's configuration, the
    monitoring releases' values, the GPU pre-puller, the dashboards and alert rules built with
    the stack's settings, and the ECR policies."""
    stack = inputs.stack
    if inputs.image_map is None:
        images = _placeholder_images(inputs.catalog)
        source = "placeholders (no image map: `./pants package courses::` builds it)"
    else:
        images = course_images(inputs.catalog, inputs.image_map)
        source = "from the image map"
    if inputs.hub_image is None:
        hub = ImageRef(f"<registry>/{HUB_REPOSITORY}", "<tag>")
        source += "; hub image a placeholder (no `./pants package hub:image` yet)"
    else:
        hub = hub_image(inputs.hub_image)
    # Without the registry at hand, the published tags known here are the image map's.
    previews = {slug: [images[slug].tag] for slug in inputs.catalog.slugs}
    values = helm_values(
        stack, inputs.catalog, images, hub, DB_HOST_PLACEHOLDER, preview_tags=previews
    )
    header = RENDER_HEADER.format(stack=stack.name, images=source)
    files: dict[str, str] = {
        "values.yaml": header + _dump_yaml(values),
        "hub-config.yaml": header + _dump_yaml(hub_configuration(values)),
        "release.yaml": header + _dump_yaml(release_settings(stack)),
        "monitoring-values.yaml": header + _dump_yaml(monitoring.prometheus_values(stack)),
        "dcgm-exporter-values.yaml": header + _dump_yaml(monitoring.dcgm_values(stack)),
    }
    # Objects deployed beside the releases: the GPU images' pre-puller, the hub's ServiceMonitor,
    # and the database migration Job run before the release (after a snapshot).
    manifests = [
        gpu_prepuller(stack, inputs.catalog, images),
        hub_service_monitor(stack),
        migration_job(stack, hub, DB_HOST_PLACEHOLDER),
    ]
    files["manifests.yaml"] = header + "---\n".join(_dump_yaml(m) for m in manifests if m)
    built = dashboards_build(inputs.catalog, monitoring.dashboard_settings(stack))
    files.update({f"dashboards/{name}": text for name, text in built.items()})
    # The registry's policies keep the tags in use; the other stacks' tags are added at deploy.
    policies = []
    if stack.registry.manage and inputs.image_map is not None:
        policies.append(("ecr-lifecycle-course-images.json", {ref.tag for ref in images.values()}))
    if stack.registry.manage and inputs.hub_image is not None:
        policies.append(("ecr-lifecycle-hub-images.json", {hub.tag}))
    for name, tags in policies:
        policy = lifecycle_policy(
            tags,
            expire_untagged_days=stack.registry.expire_untagged_days,
            expire_after_days=stack.registry.expire_after_days,
        )
        files[name] = json.dumps(policy, indent=2, sort_keys=True) + "\n"
    written = []
    for name, text in sorted(files.items()):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def published_tags(repository: str, region: str) -> list[tuple[str, str]]:
    """(tag, pushed at, ISO 8601) of every tagged image in the ECR repository (boto3)."""
    import boto3

    ecr = boto3.client("ecr", region_name=region)
    found: list[tuple[str, str]] = []
    pages = ecr.get_paginator("describe_images").paginate(
        repositoryName=repository, filter={"tagStatus": "TAGGED"}
    )
    for page in pages:
        for image in page["imageDetails"]:
            pushed = image["imagePushedAt"].isoformat()
            found.extend((tag, pushed) for tag in image.get("imageTags", []))
    return found


def other_stack_outputs_command(other: str) -> list[str]:
    """The CLI command that reads another stack's outputs: without `--show-secrets` (which the
    Automation API's `Stack.outputs()` adds), secret outputs read `[secret]` and the other stack's
    secrets provider is never asked to decrypt anything."""
    return ["pulumi", "stack", "output", "--json", "--stack", other]


def other_stack_outputs(other: str, work_dir: Path) -> dict[str, Any] | None:
    """Another stack's outputs (without its secrets); None when it was never created."""
    result = subprocess.run(
        other_stack_outputs_command(other),
        cwd=work_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        if "no stack named" in result.stderr:
            return None
        raise DeployError(f"cannot read stack {other}'s outputs: {result.stderr.strip()}")
    outputs = json.loads(result.stdout or "{}")
    return outputs if isinstance(outputs, dict) else {}


#: The providers' SDK packages: each one's plugin is installed at the package's version.
PROVIDER_PACKAGES = ("pulumi_aws", "pulumi_kubernetes")


def preview_or_up(pulumi_stack: Any, what: str, preview: bool, packages: Sequence[str]) -> Any:
    """Installs the plugins of `packages` (`pulumi_aws` -> `aws`) at their versions, then runs
    `pulumi preview` (returns None) or `pulumi up` (returns its result). A failure is a
    DeployError naming `what`; the engine masks secret values in what it prints."""
    from pulumi import automation as auto

    for package in packages:
        plugin = package.removeprefix("pulumi_")
        pulumi_stack.workspace.install_plugin(plugin, "v" + metadata.version(package))
    try:
        if preview:
            pulumi_stack.preview(on_output=print, color="never", diff=True)
            return None
        return pulumi_stack.up(on_output=print, color="never")
    except auto.CommandError as e:
        raise DeployError(f"pulumi {'preview' if preview else 'up'} of {what} failed: {e}") from e


def _run_pulumi(inputs: Inputs, root: Path, preview: bool) -> int:
    """`pulumi up` or `pulumi preview` of the stack, in-process program, Automation API."""
    from pulumi import automation as auto

    from infra.in_use import plan_in_use, stacks_to_read
    from infra.program import Deployment, make_program

    stack = inputs.stack
    assert inputs.image_map is not None and inputs.hub_image is not None

    options = auto.LocalWorkspaceOptions(
        work_dir=str(root / "infra"), secrets_provider=stack.secrets_provider
    )
    # The tags the other stacks run now, which the registry's policies keep (infra/in_use.py).
    kept = plan_in_use(
        stack,
        {other: other_stack_outputs(other, root / "infra") for other in stacks_to_read(stack)},
    )
    for message in kept.messages:
        print(message)

    previews: dict[str, list[str]] = {}
    if stack.allow_preview_tags:
        published = published_tags(COURSE_REPOSITORY, stack.region)
        previews = preview_tags(inputs.catalog, published, PREVIEW_TAGS_PER_COURSE)
    deployment = Deployment(
        stack=stack,
        catalog=inputs.catalog,
        image_map=inputs.image_map,
        hub_image=inputs.hub_image,
        in_use=kept.in_use,
        preview_tags=previews,
    )
    pulumi_stack = auto.create_or_select_stack(
        stack_name=stack.name,
        project_name=PROJECT,
        program=make_program(deployment),
        opts=options,
    )
    try:
        result = preview_or_up(pulumi_stack, f"stack {stack.name}", preview, PROVIDER_PACKAGES)
    except DeployError as e:
        print(e, file=sys.stderr)
        return 1
    if result is None:
        return 0
    for key, output in sorted(result.outputs.items()):
        print(f"{key}: {'[secret]' if output.secret else json.dumps(output.value)}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./pants run infra:deploy --",
        description="Deploy a stack of the course platform (ECR, RDS, the JupyterHub release).",
    )
    parser.add_argument("--stack", required=True, choices=STACKS)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--preview", action="store_true", help="show what would change; change nothing"
    )
    mode.add_argument(
        "--render",
        metavar="DIR",
        help="write the Helm values and hub configuration into DIR; needs no Pulumi CLI, no cloud",
    )
    parser.add_argument(
        "--image-map", metavar="FILE", help=f"course -> image (default {IMAGE_MAP})"
    )
    hub = parser.add_mutually_exclusive_group()
    hub.add_argument(
        "--hub-image", metavar="REF", help=f"the hub image, <registry>/{HUB_REPOSITORY}:<tag>"
    )
    hub.add_argument(
        "--hub-image-info",
        metavar="FILE",
        help=f"Pants docker-info of hub:image (default {HUB_DOCKER_INFO})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        root = repo_root()
        if args.render:
            inputs = load_inputs(args, root, allow_unbuilt=True)
            for path in render(inputs, Path(args.render)):
                print(f"wrote {path}")
            return 0
        if shutil.which("pulumi") is None:
            print(INSTALL_PULUMI, file=sys.stderr)
            return EXIT_NO_CLI
        inputs = load_inputs(args, root, allow_unbuilt=False)
        return _run_pulumi(inputs, root, args.preview)
    except (DeployError, StackConfigError, CatalogError, ImageError, PolicyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
