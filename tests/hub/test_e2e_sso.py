"""End to end, all real: the SSO gate and the launch limits on the local hub.

A real OpenID Connect provider (the certified npm library `oidc-provider`, run by
`local_hub/sso_provider.py` on 127.0.0.1 with test users) stands in for production's Keycloak realm; the
hub is the production configuration (hub/sso.py, hub/limits.py) with DockerSpawner, PostgreSQL
as its database, the course images. Learners are `requests` sessions that follow redirects and
submit the provider's sign-in form as a browser without JavaScript would, and one is headless
Chromium. Every response of every redirect chain is recorded: none may be a 5xx.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import pytest
import requests

from hub.config import HSTS
from hub.launch import LaunchSettings
from hub.limits import LimitSettings, users_per_person
from hub.settings import CullSettings, HubSettings
from hub.sso import identity_of
from local_hub.client import user_from_url
from local_hub.processes import LocalHub, LocalHubError, free_port
from local_hub.sso_provider import LocalSsoProvider, provider_module, sign_in
from tests.hub.e2e_support import (
    PostgresServer,
    chromium_browser,
    count_rows,
    course_images,
    launchable,
    require_proxy,
    wait_for,
)
from tests.hub.test_e2e_hub import wait_until_in_lab

pytestmark = pytest.mark.timeout(900)

LEARNERS = 20
USERS = {f"learner{n:02}": f"pw-{n}" for n in range(1, LEARNERS + 2)}
USERS["hammer"] = "pw-hammer"
USERS["tokens"] = "pw-tokens"
# Two accounts whose ids differ only in case: two people (issue 25, finding 6).
USERS["Casey"] = "pw-Casey"
USERS["casey"] = "pw-casey"
LIMITS = LimitSettings(
    active_servers=LEARNERS, servers_per_identity=2, spawns_per_identity_per_minute=10
)


@dataclass
class Visit:
    """One learner following one link: every response on the way, and where it ended."""

    session: requests.Session
    statuses: list[tuple[int, str]] = field(default_factory=list)
    response: Any = None

    @property
    def user(self) -> str | None:
        return user_from_url(self.response.url)


def visit(link: str, who: str | None) -> Visit:
    """Follows `link`; at the provider's sign-in page, signs in as `who` (None: stops there)."""
    session = requests.Session()
    result = Visit(session)

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        result.statuses.append((response.status_code, response.url))

    session.hooks["response"].append(record)
    response = session.get(link, timeout=120)
    if who is not None and "/interaction/" in response.url:
        response = sign_in(response, session, who, USERS[who])
    result.response = response
    return result


def no_server_errors(visits: list[Visit]) -> None:
    errors = [status for v in visits for status in v.statuses if status[0] >= 500]
    assert not errors, errors


@dataclass
class Gated:
    hub: LocalHub
    provider: LocalSsoProvider


def require_oidc_provider() -> None:
    try:
        provider_module()
    except LocalHubError as missing:
        pytest.skip(str(missing))


def gated_hub(
    state: Path,
    db_url: str | None,
    limits: LimitSettings,
    culling: CullSettings,
    https: bool = False,
    subdomains: bool = False,
    launch: LaunchSettings | None = None,
) -> Gated:
    """A hub behind the local provider; `https`: configured as a stack's behind its load
    balancer (`public_url` https, as infra writes it), while this hub itself serves HTTP;
    `subdomains`: learners' servers on `<user>.localhost`, as every stack's on `<user>.<domain>`."""
    courses = course_images()
    require_proxy()
    require_oidc_provider()
    provider = LocalSsoProvider(state, USERS)
    port = free_port()
    settings = HubSettings(
        catalog=courses.catalog,
        image_map=courses.images,
        launch=launch or LaunchSettings(),
        culling=culling,
        sso=provider.settings,
        limits=limits,
        public_url=f"https://127.0.0.1:{port}/" if https else None,
    )
    hub = LocalHub(
        settings,
        state,
        db_url=db_url,
        sso_client_secret=provider.client_secret,
        port=port,
        subdomains=subdomains,
    )
    return Gated(hub, provider)


