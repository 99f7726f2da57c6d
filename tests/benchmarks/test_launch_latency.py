"""The launch benchmark's accounting: every launch ends as a row (ok, refused, failed), never as a
crash, and the tables say how each scenario's launches ended. The hub is a stand-in with the
`HubClient` interface; the real hubs are driven by `./pants run hub:bench-launch`."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import requests
import requests.adapters

from benchmarks.launch_latency import (
    STEPS,
    Outcome,
    Samples,
    breakdown,
    clean_up,
    problems,
    step_times,
    table,
    timed_launch,
)
from local_hub.client import HubClient, HubError, Launch


class JupyterLabPage(requests.adapters.BaseAdapter):
    """Answers every request of the session it is mounted on with a 200 page."""

    def send(  # type: ignore[override]  # the keyword arguments are the session's to pass
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url or "", request
        return response

    def close(self) -> None:
        pass


class StandInHub(HubClient):
    """Answers `launch`, `wait_ready` and `delete_user` as told (an exception raises it); its
    users' JupyterLab pages answer 200."""

    def __init__(self, launch: Any = "u1", ready: Any = None, delete: Any = None) -> None:
        super().__init__("http://127.0.0.1:9", "token")
        self.answers = {"launch": launch, "ready": ready, "delete": delete}
        self.deleted: list[str] = []

    def _answer(self, name: str) -> Any:
        answer = self.answers[name]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def launch(self, url: str, session: requests.Session | None = None) -> Launch:
        session = session or requests.Session()
        session.mount(self.url, JupyterLabPage())
        return Launch(self._answer("launch"), session, requests.Response())

    def wait_ready(
        self,
        user: str,
        timeout: float = 180,
        interval: float = 0.25,
        marks: dict[str, float] | None = None,
    ) -> Any:
        answer = self._answer("ready")
        if marks is not None:
            marks["ready"] = marks["answers"] = time.perf_counter()
        return answer

    def delete_user(self, user: str) -> None:
        self._answer("delete")
        self.deleted.append(user)


@pytest.mark.parametrize(
    ("hub", "expected"),
    [
        pytest.param(StandInHub(), ("ok", "", "u1"), id="ok"),
        pytest.param(
            StandInHub(launch=HubError("ended at /hub/spawn (429)", status=429)),
            ("refused", "HTTP 429", None),
            id="spawn-limit-429",
        ),
        pytest.param(
            StandInHub(launch=HubError("ended at /hub/spawn (503)", status=503)),
            ("refused", "HTTP 503", None),
            id="unavailable-503",
        ),
        pytest.param(
            StandInHub(launch=HubError("ended at /hub/spawn (500)", status=500)),
            ("failed", "ended at /hub/spawn (500)", None),
            id="server-error-500",
        ),
        pytest.param(
            StandInHub(ready=HubError("u1's server did not start:\nthe hub's log")),
            ("failed", "u1's server did not start:", "u1"),
            id="never-started",
        ),
        pytest.param(
            StandInHub(launch=requests.ConnectionError("connection refused")),
            ("failed", "connection refused", None),
            id="hub-down",
        ),
    ],
)
def test_every_launch_ends_as_an_outcome(hub: StandInHub, expected: tuple[Any, ...]) -> None:
    outcome = timed_launch(hub, "http://127.0.0.1:9/tmplogin?course=x", poll=0)
    assert (outcome.status, outcome.reason, outcome.user) == expected


def test_clean_up_reports_what_it_could_not_delete() -> None:
    hub = StandInHub(delete=HubError("could not delete u2: 400 pending"))
    outcomes = [Outcome(1.0, user="u2"), Outcome(2.0, "refused", "HTTP 429")]
    assert clean_up(hub, outcomes) == ["u2: could not delete u2: 400 pending"]


