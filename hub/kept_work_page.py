"""`/hub/kept-work`: where a signed-in person sees the work the hub keeps for them, per course,
and deletes it (issue 27). Behind the SSO gate only: without it the hub knows no person.

The decisions are pure (`rows`, `deletion`); the volumes come from the spawner class's
`WorkStore` (`CourseSpawner.work_store()`: the hub's own Kubernetes API access in production,
the Docker engine locally). A volume a server has mounted is not deleted: the page says to stop
the server first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jupyterhub.handlers import BaseHandler
from tornado import web

from catalog import Catalog
from hub.sso import identity_of

PATH = "kept-work"


@dataclass(frozen=True)
class StoredWork:
    """One kept-work volume as its platform lists it."""

    name: str
    person: str
    course: str
    in_use: bool


class WorkStore(Protocol):
    async def volumes(self, person: str) -> list[StoredWork]: ...

    async def delete(self, name: str) -> None: ...


@dataclass(frozen=True)
class Row:
    course: str
    title: str
    in_use: bool


def rows(volumes: Sequence[StoredWork], person: str, catalog: Catalog) -> list[Row]:
    """The person's kept work, one row per course (a course no longer in the catalog keeps its
    slug as its title): never anyone else's."""
    found = []
    for volume in sorted(volumes, key=lambda v: v.course):
        if volume.person == person:
            course = catalog.get(volume.course)
            found.append(
                Row(volume.course, course.title if course else volume.course, volume.in_use)
            )
    return found


def deletion(volumes: Sequence[StoredWork], person: str, course: str) -> str:
    """The volume to delete for the person's request to delete their work for `course`, or
    `web.HTTPError`: 404 when they keep none there (or it is someone else's), 409 in use."""
    mine = [v for v in volumes if v.person == person and v.course == course]
    if not mine:
        raise web.HTTPError(404, "You keep no work for that course.")
    if any(v.in_use for v in mine):
        raise web.HTTPError(
            409, "Your server for that course is running: stop it first, then delete its work."
        )
    (volume,) = mine
    return volume.name


class KeptWorkHandler(BaseHandler):
    """GET: the signed-in person's kept work; POST `course=<slug>`: delete it (with the page's
    XSRF token, as every JupyterHub form)."""

    def _person(self) -> str:
        person = identity_of(self.current_user.name)
        if person is None:
            raise web.HTTPError(404, "Kept work belongs to signed-in people only.")
        return person

    def _store(self) -> WorkStore:
        return self.settings["spawner_class"].work_store()  # type: ignore[no-any-return]

    def _catalog(self) -> Catalog:
        spawner_config = self.settings["config"].CourseSpawner
        settings = spawner_config.hub_settings if "hub_settings" in spawner_config else None
        return settings.catalog if settings else Catalog(())

    @web.authenticated
    async def get(self) -> None:
        person = self._person()
        volumes = await self._store().volumes(person)
        html = await self.render_template(
            "kept-work.html", rows=rows(volumes, person, self._catalog()), deleted=None
        )
        self.finish(html)

    @web.authenticated
    async def post(self) -> None:
        person = self._person()
        course = self.get_body_argument("course", "")
        store = self._store()
        name = deletion(await store.volumes(person), person, course)
        await store.delete(name)
        self.log.info("Kept work %s deleted by its person", name)
        volumes = await store.volumes(person)
        html = await self.render_template(
            "kept-work.html", rows=rows(volumes, person, self._catalog()), deleted=course
        )
        self.finish(html)


def handlers() -> list[tuple[str, Any]]:
    return [(f"/{PATH}", KeptWorkHandler)]