@pytest.fixture(scope="module")
def gated() -> Iterator[Gated]:
    with PostgresServer() as postgres, tempfile.TemporaryDirectory(prefix="ol-hub-sso-") as state:
        setup = gated_hub(
            Path(state), postgres.url, LIMITS, CullSettings(idle_timeout=3600, max_age=0)
        )
        with setup.provider:
            setup.provider.start([f"{setup.hub.url}/hub/oauth_callback"])
            with setup.hub:
                yield setup


def courses_with_images(hub: LocalHub) -> list[str]:
    return sorted(launchable(hub))


def course_containers(hub: LocalHub) -> list[Any]:
    return [c for c in hub.containers(all=False) if c.labels.get("course")]


def container_of(hub: LocalHub, user: str) -> Any:
    escaped = user.replace("-", "-2d")
    (container,) = (c for c in course_containers(hub) if c.name.endswith(escaped))
    return container


def test_without_login_no_user_and_no_container_exist(gated: Gated) -> None:
    hub, provider = gated.hub, gated.provider
    slug = courses_with_images(hub)[0]
    before_rows, before_containers = count_rows(hub.db_url), len(course_containers(hub))
    v = visit(hub.link(slug), who=None)
    assert v.response.url.startswith(f"{provider.issuer}/interaction/")
    assert "Sign in" in v.response.text
    # The link's course travelled with the redirect to the provider (in the hub's `next`).
    assert any(
        f"next=/hub/spawn?opt-course={slug}" in unquote(url) for _, url in v.statuses
    ), v.statuses
    # Nothing else on the hub opens without a login either.
    for path in ("/hub/spawn?course=" + slug, "/hub/home", "/user/nobody/lab"):
        response = requests.get(hub.url + path, timeout=30)
        assert response.url.startswith(provider.issuer), (path, response.url)
    tmplogin = requests.get(
        f"{hub.url}/hub/tmplogin?course={slug}", allow_redirects=False, timeout=30
    )
    assert tmplogin.status_code == 302
    assert count_rows(hub.db_url) == before_rows
    assert len(course_containers(hub)) == before_containers
    no_server_errors([v])


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_browser() as browser:
        context = browser.new_context()
        try:
            yield context.new_page()
        finally:
            context.close()


def browser_sign_in(page: Any, link: str, who: str) -> None:
    """Opens `link` in the browser and signs in as `who` on the provider's page it lands on."""
    page.goto(link)
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", USERS[who])
    page.click("button[type=submit]")


def test_a_browser_signs_in_and_lands_in_the_notebook(gated: Gated, page: Any) -> None:
    hub, provider = gated.hub, gated.provider
    slug = courses_with_images(hub)[-1]
    notebook = hub.settings.catalog[slug].notebooks[-1]
    page.goto(hub.link(slug, notebook))
    assert page.url.startswith(provider.issuer)
    page.fill("input[name=username]", "learner01")
    page.fill("input[name=password]", USERS["learner01"])
    page.click("button[type=submit]")
    wait_until_in_lab(page, notebook)
    user = user_from_url(page.url)
    assert user and identity_of(user) == hub.person_key("learner01")
    assert container_of(hub, user).labels["course"] == slug
    hub.delete_user(user)


#: What a script on a learner's page gets when it reads the hub's API with the visitor's cookies.
READ_THE_HUB = """async (url) => {
  try {
    const response = await fetch(url, {credentials: "include"});
    return "read " + response.status;
  } catch (error) {
    return "blocked";
  }
}"""


