"""The console's login: the token compared in constant time, a signed session cookie, a CSRF token per session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from runtime.settings import Settings

__all__ = ["COOKIE", "ConsoleAuth", "ConsoleOff"]

COOKIE = "console_session"


class ConsoleOff(RuntimeError):
    """CONSOLE_TOKEN is not set: the console does not serve."""

    def __init__(self) -> None:
        super().__init__(
            "the console is off: set CONSOLE_TOKEN (a long random string) to serve it; operators log in with it"
        )


@dataclass(frozen=True)
class ConsoleAuth:
    token: str
    key: str
    max_age_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleAuth:
        if settings.console_token is None or not settings.console_token.get_secret_value():
            raise ConsoleOff()
        token = settings.console_token.get_secret_value()
        secret = settings.console_secret.get_secret_value() if settings.console_secret else ""
        # Derived, not the token itself: a leaked cookie key must not be a login.
        key = secret or hashlib.sha256(b"exact-pipeline console cookie\0" + token.encode()).hexdigest()
        return cls(token, key, int(settings.console_session_hours * 3600))

    def _signer(self, salt: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.key, salt=salt)

    def accepts(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def new_session(self) -> str:
        """A cookie value: a signed, dated random session id."""
        return self._signer("session").dumps(secrets.token_urlsafe(18))

    def session_of(self, cookie: str | None) -> str | None:
        """The session id of a valid, unexpired cookie, else None."""
        if not cookie:
            return None
        try:
            sid = self._signer("session").loads(cookie, max_age=self.max_age_seconds)
        except BadSignature:  # SignatureExpired included
            return None
        return sid if isinstance(sid, str) else None

    def csrf_token(self, session_id: str) -> str:
        return self._signer("csrf").dumps(session_id)

    def csrf_ok(self, session_id: str, offered: str | None) -> bool:
        if not offered:
            return False
        try:
            bound = self._signer("csrf").loads(offered, max_age=self.max_age_seconds)
        except BadSignature:
            return False
        return isinstance(bound, str) and hmac.compare_digest(bound, session_id)
