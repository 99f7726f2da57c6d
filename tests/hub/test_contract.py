"""The launch link's one format (hub/contract.py): every link builder of the repository writes
it, and the hub's reader (`hub.launch.query_arguments`) reads back exactly what was written."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from hub.auth import asks_for_a_click
from hub.contract import launch_link, launch_query
from hub.launch import query_arguments
from hub.pages import confirm_launch_html
from hub.pages import launch_link as spawn_page_link
from local_hub.client import HubClient
from tests.hub.hub_data import CATALOG
from tools.links import course_links

NOTEBOOK = "notebooks/100% sure.ipynb"


@pytest.mark.parametrize(
    ("course", "notebook", "extra", "query"),
    [
        ("intro-ml", None, {}, "course=intro-ml"),
        ("intro-ml", "a/b c.ipynb", {}, "course=intro-ml&notebook=a/b%20c.ipynb"),
        ("intro-ml", "a&b=c#d?.ipynb", {}, "course=intro-ml&notebook=a%26b%3Dc%23d%3F.ipynb"),
        (
            "x/y",
            "ü.ipynb",
            {"needs_gpu": "false"},
            "course=x%2Fy&notebook=%C3%BC.ipynb&needs_gpu=false",
        ),
    ],
)
def test_the_query_and_its_reading(
    course: str, notebook: str | None, extra: dict[str, str], query: str
) -> None:
    assert launch_query(course, notebook, **extra) == query
    read = query_arguments(query)
    assert read["course"] == [course]
    assert read.get("notebook") == ([notebook] if notebook else None)


def test_every_builder_writes_the_same_link() -> None:
    hub = "http://127.0.0.1:8000"
    expected = f"{hub}/tmplogin?course=intro-ml&notebook=notebooks/100%25%20sure.ipynb"
    assert launch_link(hub + "/", "intro-ml", NOTEBOOK) == expected
    assert HubClient(hub, "token").link("intro-ml", NOTEBOOK) == expected
    (link,) = (x for x in course_links(CATALOG["intro-ml"], hub) if x.notebook == NOTEBOOK)
    assert link.url == expected
    spawn = spawn_page_link("/hub/spawn", "intro-ml", NOTEBOOK)
    assert spawn == "/hub/spawn?" + urlsplit(expected).query


@pytest.mark.parametrize(
    ("sec_fetch_site", "asks"),
    [("cross-site", True), ("same-site", False), ("same-origin", False), ("none", False),
     (None, False)],
)  # fmt: skip
def test_only_another_site_s_link_asks_for_a_click(sec_fetch_site: str | None, asks: bool) -> None:
    assert asks_for_a_click(sec_fetch_site) is asks


def test_the_one_click_page_names_the_launch_and_escapes_it() -> None:
    url = "/hub/tmplogin?course=intro-ml&notebook=%3Cb%3E.ipynb"
    html = confirm_launch_html("intro-ml", "<b>.ipynb", url)
    assert "<code>intro-ml</code> at <code>&lt;b&gt;.ipynb</code>" in html
    assert f'id="ol-start" href="{url.replace("&", "&amp;")}"' in html and "<b>" not in html
