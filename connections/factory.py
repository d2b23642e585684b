"""Builds Exact clients and OAuth apps from `Settings`: the one place where the client meets configuration.

A connection's client, tokens and budgets are its app's (connections/apps.py): host, client id and secret.
"""

from __future__ import annotations

import httpx
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connections.apps import DEFAULT_APP, ExactApp, apps_from_settings
from connections.models import Connection
from connections.tokens import SqlTokenStore
from exact import REFRESH_MIN_AGE, ErrorBudget, ExactClient, OAuthApp, RateLimiter, TokenManager
from runtime.crypto import TokenCipher
from runtime.metrics import count_exact_call
from runtime.redis import sync_client
from runtime.settings import Settings
from runtime.usage import call_recorder

__all__ = [
    "app_of",
    "cipher_from_settings",
    "client_from_settings",
    "limiter_from_settings",
    "oauth_from_settings",
    "token_manager_from_settings",
]


def cipher_from_settings(settings: Settings) -> TokenCipher:
    """TOKEN_ENCRYPTION_KEY as a cipher: one key, or a comma-separated list whose first key encrypts."""
    return TokenCipher(settings.secret("token_encryption_key"))


def app_of(settings: Settings, session_factory: sessionmaker[Session], connection_id: int) -> ExactApp:
    """The app a connection belongs to; `default` for an id not stored, whose first call then needs consent."""
    with session_factory() as session:
        name = session.scalar(select(Connection.app).where(Connection.id == connection_id))
    return apps_from_settings(settings).get(name or DEFAULT_APP)


def oauth_from_settings(settings: Settings, app: str | ExactApp = DEFAULT_APP) -> OAuthApp:
    """The OAuth side of an app (by name); `MissingSetting` names its unset client id or secret."""
    chosen = app if isinstance(app, ExactApp) else apps_from_settings(settings).get(app)
    client_id, client_secret = chosen.credentials()
    return OAuthApp(chosen.base_url, client_id, client_secret, chosen.redirect_uri)


def token_manager_from_settings(
    settings: Settings,
    session_factory: sessionmaker[Session],
    connection_id: int,
    *,
    refresh_min_age: float = REFRESH_MIN_AGE,
    app: ExactApp | None = None,
) -> TokenManager:
    store = SqlTokenStore(session_factory, cipher_from_settings(settings))
    return TokenManager(
        store,
        oauth_from_settings(settings, app or app_of(settings, session_factory, connection_id)),
        sync_client(settings.redis_url),
        prefix=settings.redis_prefix,
        connection_id=connection_id,
        refresh_min_age=refresh_min_age,
    )


def client_from_settings(
    settings: Settings,
    session_factory: sessionmaker[Session],
    connection_id: int,
    *,
    refresh_min_age: float = REFRESH_MIN_AGE,
    timeout: float = 30.0,
) -> ExactClient:
    """A client for one connection on its app's host, sharing the app's budget per division with every process."""
    redis_client = sync_client(settings.redis_url)
    app = app_of(settings, session_factory, connection_id)
    client_id, _ = app.credentials()
    tokens = token_manager_from_settings(
        settings, session_factory, connection_id, refresh_min_age=refresh_min_age, app=app
    )
    usage = call_recorder(redis_client, prefix=settings.redis_prefix, client_id=client_id)
    return ExactClient(
        base_url=app.base_url,
        tokens=tokens,
        limiter=limiter_from_settings(settings, redis_client, client_id=client_id),
        errors=ErrorBudget(redis_client, prefix=settings.redis_prefix, client_id=client_id),
        http=httpx.Client(timeout=timeout, event_hooks={"response": [count_exact_call, usage]}),
    )


def limiter_from_settings(
    settings: Settings, client: redis.Redis | None = None, *, client_id: str | None = None
) -> RateLimiter:
    """The call budget per division of an app (the configured one, or `client_id`), shared through Redis, with the
    BUDGET_SHARE_* reserves of its classes."""
    return RateLimiter(
        client or sync_client(settings.redis_url),
        prefix=settings.redis_prefix,
        client_id=client_id or str(settings.exact_client_id),
        per_minute=settings.rate_limit_per_minute,
        per_day=settings.rate_limit_per_day,
        window_seconds=settings.rate_limit_window_seconds,
        max_wait=settings.rate_limit_max_wait_seconds,
        shares=settings.budget_shares,
    )
