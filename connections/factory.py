"""Builds Exact clients and OAuth apps from `Settings`: the one place where the client meets configuration."""

from __future__ import annotations

import redis
from sqlalchemy.orm import Session, sessionmaker

from connections.tokens import SqlTokenStore
from exact import REFRESH_MIN_AGE, ErrorBudget, ExactClient, OAuthApp, RateLimiter, TokenManager
from runtime.crypto import TokenCipher
from runtime.redis import sync_client
from runtime.settings import Settings

__all__ = [
    "cipher_from_settings",
    "client_from_settings",
    "limiter_from_settings",
    "oauth_from_settings",
    "token_manager_from_settings",
]


def cipher_from_settings(settings: Settings) -> TokenCipher:
    """TOKEN_ENCRYPTION_KEY as a cipher: one key, or a comma-separated list whose first key encrypts."""
    return TokenCipher(settings.secret("token_encryption_key"))


def oauth_from_settings(settings: Settings) -> OAuthApp:
    settings.require("exact_client_id", "exact_client_secret")
    return OAuthApp(
        settings.exact_base_url,
        str(settings.exact_client_id),
        settings.secret("exact_client_secret"),
        settings.exact_redirect_uri,
    )


def token_manager_from_settings(
    settings: Settings,
    session_factory: sessionmaker[Session],
    connection_id: int,
    *,
    refresh_min_age: float = REFRESH_MIN_AGE,
) -> TokenManager:
    store = SqlTokenStore(session_factory, cipher_from_settings(settings))
    return TokenManager(
        store,
        oauth_from_settings(settings),
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
    """A client for one connection, sharing the app's budget per division with every other process."""
    redis_client = sync_client(settings.redis_url)
    client_id = str(settings.exact_client_id)
    return ExactClient(
        base_url=settings.exact_base_url,
        tokens=token_manager_from_settings(settings, session_factory, connection_id, refresh_min_age=refresh_min_age),
        limiter=limiter_from_settings(settings, redis_client),
        errors=ErrorBudget(redis_client, prefix=settings.redis_prefix, client_id=client_id),
        timeout=timeout,
    )


def limiter_from_settings(
    settings: Settings, client: redis.Redis | None = None, *, client_id: str | None = None
) -> RateLimiter:
    """The call budget per division of an app (the configured one, or `client_id`), shared through Redis."""
    return RateLimiter(
        client or sync_client(settings.redis_url),
        prefix=settings.redis_prefix,
        client_id=client_id or str(settings.exact_client_id),
        per_minute=settings.rate_limit_per_minute,
        per_day=settings.rate_limit_per_day,
        window_seconds=settings.rate_limit_window_seconds,
        max_wait=settings.rate_limit_max_wait_seconds,
    )
