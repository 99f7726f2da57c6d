"""Launch limits: whether one more server may start, decided from plain data.

    check_limits(limits, gpu=plan.gpu_count > 0, identity="3f9a0c1d2e", in_use=[...],
                 recent_spawns=[...], now=time.time())   # None, or a Refusal

Four limits, each 0 for "none" (`custom.limits` in the Helm values, hub/settings.py):

- `servers_per_identity`: servers one SSO identity holds at once (all its throwaway users);
- `spawns_per_identity_per_minute`: launches one identity starts in any 60 seconds;
- `gpu_servers`: servers of GPU courses on the hub;
- `active_servers`: servers on the hub.

A refusal says which limit, when to try again (`retry_after`, seconds: the hub-wide limits wait
for culling to free servers; the rate limit for its window to pass) and, for the identity's own
limit, which of its users have a server (the page links back to them). The spawner
(hub/spawner.py) gathers the data from the hub and turns a refusal into a 429 page.

Behind the SSO gate a person's throwaway users are bounded too (`user_for_sign_in`): a sign-in
takes one of theirs without a server before it makes another (hub/sso.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: Seconds in the window of `spawns_per_identity_per_minute`.
RATE_WINDOW = 60


@dataclass(frozen=True)
class LimitSettings:
    """A stack's limits; 0 means no limit."""

    active_servers: int = 0
    gpu_servers: int = 0
    servers_per_identity: int = 0
    spawns_per_identity_per_minute: int = 0
    #: Seconds the page suggests waiting when the hub (or its GPUs) is full.
    retry_after: int = 300

    @property
    def enabled(self) -> bool:
        return any(
            (
                self.active_servers,
                self.gpu_servers,
                self.servers_per_identity,
                self.spawns_per_identity_per_minute,
            )
        )


@dataclass(frozen=True)
class ServerInUse:
    """A server that is starting or running (or a launch admitted a moment ago)."""

    user: str
    gpu: bool
    identity: str | None = None


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str
    retry_after: int
    #: The identity's users with a server (for the identity limit), to go back to.
    running: tuple[str, ...] = ()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def wait_text(seconds: int) -> str:
    """`seconds` for people: "45 seconds", "5 minutes"."""
    if seconds < 120:
        return _plural(seconds, "second")
    return _plural(round(seconds / 60), "minute")


def check_limits(
    limits: LimitSettings,
    *,
    gpu: bool,
    identity: str | None,
    in_use: Sequence[ServerInUse],
    recent_spawns: Sequence[float],
    now: float,
) -> Refusal | None:
    """None when one more server (a GPU one if `gpu`) may start for `identity`, else why not.

    `in_use`: every active server of the hub; `recent_spawns`: when the identity's launches were
    admitted (seconds, same clock as `now`). Without an identity (throwaway users without SSO),
    the per-identity limits do not apply.
    """
    if identity is not None:
        own = [server for server in in_use if server.identity == identity]
        if limits.servers_per_identity and len(own) >= limits.servers_per_identity:
            return Refusal(
                "identity-servers",
                f"You already have {_plural(len(own), 'server')} running, the most one person "
                f"may hold at once ({limits.servers_per_identity}). Go back to it below; a server "
                "you leave is stopped once it has been idle for a while.",
                limits.retry_after,
                tuple(sorted(server.user for server in own)),
            )
        window = [t for t in recent_spawns if now - RATE_WINDOW < t <= now]
        per_minute = limits.spawns_per_identity_per_minute
        if per_minute and len(window) >= per_minute:
            wait = max(1, int(min(window) + RATE_WINDOW - now + 0.999))
            return Refusal(
                "identity-rate",
                f"You started {_plural(len(window), 'server')} in the last minute, the most "
                f"one person may start ({per_minute}). Try again in {wait_text(wait)}.",
                wait,
            )
    if gpu and limits.gpu_servers:
        gpus = sum(1 for server in in_use if server.gpu)
        if gpus >= limits.gpu_servers:
            return Refusal(
                "gpu-servers",
                f"All {_plural(limits.gpu_servers, 'GPU server')} of this hub are in use. "
                f"Try again in {wait_text(limits.retry_after)}, when idle ones are stopped.",
                limits.retry_after,
            )
    if limits.active_servers and len(in_use) >= limits.active_servers:
        return Refusal(
            "active-servers",
            f"This hub is full: all {_plural(limits.active_servers, 'server')} are in use. "
            f"Try again in {wait_text(limits.retry_after)}, when idle ones are stopped.",
            limits.retry_after,
        )
    return None


