"""The SQL token store: a connection's tokens encrypted at rest, written with compare-and-swap on `version`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from connections.models import Connection
from exact import NeedsConsent, StoredTokens, TokenSet
from runtime.crypto import TokenCipher
from runtime.db import stored_utc

__all__ = ["SqlTokenStore"]


class SqlTokenStore:
    """Reads and writes a connection's tokens, encrypted, with compare-and-swap on `version`."""

    def __init__(self, session_factory: sessionmaker[Session], cipher: TokenCipher) -> None:
        self._sessions = session_factory
        self._cipher = cipher

    @property
    def key_count(self) -> int:
        return self._cipher.key_count

    def load(self, connection_id: int) -> StoredTokens:
        with self._sessions() as session:
            row = session.get(Connection, connection_id)
            if row is None:
                raise NeedsConsent(f"connection {connection_id} does not exist: run `exact-pipeline connect`")
            return StoredTokens(
                connection_id=row.id,
                access_token=self._cipher.decrypt(row.access_token_enc),
                refresh_token=self._cipher.decrypt(row.refresh_token_enc),
                issued_at=stored_utc(row.token_issued_at),
                version=row.version,
                needs_consent=row.needs_consent,
                consent_error=row.consent_error,
            )

    def save(self, connection_id: int, tokens: TokenSet, *, expected_version: int) -> bool:
        """Store a refreshed pair unless someone stored a newer one; True when this write won."""
        with self._sessions() as session, session.begin():
            result = session.execute(
                update(Connection)
                .where(Connection.id == connection_id, Connection.version == expected_version)
                .values(
                    access_token_enc=self._cipher.encrypt(tokens.access_token),
                    refresh_token_enc=self._cipher.encrypt(tokens.refresh_token),
                    token_issued_at=tokens.issued_at,
                    access_expires_at=tokens.issued_at + timedelta(seconds=tokens.expires_in),
                    version=expected_version + 1,
                    needs_consent=False,
                    consent_error=None,
                    updated_at=datetime.now(UTC),
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_needs_consent(self, connection_id: int, message: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                update(Connection)
                .where(Connection.id == connection_id)
                .values(needs_consent=True, consent_error=message, updated_at=datetime.now(UTC))
            )
