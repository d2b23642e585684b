"""The daily reconcile (with the follow rules' step, `subscriptions.follow`), as a Celery task run by the workers."""

from __future__ import annotations

import logging

from celery import shared_task

from connections.factory import client_from_settings
from connections.queries import connection_ids
from exact import ExactError, budget_class
from runtime.db import make_engine, make_session_factory
from runtime.logging import log_event
from runtime.redis import sync_client
from runtime.settings import Settings, get_settings
from subscriptions.service import SubscriptionService

__all__ = ["reconcile_all"]

log = logging.getLogger(__name__)


def reconcile_all(settings: Settings) -> dict[int, int]:
    """Reconcile every connection that does not need consent; returns the actions taken per connection."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    redis_client = sync_client(settings.redis_url)
    try:
        with sessions() as session:
            ids = connection_ids(session, consented_only=True)
        done: dict[int, int] = {}
        for connection_id in ids:
            client = client_from_settings(settings, sessions, connection_id)
            service = SubscriptionService(settings, sessions, client, connection_id, redis_client)
            try:
                with budget_class("webhook"):  # a few calls that keep the webhooks coming: ahead of delta and backfill
                    report = service.reconcile()
            except ExactError as exc:  # one connection's trouble must not stop the others
                log_event(
                    log, "subscriptions.reconcile_failed", logging.ERROR, connection=connection_id, error=exc.message
                )
                continue
            done[connection_id] = len(report.actions)
            for error in report.errors:
                log_event(log, "subscriptions.action_failed", logging.ERROR, connection=connection_id, error=error)
        return done
    finally:
        redis_client.close()
        engine.dispose()


@shared_task(name="subscriptions.reconcile", acks_late=True)  # type: ignore[untyped-decorator]
def reconcile() -> dict[int, int]:
    return reconcile_all(get_settings())
