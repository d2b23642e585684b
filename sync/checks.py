"""The periodic operational check: connections needing consent, silent subscriptions, dead letters and stuck push
lanes, pushed as System events (`delivery.system_events`), each once per episode."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task

from connections.context import ConnectionContext, connection_context
from delivery import system_events
from delivery.changes import ChangeRecord
from runtime.contracts import CHECK_SYSTEM
from runtime.logging import log_event
from subscriptions.silence import last_webhooks, silent_subscriptions

__all__ = ["check", "check_system"]

log = logging.getLogger(__name__)


def check(ctx: ConnectionContext, now: datetime | None = None) -> int:
    """Find every operational episode and emit those not told yet; returns how many were new."""
    settings = ctx.settings
    seen = last_webhooks(ctx.redis, settings.redis_prefix)
    hours = settings.silent_subscription_hours
    with ctx.sessions() as session:
        found: list[ChangeRecord] = system_events.consent_needed(session)
        found += [
            system_events.subscription_silent(p.connection_id, p.division, p.topic, p.since, hours)
            for p in silent_subscriptions(session, hours, seen, now)
        ]
        found += system_events.dead_letters(session, now)
        found += system_events.stuck_lanes(session, settings.lane_stuck_minutes, now)
    told = system_events.emit(settings, ctx.sessions, found)
    if told:
        log_event(log, "workers.system_events.emitted", logging.WARNING, count=told)
    return told


@shared_task(name=CHECK_SYSTEM, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def check_system() -> int:
    """Beat's entry, every minute."""
    return check(connection_context())
