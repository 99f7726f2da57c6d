"""Logs the local Docker client in to the course image registry, so `./pants publish` can push.

Production: ECR. The password comes from boto3's `get_authorization_token` (AWS credentials from
the environment, as in CI with OIDC); Docker stores it the usual way (`docker login`).

    ./pants run tools:registry-login -- --registry 123456789012.dkr.ecr.us-east-1.amazonaws.com
"""

from __future__ import annotations

import argparse
import base64
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ECR_ADDRESS = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def ecr_region_and_account(registry: str) -> tuple[str | None, str | None]:
    """`<account>.dkr.ecr.<region>.amazonaws.com` -> (region, account); (None, None) otherwise."""
    match = ECR_ADDRESS.match(registry)
    return (match["region"], match["account"]) if match else (None, None)


def credentials_from_token(response: Mapping[str, Any]) -> Credentials:
    """Decodes ECR's `get_authorization_token` answer (base64 of `user:password`)."""
    data = response.get("authorizationData") or []
    if not data:
        raise ValueError("ECR returned no authorization data")
    user, sep, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    if not sep or not password:
        raise ValueError("ECR's authorization token is not of the form user:password")
    return Credentials(user, password)


def ecr_credentials(region: str | None, account: str | None) -> Credentials:
    import boto3  # imported here: the decision functions above need no AWS SDK

    client = boto3.client("ecr", region_name=region or "us-east-1")
    kwargs = {"registryIds": [account]} if account else {}
    return credentials_from_token(client.get_authorization_token(**kwargs))


def docker_login(registry: str, credentials: Credentials) -> None:
    result = subprocess.run(
        ["docker", "login", "--username", credentials.username, "--password-stdin", registry],
        input=credentials.password,
        text=True,
        capture_output=True,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"registry-login: docker login to {registry} failed: {result.stderr.strip()}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="registry-login", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="registry address, e.g. the ECR host")
    parser.add_argument("--region", help="AWS region (default: from the ECR address)")
    args = parser.parse_args(argv)
    region, account = ecr_region_and_account(args.registry)
    print(f"registry-login: asking ECR for a token (region {args.region or region or 'us-east-1'})")
    credentials = ecr_credentials(args.region or region, account)
    docker_login(args.registry, credentials)
    print(f"registry-login: docker is logged in to {args.registry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