@dataclass
class Admissions:
    """Launches admitted in the last moments, in the hub's memory (the hub is one process).

    A launch counts against the limits from the moment it is admitted, before JupyterHub marks
    its server pending, so launches of one person that arrive together cannot all pass. It waits
    here until its spawner's `start()` takes it (from then on the server itself counts), or for
    `grace` seconds. The times of admissions stay `window` seconds, for the per-person rate. A
    launch whose start failed (JupyterHub's own spawn limit, a start error) is cancelled: it
    counts neither as a server nor against the person's rate.
    """

    window: float = RATE_WINDOW
    grace: float = 30.0
    spawns: list[tuple[float, ServerInUse]] = field(default_factory=list)
    waiting: dict[str, tuple[float, ServerInUse]] = field(default_factory=dict)

    def _expire(self, now: float) -> None:
        self.spawns = [(t, server) for t, server in self.spawns if now - t < self.window]
        self.waiting = {
            user: (t, server) for user, (t, server) in self.waiting.items() if now - t < self.window
        }

    def record(self, now: float, server: ServerInUse) -> None:
        self._expire(now)
        self.spawns.append((now, server))
        self.waiting[server.user] = (now, server)

    def recent_spawns(self, identity: str | None, now: float) -> list[float]:
        self._expire(now)
        return [t for t, server in self.spawns if identity and server.identity == identity]

    def waiting_servers(self, now: float) -> dict[str, ServerInUse]:
        """Admitted launches whose start has not begun (within `grace`), by user."""
        self._expire(now)
        return {user: server for user, (t, server) in self.waiting.items() if now - t < self.grace}

    def take(self, user: str, now: float) -> bool:
        """As the user's start begins: whether a launch admitted for it is waiting. Taking it
        consumes it (one admission, one start); it counts as a server about to start for
        `grace` seconds and can be taken for the rate `window` (a start late on a busy hub
        still finds its own). A start that finds none (a restart through the REST API, a second
        start) is admitted anew by the caller, under the same limits."""
        self._expire(now)
        return self.waiting.pop(user, None) is not None

    def cancel(self, user: str) -> None:
        """The user's launch did not start: it no longer counts."""
        self.waiting.pop(user, None)
        self.spawns = [(t, server) for t, server in self.spawns if server.user != user]


# --- throwaway users per person -------------------------------------------------------------

#: Seconds a throwaway user chosen for a sign-in is held for it (the sign-in's redirect to its
#: start takes about a second), so that another sign-in of the same person at the same moment
#: gets another user; the start marks the user busy from then.
SIGN_IN_HOLD = 15


def users_per_person(limits: LimitSettings) -> int:
    """How many throwaway users one person may hold (0: no bound): their servers, and two more
    for sign-ins under way; without a per-person server limit there is no bound."""
    return limits.servers_per_identity + 2 if limits.servers_per_identity else 0


@dataclass(frozen=True)
class SignIn:
    """Which throwaway user a person's sign-in gets: `reuse` an existing one without a server,
    a new one (neither set), or `refused`: they hold as many as they may, all busy."""

    reuse: str | None = None
    refused: bool = False


def user_for_sign_in(busy: dict[str, bool], held: Sequence[str], bound: int) -> SignIn:
    """`busy`: the person's throwaway users -> whether it has a server (running or starting);
    `held`: users other sign-ins chose a moment ago; `bound`: `users_per_person` (0: none).
    Each sign-in would otherwise make one more user (one client made 300 in 11 s)."""
    idle = sorted(name for name, has_server in busy.items() if not has_server and name not in held)
    if idle:
        return SignIn(reuse=idle[0])
    if bound and len(busy) >= bound:
        return SignIn(refused=True)
    return SignIn()
