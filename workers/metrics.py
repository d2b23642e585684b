"""`/metrics` of a worker (every pool process's counters, and the state gauges) and of beat (the state gauges)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import redis
from celery import signals
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from commands.models import COMMAND_STATES, CommandRecord
from connections.factory import limiter_from_settings
from connections.models import Connection, Division
from delivery.models import Delivery, DeliveryState
from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE
from runtime.db import make_engine, make_session_factory, stored_utc
from runtime.logging import log_event
from runtime.metrics import GaugeCollector, GaugeFamily, enable_multiprocess, mark_process_dead, serve
from runtime.redis import sync_client
from runtime.settings import Settings, get_settings
from subscriptions.silence import last_webhooks, silent_subscriptions
from sync.cursors import LaneCursor

__all__ = ["StateReader", "state_families"]

log = logging.getLogger(__name__)


def state_families(
    settings: Settings, session: Session, client: redis.Redis, now: datetime | None = None
) -> list[GaugeFamily]:
    """The state an operator alerts on, read from the database and Redis (no Exact calls), as gauges."""
    now = now or datetime.now(UTC)
    connections = list(session.scalars(select(Connection).order_by(Connection.id)))
    return [
        _consent(connections),
        _silent(settings, session, client, connections, now),
        _dead_letters(settings, session),
        _commands(session),
        *_budgets(settings, session, client, connections),
        _lag(session, now),
        _queues(settings, client),
    ]


def _consent(connections: list[Connection]) -> GaugeFamily:
    return GaugeFamily(
        "exact_pipeline_connection_needs_consent",
        "1 when a connection needs consent again (`exact-pipeline connect`)",
        ("connection",),
        [((str(c.id),), float(bool(c.needs_consent))) for c in connections],
    )


def _silent(
    settings: Settings, session: Session, client: redis.Redis, connections: list[Connection], now: datetime
) -> GaugeFamily:
    pairs = silent_subscriptions(
        session, settings.silent_subscription_hours, last_webhooks(client, settings.redis_prefix), now
    )
    counts = {c.id: 0 for c in connections}
    for pair in pairs:
        counts[pair.connection_id] = counts.get(pair.connection_id, 0) + 1
    return GaugeFamily(
        "exact_pipeline_silent_subscriptions",
        f"Active subscriptions silent for over SILENT_SUBSCRIPTION_HOURS ({settings.silent_subscription_hours:g})",
        ("connection",),
        [((str(c),), float(n)) for c, n in sorted(counts.items())],
    )


def _dead_letters(settings: Settings, session: Session) -> GaugeFamily:
    by_sink = select(Delivery.sink, func.count()).where(Delivery.state == DeliveryState.DEAD).group_by(Delivery.sink)
    counts = dict.fromkeys(settings.sink_names, 0) | {str(s): int(n) for s, n in session.execute(by_sink).all()}
    return GaugeFamily(
        "exact_pipeline_dead_letters",
        "Deliveries that reached the attempt limit, by sink (`exact-pipeline deadletters list`)",
        ("sink",),
        [((sink,), float(n)) for sink, n in sorted(counts.items())],
    )


def _commands(session: Session) -> GaugeFamily:
    by_state = select(CommandRecord.status, func.count()).group_by(CommandRecord.status)
    counted = {str(state): int(n) for state, n in session.execute(by_state).all()}
    return GaugeFamily(
        "exact_pipeline_commands",
        "Commands by state",
        ("state",),
        [((str(state),), float(counted.get(state, 0))) for state in COMMAND_STATES],
    )


def _budgets(
    settings: Settings, session: Session, client: redis.Redis, connections: list[Connection]
) -> tuple[GaugeFamily, GaugeFamily]:
    left = GaugeFamily(
        "exact_pipeline_budget_left", "Calls left in a division's budget, by window (minute, day)", _BUDGET_LABELS
    )
    limit = GaugeFamily(
        "exact_pipeline_budget_limit", "A division's call budget, by window (minute, day)", _BUDGET_LABELS
    )
    codes = select(Division.connection_id, Division.code).order_by(Division.connection_id, Division.code)
    divisions: dict[int, list[int]] = {}
    for connection_id, code in session.execute(codes).all():
        divisions.setdefault(int(connection_id), []).append(int(code))
    for c in connections:
        limiter = limiter_from_settings(settings, client, client_id=c.client_id)
        for code in divisions.get(c.id, []):
            usage = limiter.usage(code)
            for window, used, cap in (
                ("minute", usage.minute_used, usage.minute_limit),
                ("day", usage.day_used, usage.day_limit),
            ):
                labels = (str(c.id), str(code), window)
                left.samples.append((labels, float(max(0, cap - used))))
                limit.samples.append((labels, float(cap)))
    return left, limit


_BUDGET_LABELS = ("connection", "division", "window")


def _lag(session: Session, now: datetime) -> GaugeFamily:
    cursors = session.scalars(
        select(LaneCursor).order_by(LaneCursor.connection_id, LaneCursor.division, LaneCursor.topic)
    )
    return GaugeFamily(
        "exact_pipeline_lane_lag_seconds",
        "Seconds since a lane's delta-sync cursor last advanced",
        ("connection", "division", "topic"),
        [
            ((str(c.connection_id), str(c.division), c.topic), (now - stored_utc(c.updated_at)).total_seconds())
            for c in cursors
        ],
    )


def _queues(settings: Settings, client: redis.Redis) -> GaugeFamily:
    prefix = settings.redis_prefix
    depths = {
        EVENTS_QUEUE: int(client.llen(prefix + EVENTS_QUEUE)),
        DELIVERIES_QUEUE: int(client.llen(prefix + DELIVERIES_QUEUE)),
        "unacked": int(client.hlen(prefix + "unacked")),
    }
    return GaugeFamily(
        "exact_pipeline_queue_depth",
        "Tasks waiting in each broker queue, and those taken but not yet acknowledged",
        ("queue",),
        [((name,), float(n)) for name, n in depths.items()],
    )


class StateReader:
    """The state gauges for one serving process, on an engine that pools nothing (the worker forks after it)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: sessionmaker[Session] = make_session_factory(
            make_engine(settings.database_url, poolclass=NullPool)
        )
        self._redis = sync_client(settings.redis_url)

    def __call__(self) -> list[GaugeFamily]:
        up = GaugeFamily("exact_pipeline_state_up", "1 when the last scrape could read the database and Redis")
        try:
            with self._sessions() as session:
                families = state_families(self._settings, session, self._redis)
        except (SQLAlchemyError, RedisError) as exc:
            log_event(log, "workers.metrics.state_unreadable", logging.WARNING, error=type(exc).__name__)
            up.samples.append(((), 0.0))
            return [up]
        up.samples.append(((), 1.0))
        return [*families, up]


