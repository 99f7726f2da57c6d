"""Launch limits: the pure decision (input/expected pairs), the in-memory admissions, and the
spawner's adapter that gathers the hub's servers and turns a refusal into a 429 page.

The spawner tests use JupyterHub's own `User`-like objects only where the adapter reads them
(`name`, `spawners`, `active`, `launch_plan`); the end-to-end test (test_e2e_sso.py) runs the
same code in a real hub.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from hub.limits import (
    Admissions,
    LimitSettings,
    ServerInUse,
    SignIn,
    check_limits,
    user_for_sign_in,
    users_per_person,
    wait_text,
)
from hub.pages import limit_html
from hub.settings import HubSettings
from hub.spawner import CourseSpawner, LimitReached, servers_in_use
from hub.sso import identity_key, identity_of, throwaway_name
from tests.hub.hub_data import CATALOG, IMAGE_MAP, PRODUCTION

SECRET = b"the hub's cookie secret"
ADA = identity_key(SECRET, "https://sso.example.edu/realms/x", "ada")
BOB = identity_key(SECRET, "https://sso.example.edu/realms/x", "bob")
NOW = 1_000_000.0


def servers(*specs: tuple[str | None, bool]) -> list[ServerInUse]:
    """(identity, gpu) per server."""
    return [
        ServerInUse(f"user{index}", gpu, identity) for index, (identity, gpu) in enumerate(specs)
    ]


@pytest.mark.parametrize(
    "limits, gpu, identity, in_use, recent, expected",
    [
        (LimitSettings(), True, ADA, servers(*[(ADA, True)] * 50), [NOW] * 50, None),
        (LimitSettings(active_servers=2), False, None, servers((None, False)), [], None),
        (
            LimitSettings(active_servers=2),
            False,
            None,
            servers((None, False), (BOB, False)),
            [],
            "active-servers",
        ),
        (LimitSettings(gpu_servers=1), False, ADA, servers((BOB, True)), [], None),
        (LimitSettings(gpu_servers=1), True, ADA, servers((BOB, True)), [], "gpu-servers"),
        (LimitSettings(gpu_servers=2), True, ADA, servers((BOB, True), (BOB, False)), [], None),
        (
            LimitSettings(servers_per_identity=2),
            False,
            ADA,
            servers((ADA, False), (BOB, False), (BOB, False)),
            [],
            None,
        ),
        (
            LimitSettings(servers_per_identity=2),
            False,
            ADA,
            servers((ADA, False), (ADA, True)),
            [],
            "identity-servers",
        ),
        # Without an identity (no SSO) the per-person limits cannot apply.
        (
            LimitSettings(servers_per_identity=1, spawns_per_identity_per_minute=1),
            False,
            None,
            servers((None, False)),
            [NOW],
            None,
        ),
        (
            LimitSettings(spawns_per_identity_per_minute=3),
            False,
            ADA,
            [],
            [NOW - 61, NOW - 30, NOW - 1],
            None,
        ),
        (
            LimitSettings(spawns_per_identity_per_minute=3),
            False,
            ADA,
            [],
            [NOW - 59, NOW - 30, NOW - 1],
            "identity-rate",
        ),
        # A person at their own limit hears about that first, not about a full hub.
        (
            LimitSettings(active_servers=1, servers_per_identity=1),
            False,
            ADA,
            servers((ADA, False)),
            [],
            "identity-servers",
        ),
    ],
    ids=[
        "no-limits",
        "room",
        "hub-full",
        "gpu-limit-not-for-cpu",
        "gpus-full",
        "gpu-room",
        "own-room",
        "own-limit",
        "no-identity",
        "rate-window-passed",
        "rate-limit",
        "own-limit-first",
    ],
)
def test_check_limits(
    limits: LimitSettings,
    gpu: bool,
    identity: str | None,
    in_use: list[ServerInUse],
    recent: list[float],
    expected: str | None,
) -> None:
    refusal = check_limits(
        limits, gpu=gpu, identity=identity, in_use=in_use, recent_spawns=recent, now=NOW
    )
    assert (refusal.reason if refusal else None) == expected


def test_refusals_say_when_to_retry_and_where_the_servers_are() -> None:
    rate = check_limits(
        LimitSettings(spawns_per_identity_per_minute=2),
        gpu=False,
        identity=ADA,
        in_use=[],
        recent_spawns=[NOW - 45, NOW - 10],
        now=NOW,
    )
    assert rate is not None and rate.retry_after == 15
    assert "Try again in 15 seconds" in rate.message
    full = check_limits(
        LimitSettings(active_servers=1, retry_after=600),
        gpu=False,
        identity=None,
        in_use=servers((BOB, False)),
        recent_spawns=[],
        now=NOW,
    )
    assert full is not None and full.retry_after == 600 and "10 minutes" in full.message
    own = check_limits(
        LimitSettings(servers_per_identity=1),
        gpu=False,
        identity=ADA,
        in_use=servers((BOB, False), (ADA, False)),
        recent_spawns=[],
        now=NOW,
    )
    assert own is not None and own.running == ("user1",)
    page = limit_html(own, "/hub/resume")
    assert 'href="/hub/resume/user1"' in page and "user0" not in page


@pytest.mark.parametrize(
    "seconds, text", [(1, "1 second"), (45, "45 seconds"), (119, "119 seconds"), (300, "5 minutes")]
)
def test_wait_text(seconds: int, text: str) -> None:
    assert wait_text(seconds) == text


def test_admissions_wait_until_their_start_and_count_per_identity() -> None:
    admissions = Admissions(window=60, grace=30)
    admissions.record(NOW - 70, ServerInUse("old", False, ADA))
    admissions.record(NOW - 40, ServerInUse("never-started", False, ADA))
    admissions.record(NOW - 20, ServerInUse("a1", False, ADA))
    admissions.record(NOW - 10, ServerInUse("b1", True, BOB))
    # The rate window keeps a minute of admissions, started or not.
    assert admissions.recent_spawns(ADA, NOW) == [NOW - 40, NOW - 20]
    assert admissions.recent_spawns(None, NOW) == []
    # Waiting: admitted, start not begun, within the grace period.
    assert set(admissions.waiting_servers(NOW)) == {"a1", "b1"}
    assert admissions.take("b1", NOW) is True  # admitted: the start does not count it again
    # One admission, one start: another start of b1 is admitted anew (the REST API).
    assert admissions.take("b1", NOW) is False and admissions.take("nobody", NOW) is False
    assert set(admissions.waiting_servers(NOW)) == {"a1"}
    assert admissions.recent_spawns(BOB, NOW) == [NOW - 10]
    # A launch whose start failed (JupyterHub's spawn limit) counts for nothing.
    admissions.cancel("a1")
    assert admissions.waiting_servers(NOW) == {}
    assert admissions.recent_spawns(ADA, NOW) == [NOW - 40]


def test_throwaway_names_carry_the_person_but_not_their_name() -> None:
    first, second = throwaway_name(ADA), throwaway_name(ADA)
    assert first != second
    assert identity_of(first) == identity_of(second) == ADA
    assert "ada" not in first
    assert identity_of(throwaway_name(BOB)) == BOB != ADA
    # TmpAuthenticator's users (uuid4) and other names belong to nobody.
    assert identity_of("1b4e28ba-2fa1-11d2-883f-0016d3cca427") is None
    assert identity_of(f"x{first}") is None
    realm = "https://a.example/realm"
    assert identity_key(SECRET, realm, "ada") != identity_key(
        SECRET, "https://b.example/realm", "ada"
    )
    # Issue 25, finding 6: ids that differ only in case are two people (the provider's `sub` as
    # sent), and without the hub's secret a key says nothing of whose it is.
    assert identity_key(SECRET, realm, "Ada") != identity_key(SECRET, realm, "ada")
    assert identity_key(b"another hub", realm, "ada") != identity_key(SECRET, realm, "ada")


# --- The spawner's adapter ------------------------------------------------------------------


@dataclass
class FakeSpawner:
    active: bool
    gpu: bool | None = None  # None: no user options yet (pending, before the plan is stored)
    options: dict[str, str] | None = None  # what JupyterHub stored, when not from `gpu`

    @property
    def user_options(self) -> dict[str, str]:
        if self.options is not None:
            return self.options
        if self.gpu is None:
            return {}
        return {"course": "c", "needs_gpu": "true" if self.gpu else "false"}


@dataclass
class FakeUser:
    name: str
    spawners: dict[str, FakeSpawner] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    url: str = "/user/x/"
    escaped_name: str = "x"
    id: int = 1


def test_servers_in_use_counts_active_servers_and_launches_about_to_start() -> None:
    ada1, ada2, bob1 = throwaway_name(ADA), throwaway_name(ADA), throwaway_name(BOB)
    users = {
        ada1: FakeUser(ada1, {"": FakeSpawner(active=True, gpu=True)}),
        ada2: FakeUser(ada2, {"": FakeSpawner(active=False, gpu=False)}),
        bob1: FakeUser(bob1, {"": FakeSpawner(active=True, gpu=None)}),
        "anon": FakeUser("anon", {"": FakeSpawner(active=True, gpu=False)}),
    }
    admissions = Admissions()
    admissions.record(NOW - 40, ServerInUse("failed", False, ADA))  # never started
    admissions.record(NOW - 5, ServerInUse(bob1, True, BOB))  # pending, planned as GPU
    admissions.record(NOW - 2, ServerInUse("new", False, ADA))  # admitted, not pending yet
    admissions.record(NOW - 3, ServerInUse(ada2, False, ADA))  # started, then stopped
    assert admissions.take(ada2, NOW - 2)
    # After a hub restart: nothing admitted, the planned options from the database.
    restarted = throwaway_name(BOB)
    users[restarted] = FakeUser(restarted, {"": FakeSpawner(active=True, gpu=True)})
    found = {
        s.user: s
        for s in servers_in_use(
            users, admissions, NOW, lambda o: o["needs_gpu"] == "true", exclude="anon"
        )
    }
    assert found == {
        ada1: ServerInUse(ada1, True, ADA),
        bob1: ServerInUse(bob1, True, BOB),
        "new": ServerInUse("new", False, ADA),
        restarted: ServerInUse(restarted, True, BOB),
    }


def limited_spawner(name: str, users: dict[str, Any], **limits: int) -> CourseSpawner:
    c = Config()
    c.CourseSpawner.hub_settings = HubSettings(
        catalog=CATALOG,
        image_map=IMAGE_MAP,
        launch=PRODUCTION,
        limits=LimitSettings(**limits),
    )
    user = FakeUser(name, settings={"users": users})
    users[name] = user
    spawner = CourseSpawner(hub=Hub(base_url="/hub/"), user=user, config=c)
    spawner.admissions = Admissions()  # not the hub-wide one: tests stay independent
    return spawner


def test_a_person_hammering_a_gpu_link_gets_429_pages_beyond_the_limits() -> None:
    users: dict[str, Any] = {}
    admissions = Admissions()
    outcomes: list[LimitReached | None] = []
    for _ in range(30):
        spawner = limited_spawner(throwaway_name(ADA), users, servers_per_identity=2, gpu_servers=5)
        spawner.admissions = admissions
        try:
            spawner.options_from_query({"course": ["deep-learning-gpu"]})
        except LimitReached as reached:
            outcomes.append(reached)
            assert reached.status_code == 429
            assert reached.headers["Retry-After"] == "300"
            page = CourseSpawner._refusal_page(spawner)
            assert 'class="ol-launch-limit"' in page and 'name="course"' in page
        else:
            outcomes.append(None)
    assert outcomes[:2] == [None, None]
    assert all(isinstance(o, LimitReached) for o in outcomes[2:])
    assert {o.refusal.reason for o in outcomes[2:] if o} == {"identity-servers"}


def test_a_start_that_failed_frees_its_place_and_its_rate() -> None:
    """JupyterHub's own spawn limit (429) after our admission: the retry form's page cancels the
    admission, so retrying does not lock the person out."""
    users: dict[str, Any] = {}
    admissions = Admissions()
    for _ in range(5):
        spawner = limited_spawner(
            throwaway_name(ADA), users, spawns_per_identity_per_minute=1, active_servers=1
        )
        spawner.admissions = admissions
        spawner.options_from_query({"course": ["data-analytics"]})
        # JupyterHub refused the spawn; it shows the form, whose page is ours.
        page = CourseSpawner._refusal_page(spawner)
        assert 'class="ol-launch-retry"' in page and "ol-launch-limit" not in page
    assert admissions.spawns == [] and admissions.waiting == {}


def test_an_admission_is_taken_by_one_start_and_expires_by_itself() -> None:
    admissions = Admissions(window=60, grace=30)
    admissions.record(NOW, ServerInUse("u1", False, ADA))
    assert admissions.take("u1", NOW + 1) and not admissions.take("u1", NOW + 2)
    admissions.record(NOW, ServerInUse("u2", False, ADA))
    assert "u2" not in admissions.waiting_servers(NOW + 31)  # no longer a server about to start
    assert admissions.take("u2", NOW + 31)  # but a start late on a busy hub still takes its own
    admissions.record(NOW, ServerInUse("u3", False, ADA))
    assert admissions.recent_spawns(ADA, NOW + 31) == [NOW, NOW, NOW]  # the person's rate
    assert not admissions.take("u3", NOW + 61)  # never started: gone with the rate window


def running(spawner: CourseSpawner, users: dict[str, Any], options: dict[str, str]) -> None:
    """The server of `spawner`'s user is running with these stored user options."""
    users[spawner.user.name].spawners[""] = FakeSpawner(active=True, options=options)


