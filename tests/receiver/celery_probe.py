"""A Celery app for tests: registers `workers.handle_event` and records what it receives in Redis."""

from __future__ import annotations

import json
from typing import Any

import redis

from runtime.settings import get_settings
from workers.celery_app import make_celery
from workers.names import HANDLE_EVENT

settings = get_settings()
app = make_celery(settings)


@app.task(name=HANDLE_EVENT)
def handle_event(event: dict[str, Any]) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    client.rpush(settings.redis_prefix + "probe:received", json.dumps(event))