def test_learners_servers_are_on_subdomains_of_their_own(page: Any) -> None:
    """Issue 25, finding 5: a learner controls the web server at their `/user/<name>/`, so on the
    hub's origin a page there could act as anyone lured to it. The local hub as every stack runs
    (`hub:local -- --stack`): in Chromium, which resolves `*.localhost` to this machine, a person
    signs in and lands in JupyterLab on `<user>.localhost`, an origin of its own. Script there
    cannot read the hub's API with the visitor's cookies, and the hub's cookies stay the hub's
    host's (none is set for the parent domain, where a learner's host would get it too)."""
    culling = CullSettings(idle_timeout=3600, max_age=0)
    with tempfile.TemporaryDirectory(prefix="ol-hub-sso-subdomains-") as state:
        setup = gated_hub(Path(state), None, LIMITS, culling, subdomains=True)
        hub, provider = setup.hub, setup.provider
        with provider:
            provider.start([f"{hub.url}/hub/oauth_callback"])
            with hub:
                slug = courses_with_images(hub)[0]
                notebook = hub.settings.catalog[slug].notebooks[0]
                browser_sign_in(page, hub.link(slug, notebook), "learner02")
                wait_until_in_lab(page, notebook)
                user = user_from_url(page.url)
                assert user and urlparse(page.url).hostname == f"{user}.localhost", page.url
                assert urlparse(hub.url).hostname == "localhost"
                hub_api = f"{hub.url}/hub/api/user"
                assert page.evaluate(READ_THE_HUB, hub_api) == "blocked"
                domains = {c["name"]: c["domain"] for c in page.context.cookies()}
                assert domains.get("jupyterhub-hub-login") == "localhost", domains
                assert not [name for name, domain in domains.items() if domain.startswith(".")]
                hub.delete_user(user)


def test_twenty_learners_land_in_their_courses_and_the_next_gets_the_limit_page(
    gated: Gated,
) -> None:
    hub = gated.hub
    slugs = courses_with_images(hub)
    plan = [(f"learner{n:02}", slugs[n % len(slugs)]) for n in range(1, LEARNERS + 1)]

    def learner(who: str, slug: str) -> Visit:
        return visit(hub.link(slug, hub.settings.catalog[slug].notebooks[0]), who)

    with ThreadPoolExecutor(LEARNERS) as pool:
        visits = list(pool.map(lambda args: learner(*args), plan))
    try:
        check_learners_and_the_limit(hub, plan, visits)
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(hub.delete_user, filter(None, (v.user for v in visits))))


def check_learners_and_the_limit(
    hub: LocalHub, plan: list[tuple[str, str]], visits: list[Visit]
) -> None:
    slugs = courses_with_images(hub)
    no_server_errors(visits)
    users = [v.user for v in visits]
    assert all(users), [v.statuses[-1] for v in visits if not v.user]
    assert len(set(users)) == LEARNERS
    with ThreadPoolExecutor(LEARNERS) as pool:
        list(pool.map(lambda user: hub.wait_ready(user, timeout=400), users))

    for (who, slug), v, user in zip(plan, visits, users):
        assert user is not None
        assert identity_of(user) == hub.person_key(who)
        notebook = hub.settings.catalog[slug].notebooks[0]
        # The learner's own session: the single-user server's OAuth round trip, then JupyterLab.
        response = v.session.get(
            f"{hub.url}/user/{quote(user)}/lab/tree/{quote(notebook)}", timeout=120
        )
        assert response.status_code == 200, (who, response.status_code, response.url)
        assert urlparse(response.url).path == f"/user/{user}/lab/tree/{quote(notebook)}"
        container = container_of(hub, user)
        assert container.labels["course"] == slug
        # no GPUs here: a GPU course runs its CPU image (`<slug>--cpu`)
        expected = hub.settings.image_map[hub.settings.catalog[slug].image_key(gpu=False)]
        assert container.attrs["Config"]["Image"] == expected

    # The 21st server: the hub is full. A 429 page that says so and when to retry; nothing starts.
    before = len(course_containers(hub))
    extra = visit(hub.link(slugs[0]), f"learner{LEARNERS + 1:02}")
    no_server_errors([extra])
    assert extra.response.status_code == 429
    assert extra.response.headers["Retry-After"] == str(LIMITS.retry_after)
    assert "This hub is full" in extra.response.text
    assert "Try again in 5 minutes" in extra.response.text
    assert 'data-reason="active-servers"' in extra.response.text
    assert "does not say which course" not in extra.response.text
    assert len(course_containers(hub)) == before


def test_one_person_hammering_a_gpu_link_holds_at_most_its_limit(gated: Gated) -> None:
    hub = gated.hub
    gpu_courses = [s for s in courses_with_images(hub) if hub.settings.catalog[s].gpu]
    assert gpu_courses, "the catalog has no GPU course with an image"
    link = hub.link(gpu_courses[0])
    with ThreadPoolExecutor(10) as pool:
        visits = list(pool.map(lambda _: visit(link, "hammer"), range(30)))
    try:
        check_the_hammering(hub, visits, gpu_courses[0])
    finally:
        for user in hub.api("GET", "/users").json():
            if user["servers"]:
                hub.delete_user(user["name"])


