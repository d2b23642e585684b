"""A Celery app for tests: registers `workers.handle_event` and records what it receives in Redis."""

from __future__ import annotations

import json
from typing import Any

import redis
from celery import Task

from runtime.contracts import HANDLE_EVENT
from runtime.settings import get_settings
from workers.celery_app import make_celery

settings = get_settings()
app = make_celery(settings)
RECEIVED_KEY = "probe:received"


# shared=False: other apps built in the same test process must not inherit this stand-in.
@app.task(name=HANDLE_EVENT, bind=True, shared=False)  # type: ignore[untyped-decorator]
def handle_event(self: Task, event: dict[str, Any]) -> None:
    record = {"event": event, "task": self.request.task, "queue": self.request.delivery_info.get("routing_key")}
    client = redis.Redis.from_url(settings.redis_url)
    client.rpush(settings.redis_prefix + RECEIVED_KEY, json.dumps(record))
