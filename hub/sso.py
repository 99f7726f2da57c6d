"""The SSO gate: an OpenID Connect login before any throwaway user exists.

How a launch link travels with the gate (`custom.sso` set; hub/config.py picks this
authenticator):

1. `/tmplogin?course=X&notebook=Y` -> `/hub/tmplogin?...` -> `CourseSsoLoginHandler`, which
   creates nothing (followed from another site, it first asks for one click): it sends the browser to `/hub/oauth_login?next=/hub/spawn?opt-course=X&...`
   (the link's arguments as `hub.auth` keeps them), and oauthenticator keeps `next` in its state
   cookie through the round trip.
2. The identity provider (Keycloak in production, `local_hub/sso_provider.mjs` locally) signs the
   person in and sends the browser back to `/hub/oauth_callback`.
3. oauthenticator exchanges the code and reads the userinfo; `update_auth_model` (its extension
   point) turns the person into a *new throwaway user* named `l-<identity key>-<random>`: each
   link followed is a fresh user, as with TmpAuthenticator, but the name carries a key of the
   person (an HMAC, with the hub's cookie secret, of the issuer and the `sub` claim as sent,
   which the provider never reassigns; not the person's name), so the launch limits can count
   one person's servers (`identity_of`). `authenticate` then takes one of the person's
   throwaway users without a server instead, where there is one, and refuses a sign-in past
   `users_per_person` (hub.limits.user_for_sign_in). Then JupyterHub redirects to `next`: the
   spawn.

The provider's endpoints come from its discovery document (`<issuer>/.well-known/
openid-configuration`), fetched at the first login, so the hub starts while the provider is down.
The client secret is oauthenticator's `client_secret` (env `OAUTH_CLIENT_SECRET`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.httputil import url_concat
from traitlets import Integer, Unicode

from hub.auth import confirm_cross_site_launch, spawn_arguments
from hub.limits import SIGN_IN_HOLD, user_for_sign_in

#: `/hub/resume/<user>`: back to another throwaway user's server of the same person.
RESUME_PATH = "resume"
#: Hex digits of the person's key: 80 bits, so that two people of even millions never share one.
KEY_LENGTH = 20
_THROWAWAY = re.compile(rf"^l-([0-9a-f]{{{KEY_LENGTH}}})-[0-9a-f]{{10}}$")


def identity_key(secret: bytes, issuer: str, subject: str) -> str:
    """A short, stable key of one person at one provider (not their name): an HMAC of the
    provider's `sub` exactly as it sent it (ids that differ only in case are two people) with
    the hub's secret, so a key in a user name or URL tells nothing to whoever lacks it."""
    message = f"{issuer}\n{subject}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:KEY_LENGTH]


def throwaway_prefix(key: str) -> str:
    """What the names of the throwaway users of the person with `key` start with."""
    return f"l-{key}-"


def throwaway_name(key: str) -> str:
    """A new throwaway user name for the person with `key`."""
    return f"{throwaway_prefix(key)}{secrets.token_hex(5)}"


def identity_of(user_name: str) -> str | None:
    """The person's key in a throwaway user's name; None for other names (no SSO)."""
    match = _THROWAWAY.match(user_name)
    return match.group(1) if match else None


#: The provider down, refusing its discovery document, or answering with something else.
PROVIDER_ERRORS = (HTTPClientError, OSError, ValueError, KeyError)


def oauth_error(error: HTTPClientError) -> str | None:
    """The OAuth `error` code of a token endpoint's refusal (RFC 6749 5.2), if it says one."""
    try:
        body = json.loads(error.response.body) if error.response is not None else None
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def error_page(
    status: int, reason: str, message: str, html: str, headers: dict[str, str] | None = None
) -> web.HTTPError:
    """An error JupyterHub shows as its error page: `message` for logs and clients, `html` (with
    its links) on the page, `headers` on the response (JupyterHub copies them)."""
    error = web.HTTPError(status, message, reason=reason)
    error.jupyterhub_html_message = html  # type: ignore[attr-defined]
    if headers:
        error.headers = headers  # type: ignore[attr-defined]
    return error


