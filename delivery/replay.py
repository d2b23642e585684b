"""Replay from the mirror: the latest mirrored version of each matching record, sent again to one push sink.

Each mirrored row becomes one change (a tombstone a Delete) in the sink's delivery log, and its lane is dispatched:
the delivery tasks push it like any other change, after whatever the lane still holds, in version order. Nothing
is read from Exact. The sink's route applies as it does to live changes (`delivery.outbox.accept`): its topics,
its divisions, and, with `suppress_echo`, no version a command of that client wrote.

Webhook ids. By default a replayed change keeps its original id (`delivery.changes.event_id_of`), so a receiver
that dedupes by `webhook-id` skips what it has, and one that lost its store takes everything again. Its log row
(unique per sink and id) is put back to pending if it was delivered, superseded or dead, inserted again if
retention pruned it, and left alone if it is still waiting. With a replay id (`--new-ids`) every change goes out
under `<original id>:replay:<replay id>`, a new row, so a receiver that dedupes takes them all again, and can still
tell the original from the prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.changes import ChangeRecord, event_id_of
from delivery.models import LIVE_STATES, Delivery, DeliveryState, MirrorRecord
from delivery.origin import with_origins
from delivery.outbox import PushLane
from delivery.sinks import PushSink
from delivery.sinks.routes import Route
from runtime.db import utc_now

__all__ = ["BATCH", "Match", "Replayed", "new_replay_id", "replay_event_id", "replay_mirror", "replayed_changes"]

# Mirror rows per transaction: each batch commits and dispatches before the next is read.
BATCH = 500


@dataclass(frozen=True)
class Match:
    """Which mirrored records to replay: all of them, or those of one division, one topic (any case), or whose
    latest version reached the mirror at or after `since`."""

    division: int | None = None
    topic: str | None = None
    since: datetime | None = None


@dataclass
class Replayed:
    """What a replay did: records matched (of them tombstones), log rows added or put back to pending, rows left
    because they were still waiting, records outside the sink's route, and lanes dispatched."""

    records: int = 0
    deletes: int = 0
    added: int = 0
    reset: int = 0
    waiting: int = 0
    unrouted: int = 0  # records the sink's route does not admit
    lanes: int = 0
    dispatched: int = 0


def new_replay_id() -> str:
    return uuid.uuid4().hex[:12]


def replay_event_id(original: str, replay_id: str) -> str:
    """The id a change goes out under in a replay with its own ids: the original stays a readable prefix."""
    return f"{original}:replay:{replay_id}"


def replayed_changes(rows: Iterable[MirrorRecord], replay_id: str | None) -> list[ChangeRecord]:
    """The changes mirrored rows stand for: their latest version (with its origin), a tombstone as a Delete."""
    changes = []
    for row in rows:
        action = "Delete" if row.deleted else "Update"
        original = event_id_of(row.division, row.topic, row.key, row.version, action)
        event_id = original if replay_id is None else replay_event_id(original, replay_id)
        record = None if row.deleted else row.record
        change = ChangeRecord(row.division, row.topic, row.key, action, record, row.version, event_id, row.origin)
        changes.append(change)
    return changes


def replay_mirror(
    sessions: sessionmaker[Session],
    sink: PushSink,
    match: Match,
    dispatch: Callable[[Sequence[PushLane]], int],
    *,
    replay_id: str | None = None,
    dry_run: bool = False,
) -> Replayed:
    """Replay the matching mirrored records to `sink`, a batch per transaction, each batch's lanes passed to
    `dispatch` (`delivery.outbox.dispatch_lanes`) after its commit. A dry run only counts."""
    done = Replayed()
    after = 0
    while True:
        with sessions() as session, session.begin():
            rows = list(session.scalars(_matching(match).where(MirrorRecord.id > after).limit(BATCH)))
            if not rows:
                return done
            after = rows[-1].id
            done.records += len(rows)
            done.deletes += sum(r.deleted for r in rows)
            if dry_run:
                continue
            # A row mirrored before origins were kept gets one as a live change would (`delivery.origin`).
            changes = with_origins(session, replayed_changes(rows, replay_id))
            lanes = _log(session, sink, _routed(sink, changes, done), done)
        done.lanes += len(lanes)
        done.dispatched += dispatch(lanes)


def _matching(match: Match) -> Select[MirrorRecord]:
    query = select(MirrorRecord).order_by(MirrorRecord.id)
    if match.division is not None:
        query = query.where(MirrorRecord.division == match.division)
    if match.topic is not None:
        query = query.where(func.lower(MirrorRecord.topic) == match.topic.lower())
    if match.since is not None:
        # Stored naive on SQLite, as UTC: compare in UTC.
        since = match.since if match.since.tzinfo else match.since.replace(tzinfo=UTC)
        query = query.where(MirrorRecord.updated_at >= since.astimezone(UTC))
    return query


def _routed(sink: PushSink, changes: list[ChangeRecord], done: Replayed) -> list[ChangeRecord]:
    # What the sink's route admits now, as `delivery.outbox.accept` hands it: topics, divisions, no echoes.
    route: Route | None = getattr(sink, "route", None)
    taken = changes if route is None else [c for c in changes if route.admits(sink.name, c)]
    done.unrouted += len(changes) - len(taken)
    return taken


def _log(session: Session, sink: PushSink, changes: Sequence[ChangeRecord], done: Replayed) -> list[PushLane]:
    """Each change pending in the sink's log: its row put back when it has one, else added by the sink. Returns the
    lanes with a replayed row to send."""
    ids = [c.event_id for c in changes]
    query = select(Delivery.event_id, Delivery.state).where(Delivery.sink == sink.name, Delivery.event_id.in_(ids))
    states = {event_id: state for event_id, state in session.execute(query)}
    done.waiting += sum(state in LIVE_STATES for state in states.values())
    finished = [i for i, state in states.items() if state not in LIVE_STATES]
    if finished:
        now = utc_now()
        moved = session.execute(
            update(Delivery)
            .where(Delivery.sink == sink.name, Delivery.event_id.in_(finished), Delivery.state.not_in(LIVE_STATES))
            .values(state=DeliveryState.PENDING, attempts=0, last_error=None, due_at=now, updated_at=now)
        )
        done.reset += int(getattr(moved, "rowcount", 0))
    done.added += sink.accept(session, [c for c in changes if c.event_id not in states])
    live = select(Delivery.sink, Delivery.division, Delivery.topic, Delivery.key).where(
        Delivery.sink == sink.name, Delivery.event_id.in_(ids), Delivery.state.in_(LIVE_STATES)
    )
    return [PushLane(*row) for row in session.execute(live.distinct())]