def check_the_hammering(hub: LocalHub, visits: list[Visit], gpu_course: str) -> None:
    no_server_errors(visits)
    person = hub.person_key("hammer")
    started = [v for v in visits if v.response.status_code == 200]
    refused = [v for v in visits if v.response.status_code == 429]
    assert len(started) + len(refused) == 30, [v.statuses[-1] for v in visits]
    assert 1 <= len(started) <= LIMITS.servers_per_identity
    for v in refused:
        assert re.search(r'data-reason="identity-(servers|rate|users)"', v.response.text)
        assert int(v.response.headers["Retry-After"]) > 0
    servers = [
        user["name"]
        for user in hub.api("GET", "/users").json()
        if identity_of(user["name"]) == person and user["servers"]
    ]
    assert 1 <= len(servers) <= LIMITS.servers_per_identity
    # The limit page links back to the person's running servers (they belong to earlier
    # throwaway users of the same person), and the link opens one.
    page = next(v for v in refused if 'data-reason="identity-servers"' in v.response.text)
    links = re.findall(r'class="ol-running-server" href="([^"]+)"', page.response.text)
    assert links and {link.rsplit("/", 1)[1] for link in links} <= set(servers)
    for user in servers:
        hub.wait_ready(user, timeout=300)
    back = page.session.get(hub.url + links[0], timeout=120)
    assert back.status_code == 200
    assert urlparse(back.url).path.startswith(f"/user/{links[0].rsplit('/', 1)[1]}/")
    # Another person's server is not reachable that way.
    other = visit(hub.link(gpu_course), "learner02")
    assert other.user
    assert other.session.get(hub.url + links[0], timeout=30).status_code == 404


def test_a_rest_restart_past_the_per_person_limit_is_refused(gated: Gated) -> None:
    """Found by an attack review: a person's user A started by a link, then stopped
    (`DELETE /hub/api/users/A/server`), another user of theirs started through the REST API,
    then `POST /hub/api/users/A/server`: A's admission, still in the rate window, let the
    restart through past the per-person limit (a third server against a limit of 2)."""
    hub = gated.hub
    slug = courses_with_images(hub)[0]
    person = hub.person_key("learner20")
    visits = [visit(hub.link(slug), "learner20") for _ in range(3)]
    try:
        assert [v.response.status_code for v in visits] == [200, 200, 429]  # C: the limit page
        a, b = visits[0].user, visits[1].user
        assert a and b, [v.statuses[-1] for v in visits]
        (c,) = (
            u["name"]
            for u in hub.api("GET", "/users").json()
            if identity_of(u["name"]) == person and u["name"] not in (a, b)
        )  # signed in, refused its server: the limit page has no user in its address
        hub.wait_ready(a, timeout=300)
        hub.api("DELETE", f"/users/{a}/server").raise_for_status()
        wait_for(lambda: not hub.api("GET", f"/users/{a}").json()["servers"], 60, "A's stop")
        assert hub.api("POST", f"/users/{c}/server", json={"course": slug}).status_code < 300
        hub.wait_ready(c, timeout=300)
        restart = hub.api("POST", f"/users/{a}/server", json={"course": slug})
        assert restart.status_code >= 400, (restart.status_code, restart.text)
        assert "the most one person may hold at once" in restart.text
        running = [
            user["name"]
            for user in hub.api("GET", "/users").json()
            if identity_of(user["name"]) == person and user["servers"]
        ]
        assert sorted(running) == sorted([b, c])
    finally:
        for user in hub.api("GET", "/users").json():
            if identity_of(user["name"]) == person:
                hub.delete_user(user["name"])