def sign_in_unavailable(retry_url: str) -> web.HTTPError:
    """503: the provider cannot be reached (or answers with an error): a page to try again."""
    return error_page(
        503,
        "Sign-in unavailable",
        "Sign-in is unavailable right now. Please try again in a minute.",
        "Sign-in is unavailable right now. Please "
        f'<a href="{escape(retry_url)}">try again</a> in a minute.',
    )


def too_many_sign_ins(retry_after: int) -> web.HTTPError:
    """429: the person holds as many throwaway users as they may, each with a server starting or
    running (hub.limits.user_for_sign_in)."""
    message = (
        "You have as many servers as you may, each starting or running. Close one you no longer "
        "need, or wait for one to stop, then open your course link again."
    )
    return error_page(
        429,
        "Too many sign-ins",
        message,
        f'<span class="ol-limit" data-reason="identity-users">{escape(message)}</span>',
        {"Retry-After": str(retry_after)},
    )


def start_again(start_url: str) -> web.HTTPError:
    """400: the provider refused the sign-in's code (used already, or expired): start again."""
    return error_page(
        400,
        "Start again",
        "This sign-in was already used or has expired. Please start again from your course link.",
        "This sign-in was already used or has expired. Please open your course link again, or "
        f'<a href="{escape(start_url)}">start again here</a>.',
    )


class CourseSsoLoginHandler(BaseHandler):
    """`/hub/tmplogin` behind the gate: straight to the provider, the launch kept in `next`
    (from another site, after one click: `hub.auth.asks_for_a_click`)."""

    async def get(self) -> None:
        if await confirm_cross_site_launch(self):
            return
        arguments = spawn_arguments(self.request.query)
        next_url = url_path_join(self.hub.base_url, "spawn")
        if arguments:
            next_url = f"{next_url}?{urlencode(arguments, quote_via=quote)}"
        login = url_path_join(self.hub.base_url, "oauth_login")
        self.redirect(url_concat(login, {"next": next_url}))


class ResumeHandler(BaseHandler):
    """`/hub/resume/<user>`: signs the browser in as another throwaway user *of the same person*
    and opens its server. Each SSO login is a new throwaway user, so the limit page (one person
    holds too many servers) links here: the person's earlier servers belong to earlier users."""

    # A browser's own sign-in (its cookie) only, never a token: a server's API token could
    # otherwise sign a browser in as another user.
    _accept_token_auth = False

    @web.authenticated
    def get(self, name: str) -> None:
        person = identity_of(self.current_user.name)
        target = self.find_user(name)
        if person is None or target is None or identity_of(target.name) != person:
            raise web.HTTPError(404, "You have no server of that name.")
        self.set_login_cookie(target)
        self.redirect(target.url)


class DiscoveringLoginHandler(OAuthLoginHandler):
    """oauthenticator's login redirect, once the provider's endpoints are known."""

    async def get(self) -> None:  # type: ignore[override]
        try:
            await self.authenticator.discover()
        except PROVIDER_ERRORS as error:
            self.log.warning("SSO provider unreachable: %s", error)
            raise sign_in_unavailable(self.request.uri) from None
        super().get()


class CourseSsoAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator on an OpenID Connect issuer, with a throwaway user per login."""

    issuer = Unicode(help="The provider's issuer URL (its discovery document's `issuer`).").tag(
        config=True
    )

    users_per_person = Integer(
        0,
        help="Throwaway users one person may hold (hub.limits.users_per_person; 0: no bound). "
        "A sign-in reuses one of theirs without a server before it makes another.",
    ).tag(config=True)

    login_handler = DiscoveringLoginHandler

    #: Throwaway users chosen for a sign-in in the last SIGN_IN_HOLD seconds -> when.
    _held: dict[str, float]

    # Types of the inherited traits set here (for mypy; traitlets declares them untyped).
    authorize_url: str
    token_url: str
    userdata_url: str

    _discovered = False

    async def discover(self) -> None:
        """Reads the endpoints the configuration leaves empty from the discovery document."""
        if self._discovered:
            return
        if not self.issuer:
            raise web.HTTPError(500, "CourseSsoAuthenticator.issuer is not configured")
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        document = await self.httpfetch(url, label="discovering the OpenID provider", method="GET")
        if document.get("issuer", "").rstrip("/") != self.issuer.rstrip("/"):
            raise web.HTTPError(
                500, f"{url} names issuer {document.get('issuer')!r}, not {self.issuer!r}"
            )
        self.authorize_url = self.authorize_url or document["authorization_endpoint"]
        self.token_url = self.token_url or document["token_endpoint"]
        self.userdata_url = self.userdata_url or document["userinfo_endpoint"]
        self._discovered = True

    async def get_token_info(self, handler: Any, params: Any) -> Any:
        """The code exchanged for tokens. A code the provider refuses as `invalid_grant`
        (replayed, expired) is the person's to start again (400); an unreachable or failing
        provider is a 503 to try again. Anything else (the hub's own client refused) stays
        JupyterHub's error: it is the operator's to fix."""
        start = url_path_join(handler.hub.base_url, "oauth_login")
        try:
            await self.discover()  # a callback that reaches a restarted hub
        except PROVIDER_ERRORS as error:
            self.log.warning("SSO provider unreachable: %s", error)
            raise sign_in_unavailable(start) from None
        try:
            return await super().get_token_info(handler, params)
        except HTTPClientError as error:
            self.log.warning("SSO token request failed: %s", error)
            if oauth_error(error) == "invalid_grant":
                raise start_again(start) from None
            if error.code >= 500:
                raise sign_in_unavailable(start) from None
            raise
        except OSError as error:
            self.log.warning("SSO provider unreachable: %s", error)
            raise sign_in_unavailable(start) from None

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> Any:
        """The person's sign-in, as one of their throwaway users without a server where they
        have one, else a new one, or the 429 page once they hold `users_per_person`, all busy."""
        auth_model = await super().authenticate(handler, data, **kwargs)
        person = identity_of(auth_model["name"]) if auth_model else None
        if person is None:
            return auth_model
        now = time.monotonic()
        held = {n: t for n, t in getattr(self, "_held", {}).items() if now - t < SIGN_IN_HOLD}
        prefix = throwaway_prefix(person)
        rows = handler.db.query(orm.User).filter(orm.User.name.startswith(prefix)).all()
        busy = {row.name: bool(handler.users[row.name].active) for row in rows}
        choice = user_for_sign_in(busy, list(held), self.users_per_person)
        if choice.refused:
            self.log.info("SSO login refused: a person holds %d busy throwaway users", len(busy))
            raise too_many_sign_ins(SIGN_IN_HOLD)
        if choice.reuse:
            auth_model["name"] = choice.reuse
            self.log.info("SSO login: the person's throwaway user %s again", choice.reuse)
        held[auth_model["name"]] = now
        self._held = held
        return auth_model

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_model = await super().update_auth_model(auth_model)
        # The `sub` as the provider sent it: `name` is JupyterHub's lowercased form of it.
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        subject = user_info.get("sub")
        if not isinstance(subject, str) or not subject:
            raise web.HTTPError(502, "The sign-in provider did not say who signed in (no `sub`).")
        # The hub's cookie secret, kept by the chart across upgrades: the key of a person stays.
        key = identity_key(self.parent.cookie_secret, self.issuer, subject)
        auth_model["name"] = throwaway_name(key)
        auth_model["admin"] = False
        self.log.info("SSO login: a throwaway user %s for a person", auth_model["name"])
        return auth_model

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        # The page knows people by this module's identity_of: imported here, not above.
        from hub import kept_work_page

        return [
            *super().get_handlers(app),
            ("/tmplogin", CourseSsoLoginHandler),
            (f"/{RESUME_PATH}/([^/]+)", ResumeHandler),
            *kept_work_page.handlers(),
        ]
