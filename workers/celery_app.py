"""The Celery app on Redis, configured so that a killed worker loses nothing (reliability.md §1).

`celery -A workers.celery_app worker` uses the module-level `app`, built from the environment.
"""

from __future__ import annotations

from celery import Celery, signals

from runtime.logging import configure_logging
from runtime.settings import Settings, get_settings
from workers.names import DELIVER, DELIVERIES_QUEUE, EVENTS_QUEUE, PRUNE_DELIVERIES, SWEEP_COMMANDS, SWEEP_DELIVERIES
from workers.schedule import beat_schedule
from workers.sinks.urls import url_secrets

__all__ = ["app", "make_celery"]

PRUNE_SECONDS = 3600.0


def make_celery(settings: Settings, *, include: tuple[str, ...] = ()) -> Celery:
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
        beat_schedule={
            **beat_schedule(settings),
            # On the deliveries queue: the events worker never waits behind delivery bookkeeping.
            "deliveries-sweep": {"task": SWEEP_DELIVERIES, "schedule": 60.0, "options": {"queue": DELIVERIES_QUEUE}},
            "deliveries-prune": {
                "task": PRUNE_DELIVERIES,
                "schedule": PRUNE_SECONDS,
                "options": {"queue": DELIVERIES_QUEUE, "expires": PRUNE_SECONDS},
            },
            "commands-sweep": {"task": SWEEP_COMMANDS, "schedule": 60.0},
        },
        task_routes={name: {"queue": DELIVERIES_QUEUE} for name in (DELIVER, SWEEP_DELIVERIES, PRUNE_DELIVERIES)},
    )
    return celery


TASK_MODULES = ("workers.tasks", "workers.deliveries", "workers.commands", "subscriptions.tasks")
app = make_celery(get_settings(), include=TASK_MODULES)


@signals.setup_logging.connect  # type: ignore[untyped-decorator]
def _json_logs(**_: object) -> None:
    """Workers and beat log JSON lines with secrets masked, like the receiver; Celery's own lines included."""
    settings = get_settings()
    # PUSH_URL's credentials too: httpx or a plugin may quote the URL where no masking reaches.
    configure_logging(settings.log_level, secrets=[*settings.secret_values(), *url_secrets(settings.push_url)])
