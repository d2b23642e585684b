"""Storing a connected Exact user (encrypted tokens) and the divisions it granted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connections.apps import DEFAULT_APP
from connections.models import Connection, Division
from exact import TokenSet, parse_date
from runtime.crypto import TokenCipher

__all__ = ["save_connection", "save_divisions"]


def save_connection(
    session: Session,
    *,
    base_url: str,
    client_id: str,
    tokens: TokenSet,
    me: Mapping[str, Any],
    cipher: TokenCipher,
    app: str = DEFAULT_APP,
) -> Connection:
    """Insert or update the connection of `me`'s user through `app`; a reconnect clears "needs consent"."""
    user_id = str(me["UserID"])
    row = session.scalar(
        select(Connection).where(Connection.app == app, Connection.base_url == base_url, Connection.user_id == user_id)
    )
    if row is None:
        row = Connection(app=app, base_url=base_url, user_id=user_id, client_id=client_id, version=0)
        session.add(row)
    row.client_id = client_id
    row.user_name = str(me.get("FullName") or me.get("UserName") or "") or None
    row.current_division = int(me["CurrentDivision"]) if me.get("CurrentDivision") is not None else None
    row.access_token_enc = cipher.encrypt(tokens.access_token)
    row.refresh_token_enc = cipher.encrypt(tokens.refresh_token)
    row.token_issued_at = tokens.issued_at
    row.access_expires_at = tokens.issued_at + timedelta(seconds=tokens.expires_in)
    row.version = (row.version or 0) + 1
    row.needs_consent = False
    row.consent_error = None
    row.updated_at = datetime.now(UTC)
    session.flush()
    return row


def save_divisions(session: Session, connection_id: int, divisions: Iterable[Mapping[str, Any]]) -> list[Division]:
    """Store `system/Divisions` rows; a division no longer listed is kept but marked as not granted."""
    existing = {d.code: d for d in session.scalars(select(Division).where(Division.connection_id == connection_id))}
    seen = set()
    for item in divisions:
        code = int(item["Code"])
        seen.add(code)
        row = existing.get(code) or Division(connection_id=connection_id, code=code)
        row.description = item.get("Description")
        row.status = int(item.get("Status", 1))
        row.currency = item.get("Currency")
        row.country = item.get("Country")
        move = item.get("DivisionMoveDate")
        row.division_move_date = parse_date(move) if move else None
        row.granted = True
        row.updated_at = datetime.now(UTC)
        session.add(row)
        existing[code] = row
    for code, row in existing.items():
        if code not in seen:
            row.granted = False
    session.flush()
    return sorted(existing.values(), key=lambda d: d.code)