def test_a_rest_restart_passes_the_same_limits_as_a_link() -> None:
    """Found by an attack review: a person who started and stopped server A, then filled their
    limit with another sign-in, restarted A through the REST API past the limit (the admission
    of A's first launch, still in the rate window, let every later start of A through)."""
    users: dict[str, Any] = {}
    admissions = Admissions()
    a = limited_spawner(throwaway_name(ADA), users, servers_per_identity=1, gpu_servers=1)
    a.admissions = admissions
    options = a.options_from_query({"course": ["deep-learning-gpu"]})
    now = time.time()  # the clock options_from_query admits by
    a.admit_start(a.plan(options), now)
    running(a, users, options)
    users[a.user.name].spawners[""].active = False  # DELETE /hub/api/users/A/server
    b = limited_spawner(throwaway_name(ADA), users, servers_per_identity=1, gpu_servers=1)
    b.admissions = admissions
    b.admit_start(b.plan(b.options_from_query({"course": ["data-analytics"]})), now)
    running(b, users, {"course": "data-analytics", "needs_gpu": "false"})
    # POST /hub/api/users/A/server {"course": "deep-learning-gpu"}
    with pytest.raises(LimitReached) as refused:
        a.admit_start(a.plan({"course": "deep-learning-gpu"}), now + 5)
    assert refused.value.refusal.reason == "identity-servers"
    assert refused.value.refusal.running == (b.user.name,)