def test_a_replayed_sign_in_gets_a_start_again_page_not_a_500(gated: Gated) -> None:
    """The provider's code is single-use: the callback replayed with its state cookie gets a
    400 page that says to start again (it was a bare 500: `invalid_grant` unhandled)."""
    hub = gated.hub
    session = requests.Session()
    seen: list[requests.Response] = []
    session.hooks["response"].append(lambda r, *args, **kwargs: seen.append(r))
    signed_in = sign_in(
        session.get(hub.link(courses_with_images(hub)[0]), timeout=120),
        session,
        "learner19",
        USERS["learner19"],
    )
    try:
        callback = next(r.request for r in seen if "/hub/oauth_callback" in (r.url or ""))
        replay = requests.get(
            str(callback.url),
            headers={"Cookie": str(callback.headers["Cookie"])},
            allow_redirects=False,
            timeout=60,
        )
        assert replay.status_code == 400, (replay.status_code, replay.text[:300])
        assert "already used or has expired" in replay.text
        assert 'href="/hub/oauth_login"' in replay.text
    finally:
        user = user_from_url(signed_in.url)
        if user:
            hub.delete_user(user)


def test_forty_sign_ins_of_one_person_leave_a_handful_of_users(gated: Gated) -> None:
    """Issue 25, finding 3: each sign-in made one more throwaway user (one client made 300 in
    11 s, kept an hour each). A sign-in now takes one of the person's users without a server, and
    past `users_per_person` (two servers and two sign-ins under way) gets a 429 page."""
    hub = gated.hub
    person = hub.person_key("learner19")
    slug = min(launchable(hub), key=lambda s: hub.settings.catalog[s].resources.memory_limit)
    with ThreadPoolExecutor(4) as pool:
        visits = list(pool.map(lambda _: visit(hub.link(slug), "learner19"), range(40)))
    try:
        no_server_errors(visits)
        statuses = sorted({v.response.status_code for v in visits})
        assert set(statuses) <= {200, 429}, statuses
        for v in visits:
            if v.response.status_code == 429:
                assert re.search(r'data-reason="identity-(servers|rate|users)"', v.response.text)
        mine = [
            u["name"] for u in hub.api("GET", "/users").json() if identity_of(u["name"]) == person
        ]
        assert 1 <= len(mine) <= users_per_person(LIMITS), mine
    finally:
        for user in hub.api("GET", "/users").json():
            if identity_of(user["name"]) == person:
                hub.delete_user(user["name"])


def test_accounts_whose_ids_differ_only_in_case_are_two_people(gated: Gated) -> None:
    """Issue 25, finding 6: the person's key hashed JupyterHub's lowercased username, so `Casey`
    and `casey` (two accounts wherever the provider's ids are case-sensitive) shared one key and
    one set of limits. Now it is an HMAC of the `sub` as sent."""
    hub = gated.hub
    slug = courses_with_images(hub)[0]
    visits = [visit(hub.link(slug), who) for who in ("Casey", "casey")]
    try:
        no_server_errors(visits)
        users = [v.user for v in visits]
        assert all(users), [v.statuses[-1] for v in visits]
        keys = [identity_of(str(u)) for u in users]
        assert keys[0] != keys[1], "two accounts counted as one person"
        assert keys == [hub.person_key("Casey"), hub.person_key("casey")]
    finally:
        for user in filter(None, (v.user for v in visits)):
            hub.delete_user(user)


