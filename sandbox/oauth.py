"""OAuth as Exact runs it: auto-approved authorize, codes, 600 s access tokens, single-use rotating refresh tokens."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig

if TYPE_CHECKING:
    from sandbox.store import Store

__all__ = ["Grant", "OAuthServer", "routes"]

CODE_LIFETIME = 180.0


@dataclass(frozen=True)
class Grant:
    client_id: str
    user_id: str


@dataclass
class _Refresh:
    grant: Grant
    access_issued_at: float
    last_used: float
    alive: bool = True


class OAuthServer:
    def __init__(self, config: SandboxConfig, clock: SandboxClock, store: Store) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self._codes: dict[str, tuple[Grant, str, float]] = {}
        self._access: dict[str, tuple[Grant, float]] = {}
        self._refresh: dict[str, _Refresh] = {}
        # "grant_type:status" -> count, plus "refreshes" and "rotated_token_uses".
        self.stats: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self._daily: Counter[tuple[str, str, int]] = Counter()

    def authenticate(self, authorization_header: str | None) -> Grant | None:
        if not authorization_header or not authorization_header.lower().startswith("bearer "):
            return None
        entry = self._access.get(authorization_header[7:].strip())
        if entry is None or entry[1] <= self.clock.now():
            return None
        return entry[0]

    def issue_code(self, client_id: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = (Grant(client_id, self.store.default_user_id), redirect_uri, self.clock.now())
        return code

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str]]:
        """Serve the token endpoint; returns (status, body) and counts the call by grant type and outcome."""
        grant_type = form.get("grant_type", "") or "none"
        status, body = self._token(grant_type, form)
        self.stats[f"{grant_type}:{status}"] += 1
        self.outcomes[(grant_type, _outcome(status, body))] += 1
        return status, body

    def _token(self, grant_type: str, form: dict[str, str]) -> tuple[int, dict[str, str]]:
        app = self.config.app(form.get("client_id", ""))
        if app is None or form.get("client_secret") != app.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Invalid client credentials."}
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form.get("refresh_token", ""), app.client_id)
        return 400, {"error": "unsupported_grant_type", "error_description": "Bad Request"}

    def _count_call(self, grant: Grant) -> bool:
        """Count a token call of this app and user today (UTC); False once over `token_calls_per_day`."""
        day = int(self.clock.now() // 86400)
        self._daily[(grant.client_id, grant.user_id, day)] += 1
        return self._daily[(grant.client_id, grant.user_id, day)] <= self.config.token_calls_per_day

    def _exchange_code(self, form: dict[str, str]) -> tuple[int, dict[str, str]]:
        # Popped first: a code is single-use even when this exchange fails.
        entry = self._codes.pop(form.get("code", ""), None)
        if (
            entry is None
            or entry[0].client_id != form.get("client_id")
            or entry[2] + CODE_LIFETIME < self.clock.now()
            or entry[1] != form.get("redirect_uri")
        ):
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        if not self._count_call(entry[0]):
            return 400, _DAILY_CAP
        return 200, self._issue(entry[0])

    def _refresh_grant(self, token: str, client_id: str) -> tuple[int, dict[str, str]]:
        entry = self._refresh.get(token)
        # A refresh token is its app's: another app's credentials cannot use it.
        if entry is None or entry.grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token."}
        if not entry.alive:
            self.stats["rotated_token_uses"] += 1
            return 401, {"error": "unauthorized_client", "error_description": "Old refresh token used."}
        now = self.clock.now()
        expires_at = entry.last_used + self.config.refresh_token_idle_days * 86400
        if now > expires_at:
            return 400, {
                "error": "invalid_request",
                "error_description": f"The refresh token expired at {_exact_time(expires_at)} "
                f"and it is now {_exact_time(now)}.",
            }
        if not self._count_call(entry.grant):
            return 400, _DAILY_CAP
        if now - entry.access_issued_at < self.config.refresh_min_age:
            # Refused, and the refresh token stays valid: the client keeps using its current access token.
            return 400, {
                "error": "invalid_request",
                "error_description": "Rate limit exceeded: access_token not expired",
            }
        entry.alive = False
        self.stats["refreshes"] += 1
        return 200, self._issue(entry.grant)

    def _issue(self, grant: Grant) -> dict[str, str]:
        now = self.clock.now()
        access = "AAEA" + secrets.token_urlsafe(32)
        refresh = "Gcp!IAAA" + secrets.token_urlsafe(32)
        self._access[access] = (grant, now + self.config.access_token_lifetime)
        self._refresh[refresh] = _Refresh(grant, access_issued_at=now, last_used=now)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": str(int(self.config.access_token_lifetime)),
            "refresh_token": refresh,
        }

    def revoke(self, user_id: str | None = None) -> int:
        """Rotate every live refresh token of a user away, as if another party had refreshed them."""
        count = 0
        for entry in self._refresh.values():
            if entry.alive and (user_id is None or entry.grant.user_id == user_id):
                entry.alive = False
                count += 1
        return count

    def expire_access_tokens(self) -> None:
        self._access.clear()

    def snapshot(self) -> dict[str, object]:
        return {
            "token_calls": {k: v for k, v in self.stats.items() if ":" in k},
            "token_call_total": sum(v for k, v in self.stats.items() if ":" in k),
            "refreshes": self.stats["refreshes"],
            "rotated_token_uses": self.stats["rotated_token_uses"],
            "by_grant": _nested(self.outcomes),
            "live_refresh_tokens": sum(1 for r in self._refresh.values() if r.alive),
        }


_DAILY_CAP = {"error": "invalid_request", "error_description": "Rate limit exceeded: token calls per day"}


def _outcome(status: int, body: dict[str, str]) -> str:
    """A short name for how a token call ended, for `/_sandbox/oauth`."""
    if status == 200:
        return "ok"
    description = body.get("error_description", "")
    if "Old refresh token" in description:
        return "rotated"
    if "not expired" in description:
        return "too_early"
    if "expired at" in description:
        return "expired"
    if "per day" in description:
        return "daily_cap"
    return body.get("error", str(status))


def _nested(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for (grant, outcome), n in sorted(counts.items()):
        nested.setdefault(grant, {})[outcome] = n
    return nested


def _exact_time(epoch: float) -> str:
    """Exact's token-error time format: `10/11/2022 9:18:20 PM`."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return f"{moment.month}/{moment.day}/{moment.year} {moment.strftime('%I').lstrip('0')}:{moment:%M:%S %p}"


