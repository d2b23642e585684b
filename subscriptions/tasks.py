"""The daily reconcile, as a Celery task run by the workers (the beat schedule calls it)."""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy import select

from exact import ExactError
from exact._models import Connection
from exact.factory import client_from_settings
from runtime.db import make_engine, make_session_factory
from runtime.logging import log_event
from runtime.redis import sync_client
from runtime.settings import Settings, get_settings
from subscriptions.service import SubscriptionService

__all__ = ["reconcile_all"]

log = logging.getLogger(__name__)


def reconcile_all(settings: Settings) -> dict[int, int]:
    """Reconcile every connection that does not need consent; returns the actions taken per connection."""
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        ids = list(session.scalars(select(Connection.id).where(Connection.needs_consent.is_(False))))
    done: dict[int, int] = {}
    for connection_id in ids:
        service = SubscriptionService(settings, sessions, client_from_settings(settings, sessions, connection_id),
                                      connection_id, sync_client(settings.redis_url))  # fmt: skip
        try:
            done[connection_id] = len(service.reconcile().actions)
        except ExactError as exc:
            log_event(log, "subscriptions.reconcile_failed", logging.ERROR, connection=connection_id, error=exc.message)
    return done


@shared_task(name="subscriptions.reconcile", acks_late=True)  # type: ignore[untyped-decorator]
def reconcile() -> dict[int, int]:
    return reconcile_all(get_settings())