def test_a_gpu_server_started_through_rest_counts_after_a_hub_restart() -> None:
    """JupyterHub stores a REST start's raw body (`{"course": ...}`, no `needs_gpu`); after a
    hub restart nothing else is known. The GPU limit still counts that server, from its plan."""
    users: dict[str, Any] = {}
    first = limited_spawner(throwaway_name(ADA), users, gpu_servers=1)
    running(first, users, {"course": "deep-learning-gpu"})
    other = limited_spawner(throwaway_name(BOB), users, gpu_servers=1)
    with pytest.raises(LimitReached) as refused:
        other.options_from_query({"course": ["deep-learning-gpu"]})
    assert refused.value.refusal.reason == "gpu-servers"
    other.options_from_query({"course": ["deep-learning-gpu"], "needs_gpu": ["false"]})


def test_a_hub_without_its_users_refuses_to_guess() -> None:
    spawner = limited_spawner(throwaway_name(ADA), {}, active_servers=1)
    spawner.user.settings = {}
    with pytest.raises(RuntimeError, match="users are unknown"):
        spawner.options_from_query({"course": ["data-analytics"]})


def test_gpu_servers_limit_refuses_gpu_courses_only() -> None:
    users: dict[str, Any] = {}
    admissions = Admissions()
    results = {}
    for person, course in [
        ("p1", "deep-learning-gpu"),
        ("p2", "deep-learning-gpu"),
        ("p3", "data-analytics"),
    ]:
        spawner = limited_spawner(
            throwaway_name(identity_key(SECRET, "i", person)), users, gpu_servers=1
        )
        spawner.admissions = admissions
        try:
            spawner.options_from_query({"course": [course]})
            results[person] = "ok"
        except LimitReached as reached:
            results[person] = reached.refusal.reason
    assert results == {"p1": "ok", "p2": "gpu-servers", "p3": "ok"}


