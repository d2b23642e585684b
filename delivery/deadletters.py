"""Dead letters: deliveries that reached the attempt limit; listed, and replayed by putting them back to pending.

Also the lanes still waiting for a push target, which `deadletters resume` dispatches after a 410 stopped it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from delivery.models import LIVE_STATES, Delivery, DeliveryState
from delivery.outbox import PushLane
from runtime.db import utc_now

__all__ = ["DeadLetter", "Replayed", "dead_letters", "replay", "waiting_lanes"]


@dataclass(frozen=True)
class DeadLetter:
    id: int
    sink: str
    event_id: str
    attempts: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class Replayed:
    ids: list[int]  # the dead letters put back to pending
    lanes: list[PushLane]  # their lanes, to dispatch after the commit


def dead_letters(session: Session, *, limit: int | None = None) -> list[DeadLetter]:
    """Dead letters, oldest first."""
    query = select(Delivery).where(Delivery.state == DeliveryState.DEAD).order_by(Delivery.id).limit(limit)
    return [
        DeadLetter(r.id, r.sink, r.event_id, r.attempts, r.last_error, r.updated_at) for r in session.scalars(query)
    ]


def replay(session: Session, ids: Sequence[int] | None) -> Replayed:
    """Put dead letters (`ids`, or all of them for None) back to pending with a fresh attempt budget (the caller
    commits, then dispatches the lanes). A replayed version older than one delivered since is superseded
    when its lane runs, never sent."""
    query = select(Delivery).where(Delivery.state == DeliveryState.DEAD)
    if ids is not None:
        query = query.where(Delivery.id.in_(list(ids)))
    rows = list(session.scalars(query))
    if not rows:
        return Replayed([], [])
    now = utc_now()
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_([r.id for r in rows]), Delivery.state == DeliveryState.DEAD)
        .values(state=DeliveryState.PENDING, attempts=0, due_at=now, updated_at=now)
    )
    lanes = list(dict.fromkeys(PushLane(r.sink, r.division, r.topic, r.key) for r in rows))
    return Replayed([r.id for r in rows], lanes)


def waiting_lanes(session: Session, sink: str) -> list[PushLane]:
    """The lanes of `sink` with a delivery still to send (pending, or left sending)."""
    query = (
        select(Delivery.sink, Delivery.division, Delivery.topic, Delivery.key)
        .where(Delivery.sink == sink, Delivery.state.in_(LIVE_STATES))
        .distinct()
    )
    return [PushLane(*row) for row in session.execute(query)]
