"""The receiver's fast-path message is a genuine Celery task message: a real worker process runs it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from receiver.handoff import build_message, webhook_key
from runtime.contracts import EVENTS_QUEUE, HANDLE_EVENT
from runtime.settings import Settings
from tests.receiver.builders import signed_webhook
from tests.receiver.celery_probe import RECEIVED_KEY
from tests.receiver.conftest import Receiver
from workers.celery_app import make_celery

KEY = "19cee073-095e-46d1-8d2d-f3fc97ba5bc1"
# Differ per message or process by design (ids, host, how the args are shown, the sending app's reply address,
# unused without a result backend); everything else must be what Celery sends.
PER_MESSAGE_HEADERS = {"id", "root_id", "origin", "argsrepr", "kwargsrepr", "ignore_result"}
PER_MESSAGE_PROPERTIES = {"correlation_id", "delivery_tag", "reply_to"}


def test_a_real_worker_runs_the_handed_on_event(receiver: Receiver, settings: Settings) -> None:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix,
        "DATABASE_URL": settings.database_url,
    }
    celery = Path(sys.executable).parent / "celery"
    worker = subprocess.Popen(
        [
            str(celery),
            "-A",
            "tests.receiver.celery_probe",
            "worker",
            "--pool",
            "solo",
            "-Q",
            EVENTS_QUEUE,
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = signed_webhook(Key=KEY, EventCreatedOn="2020-01-06T16:26:08.587")
        assert receiver.post(body).json()["outcome"] == "enqueued"
        received = _await_received(receiver.redis, settings.redis_prefix + RECEIVED_KEY, worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert received["task"] == HANDLE_EVENT
    assert received["queue"] == EVENTS_QUEUE
    event = received["event"]
    assert {k: v for k, v in event.items() if k != "received_at"} == {
        "event_id": webhook_key(101, "Accounts", KEY, "Update", "2020-01-06T16:26:08.587"),
        "division": 101,
        "topic": "Accounts",
        "key": KEY,
        "action": "Update",
        "event_created_on": "2020-01-06T16:26:08.587",
        "client_id": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    }
    assert isinstance(event["received_at"], float)
    assert receiver.queue() == []  # taken off the queue and acknowledged


def _await_received(client: redis.Redis, key: str, worker: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (item := client.lpop(key)) is None:
        assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else "worker died"
        assert time.monotonic() < deadline, "the worker never ran the task"
        time.sleep(0.1)
    return dict(json.loads(item))  # type: ignore[arg-type]


def test_message_matches_celerys_own(settings: Settings, redis_client: redis.Redis) -> None:
    """What `send_task` pushes and what we push decode the same, so any Celery worker consumes ours."""
    event = {"event_id": "x", "division": 101, "topic": "Accounts"}
    celery = make_celery(settings)
    celery.send_task(HANDLE_EVENT, args=[event], queue=EVENTS_QUEUE)
    theirs = json.loads(redis_client.lpop(settings.redis_prefix + EVENTS_QUEUE) or b"{}")  # type: ignore[arg-type]
    ours = json.loads(build_message(event))
    assert _without(ours, "headers", "properties", "body") == _without(theirs, "headers", "properties", "body")
    assert _without(ours["headers"], *PER_MESSAGE_HEADERS) == _without(theirs["headers"], *PER_MESSAGE_HEADERS)
    assert set(ours["headers"]) == set(theirs["headers"])
    assert _without(ours["properties"], *PER_MESSAGE_PROPERTIES) == _without(
        theirs["properties"], *PER_MESSAGE_PROPERTIES
    )
    assert set(ours["properties"]) == set(theirs["properties"])
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(theirs["body"]))


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}
