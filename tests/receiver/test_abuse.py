"""Abuse: every hostile request gets a clear 4xx (408 for a slow body), never a 5xx, enqueues nothing, and leaves the
receiver healthy. Each test posts to a real receiver (uvicorn, real Redis) and counts the events queue after."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
import redis

from receiver.app import create_app
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.receiver.builders import content, sign, signed_raw, signed_webhook
from tests.receiver.conftest import Receiver

DEEP = 15_000  # 30 kB of brackets: under the size cap, far past any parser's recursion limit


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE: dict[str, bytes] = {
    "forged: signed with another secret": signed_webhook(secret="not-the-webhook-secret"),
    "forged: HashCode of other content": signed_raw(b'{"Topic":"Accounts"}', hashcode=sign(b"{}")),
    "truncated: cut in the middle": signed_webhook()[:-25],
    "truncated: Content cut, HashCode kept": signed_raw(json.dumps(content()).encode()[:-10]),
    "non-JSON": b"HashCode=ABC&Content=hello",
    "not an object": b"[1, 2, 3]",
    "deeply nested, unsigned": b'{"Content":' + _nested(DEEP) + b',"HashCode":"00"}',
    "deeply nested, signed": signed_raw(b'{"Topic":' + _nested(DEEP) + b"}"),
    "non-UTF-8, unsigned": b'{"Content":{"Topic":"\xff\xfe"},"HashCode":"00"}',
    "non-UTF-8, signed": signed_raw(b'{"Topic":"Acc\xffounts","Division":101}'),
    "NUL bytes": signed_raw(b'{"Topic":"Accounts\x00","Division":101}'),
    "Content not an object, signed": signed_raw(b'"just a string"'),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_body_is_a_clear_4xx_and_enqueues_nothing(receiver: Receiver, name: str) -> None:
    before = len(receiver.queue())
    response = receiver.post(HOSTILE[name], **{"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    assert response.json()["outcome"] in {"forged", "malformed"}, response.text
    assert len(receiver.queue()) == before
    assert receiver.post(signed_webhook()).json()["outcome"] == "enqueued"  # and it still works


def test_oversized_is_413_and_enqueues_nothing(receiver: Receiver) -> None:
    before = len(receiver.queue())
    padding = "x" * (receiver.settings.webhook_max_body_bytes + 1)
    response = receiver.post(signed_webhook(ExactOnlineEndpoint=padding))
    assert response.status_code == 413
    assert len(receiver.queue()) == before


def test_a_replay_is_answered_as_a_duplicate_and_enqueues_nothing(receiver: Receiver) -> None:
    # A replayed webhook is byte for byte Exact's own retry (the HashCode has no timestamp): refusing it would make
    # Exact retry a delivered event for a day and a half, so it gets 200 "duplicate", and nothing is enqueued.
    body = signed_webhook()
    assert receiver.post(body).json()["outcome"] == "enqueued"
    before = len(receiver.queue())
    for _ in range(5):
        replay = receiver.post(body)
        assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    assert len(receiver.queue()) == before


@pytest.fixture
def impatient(settings: Settings, tracked: None, redis_client: redis.Redis) -> Iterator[Receiver]:
    settings = settings.model_copy(update={"webhook_body_timeout_seconds": 1.0})
    with ServerThread(create_app(settings)) as server:
        yield Receiver(server.url, settings, redis_client)


def test_a_slow_loris_body_gets_408_while_others_are_served(impatient: Receiver) -> None:
    before = len(impatient.queue())
    body = signed_webhook()
    host, port = httpx.URL(impatient.url).host, httpx.URL(impatient.url).port
    with socket.create_connection((host, port or 80), timeout=10) as slow:
        slow.sendall(
            b"POST /webhooks/exact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        # While that connection trickles, the receiver answers everyone else.
        assert impatient.post(signed_webhook()).json()["outcome"] == "enqueued"
        slow.sendall(body[10:20])
        answer = slow.recv(4096)  # the socket's own timeout (10 s) is far past the receiver's (1 s)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert len(impatient.queue()) == before + 1  # only the well-behaved one
    assert httpx.get(f"{impatient.url}/healthz", timeout=5).status_code == 200


def test_after_all_of_it_the_receiver_is_healthy_and_never_answered_5xx(receiver: Receiver) -> None:
    for body in HOSTILE.values():
        receiver.post(body)
    metrics = httpx.get(f"{receiver.url}/metrics", timeout=5).text
    outcomes = {
        line.split('outcome="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("exact_webhook_requests_total{")
    }
    assert outcomes.get("forged", 0) > 0
    assert outcomes.get("malformed", 0) > 0
    assert not {"unavailable", "tracking_unavailable"} & {k for k, v in outcomes.items() if v}
    assert httpx.get(f"{receiver.url}/readyz", timeout=5).json()["ready"] is True
