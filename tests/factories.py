"""Typed factories for rows the tests need; each takes keyword overrides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from connections.models import Connection
from runtime.crypto import TokenCipher, generate_key
from subscriptions.models import Subscription


def create_connection(
    session: Session,
    *,
    user_id: str | None = None,
    base_url: str = "https://start.exactonline.nl",
    key: str | None = None,
) -> Connection:
    cipher = TokenCipher(key or generate_key())
    now = datetime.now(UTC)
    row = Connection(
        base_url=base_url,
        client_id="app",
        user_id=user_id or str(uuid.uuid4()),
        user_name="Test User",
        current_division=101,
        access_token_enc=cipher.encrypt("access"),
        refresh_token_enc=cipher.encrypt("refresh"),
        token_issued_at=now,
        access_expires_at=now,
        version=1,
    )
    session.add(row)
    session.flush()
    return row


def create_subscription(
    session: Session,
    *,
    connection: Connection | None = None,
    division: int = 101,
    topic: str = "Accounts",
    state: str = "active",
) -> Subscription:
    connection = connection or create_connection(session)
    row = Subscription(
        connection_id=connection.id,
        division=division,
        topic=topic,
        state=state,
        callback_url="http://localhost:8000/webhooks/exact",
    )
    session.add(row)
    session.flush()
    return row
