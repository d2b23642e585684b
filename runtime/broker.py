"""The Celery app on Redis as every process builds it, configured so that a killed worker loses nothing.

The workers add their tasks and beat schedule to it (`workers.celery_app`); every other process only sends, through
`producer(settings)`, which shares the broker and key prefix.
"""

from __future__ import annotations

import threading

from celery import Celery, current_app

from runtime.contracts import DELIVERIES_QUEUE, DELIVERY_TASKS, EVENTS_QUEUE
from runtime.settings import Settings

__all__ = ["broker_app", "producer"]


def broker_app(settings: Settings, *, include: tuple[str, ...] = ()) -> Celery:
    """A Celery app on `settings.redis_url` under `settings.redis_prefix`, with at-least-once delivery settings."""
    celery = Celery("exact_pipeline", broker=settings.redis_url, include=list(include))
    transport = {
        "global_keyprefix": settings.redis_prefix,
        "visibility_timeout": settings.broker_visibility_timeout,
        "unacked_restore_interval": min(10, max(1, settings.broker_visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
    }
    celery.conf.update(
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=EVENTS_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Ack after the task ran, and give a task back when its worker process dies mid-run.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=10.0,
        worker_enable_soft_shutdown_on_idle=True,
        worker_hijack_root_logger=False,
        timezone="UTC",
        task_routes={name: {"queue": DELIVERIES_QUEUE} for name in DELIVERY_TASKS},
    )
    return celery


_producers: dict[tuple[str, str], Celery] = {}
_producers_guard = threading.Lock()


def producer(settings: Settings) -> Celery:
    """A sending-only app for these settings, built once per process and broker."""
    wanted = (settings.redis_url, settings.redis_prefix)
    with _producers_guard:
        if wanted not in _producers:
            current = current_app._get_current_object()
            _producers[wanted] = broker_app(settings)
            current.set_current()  # building an app makes it current; the process's own app stays current
        return _producers[wanted]
