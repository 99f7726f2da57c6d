"""A simulated learner: a browser without JavaScript that follows a launch link to its notebook
page, timed step by step (the capacity scenario's load).
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlparse

import requests

from benchmarks.cheap_servers import read_page
from catalog import Catalog
from hub.contract import launch_link
from local_hub.client import user_from_url

#: Answers that mean the hub refused the launch on purpose (limits), not that it failed.
REFUSALS = (429, 503)
#: A browser's headers on a navigation (the hub and HubOAuth decide XSRF checks by them).
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (ol-capacity-learner)",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Dest": "document",
}
#: ... and on the spawn-pending page's EventSource.
EVENT_STREAM_HEADERS = {
    "Accept": "text/event-stream",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}
#: Where a launch's time goes: seconds from opening the link to the first answer of each (a path
#: pattern), and to the notebook page (the end).
STEPS: tuple[tuple[str, str | None], ...] = (
    ("logged in", r"^/hub/tmplogin$"),
    ("spawn answered", r"^/hub/spawn(/.*)?$"),
    ("server answers", r"^/user/[^/]+/?$"),
    ("OAuth authorize", r"^/hub/api/oauth2/authorize$"),
    ("OAuth callback", r"^/user/[^/]+/oauth_callback$"),
    ("notebook page", None),
)


def learner_links(catalog: Catalog, count: int) -> list[tuple[str, str | None]]:
    """`count` (course, notebook) pairs spread over the courses, then over their notebooks."""
    courses = list(catalog)
    pairs: list[tuple[str, str | None]] = []
    for index in range(count):
        course = courses[index % len(courses)]
        notebooks = course.notebooks
        notebook = notebooks[(index // len(courses)) % len(notebooks)] if notebooks else None
        pairs.append((course.slug, notebook))
    return pairs


class VisitError(Exception):
    """The launch did not reach the notebook; `status` is the HTTP answer that says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Visit:
    """One learner's launch: `ok`, `refused` (the hub said 429/503) or `failed` (with the
    reason); `started`/`ended`: seconds since the load began; `steps`: seconds from the link to
    each of STEPS (NaN where not seen)."""

    course: str
    notebook: str | None
    status: str
    started: float
    ended: float
    reason: str = ""
    user: str | None = None
    steps: tuple[float, ...] = ()

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def _left(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise requests.Timeout("the learner's time ran out")
    return left


def _wait_for_spawn(session: requests.Session, page: requests.Response, deadline: float) -> None:
    """What the spawn-pending page's JavaScript does: follow the progress event stream (its
    URL, with the `_xsrf` argument, is in the page) until the server is ready or failed."""
    match = re.search(r'new EventSource\("([^"]+)"\)', page.text)
    if match is None:
        raise VisitError(f"no progress stream on {urlparse(page.url).path}", page.status_code)
    url = urljoin(page.url, html.unescape(match.group(1)))
    with session.get(
        url, headers=EVENT_STREAM_HEADERS, stream=True, timeout=(10, _left(deadline))
    ) as stream:
        if stream.status_code != 200:
            raise VisitError(f"progress stream answered {stream.status_code}", stream.status_code)
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                if event.get("ready"):
                    return
                if event.get("failed"):
                    raise VisitError(f"spawn failed: {event.get('message', '')}".strip())
            _left(deadline)
    raise VisitError("the progress stream ended before the server was ready")


def check_landing(
    response: requests.Response, user: str | None, course: str, notebook: str | None
) -> None:
    """Raises `VisitError` unless `response` is `user`'s page of `course`'s `notebook`."""
    path = unquote(urlparse(response.url).path)
    if response.status_code != 200:
        raise VisitError(f"HTTP {response.status_code} at {_route(path)}", response.status_code)
    if user is None:
        raise VisitError(f"ended at {_route(path)}, not at a learner's server")
    expected = f"/user/{user}/lab" + (f"/tree/{notebook}" if notebook else "")
    if path.rstrip("/") != expected:
        raise VisitError(f"ended at {_route(path)}, not at the notebook's URL")
    page = read_page(response.text)
    if page is None:
        raise VisitError(f"{_route(path)} is not a notebook page")
    if page["course"] != course:
        raise VisitError(f"landed on course {page['course']!r}, not {course!r}")
    if page["notebook"] != (notebook or ""):
        raise VisitError(f"landed on notebook {page['notebook']!r}, not {notebook!r}")
    if page["user"] != user:
        raise VisitError(f"landed on {page['user']!r}'s server, not {user!r}'s")


def _route(path: str) -> str:
    """A path with the user's name left out (reasons are counted across learners)."""
    return re.sub(r"/(user|spawn-pending)/[^/]+", r"/\1/<name>", path)


def visit(
    hub_url: str, course: str, notebook: str | None, timeout: float = 60, origin: float = 0.0
) -> Visit:
    """One learner, from the launch link to the notebook page; never raises. `origin`: the
    `time.perf_counter()` the load's times count from."""
    started = time.perf_counter()
    deadline = started + timeout
    hops: list[tuple[float, str]] = []
    session = requests.Session()
    session.headers.update(BROWSER_HEADERS)
    session.hooks["response"].append(
        lambda r, *args, **kwargs: hops.append((time.perf_counter(), urlparse(r.url).path))
    )
    user = None
    status, reason = "ok", ""
    try:
        response = session.get(launch_link(hub_url, course, notebook), timeout=_left(deadline))
        user = user_from_url(response.url)
        if response.status_code in REFUSALS:
            raise VisitError(
                f"HTTP {response.status_code} at {_route(urlparse(response.url).path)}",
                response.status_code,
            )
        if urlparse(response.url).path.startswith("/hub/spawn-pending/"):
            _wait_for_spawn(session, response, deadline)
            response = session.get(response.url, timeout=_left(deadline))
        check_landing(response, user, course, notebook)
    except VisitError as error:
        status = "refused" if error.status in REFUSALS else "failed"
        reason = str(error)
    except requests.Timeout:
        last = _route(hops[-1][1]) if hops else "the link"
        status, reason = "failed", f"timed out ({timeout:.0f} s) after {last}"
    except requests.RequestException as error:
        status, reason = "failed", f"{type(error).__name__}: {first_line(error)}"
    finally:
        session.close()
    ended = time.perf_counter()
    steps = tuple(
        (
            next((t - started for t, path in hops if re.match(pattern, path)), float("nan"))
            if pattern
            else (ended - started if status == "ok" else float("nan"))
        )
        for _, pattern in STEPS
    )
    return Visit(course, notebook, status, started - origin, ended - origin, reason, user, steps)


def first_line(error: BaseException) -> str:
    text = re.sub(r"0x[0-9a-f]+", "0x…", str(error))
    return (text.strip().splitlines() or [type(error).__name__])[0][:160]
