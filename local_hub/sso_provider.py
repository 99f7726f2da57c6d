"""A local OpenID Connect provider for the local hub's SSO gate (`hub:local -- --sso`, tests).

    with LocalSsoProvider(state_dir, users={"ada": "secret"}) as provider:
        settings = replace(settings, sso=provider.settings)
        hub = LocalHub(settings, state_dir, sso_client_secret=provider.client_secret)
        provider.start([f"{hub.url}/hub/oauth_callback"])

runs `local_hub/sso_provider.mjs` (the npm library `oidc-provider`, installed globally like the
proxy: `npm install -g oidc-provider@9.13.3`) on 127.0.0.1 with one client, the hub, and the
given users. Production's provider is a Keycloak realm; the hub talks to both the same way.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin

import requests

from hub.settings import SsoSettings
from local_hub.processes import LocalHubError, free_port, port_open, stop_process, tail_of

SCRIPT = Path(__file__).with_name("sso_provider.mjs")
CLIENT_ID = "ol-course-hub"
#: The version .ci/setup installs (the script is written against its API).
OIDC_PROVIDER = "oidc-provider@9.13.3"


def provider_module() -> Path:
    """The installed `oidc-provider` package's entry file (env OIDC_PROVIDER_MODULE, else the
    global npm root)."""
    configured = os.environ.get("OIDC_PROVIDER_MODULE")
    if configured:
        return Path(configured)
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise LocalHubError(
            f"Node.js and npm are needed: install them, then npm install -g {OIDC_PROVIDER}"
        )
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False)
    module = Path(root.stdout.strip()) / "oidc-provider" / "lib" / "index.js"
    if not module.is_file():
        raise LocalHubError(
            f"the OpenID provider library is missing: npm install -g {OIDC_PROVIDER}"
        )
    return module


_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


def sign_in(
    response: requests.Response, session: requests.Session, username: str, password: str
) -> requests.Response:
    """Submits the provider's sign-in page that `response` shows (as a browser would, without
    JavaScript) and follows every redirect after it; returns the last response."""
    match = _FORM_ACTION.search(response.text)
    if match is None:
        raise LocalHubError(f"{response.url} is not the provider's sign-in page")
    action = urljoin(response.url, html.unescape(match.group(1)))
    return session.post(action, data={"username": username, "password": password}, timeout=120)


class LocalSsoProvider:
    """The provider process; `settings` is what the hub's `custom.sso` gets."""

    def __init__(self, state_dir: Path, users: dict[str, str], port: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_secret = secrets.token_urlsafe(24)
        self.users = dict(users)
        self.log = self.state_dir / "sso-provider.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def settings(self) -> SsoSettings:
        return SsoSettings(issuer=self.issuer, client_id=CLIENT_ID)

    def start(self, redirect_uris: list[str]) -> None:
        node = shutil.which("node")
        if node is None:
            raise LocalHubError("node is not on PATH: install Node.js")
        config = self.state_dir / "sso-provider.json"
        config.write_text(
            json.dumps(
                {
                    "issuer": self.issuer,
                    "port": self.port,
                    "module": str(provider_module()),
                    "cookie_key": secrets.token_hex(16),
                    "client": {
                        "client_id": CLIENT_ID,
                        "client_secret": self.client_secret,
                        "redirect_uris": redirect_uris,
                    },
                    "users": self.users,
                }
            )
        )
        config.chmod(0o600)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [node, str(SCRIPT), str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalHubError(f"the OpenID provider exited:\n{tail_of(self.log)}")
            if port_open(self.port):
                return
            time.sleep(0.1)
        raise LocalHubError(f"the OpenID provider did not start in 30s:\n{tail_of(self.log)}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> LocalSsoProvider:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
