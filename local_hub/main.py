"""The local hub: JupyterHub, its proxy and DockerSpawner on 127.0.0.1 with the course images.

    python -m local_hub.main            # or: ./pants run hub:local

builds the course images and the image map (`./pants package courses::`), starts
configurable-http-proxy and JupyterHub (SQLite in a state directory, throwaway users, the idle
culler), prints the launch link of every notebook, and on Ctrl-C stops everything and removes
the containers it started. People reach it on 127.0.0.1; learner containers run on a Docker
network of the hub's own and of this machine reach only the hub (see `local_hub.processes`).

With `--sso`, the hub is gated as in production (hub/sso.py): a local OpenID provider
(`local_hub.sso_provider`) starts too, and a launch link first asks you to sign in (the user and password
are printed). `--stack NAME` (with the gate, as every stack has it) runs with that stack's
launch limits and culling (`infra/Pulumi.<NAME>.yaml`), so what learners meet there can be tried
here; the provider stays the local one, and flags given explicitly (`--idle-timeout`...) win.
`--keep-work DAYS` (with the gate) keeps each person's work per course in a Docker volume, as
production's `keepWork` does in a PersistentVolumeClaim.

This is the command line; the pieces are the course images (`local_hub.images`), the hub's
configuration (`local_hub.config`), its processes (`local_hub.processes.LocalHub`) and a client
of a running hub (`local_hub.client`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from catalog import Catalog, find_repo_root, load_catalog
from catalog.image_facts import ImageMapError
from hub.contract import launch_link
from hub.launch import KeptWorkSettings, LaunchSettings
from hub.limits import LimitSettings
from hub.settings import CullSettings, HubSettings
from infra.stack_config import STACKS, StackConfig, load_stack_config
from local_hub.images import build_images, docker_client, load_image_map, local_images
from local_hub.processes import LocalHub
from local_hub.sso_provider import LocalSsoProvider

#: The sign-in of `--sso` (a local provider on loopback: not a secret).
SSO_USER = ("learner", "learner")


def launch_links(
    hub_url: str, catalog: Catalog, images: Mapping[str, str]
) -> Iterator[tuple[str, str, str]]:
    """(course, notebook, link) for every notebook of every course that has an image."""
    for course in catalog:
        if course.slug not in images:
            continue
        for notebook in course.notebooks:
            yield course.slug, notebook, launch_link(hub_url, course.slug, notebook)


# --- Command line ---------------------------------------------------------------------------


#: The culling flags and the CullSettings fields they set.
CULL_FLAGS = {
    "idle_timeout": "idle_timeout",
    "max_age": "max_age",
    "cull_every": "every",
    "kernel_idle_timeout": "kernel_idle_timeout",
}


def local_settings(
    catalog: Catalog,
    images: Mapping[str, str],
    flags: Mapping[str, int | None],
    stack: StackConfig | None = None,
) -> HubSettings:
    """What the local hub runs with: the stack's limits and culling where one is named (none and
    CullSettings' defaults otherwise), the culling flags given (not None) over either."""
    culling = stack.culling if stack else CullSettings()
    given: dict[str, Any] = {
        field: flags[flag] for flag, field in CULL_FLAGS.items() if flags.get(flag) is not None
    }
    culling = replace(culling, **given)
    kept_work = stack.keep_work if stack else KeptWorkSettings()
    if flags.get("keep_work") is not None:
        kept_work = replace(kept_work, days=int(flags["keep_work"] or 0))
    return HubSettings(
        catalog=catalog,
        image_map=images,
        launch=LaunchSettings(kept_work=replace(kept_work, storage_class=None)),
        culling=culling,
        limits=stack.limits if stack else LimitSettings(),
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = CullSettings()
    parser = argparse.ArgumentParser(
        prog="python -m local_hub.main", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=8000, help="public port on 127.0.0.1")
    parser.add_argument("--state-dir", type=Path, help="database, logs (default: a temp dir)")
    parser.add_argument("--db-url", help="hub database (default: SQLite in the state dir)")
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="use the image map and the images already built; do not run Pants",
    )
    for flag, field in CULL_FLAGS.items():
        default = getattr(defaults, field)
        parser.add_argument(
            f"--{flag.replace('_', '-')}",
            type=int,
            help=f"seconds (default: the stack's with --stack, else {default})",
        )
    parser.add_argument(
        "--sso",
        action="store_true",
        help="put the production SSO gate in front (a local OpenID provider starts too)",
    )
    parser.add_argument(
        "--stack",
        choices=STACKS,
        help=(
            "that stack's launch limits and culling (infra/Pulumi.<stack>.yaml); implies --sso "
            "and --subdomains, as every stack runs"
        ),
    )
    parser.add_argument(
        "--subdomains",
        action="store_true",
        help=(
            "learners' servers on <user>.localhost, as production's on <user>.<domain>: the hub "
            "is then http://localhost:PORT (browsers resolve *.localhost to this machine)"
        ),
    )
    parser.add_argument(
        "--keep-work",
        type=int,
        metavar="DAYS",
        help=(
            "keep each signed-in person's work per course in a Docker volume, deleted after DAYS "
            "untouched (needs --sso: the person is known only behind the gate); 0: keep nothing"
        ),
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--echo-logs", action="store_true", help="hub logs to the terminal")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.keep_work and not (args.sso or args.stack):
        print(
            "--keep-work needs --sso (or --stack): work is kept per signed-in person",
            file=sys.stderr,
        )
        return 2
    root = find_repo_root()
    if not args.no_build:
        build_images(root)
    catalog = load_catalog(root)
    try:
        images = local_images(catalog, load_image_map(root), docker_client())
    except ImageMapError as e:
        print(e, file=sys.stderr)
        return 1
    stack = load_stack_config(root / "infra", args.stack) if args.stack else None
    settings = local_settings(catalog, images, vars(args), stack)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="ol-local-hub-"))
    gated = args.sso or stack is not None
    provider = LocalSsoProvider(state_dir, users=dict([SSO_USER])) if gated else None
    if provider is not None:
        settings = replace(settings, sso=provider.settings)
    hub = LocalHub(
        settings,
        state_dir,
        port=args.port,
        db_url=args.db_url,
        log_level=args.log_level,
        echo_logs=args.echo_logs,
        sso_client_secret=provider.client_secret if provider else None,
        subdomains=args.subdomains or stack is not None,
    )
    stop = {"now": False}

    def request_stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        if provider is not None:
            provider.start([f"{hub.url}/hub/oauth_callback"])
        hub.start()
        print(f"\nLocal hub: {hub.url}   (state and logs: {state_dir})\n")
        if stack is not None:
            print(
                f"Limits and culling of the {stack.name} stack: {settings.limits}, {settings.culling}\n"
            )
        if provider is not None:
            print(
                f"SSO gate: sign in at {provider.issuer} as {SSO_USER[0]!r}, "
                f"password {SSO_USER[1]!r}\n"
            )
        for slug, notebook, link in launch_links(hub.url, catalog, images):
            print(f"  {slug:24} {notebook}\n    {link}")
        print("\nCtrl-C stops the hub and removes its containers.")
        sys.stdout.flush()
        while not stop["now"]:
            if hub.hub is not None and hub.hub.poll() is not None:
                print(f"JupyterHub exited:\n{hub.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not leave containers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping the hub and removing its containers...", flush=True)
        try:
            hub.stop()
        finally:
            if provider is not None:
                provider.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