# --- throwaway users per person ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("busy", "held", "bound", "expected"),
    [
        pytest.param({}, [], 4, SignIn(), id="a-first-sign-in-makes-a-user"),
        pytest.param({"a": True, "b": False}, [], 4, SignIn(reuse="b"), id="one-without-a-server"),
        pytest.param(
            {"a": False, "b": False}, ["a"], 4, SignIn(reuse="b"), id="not-one-held-for-another"
        ),
        pytest.param({"a": True, "b": False}, ["b"], 4, SignIn(), id="all-busy-or-held-below"),
        pytest.param(
            {n: True for n in "abcd"}, [], 4, SignIn(refused=True), id="at-the-bound-refused"
        ),
        pytest.param({"a": True, "b": False}, ["b"], 2, SignIn(refused=True), id="held-count"),
        pytest.param({n: True for n in "abcd"}, [], 0, SignIn(), id="no-bound"),
    ],
)
def test_which_user_a_sign_in_gets(
    busy: dict[str, bool], held: list[str], bound: int, expected: SignIn
) -> None:
    assert user_for_sign_in(busy, held, bound) == expected


def test_the_bound_follows_the_per_person_server_limit() -> None:
    assert users_per_person(LimitSettings(servers_per_identity=2)) == 4
    assert users_per_person(LimitSettings()) == 0
