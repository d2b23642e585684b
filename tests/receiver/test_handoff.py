"""The receiver's fast-path message is a genuine Celery task message: a real worker process runs it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from receiver.handoff import build_message
from runtime.settings import Settings
from tests.receiver.builders import signed_webhook
from tests.receiver.conftest import Receiver
from workers.celery_app import make_celery
from workers.names import EVENTS_QUEUE, HANDLE_EVENT


def test_a_real_worker_runs_the_handed_on_event(receiver: Receiver, settings: Settings) -> None:
    env = {**os.environ, "REDIS_URL": settings.redis_url, "REDIS_PREFIX": settings.redis_prefix,
           "DATABASE_URL": settings.database_url}  # fmt: skip
    celery = Path(sys.executable).parent / "celery"
    worker = subprocess.Popen(
        [str(celery), "-A", "tests.receiver.celery_probe", "worker", "--pool", "solo", "-Q", EVENTS_QUEUE,
         "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        body = signed_webhook(Key="19cee073-095e-46d1-8d2d-f3fc97ba5bc1")
        assert receiver.post(body).json()["outcome"] == "enqueued"
        received = _await_received(receiver.redis, settings.redis_prefix + "probe:received", worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert received["key"] == "19cee073-095e-46d1-8d2d-f3fc97ba5bc1"
    assert received["division"] == 101
    assert receiver.queue() == []


def _await_received(client: redis.Redis, key: str, worker: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while (item := client.lpop(key)) is None:
        assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else "worker died"
        assert time.monotonic() < deadline, "the worker never ran the task"
        time.sleep(0.1)
    return dict(json.loads(item))


def test_message_matches_celerys_own(settings: Settings, redis_client: redis.Redis) -> None:
    """Same envelope keys and body layout as `send_task` produces, so any Celery worker can consume it."""
    celery = make_celery(settings)
    celery.send_task(HANDLE_EVENT, args=[{"event_id": "x"}], queue=EVENTS_QUEUE)
    theirs = json.loads(redis_client.lpop(settings.redis_prefix + EVENTS_QUEUE) or b"{}")
    ours = json.loads(build_message({"event_id": "x"}))
    assert set(ours) == set(theirs)
    assert set(ours["headers"]) == set(theirs["headers"])
    assert set(ours["properties"]) == set(theirs["properties"])
    assert ours["properties"]["delivery_info"] == theirs["properties"]["delivery_info"]
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(theirs["body"]))