def routes(oauth: OAuthServer) -> list[BaseRoute]:
    config = oauth.config

    async def authorize(request: Request) -> Response:
        params = request.query_params
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if config.app(client_id) is None or not redirect_uri:
            return JSONResponse({"error": "invalid_request", "error_description": "Unknown client_id"}, 400)
        if config.redirect_uris and redirect_uri not in config.redirect_uris:
            return JSONResponse({"error": "invalid_request", "error_description": "redirect_uri mismatch"}, 400)
        query = {"code": oauth.issue_code(client_id, redirect_uri)}
        if "state" in params:
            query["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        status, body = oauth.token(form)
        return JSONResponse(body, status_code=status)

    async def control(request: Request) -> Response:
        return JSONResponse(oauth.snapshot())

    async def revoke(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        user_id = body.get("user_id") if isinstance(body, dict) else None
        return JSONResponse({"revoked": oauth.revoke(user_id if isinstance(user_id, str) else None)})

    async def expire(request: Request) -> Response:
        oauth.expire_access_tokens()
        return JSONResponse({"expired": True})

    return [
        Route("/api/oauth2/auth", authorize, methods=["GET"]),
        Route("/api/oauth2/token", token, methods=["POST"]),
        Route("/_sandbox/oauth", control, methods=["GET"]),
        Route("/_sandbox/oauth/revoke", revoke, methods=["POST"]),
        Route("/_sandbox/oauth/expire", expire, methods=["POST"]),
    ]
