"""Throwaway users from launch links: TmpAuthenticator, with the link's arguments kept.

`/tmplogin?course=X&notebook=Y` (the proxy sends it on to `/hub/tmplogin?...`) logs in a new
random user and must then spawn with X and Y. Stock JupyterHub 6.1 already appends the current
query to the post-login URL (`BaseHandler.get_next_url`), so the arguments survive; we do not
rely on that internal detail: the login handler sends launch arguments to `/hub/spawn`
explicitly, with JupyterHub's `opt-` prefix (so they cannot clash with JupyterHub's own query
parameters such as `next`). The end-to-end tests check the whole chain in a browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from jupyterhub.utils import url_path_join
from tmpauthenticator import TmpAuthenticateHandler, TmpAuthenticator

from hub.launch import ARGUMENTS
from hub.pages import confirm_launch_html

#: The template of the one-click page (templates/confirm-launch.html).
CONFIRM_TEMPLATE = "confirm-launch.html"


def spawn_arguments(query: str) -> list[tuple[str, str]]:
    """The launch arguments of a login URL's query, `opt-` prefixed, in their order."""
    result = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        name = key[4:] if key.startswith("opt-") else key
        if name in ARGUMENTS:
            result.append((f"opt-{name}", value))
    return result


def asks_for_a_click(sec_fetch_site: str | None) -> bool:
    """Whether a launch link asks for one click before it starts anything: when another site
    sent the browser (`Sec-Fetch-Site: cross-site`), which could otherwise spend a signed-in
    learner's quota (a GPU for the idle hour) with a plain link or redirect. A link on this site,
    one typed or bookmarked (`same-origin`, `same-site`, `none`) and clients that do not say
    (no header) go straight on."""
    return sec_fetch_site == "cross-site"


async def confirm_cross_site_launch(handler: Any) -> bool:
    """Shows the one-click page instead of the login when another site sent the browser; True
    when it did. Its button is the same link, followed from this site."""
    if not asks_for_a_click(handler.request.headers.get("Sec-Fetch-Site")):
        return False
    query = dict(parse_qsl(handler.request.query, keep_blank_values=True))
    body = confirm_launch_html(query.get("course", ""), query.get("notebook"), handler.request.uri)
    handler.finish(await handler.render_template(CONFIRM_TEMPLATE, confirm_html=body))
    return True


class CourseTmpLoginHandler(TmpAuthenticateHandler):
    """`/hub/tmplogin`: a new throwaway user, then straight to the spawn of the linked course
    (from another site, after one click)."""

    async def get(self) -> None:
        if not await confirm_cross_site_launch(self):
            await super().get()

    def get_next_url(self, user: Any = None, default: Any = None) -> str:
        arguments = spawn_arguments(self.request.query)
        if arguments:
            spawn = url_path_join(self.hub.base_url, "spawn")
            return f"{spawn}?{urlencode(arguments, quote_via=quote)}"
        return super().get_next_url(user, default)


class CourseTmpAuthenticator(TmpAuthenticator):
    """TmpAuthenticator whose login keeps the launch link's arguments."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [("/tmplogin", CourseTmpLoginHandler)]