def test_a_learner_makes_no_api_tokens(gated: Gated) -> None:
    """Found by an attack review (issue 25, finding 9): a signed-in learner created API tokens
    without bound through the REST API (each a row of the hub's database). The learner's role
    has no `tokens` scope now: the same session, with the same XSRF header, still reads its user
    and its tokens and posts its activity."""
    hub = gated.hub
    session = visit(f"{hub.url}/hub/home", "tokens").session
    headers = {"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""}
    me = session.get(f"{hub.url}/hub/api/user", headers=headers, timeout=30)
    assert me.status_code == 200, (me.status_code, me.text)
    user = me.json()["name"]
    api = f"{hub.url}/hub/api/users/{quote(user)}"
    try:
        made = session.post(f"{api}/tokens", json={"note": "mine"}, headers=headers, timeout=30)
        assert made.status_code == 403, (made.status_code, made.text)
        listed = session.get(f"{api}/tokens", headers=headers, timeout=30)
        assert listed.status_code == 200 and listed.json()["api_tokens"] == []
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        activity = session.post(
            f"{api}/activity", json={"last_activity": now}, headers=headers, timeout=30
        )
        assert activity.status_code < 300, (activity.status_code, activity.text)
    finally:
        hub.delete_user(user)


def test_a_launch_link_from_another_site_asks_before_the_sign_in(gated: Gated) -> None:
    """Issue 25, finding 8, behind the gate: followed from another site, the link does not go on
    to the provider (which signs a person it remembers in without a word) until the click."""
    url = f"{gated.hub.url}/hub/tmplogin?course={courses_with_images(gated.hub)[0]}"

    def get(sec_fetch_site: str) -> requests.Response:
        headers = {"Sec-Fetch-Site": sec_fetch_site}
        return requests.get(url, headers=headers, allow_redirects=False, timeout=30)

    cross = get("cross-site")
    assert cross.status_code == 200 and 'id="ol-start"' in cross.text
    same = get("same-origin")
    assert same.status_code == 302 and "/hub/oauth_login" in same.headers["Location"]


def test_an_unreachable_provider_gets_a_try_again_page_not_a_500() -> None:
    with tempfile.TemporaryDirectory(prefix="ol-hub-sso-down-") as state:
        setup = gated_hub(Path(state), None, LIMITS, CullSettings(idle_timeout=3600, max_age=0))
        with setup.hub:  # the provider is never started: nothing listens at its issuer
            slug = courses_with_images(setup.hub)[0]
            v = visit(setup.hub.link(slug), who=None)
            assert v.response.status_code == 503, v.statuses
            assert "Sign-in is unavailable right now" in v.response.text
            assert "try again</a>" in v.response.text
            assert [s for s, _ in v.statuses if s >= 500] == [503]
            users = setup.hub.api("GET", "/users").json()
            assert [u["name"] for u in users if identity_of(u["name"])] == []  # nobody signed in


def test_behind_the_load_balancer_the_sign_in_cookie_is_secure_with_hsts() -> None:
    """Issue 25, finding 4: the load balancer ends TLS and forwards `X-Forwarded-Proto: https`;
    the proxy adds its own `http`, which is what the hub reads. Without the stack's https public
    URL the sign-in's state cookie went out without `Secure` (and nothing said HSTS). Only the
    first hop is followed: a client keeps Secure cookies off this plain-HTTP hub."""
    with tempfile.TemporaryDirectory(prefix="ol-hub-https-") as state:
        setup = gated_hub(Path(state), None, LIMITS, CullSettings(), https=True)
        with setup.provider:
            setup.provider.start([f"{setup.hub.url}/hub/oauth_callback"])
            with setup.hub:
                response = requests.get(
                    f"{setup.hub.url}/hub/oauth_login?next=/hub/home",
                    headers={"X-Forwarded-Proto": "https"},
                    allow_redirects=False,
                    timeout=30,
                )
    assert response.status_code == 302, response.text
    assert response.headers["Location"].startswith(setup.provider.settings.issuer)
    cookies = response.raw.headers.getlist("Set-Cookie")
    state_cookie = [c for c in cookies if c.startswith("oauthenticator-state=")]
    assert state_cookie, cookies
    assert all("; Secure" in c for c in cookies), cookies
    assert response.headers["Strict-Transport-Security"] == HSTS


def test_culling_removes_servers_and_throwaway_users_of_sso_logins() -> None:
    culling = CullSettings(idle_timeout=15, every=3, max_age=0, users=True)
    with tempfile.TemporaryDirectory(prefix="ol-hub-sso-cull-") as state:
        setup = gated_hub(Path(state), None, LimitSettings(servers_per_identity=1), culling)
        hub = setup.hub
        with setup.provider:
            setup.provider.start([f"{hub.url}/hub/oauth_callback"])
            with hub:
                slug = min(
                    launchable(hub),
                    key=lambda s: hub.settings.catalog[s].resources.memory_limit,
                )
                before = count_rows(hub.db_url)
                first = visit(hub.link(slug), "learner01")
                assert first.user
                hub.wait_ready(first.user)
                second = visit(hub.link(slug), "learner01")  # refused: a user without a server
                assert second.response.status_code == 429
                no_server_errors([first, second])
                assert count_rows(hub.db_url)["users"] == before["users"] + 2
                wait_for(
                    lambda: count_rows(hub.db_url) == before,
                    120,
                    "the culler to remove the servers and both throwaway users",
                )
                wait_for(lambda: not course_containers(hub), 60, "the container to go")
