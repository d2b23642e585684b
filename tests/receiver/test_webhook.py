"""POST /webhooks/exact under a real uvicorn and Redis: what is accepted, what is rejected, and the queue after each."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from receiver.app import create_app
from runtime.logging import JsonFormatter
from runtime.settings import MissingSetting, Settings
from tests.conftest import ServerThread
from tests.receiver.builders import SECRET, content, sign, signed_raw, signed_webhook
from tests.receiver.conftest import Receiver
from tests.vectors import VECTOR_SECRET, VECTORS


@pytest.fixture
def vector_receiver(receiver: Receiver) -> Iterator[Receiver]:
    # Run a receiver that holds the secret the vectors were signed with.
    settings = receiver.settings.model_copy(update={"exact_webhook_secret": VECTOR_SECRET})
    with ServerThread(create_app(settings)) as server:
        yield Receiver(server.url, settings, receiver.redis)


class TestAccepted:
    @pytest.mark.parametrize(("raw", "hashcode"), VECTORS)
    def test_documented_vectors(self, vector_receiver: Receiver, raw: bytes, hashcode: str) -> None:
        response = vector_receiver.post(signed_raw(raw, hashcode=hashcode))
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "enqueued"
        assert len(vector_receiver.queue()) == 1

    def test_non_ascii_and_escaped_slashes_byte_for_byte(self, receiver: Receiver) -> None:
        key = "5b7f4515-b7a0-4839-ac69-574968677d96"
        raw = (
            '{"Topic":"Accounts","ClientId":"c","Division":101,"Action":"Update","Key":"' + key + '",'
            '"ExactOnlineEndpoint":"https:\\/\\/start.exactonline.nl\\/api\\/v1\\/101\\/crm\\/Accounts",'
            '"EventCreatedOn":"2026-01-01T00:00:00.000","Note":"Zoë \\u00e9 Müller"}'
        ).encode()
        response = receiver.post(signed_raw(raw))
        assert response.status_code == 200, response.text
        [event] = receiver.events()
        assert event["key"] == key
        assert event["division"] == 101

    def test_the_event_holds_plain_values(self, receiver: Receiver) -> None:
        body = signed_webhook(Key="19CEE073-095E-46D1-8D2D-F3FC97BA5BC1", Action="Delete")
        assert receiver.post(body).status_code == 200
        [event] = receiver.events()
        assert {k: event[k] for k in ("division", "topic", "key", "action")} == {
            "division": 101,
            "topic": "Accounts",
            "key": "19cee073-095e-46d1-8d2d-f3fc97ba5bc1",
            "action": "Delete",
        }
        assert isinstance(event["event_id"], str)

    def test_lowercase_hex_is_accepted(self, receiver: Receiver) -> None:
        raw = json.dumps(content(), separators=(",", ":")).encode()
        assert receiver.post(signed_raw(raw, hashcode=sign(raw).lower())).status_code == 200

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            pytest.param(b"\xef\xbb\xbf", b"", id="bom"),
            pytest.param(b"", b"\n", id="newline"),
            pytest.param(b"\xef\xbb\xbf", b" \t\r\n", id="bom-and-whitespace"),
        ],
    )
    def test_a_bom_or_trailing_whitespace_around_a_signed_body(
        self, receiver: Receiver, before: bytes, after: bytes
    ) -> None:
        key = str(uuid.uuid4())
        response = receiver.post(before + signed_webhook(Key=key) + after)
        assert (response.status_code, response.json()["outcome"]) == (200, "enqueued"), response.text
        assert [event["key"] for event in receiver.events()] == [key]


class TestRejected:
    def test_empty_body_is_the_validation_post(self, receiver: Receiver) -> None:
        response = receiver.post(b"")
        assert response.status_code == 200
        assert response.json()["outcome"] == "validation"
        assert receiver.queue() == []

    def test_oversized_by_content_length(self, receiver: Receiver) -> None:
        big = signed_webhook(Note="x" * 70_000)
        assert receiver.post(big).status_code == 413
        assert receiver.queue() == []

    def test_oversized_is_refused_before_the_body_is_read(self, receiver: Receiver) -> None:
        # Declares 1 MB and sends 10 bytes: an answer can only come if the server did not wait for the rest.
        with socket.create_connection(("127.0.0.1", int(receiver.url.rsplit(":", 1)[1])), timeout=10) as sock:
            sock.sendall(b"POST /webhooks/exact HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 10)
            head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 413")
        assert receiver.queue() == []

    def test_a_client_gone_mid_body_is_counted_not_crashed_on(self, receiver: Receiver) -> None:
        with socket.create_connection(("127.0.0.1", int(receiver.url.rsplit(":", 1)[1])), timeout=10) as sock:
            sock.sendall(b"POST /webhooks/exact HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        deadline = time.monotonic() + 10
        while (
            'exact_webhook_requests_total{outcome="disconnected"} 1.0' not in httpx.get(f"{receiver.url}/metrics").text
        ):
            assert time.monotonic() < deadline, "the disconnect was never counted"
            time.sleep(0.05)
        assert receiver.queue() == []

    def test_oversized_chunked_body_is_cut_off(self, receiver: Receiver) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b"x" * 1024

        response = httpx.post(f"{receiver.url}/webhooks/exact", content=chunks(), timeout=10)
        assert response.status_code == 413
        assert receiver.queue() == []

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(signed_webhook(secret="the-client-secret"), id="wrong-secret"),
            pytest.param(signed_raw(json.dumps(content()).encode(), hashcode="00" * 32), id="wrong-hash"),
            pytest.param(b'{"Content":' + json.dumps(content()).encode() + b"}", id="no-hashcode"),
            pytest.param(b"not json at all", id="junk"),
            pytest.param(signed_webhook()[:-5], id="truncated"),
        ],
    )
    def test_forged_or_unsigned_is_401(self, receiver: Receiver, body: bytes) -> None:
        assert receiver.post(body).status_code == 401
        assert receiver.queue() == []

    def test_re_serialised_content_does_not_verify(self, receiver: Receiver) -> None:
        raw = json.dumps(content(), separators=(",", ":")).encode()
        spaced = json.dumps(json.loads(raw)).encode()  # same data, other bytes
        assert receiver.post(signed_raw(spaced, hashcode=sign(raw))).status_code == 401

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            pytest.param(b'{"Topic":"Accounts",', "Content", id="malformed-json"),
            pytest.param(json.dumps(content(Division=...)).encode(), "Division", id="missing-division"),
            pytest.param(json.dumps(content(Division="101")).encode(), "Division", id="division-as-string"),
            pytest.param(json.dumps(content(Key="not-a-guid")).encode(), "Key", id="bad-key"),
            pytest.param(b"[1,2]", "Content", id="not-an-object"),
        ],
    )
    def test_signed_but_malformed_is_400_with_a_reason(self, receiver: Receiver, raw: bytes, reason: str) -> None:
        response = receiver.post(signed_raw(raw))
        assert response.status_code == 400
        assert reason in response.json()["detail"]
        assert receiver.queue() == []

    def test_untracked_division_or_topic(self, receiver: Receiver) -> None:
        for body in (signed_webhook(Division=999), signed_webhook(Topic="BankEntries")):
            response = receiver.post(body)
            assert response.status_code == 200
            assert response.json()["outcome"] == "untracked"
        assert receiver.queue() == []

    def test_duplicates_are_enqueued_once(self, receiver: Receiver) -> None:
        body = signed_webhook()
        outcomes = [receiver.post(body).json()["outcome"] for _ in range(3)]
        assert outcomes == ["enqueued", "duplicate", "duplicate"]
        assert len(receiver.queue()) == 1

    def test_unknown_action_is_accepted_and_counted(self, receiver: Receiver) -> None:
        response = receiver.post(signed_webhook(Action="Create"))
        assert response.status_code == 200
        assert response.json()["outcome"] == "enqueued"
        assert [e["action"] for e in receiver.events()] == ["Create"]
        metrics = httpx.get(f"{receiver.url}/metrics").text
        assert "exact_webhook_unknown_actions_total 1.0" in metrics

    def test_unreadable_database_on_a_miss_is_503(self, settings: Settings, tmp_path: Path, receiver: Receiver) -> None:
        # Whether the pair is tracked cannot be told, so Exact must deliver again rather than lose it.
        broken = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"})
        with ServerThread(create_app(broken)) as server:
            response = httpx.post(f"{server.url}/webhooks/exact", content=signed_webhook(), timeout=10)
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["outcome"] == "tracking_unavailable"
        assert ready.status_code == 503
        assert ready.json()["database"] == "OperationalError"
        assert receiver.queue() == []


class TestOperations:
    def test_health_ready_and_metrics(self, receiver: Receiver) -> None:
        assert httpx.get(f"{receiver.url}/healthz").json() == {"status": "alive"}
        ready = httpx.get(f"{receiver.url}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "redis": "ok", "database": "ok"}
        receiver.post(signed_webhook())
        receiver.post(signed_webhook(secret="forged"))
        text = httpx.get(f"{receiver.url}/metrics").text
        assert 'exact_webhook_requests_total{outcome="enqueued"} 1.0' in text
        assert 'exact_webhook_requests_total{outcome="forged"} 1.0' in text
        assert "exact_webhook_events_enqueued_total 1.0" in text
        assert "exact_webhook_handling_seconds_count 2.0" in text

    @pytest.mark.parametrize("secret", [None, ""])
    def test_no_secret_stops_the_app_at_start(self, settings: Settings, secret: str | None) -> None:
        with pytest.raises(MissingSetting, match="EXACT_WEBHOOK_SECRET"):
            create_app(settings.model_copy(update={"exact_webhook_secret": secret}))

    def test_one_log_line_per_request_with_ids_only(self, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
        key = "5b7f4515-b7a0-4839-ac69-574968677d96"
        bodies = [signed_webhook(Key=key), signed_webhook(secret="forged"), b""]
        with caplog.at_level(logging.INFO, logger="receiver"):
            for body in bodies:
                receiver.post(body)
        lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.getMessage() == "receiver.webhook"]
        assert [(line["outcome"], line.get("division")) for line in lines] == [
            ("enqueued", 101),
            ("forged", None),
            ("validation", None),
        ]
        assert lines[0]["key"] == key
        logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
        assert SECRET not in logged
        assert sign(bodies[0][len(b'{"Content":') : bodies[0].rfind(b',"HashCode"')]) not in logged
        assert "exactonline.nl" not in logged  # nothing of the body beyond ids
