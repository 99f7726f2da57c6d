"""What a learner sees when a launch link cannot be opened (pure: HTML from data).

JupyterHub shows the page inside its own error template (`error.html`; for a 404 our
`templates/404.html`, which extends it and keeps the body) under the heading
`<status> : <status text>`; this module writes the body: the reason in words, then every course
that can be launched, each with a link that starts it and a link per notebook. A launch that a
limit refused (hub/limits.py) gets the limit's reason, its retry time and the person's running
servers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import quote

from hub.contract import launch_query
from hub.launch import CourseLink, LaunchError
from hub.limits import Refusal


def launch_link(base: str, course: str, notebook: str | None = None) -> str:
    """`<base>?course=<slug>[&notebook=<path>]` (`base`: the hub's /hub/spawn)."""
    return f"{base}?{launch_query(course, notebook)}"


def course_list_html(courses: Sequence[CourseLink], base: str) -> str:
    """A list of courses with a launch link each and a link per notebook."""
    if not courses:
        return "<p>No course can be started on this hub right now.</p>"
    items = []
    for course in courses:
        notebooks = "".join(
            f'<li><a href="{escape(launch_link(base, course.slug, notebook))}">'
            f"{escape(notebook)}</a></li>"
            for notebook in course.notebooks
        )
        items.append(
            f'<li><a class="ol-course-link" href="{escape(launch_link(base, course.slug))}">'
            f"{escape(course.title)}</a> <code>{escape(course.slug)}</code>"
            f"<ul>{notebooks}</ul></li>"
        )
    return f'<ul class="ol-courses">{"".join(items)}</ul>'


def launch_error_html(error: LaunchError, base: str) -> str:
    """The body of the error page for `error`; `base` is where the course links point."""
    return (
        f'<div class="ol-launch-error" data-reason="{escape(error.reason)}">'
        f"<p><strong>{escape(error.message)}</strong></p>"
        "<p>Courses you can open:</p>"
        f"{course_list_html(error.courses, base)}"
        "</div>"
    )


def retry_form_html(options: Mapping[str, str]) -> str:
    """The spawn form JupyterHub shows under a start error that is not the link's fault (the
    hub's spawn limit, a server that failed to start): the same launch again, one click away.

    JupyterHub puts it inside its spawn page's form, below the error and with the error's status
    (429 with its "try again in" time for the spawn limit); the hidden fields are the plan's own
    user options, so "Start" plans the same course and notebook again.
    """
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in sorted(options.items())
    )
    return (
        '<div class="ol-launch-retry">'
        "<p>The link is fine: your course could not be started just now. "
        "Start it again (the message above says when it can).</p>"
        f"{fields}</div>"
    )


def limit_html(refusal: Refusal, resume_base: str) -> str:
    """The body of the page for a launch a limit refused: why, when to retry, and the person's
    running servers, each a link back to it (`<resume_base>/<user>`, hub/sso.py)."""
    running = "".join(
        f'<li><a class="ol-running-server" href="{escape(resume_base)}/{quote(user)}">'
        f"{escape(user)}</a></li>"
        for user in refusal.running
    )
    return (
        f'<div class="ol-launch-limit" data-reason="{escape(refusal.reason)}"'
        f' data-retry-after="{refusal.retry_after}">'
        f"<p><strong>{escape(refusal.message)}</strong></p>"
        + (f"<p>Your running servers:</p><ul>{running}</ul>" if running else "")
        + "</div>"
    )


def confirm_launch_html(course: str, notebook: str | None, url: str) -> str:
    """The one-click page of a launch link another site sent the browser to (hub/auth.py): what
    would start, and a button that is the same link followed from this site."""
    what = f"the course <code>{escape(course)}</code>"
    if notebook:
        what += f" at <code>{escape(notebook)}</code>"
    return (
        '<div class="ol-confirm-launch">'
        "<h1>Start this course?</h1>"
        f"<p>A page on another site sent you here to open {what}. Starting it gives you a "
        "server of your own, which counts against your limits until it stops.</p>"
        f'<p><a class="btn btn-primary btn-lg" id="ol-start" href="{escape(url)}">Start</a></p>'
        "</div>"
    )
