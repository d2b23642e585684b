"""The lean webhook path (receiver/fast.py) answers byte for byte as the Starlette route, and counts the same.

Two real receivers side by side, each under its own Redis prefix so dedupe state is not shared: the app as served
(`create_app`) and the reference (`create_app(..., lean=False)`, the webhook through Starlette's router). Every
request goes to both over a raw socket; the whole answers, status line, headers (but Date) and body, must be equal.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope

from receiver.app import WEBHOOK_PATH, create_app
from receiver.fast import ReceiverApp, read_raw_body
from runtime.bodies import BodyRefused
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.receiver.builders import content, signed_raw, signed_webhook
from tests.receiver.conftest import Receiver
from tests.receiver.test_abuse import HOSTILE

LIMIT = 2048  # a small size cap, so the over-cap cases stay cheap


@pytest.fixture
def pair(settings: Settings, tracked: None, redis_client: redis.Redis) -> Iterator[tuple[Receiver, Receiver]]:
    lean_settings = settings.model_copy(update={"webhook_max_body_bytes": LIMIT})
    reference_settings = lean_settings.model_copy(update={"redis_prefix": settings.redis_prefix + "reference:"})
    lean_app, reference_app = create_app(lean_settings), create_app(reference_settings, lean=False)
    assert isinstance(lean_app, ReceiverApp)
    assert not isinstance(reference_app, ReceiverApp)
    with ServerThread(lean_app) as lean, ServerThread(reference_app) as reference:
        yield Receiver(lean.url, lean_settings, redis_client), Receiver(reference.url, reference_settings, redis_client)


def _exchange(url: str, request: bytes) -> bytes:
    """The server's whole answer to `request` (sent with `Connection: close`), its Date header removed."""
    address = httpx.URL(url)
    with socket.create_connection((address.host, address.port or 80), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return re.sub(rb"(?im)^date: [^\r\n]*\r\n", b"", b"".join(chunks))


def _post(body: bytes, path: str = WEBHOOK_PATH, method: str = "POST", extra: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nConnection: close\r\n"
    return head.encode() + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def _chunked(pieces: list[bytes]) -> bytes:
    head = f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: receiver\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return head.encode() + body + b"0\r\n\r\n"


def _same(lean: Receiver, reference: Receiver, request: bytes) -> bytes:
    answer = _exchange(lean.url, request)
    assert answer == _exchange(reference.url, request)
    return answer


def _outcome(answer: bytes) -> str:
    return str(json.loads(answer.split(b"\r\n\r\n", 1)[1])["outcome"])


def _counters(receiver: Receiver) -> dict[str, str]:
    """Every sample of the receiver's metrics but timestamps and latency buckets (timings differ between apps)."""
    text = httpx.get(f"{receiver.url}/metrics", timeout=5).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    skipped = ("_created", "_bucket", "_sum")
    return {name: value for name, value in samples if not any(part in name for part in skipped)}


def test_every_kind_of_request_gets_the_same_answer_and_count_from_both(pair: tuple[Receiver, Receiver]) -> None:
    lean, reference = pair
    first = signed_webhook()
    cases = {
        "enqueued": _post(first),
        "duplicate": _post(first),
        "validation": _post(b""),
        "untracked": _post(signed_webhook(Division=999)),
        "unknown_topic": _post(signed_webhook(Topic="NotATopic")),
        "enqueued, unknown action": _post(signed_webhook(Action="Create")),
        "enqueued, framed": _post(b"\xef\xbb\xbf" + signed_webhook() + b"\r\n"),
        "malformed": _post(signed_raw(json.dumps(content(Key="not-a-guid")).encode())),
        "too_large, declared": _post(b"x" * (LIMIT + 1)),
        "too_large, streamed": _chunked([b"x" * 1000] * 3),
        "enqueued, chunked": _chunked([piece for piece in re.split(rb"(.{100})", signed_webhook()) if piece]),
    }
    cases |= {f"hostile: {name}": _post(body) for name, body in HOSTILE.items() if len(body) <= LIMIT}
    for name, request in cases.items():
        answer = _same(lean, reference, request)
        expected = name.split(",")[0].split(":")[0]
        if expected != "hostile":
            assert _outcome(answer) == expected, name
    assert _counters(lean) == _counters(reference)
    assert len(lean.queue()) == len(reference.queue()) == 4


def test_other_methods_and_paths_still_go_through_starlette(pair: tuple[Receiver, Receiver]) -> None:
    lean, reference = pair
    for request in (
        _post(b"", method="GET"),  # 405, Allow: POST
        _post(b"", method="PUT"),
        _post(signed_webhook(), path=WEBHOOK_PATH + "/"),  # the router's slash redirect
        _post(signed_webhook(), path="/webhooks/Exact"),  # 404
        _post(b"", path="/healthz", method="GET"),
    ):
        answer = _same(lean, reference, request)
        assert not answer.startswith(b"HTTP/1.1 200") or b"alive" in answer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=600), st.dictionaries(st.sampled_from(list(content())), st.text(max_size=8))))
def test_arbitrary_bodies_get_the_same_answer(pair: tuple[Receiver, Receiver], body: bytes | dict[str, str]) -> None:
    lean, reference = pair
    raw = signed_raw(json.dumps(body).encode()) if isinstance(body, dict) else body
    _same(lean, reference, _post(raw))


def test_the_served_app_is_the_lean_one(settings: Settings) -> None:
    # `exact-pipeline receiver` and `uvicorn receiver.app:create_app_from_env` both build it through create_app.
    app = create_app(settings)
    assert isinstance(app, ReceiverApp)
    assert isinstance(app, Starlette)  # every other route, the lifespan and its state are Starlette's
    assert app.webhook_path == WEBHOOK_PATH


def _receiving(*messages: Message, wait_first: bool) -> Receive:
    """An ASGI receive handing out `messages`, each after a loop turn when `wait_first`; then it waits for ever."""
    queue = list(messages)

    async def receive() -> Message:
        if wait_first:
            await asyncio.sleep(0)
        if not queue:
            await asyncio.Event().wait()
        return queue.pop(0)

    return receive


SCOPE: Scope = {"type": "http", "headers": []}


@pytest.mark.parametrize("wait_first", [False, True])
def test_a_body_is_read_whether_or_not_the_read_waits(wait_first: bool) -> None:
    pieces: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c"},
    ]
    body = asyncio.run(read_raw_body(SCOPE, _receiving(*pieces, wait_first=wait_first), 10, 5.0))
    assert body == b"abc"


def test_a_body_still_waiting_at_its_deadline_is_refused_with_408() -> None:
    first: Message = {
        "type": "http.request",
        "body": b"ab",
        "more_body": True,
    }  # read at once, then the rest never comes
    refused = asyncio.run(read_raw_body(SCOPE, _receiving(first, wait_first=False), 10, 0.05))
    assert refused == BodyRefused(408, "timeout", "body not received within 0.05s")


def test_a_cancel_from_outside_while_the_body_waits_stays_a_cancel() -> None:
    async def cancelled() -> bytes | BodyRefused:
        reading = asyncio.create_task(read_raw_body(SCOPE, _receiving(wait_first=True), 10, 5.0))
        await asyncio.sleep(0.01)
        reading.cancel()
        return await reading

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
