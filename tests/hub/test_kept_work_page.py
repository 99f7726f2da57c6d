"""The kept-work page's decisions (hub/kept_work_page.py): whose rows it shows, what a delete
request deletes. The page itself runs end to end in tests/hub/test_e2e_kept_work.py."""

from __future__ import annotations

import pytest
from tornado import web

from hub.kept_work_page import Row, StoredWork, deletion, rows
from tests.hub.hub_data import CATALOG

ME, YOU = "a" * 20, "b" * 20
VOLUMES = [
    StoredWork(f"work-{ME}-intro-ml", ME, "intro-ml", False),
    StoredWork(f"work-{ME}-data-analytics", ME, "data-analytics", True),
    StoredWork(f"work-{ME}-retired-course", ME, "retired-course", False),
    StoredWork(f"work-{YOU}-intro-ml", YOU, "intro-ml", False),
]


def test_rows_are_the_persons_own_by_course() -> None:
    assert rows(VOLUMES, ME, CATALOG) == [
        Row("data-analytics", CATALOG["data-analytics"].title, True),
        Row("intro-ml", CATALOG["intro-ml"].title, False),
        Row("retired-course", "retired-course", False),
    ]
    assert rows(VOLUMES, "c" * 20, CATALOG) == []


def test_deleting_takes_the_persons_volume_of_that_course() -> None:
    assert deletion(VOLUMES, ME, "intro-ml") == f"work-{ME}-intro-ml"
    assert deletion(VOLUMES, YOU, "intro-ml") == f"work-{YOU}-intro-ml"


@pytest.mark.parametrize(
    ("person", "course", "status"),
    [
        (ME, "data-analytics", 409),  # its server runs
        (ME, "no-such-course", 404),
        ("c" * 20, "intro-ml", 404),  # someone else's only
        (ME, "", 404),
    ],
)
def test_what_cannot_be_deleted(person: str, course: str, status: int) -> None:
    with pytest.raises(web.HTTPError) as refused:
        deletion(VOLUMES, person, course)
    assert refused.value.status_code == status
