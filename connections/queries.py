"""Which connections may be used: the one rule for "consented", and the questions asked of it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from connections.models import Connection, Division

__all__ = ["connection_ids", "connection_reaching", "consented"]


def consented() -> ColumnElement[bool]:
    """The connections whose tokens we may use: not waiting for a new `exact-pipeline connect`."""
    return Connection.needs_consent.is_(False)


def connection_ids(session: Session, *, consented_only: bool = False) -> list[int]:
    query = select(Connection.id).order_by(Connection.id)
    if consented_only:
        query = query.where(consented())
    return list(session.scalars(query))


def connection_reaching(session: Session, division: int) -> int | None:
    """The consented connection whose user was granted `division` (the newest, when several were)."""
    query = (
        select(Connection.id)
        .join(Division, Division.connection_id == Connection.id)
        .where(Division.code == division, Division.granted.is_(True), consented())
        .order_by(Connection.id.desc())
    )
    return session.scalars(query).first()
