"""With Redis stopped the receiver answers 503 (Exact retries); once Redis is back the same delivery is accepted once.

Uses a private redis-server on a free port: the shared one on 6379 serves other runs."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from receiver.app import create_app
from runtime.contracts import EVENTS_QUEUE
from runtime.settings import Settings
from tests.conftest import ServerThread, free_port
from tests.receiver.builders import signed_webhook


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: scripts/services installs it")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_down_gives_503_then_the_retry_is_accepted_once(
    settings: Settings, tracked: None, private_redis: PrivateRedis
) -> None:
    settings = settings.model_copy(update={"redis_url": private_redis.url})
    body = signed_webhook()
    with ServerThread(create_app(settings)) as server:
        private_redis.stop()
        down = httpx.post(f"{server.url}/webhooks/exact", content=body, timeout=20)
        assert down.status_code == 503
        assert httpx.get(f"{server.url}/readyz", timeout=20).status_code == 503
        private_redis.start()
        outcomes = [
            httpx.post(f"{server.url}/webhooks/exact", content=body, timeout=20).json()["outcome"] for _ in range(2)
        ]
        assert outcomes == ["enqueued", "duplicate"]
        assert httpx.get(f"{server.url}/readyz", timeout=20).status_code == 200
        assert redis.Redis.from_url(private_redis.url).llen(settings.redis_prefix + EVENTS_QUEUE) == 1


def test_a_redis_restart_between_webhooks_reloads_the_script(
    settings: Settings, tracked: None, private_redis: PrivateRedis
) -> None:
    settings = settings.model_copy(update={"redis_url": private_redis.url})
    with ServerThread(create_app(settings)) as server:
        first = httpx.post(f"{server.url}/webhooks/exact", content=signed_webhook(), timeout=20)
        assert first.json()["outcome"] == "enqueued"
        private_redis.stop()
        private_redis.start()  # empty, and without our script: EVALSHA answers NOSCRIPT
        second = httpx.post(f"{server.url}/webhooks/exact", content=signed_webhook(), timeout=20)
        assert second.json()["outcome"] == "enqueued", second.text
        assert redis.Redis.from_url(private_redis.url).llen(settings.redis_prefix + EVENTS_QUEUE) == 1


def test_a_command_is_kept_with_redis_down_and_the_sweeper_hands_it_on(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    """Kombu's OperationalError (not a RedisError) used to make this a 500, for a command that was kept and ran."""
    from pydantic import SecretStr

    from commands.store import get
    from sync.context import WorkerContext

    settings = settings.model_copy(
        update={"redis_url": private_redis.url, "commands_token": SecretStr("t"), "commands_sweep_after_seconds": 0.0}
    )
    key = f"redis-down-{uuid.uuid4().hex[:8]}"
    command = {"key": key, "division": 101, "entity": "Account", "action": "create", "fields": {"Name": "Kept Co"}}
    with ServerThread(create_app(settings)) as server:
        private_redis.stop()
        response = httpx.post(f"{server.url}/commands", json=command, headers={"Authorization": "Bearer t"}, timeout=30)
    assert response.status_code == 202, response.text
    ctx = WorkerContext.from_settings(settings)
    with ctx.sessions() as session:
        kept = get(session, key)
        assert kept is not None
        assert kept.status == "queued"
    private_redis.start()
    from commands.tasks import sweep

    assert sweep(ctx) >= 1  # the run's database may hold other commands queued that long
    queued = redis.Redis.from_url(private_redis.url).lrange(settings.redis_prefix + EVENTS_QUEUE, 0, -1)
    assert [message for message in queued if key.encode() in message] != []
