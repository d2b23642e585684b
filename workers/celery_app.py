"""The workers' Celery app: the broker's configuration, every task module, the beat schedule, JSON logs, and the
schema guard's warning at start.

`celery -A workers.celery_app worker` uses the module-level `app`, built from the environment.
"""

from __future__ import annotations

from celery import Celery, signals

from delivery.sinks.urls import url_secrets
from exact import CATALOGUE
from runtime.broker import broker_app
from runtime.logging import configure_logging
from runtime.settings import Settings, get_settings
from schema.guard import warn_at_start
from workers.metrics import StateReader  # noqa: F401  (importing it connects the signals that serve /metrics)
from workers.schedule import beat_schedule

__all__ = ["app", "make_celery"]


def make_celery(settings: Settings, *, include: tuple[str, ...] = ()) -> Celery:
    """The workers' app: the broker's configuration (`runtime.broker`) with the whole beat schedule."""
    celery = broker_app(settings, include=include)
    celery.conf.beat_schedule = beat_schedule(settings)
    return celery


TASK_MODULES = (
    "sync.tasks",
    "sync.checks",
    "delivery.tasks",
    "commands.tasks",
    "subscriptions.tasks",
    "schema.tasks",
)
app = make_celery(get_settings(), include=TASK_MODULES)


@signals.setup_logging.connect  # type: ignore[untyped-decorator]
def _json_logs(**_: object) -> None:
    """Workers and beat log JSON lines with secrets masked, like the receiver; Celery's own lines included."""
    settings = get_settings()
    # PUSH_URL's credentials too: httpx or a plugin may quote the URL where no masking reaches.
    configure_logging(settings.log_level, secrets=[*settings.secret_values(), *url_secrets(settings.push_url)])


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _schema_guard(**_: object) -> None:
    """A worker starting warns of each field the code reads that the last production snapshot lacks (gotcha 14)."""
    warn_at_start(get_settings(), CATALOGUE)
