"""Which connections may be used: the one rule for "consented", and the questions asked of it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from connections.models import Connection, Division

__all__ = ["NoSingleConnection", "connection_ids", "connection_reaching", "consented", "the_connection"]


def consented() -> ColumnElement[bool]:
    """The connections whose tokens we may use: not waiting for a new `exact-pipeline connect`."""
    return Connection.needs_consent.is_(False)


def connection_ids(session: Session, *, consented_only: bool = False) -> list[int]:
    query = select(Connection.id).order_by(Connection.id)
    if consented_only:
        query = query.where(consented())
    return list(session.scalars(query))


class NoSingleConnection(ValueError):
    """A command line named no connection and there is not exactly one, or named one that does not exist."""


def the_connection(session: Session, given: int | None, *, consented_only: bool = False, why: str = "") -> int:
    """`given` when it exists, else the only connection: what every `--connection` option means."""
    ids = connection_ids(session, consented_only=consented_only)
    if given is None:
        if len(ids) != 1:
            raise NoSingleConnection(f"{len(ids)} connections{why}; name one with --connection")
        return ids[0]
    if given not in ids:
        kind = "usable connection" if consented_only else "connection"
        raise NoSingleConnection(f"no {kind} {given}; run `exact-pipeline connect`")
    return given


def connection_reaching(session: Session, division: int) -> int | None:
    """The consented connection whose user was granted `division` (the newest, when several were)."""
    query = (
        select(Connection.id)
        .join(Division, Division.connection_id == Connection.id)
        .where(Division.code == division, Division.granted.is_(True), consented())
        .order_by(Connection.id.desc())
    )
    return session.scalars(query).first()
