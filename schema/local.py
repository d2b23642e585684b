"""The sandbox as a side of `schema diff`: started in this process on a free port (or one the user runs), connected
through its OAuth flow with tokens held in memory, and recorded through a client with a rate budget of its own.

The one module of `schema` that may start the sandbox (pyproject's contract "Only the composition root, the demo and
the schema guard start the sandbox").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx

from exact import (
    CATALOGUE,
    Catalogue,
    ErrorBudget,
    ExactClient,
    OAuthApp,
    RateLimiter,
    StoredTokens,
    TokenManager,
    TokenSet,
)
from runtime.redis import sync_client
from runtime.serving import ServerThread
from runtime.settings import Settings
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from schema.record import record
from schema.snapshot import Snapshot

__all__ = ["MemoryTokens", "record_sandbox", "running_sandbox", "sandbox_client"]

# The sandbox approves at once and redirects here; nothing listens, the code is read from the redirect itself.
_REDIRECT = "http://127.0.0.1:9/schema-record"


class MemoryTokens:
    """A `TokenStore` for one sandbox session: nothing is stored in the database, so no connection is created."""

    def __init__(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self._version = 1
        self._consent_error: str | None = None

    @property
    def key_count(self) -> int:
        return 1

    def load(self, connection_id: int) -> StoredTokens:
        t = self._tokens
        issued: datetime = t.issued_at
        needs = self._consent_error is not None
        return StoredTokens(connection_id, t.access_token, t.refresh_token, issued, self._version, needs, None)

    def save(self, connection_id: int, tokens: TokenSet, *, expected_version: int) -> bool:
        if expected_version != self._version:
            return False
        self._tokens, self._version = tokens, self._version + 1
        return True

    def mark_needs_consent(self, connection_id: int, message: str) -> None:
        self._consent_error = message


@contextmanager
def running_sandbox() -> Iterator[str]:
    """A fresh sandbox (its deterministic seed) on a free loopback port; yields its base URL."""
    with ServerThread(create_sandbox_app(SandboxConfig())) as server:
        yield server.url


def sandbox_client(settings: Settings, base_url: str) -> ExactClient:
    """A client of the sandbox at `base_url`, authorized through its OAuth flow, with a budget in Redis under a
    prefix of its own (so it neither spends nor waits on the budget of a real connection)."""
    config = SandboxConfig()
    oauth = OAuthApp(base_url, config.client_id, config.client_secret, _REDIRECT)
    url, state = oauth.authorize_url()
    answer = httpx.get(url, follow_redirects=False)
    location = httpx.URL(answer.headers.get("location", ""))
    if answer.status_code != 302 or location.params.get("state") != state or "code" not in location.params:
        raise RuntimeError(f"the sandbox at {base_url} did not authorize")
    tokens = oauth.exchange_code(location.params["code"])
    redis_client = sync_client(settings.redis_url)
    prefix = f"{settings.redis_prefix}schema-sandbox:{uuid.uuid4().hex[:8]}:"
    limiter = RateLimiter(
        redis_client,
        prefix=prefix,
        client_id=config.client_id,
        per_minute=config.minute_limit,
        per_day=config.day_limit,
        max_wait=settings.rate_limit_max_wait_seconds,
    )
    manager = TokenManager(MemoryTokens(tokens), oauth, redis_client, prefix=prefix, connection_id=0)
    errors = ErrorBudget(redis_client, prefix=prefix, client_id=config.client_id)
    return ExactClient(base_url=base_url, tokens=manager, limiter=limiter, errors=errors)


def record_sandbox(
    settings: Settings, *, url: str | None = None, division: int | None = None, catalogue: Catalogue = CATALOGUE
) -> Snapshot:
    """Record the sandbox at `url`, or a fresh one started here, in `division` (default: the user's current one)."""
    if url is None:
        with running_sandbox() as started:
            return record_sandbox(settings, url=started, division=division, catalogue=catalogue)
    client = sandbox_client(settings, url)
    code = division if division is not None else int(client.me()["CurrentDivision"])
    return record(client, code, catalogue, source="sandbox")
