"""A client of a running hub, as a learner's browser and an admin see it: open a launch link,
wait until the server is ready, delete the throwaway user. The launch benchmark and the
end-to-end tests drive the local hub with it (`LocalHub` is one).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlparse

import requests

from hub.contract import launch_link


class HubError(RuntimeError):
    """The hub did not do what was asked; `status` is its HTTP answer, where that says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Launch:
    """One launch through `/tmplogin`: the throwaway user's name and the HTTP session."""

    user: str
    session: requests.Session
    response: requests.Response


def user_from_url(url: str) -> str | None:
    """The user name in a hub URL (`/hub/spawn-pending/<name>`, `/user/<name>/...`)."""
    path = urlparse(url).path
    match = re.search(r"/(?:hub/spawn-pending|user)/([^/]+)", path)
    return match.group(1) if match else None


class HubClient:
    """The hub at `url`, with an API token of the admin scopes (local_hub.config.ADMIN_SCOPES)."""

    def __init__(self, url: str, api_token: str) -> None:
        self.url = url
        self.api_token = api_token

    def log_tail(self, lines: int = 60) -> str:
        """The end of the hub's log, for error messages (a client has none)."""
        return ""

    def link(self, course: str, notebook: str | None = None, **extra: str) -> str:
        return launch_link(self.url, course, notebook, **extra)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.api_token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs
        )

    def launch(self, url: str, session: requests.Session | None = None) -> Launch:
        """Opens a launch link like a browser without JavaScript; returns the new user."""
        session = session or requests.Session()
        response = session.get(url, timeout=60)
        user = user_from_url(response.url)
        if user is None:
            raise HubError(
                f"{url} ended at {response.url} ({response.status_code}), not at a user's server",
                status=response.status_code,
            )
        return Launch(user, session, response)

    def server(self, user: str) -> dict[str, Any] | None:
        response = self.api("GET", f"/users/{quote(user, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        servers = response.json().get("servers", {})
        return servers.get("")  # type: ignore[no-any-return]

    def wait_ready(
        self,
        user: str,
        timeout: float = 180,
        interval: float = 0.25,
        marks: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Waits until the user's server is ready (the hub's view), then checks it answers.
        `marks` gets the `time.perf_counter()` of both: "ready" and "answers"."""
        marks = {} if marks is None else marks
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            server = self.server(user)
            if server and server.get("ready"):
                marks.setdefault("ready", time.perf_counter())
                if self.server_answers(user, server):
                    marks["answers"] = time.perf_counter()
                    return server
            active = server is not None and (server.get("pending") or server.get("ready"))
            if not active and time.monotonic() - started > 10:
                raise HubError(f"{user}'s server did not start:\n{self.log_tail()}")
            time.sleep(interval)
        raise HubError(f"{user}'s server not ready in {timeout:.0f}s:\n{self.log_tail()}")

    def server_answers(self, user: str, server: dict[str, Any] | None = None) -> bool:
        """The user's server answers through the proxy (with the hub's admin token). Where
        servers are on subdomains (`<user>.<host>`, the server's `url` is then absolute), the
        request goes to the hub's address with that host in `Host`: the proxy routes by it, and
        the system need not resolve `*.localhost`."""
        url = (server or self.server(user) or {}).get("url") or f"/user/{quote(user, safe='')}/"
        target = urlparse(url)
        headers = {"Authorization": f"token {self.api_token}"}
        if target.netloc:
            headers["Host"] = target.netloc
        try:
            response = requests.get(
                urljoin(self.url, f"{target.path.rstrip('/')}/api/status"),
                headers=headers,
                timeout=10,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def delete_user(self, user: str) -> None:
        """Stops the user's server and deletes the user (waits for the stop)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = self.api("DELETE", f"/users/{quote(user, safe='')}")
            if response.status_code in (204, 404):
                return
            time.sleep(0.5)  # 400 while a spawn or stop is pending
        raise HubError(f"could not delete {user}: {response.status_code} {response.text}")