def test_tables_count_every_launch_and_time_the_successful_ones() -> None:
    mixed = Samples(
        [
            Outcome(1.0, user="a"),
            Outcome(2.0, user="b"),
            Outcome(3.0, user="c"),
            Outcome(0.1, "refused", "HTTP 429"),
            Outcome(180.0, "failed", "d's server did not start:", "d"),
        ]
    )
    none_ok = Samples([Outcome(0.2, "refused", "HTTP 429")] * 2)
    results = {("concurrent, both", "ours"): mixed, ("concurrent, both", "stock"): none_ok}
    lines = table(results).splitlines()
    assert lines[0].split() == [
        "launches", "hub", "n", "ok", "refused", "failed", "ok", "%", "p50", "s", "p95", "s",
        "max", "s",
    ]  # fmt: skip
    assert lines[1].split() == [
        "concurrent,", "both", "ours", "5", "3", "1", "1", "60%", "2.00", "2.90", "3.00",
    ]  # fmt: skip
    assert lines[2].split() == [
        "concurrent,", "both", "stock", "2", "0", "2", "0", "0%", "nan", "nan", "nan",
    ]  # fmt: skip
    assert problems(results).splitlines() == [
        "  concurrent, both ours: 1 refused: HTTP 429",
        "  concurrent, both ours: 1 failed: d's server did not start:",
        "  concurrent, both stock: 2 refused: HTTP 429",
    ]


def test_an_ok_launch_records_its_steps() -> None:
    outcome = timed_launch(StandInHub(), "http://127.0.0.1:9/tmplogin?course=x", poll=0)
    assert outcome.status == "ok" and len(outcome.steps) == len(STEPS)
    # The stand-in has no redirect chain and no containers: those steps were not seen.
    seen = {step: not math.isnan(t) for step, t in zip(STEPS, outcome.steps)}
    assert seen == {
        "user created": False,
        "spawn requested": False,
        "container started": False,
        "server ready": True,
        "server answers": True,
        "notebook loaded": True,
    }


def test_step_times_from_the_redirect_chain_and_the_marks() -> None:
    hops = [(10.1, "/tmplogin"), (10.3, "/hub/tmplogin"), (10.6, "/hub/spawn"), (10.7, "/hub/x")]
    marks = {"container started": 11.5, "ready": 12.0, "answers": 12.25, "notebook loaded": 13.0}
    assert step_times(10.0, hops, marks) == pytest.approx((0.3, 0.6, 1.5, 2.0, 2.25, 3.0))
    # Behind the SSO gate, /hub/tmplogin only redirects: the user exists at the callback.
    gated = [(10.1, "/hub/tmplogin"), (10.2, "/auth"), (10.4, "/hub/oauth_callback"), *hops[2:]]
    assert step_times(10.0, gated, marks)[0] == pytest.approx(0.4)


def test_breakdown_is_the_median_time_from_the_link_to_each_step() -> None:
    fast = Outcome(2.0, user="a", steps=(0.1, 0.2, 1.0, 1.5, 2.0, 2.5))
    slow = Outcome(4.0, user="b", steps=(0.3, 0.6, 2.0, 3.5, 4.0, 5.5))
    unseen = Outcome(3.0, user="c", steps=(0.2, 0.4, float("nan"), 2.5, 3.0, 4.0))
    failed = Outcome(9.0, "failed", "no", "d")
    lines = breakdown({"ours": Samples([fast, slow, unseen, failed])}).splitlines()
    assert [line.split()[-1] for line in lines[1:]] == [
        "0.200",  # user created: 0.1, 0.3, 0.2
        "0.400",  # spawn requested: 0.2, 0.6, 0.4
        "1.500",  # container started: 1.0, 2.0 (not seen in c)
        "2.500",  # server ready: 1.5, 3.5, 2.5
        "3.000",  # server answers: 2.0, 4.0, 3.0
        "4.000",  # notebook loaded: 2.5, 5.5, 4.0 (the failed launch counts nowhere)
    ]
