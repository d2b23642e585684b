"""Tokens in use: a manager that refreshes under a Redis lock shared by every process, only when Exact allows it
(570 s after issue, or after a 401), over a `TokenStore` fenced by a version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis

from exact._exceptions import NeedsConsent
from exact._oauth import OAuthApp, TokenNotExpired, TokenSet
from runtime.crypto import DecryptionFailed
from runtime.logging import log_event

__all__ = ["REFRESH_MIN_AGE", "UNDECRYPTABLE", "StoredTokens", "TokenManager", "TokenStore"]

log = logging.getLogger(__name__)

# Exact refuses a refresh sooner than 570 s after the access token was issued, and counts it as an error.
REFRESH_MIN_AGE = 570.0
# The consent error of a connection whose tokens no configured key opens; `rotate-key` clears it once one does.
UNDECRYPTABLE = (
    "stored tokens cannot be decrypted with TOKEN_ENCRYPTION_KEY: add the old key after the new one and run "
    "`exact-pipeline rotate-key`, or run `exact-pipeline connect` again"
)


@dataclass(frozen=True)
class StoredTokens:
    connection_id: int
    access_token: str
    refresh_token: str
    issued_at: datetime
    version: int
    needs_consent: bool
    consent_error: str | None


class TokenStore(Protocol):
    """Where a connection's tokens live between calls (the SQL store in `connections.tokens`): read, compare-and-swap
    on `version`, park a connection. `load` raises `DecryptionFailed` when no key opens them."""

    @property
    def key_count(self) -> int: ...

    def load(self, connection_id: int) -> StoredTokens: ...

    def save(self, connection_id: int, tokens: TokenSet, *, expected_version: int) -> bool: ...

    def mark_needs_consent(self, connection_id: int, message: str) -> None: ...


class TokenManager:
    """Hands out a valid access token for one connection.

    tokens = TokenManager(store, oauth_app, redis_client, prefix="exact-pipeline:", connection_id=1)
    current = tokens.current()        # refreshes first when 570 s have passed
    tokens.refresh(seen_version=current.version, force=True)   # after a 401 with that token
    """

    def __init__(
        self,
        store: TokenStore,
        oauth: OAuthApp,
        client: redis.Redis,
        *,
        prefix: str,
        connection_id: int,
        refresh_min_age: float = REFRESH_MIN_AGE,
        lock_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._oauth = oauth
        self._redis = client
        self._lock_name = f"{prefix}exact:token-lock:{connection_id}"
        self.connection_id = connection_id
        self.refresh_min_age = refresh_min_age
        self.lock_timeout = lock_timeout
        self._clock = clock
        self._current: StoredTokens | None = None

    def _age(self, tokens: StoredTokens) -> float:
        return self._clock() - tokens.issued_at.timestamp()

    def _load(self) -> StoredTokens:
        try:
            tokens = self._store.load(self.connection_id)
        except DecryptionFailed:
            # Every task of this connection would fail the same way: park it as needing attention instead.
            self._store.mark_needs_consent(self.connection_id, UNDECRYPTABLE)
            keys = self._store.key_count
            log_event(log, "exact.token.undecryptable", logging.ERROR, connection=self.connection_id, keys=keys)
            raise NeedsConsent(UNDECRYPTABLE) from None
        if tokens.needs_consent:
            raise NeedsConsent(tokens.consent_error or "connection needs consent: run `exact-pipeline connect`")
        self._current = tokens
        return tokens

    def current(self) -> StoredTokens:
        """A token Exact accepts now, refreshed first when it is due."""
        tokens = self._current or self._load()
        if self._age(tokens) >= self.refresh_min_age:
            self.refresh(seen_version=tokens.version)
            tokens = self._current or self._load()
        return tokens

    def refresh(self, *, seen_version: int, force: bool = False) -> None:
        """Refresh under the connection's lock. After taking it, re-read: when the version moved on, another
        process refreshed already and its token is the one to use."""
        lock = self._redis.lock(self._lock_name, timeout=self.lock_timeout, blocking_timeout=self.lock_timeout)
        if not lock.acquire():
            raise NeedsConsent(f"connection {self.connection_id}: could not take the token lock")
        try:
            tokens = self._load()
            if tokens.version != seen_version:
                return
            if self._age(tokens) < self.refresh_min_age and not force:
                return
            self._rotate(tokens)
        finally:
            lock.release()

    def _rotate(self, tokens: StoredTokens) -> None:
        try:
            fresh = self._oauth.refresh(tokens.refresh_token)
        except TokenNotExpired:
            # Exact says the current token is still good: keep using it.
            return
        except NeedsConsent as exc:
            self._store.mark_needs_consent(self.connection_id, f"refresh token refused: {exc.message}")
            log_event(
                log, "exact.token.needs_consent", logging.ERROR, connection=self.connection_id, reason=exc.message
            )
            raise
        # Persisted before the lock is released: the old refresh token is already dead at Exact.
        if not self._store.save(self.connection_id, fresh, expected_version=tokens.version):
            log_event(log, "exact.token.stale_writer", logging.WARNING, connection=self.connection_id)
        else:
            log_event(log, "exact.token.refreshed", connection=self.connection_id, version=tokens.version + 1)
        self._load()

    def keep_alive(self, max_idle: timedelta = timedelta(days=25)) -> bool:
        """Refresh a connection idle for `max_idle`, before Exact's 30 days kill its refresh token."""
        tokens = self._load()
        if self._age(tokens) < max_idle.total_seconds():
            return False
        self.refresh(seen_version=tokens.version)
        return True