@dataclass
class _Served:
    server: WSGIServer | None = None
    directory: Path | None = None


_served = _Served()


@signals.worker_init.connect  # type: ignore[untyped-decorator]
def _serve_worker(**_: Any) -> None:
    """Before the pool forks: a fresh sample directory for this start, and `/metrics` on WORKER_METRICS_PORT."""
    settings = get_settings()
    if not settings.worker_metrics_port:
        return
    directory = Path(tempfile.mkdtemp(prefix="exact-pipeline-metrics-"))
    enable_multiprocess(directory)
    _served.directory = directory
    _served.server = _serve(settings.worker_metrics_port, directory, settings)


@signals.worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _child_exited(**_: Any) -> None:
    if _served.directory is not None:
        mark_process_dead(os.getpid(), _served.directory)


@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_worker(**_: Any) -> None:
    if _served.server is not None:
        _served.server.shutdown()
    if _served.directory is not None:
        shutil.rmtree(_served.directory, ignore_errors=True)


@signals.beat_init.connect  # type: ignore[untyped-decorator]
def _serve_beat(**_: Any) -> None:
    """Beat calls no API: it serves the state gauges alone, on BEAT_METRICS_PORT, for deployments that scrape it."""
    settings = get_settings()
    if settings.beat_metrics_port:
        _served.server = _serve(settings.beat_metrics_port, None, settings)


def _serve(port: int, directory: Path | None, settings: Settings) -> WSGIServer | None:
    """`/metrics` on `port`; a port already taken (a second worker on the host) costs the metrics, not the worker."""
    try:
        server = serve(port, directory, GaugeCollector(StateReader(settings)))
    except OSError as exc:
        log_event(log, "workers.metrics.port_unavailable", logging.ERROR, port=port, error=str(exc))
        return None
    log_event(log, "workers.metrics.serving", port=port)
    return server
