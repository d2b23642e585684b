"""Changes into every sink in the caller's transaction; the push lanes they touch, dispatched after the commit.

The fetching side calls `accept(session, changes, settings)` inside its transaction, commits, then passes the
lanes it returned to `dispatch_lanes(settings, lanes)`. Each change gets its origin (`delivery.origin`), and each
sink takes the changes its route admits (`delivery.sinks.routes`: topics, divisions, echoes); a sink without a
route takes all. That sends one `workers.deliver` task per batch of push lanes (sink,
division, topic, key) of one sink, division and topic; the task runs `delivery.push.deliver_lanes`, which pushes each
lane's log rows in version order.
`sweep_lanes` finds rows a lost message left behind, so Redis losing a task is a delay, not a loss.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from kombu.exceptions import OperationalError
from pydantic import SecretStr
from redis import RedisError
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord
from delivery.models import Delivery, DeliveryState
from delivery.origin import with_origins
from delivery.sinks import PushSink, Sink, load_sinks
from delivery.sinks.routes import Route, sinks_file_digest
from runtime.broker import producer
from runtime.contracts import DELIVER, DELIVERIES_QUEUE
from runtime.db import utc_now
from runtime.logging import log_event
from runtime.settings import Settings

__all__ = [
    "AcceptResult",
    "PushLane",
    "accept",
    "batches",
    "dispatch_lanes",
    "sinks_for",
    "sweep_lanes",
]

log = logging.getLogger(__name__)

SWEEP_BATCH = 1000


@dataclass(frozen=True)
class PushLane:
    """Deliveries to one push sink of one record: they go out one at a time, in version order."""

    sink: str
    division: int
    topic: str
    key: str

    def lock_key(self, prefix: str) -> str:
        return f"{prefix}delivery:{self.sink}:{self.division}:{self.topic}:{self.key}:lock"


@dataclass(frozen=True)
class AcceptResult:
    """What `accept` did: changes applied (or logged) per sink, and the push lanes to dispatch after the commit."""

    applied: dict[str, int]
    lanes: tuple[PushLane, ...]


# -- accepting, inside the caller's transaction
_sinks_cache: dict[str, list[Sink]] = {}
_sinks_guard = threading.Lock()


def sinks_for(settings: Settings) -> list[Sink]:
    """The configured sinks, built once per distinct settings (entry points are slow to scan on every call)."""
    fingerprint = _fingerprint(settings)
    with _sinks_guard:
        if fingerprint not in _sinks_cache:
            _sinks_cache[fingerprint] = load_sinks(settings)
        return _sinks_cache[fingerprint]


def _fingerprint(settings: Settings) -> str:
    # model_dump_json masks secrets, and two settings differing only in PUSH_SECRET must not share sinks.
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in settings.model_dump().items()}
    return repr(sorted(values.items())) + sinks_file_digest(settings)


def accept(session: Session, changes: Sequence[ChangeRecord], settings: Settings) -> AcceptResult:
    """Every configured sink takes `changes` within `session`'s transaction (the caller commits).

    Idempotent: the mirror moves only to a strictly newer version, and the delivery log holds one row per (sink,
    event id), so accepting the same changes again changes nothing and logs nothing new.
    """
    sinks = sinks_for(settings)
    changes = with_origins(session, changes)
    applied: dict[str, int] = {}
    lanes: list[PushLane] = []
    for sink in sinks:
        route: Route | None = getattr(sink, "route", None)
        taken = changes if route is None else [c for c in changes if route.admits(sink.name, c)]
        applied[sink.name] = sink.accept(session, taken)
        if isinstance(sink, PushSink):
            lanes += [
                PushLane(sink.name, d, t, k) for d, t, k in dict.fromkeys((c.division, c.topic, c.key) for c in taken)
            ]
    return AcceptResult(applied, tuple(lanes))


# -- dispatching, after the caller committed
def dispatch_lanes(settings: Settings, lanes: Iterable[PushLane]) -> int:
    """Send the delivery tasks of `lanes` (`accept`'s, the sweeper's): one task per batch of up to
    `delivery_batch_keys` lanes of one sink, division and topic; returns how many lanes were sent.

    Call it after the commit of `accept`. When Redis cannot take a task it logs and goes on: the rows are committed,
    and the sweeper dispatches them later.
    """
    sent = 0
    for batch in batches(lanes, settings.delivery_batch_keys):
        first, more = batch[0], [lane.key for lane in batch[1:]]
        try:
            producer(settings).send_task(
                DELIVER,
                args=[first.sink, first.division, first.topic, first.key],
                kwargs={"more": more} if more else {},
                queue=DELIVERIES_QUEUE,
            )
        except (OperationalError, RedisError, OSError) as exc:
            log_event(
                log,
                "workers.delivery.dispatch_failed",
                logging.WARNING,
                sink=first.sink,
                division=first.division,
                topic=first.topic,
                key=first.key,
                lanes=len(batch),
                error=str(exc),
            )
            continue
        sent += len(batch)
    return sent


def batches(lanes: Iterable[PushLane], size: int) -> list[list[PushLane]]:
    """The distinct lanes grouped by sink, division and topic, in chunks of at most `size`, in their first order."""
    groups: dict[tuple[str, int, str], list[PushLane]] = {}
    for lane in dict.fromkeys(lanes):
        groups.setdefault((lane.sink, lane.division, lane.topic), []).append(lane)
    return [group[i : i + size] for group in groups.values() for i in range(0, len(group), max(1, size))]


# -- the sweeper
def sweep_lanes(settings: Settings, session: Session, *, skip: Sequence[str] = ()) -> list[PushLane]:
    """Lanes with a pending row due for longer than `delivery_sweep_after_seconds`, or a row left `sending` as long
    (its worker died and its message is gone): their tasks were lost or are late, so they are dispatched again.
    Sinks in `skip` (stopped targets) are left out: their rows wait for `deadletters resume`."""
    cutoff = utc_now() - timedelta(seconds=settings.delivery_sweep_after_seconds)
    stale = or_(
        and_(Delivery.state == DeliveryState.PENDING, Delivery.due_at <= cutoff),
        and_(Delivery.state == DeliveryState.SENDING, Delivery.updated_at <= cutoff),
    )
    query = select(Delivery.sink, Delivery.division, Delivery.topic, Delivery.key).where(stale).distinct()
    if skip:
        query = query.where(Delivery.sink.not_in(list(skip)))
    return [PushLane(*row) for row in session.execute(query.limit(SWEEP_BATCH))]
