"""The `http` sink's POST: Standard Webhooks headers that the reference library verifies, and the body of the issue."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from delivery.changes import ChangeRecord
from delivery.sinks import Outgoing, PushFailed, SinkError, TargetGone
from delivery.sinks.http import HttpSink, retry_after
from runtime.settings import Settings
from tests.conftest import ServerThread, free_port
from tests.pipeline.push_support import PushTarget, push_settings
from tests.pipeline.target_support import ScriptedTarget, serve_scripted

KEY = "0f0e0d0c-0000-4000-8000-000000000001"
ACCEPTED_AT = datetime(2026, 3, 4, 5, 6, 7, 89000, tzinfo=UTC)
USER, PASSWORD = "pusher", "s3cret-Pa55word"


@pytest.fixture
def sink(settings: Settings, server: ServerThread) -> HttpSink:
    return HttpSink(push_settings(settings, f"{server.url}/push", push_timeout_seconds=1.0))


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedTarget, ServerThread]]:
    target = ScriptedTarget()
    with serve_scripted(target) as server:
        yield target, server


def outgoing(action: str = "Update", version: int = 17) -> Outgoing:
    record = None if action == "Delete" else {"ID": KEY, "Name": "Ada", "Modified": "2026-03-04T05:06:07.000Z"}
    return Outgoing(ChangeRecord(101, "Accounts", KEY, action, record, version), ACCEPTED_AT, attempt=1)


def test_an_update_is_signed_and_shaped_as_the_issue_says(sink: HttpSink, target: PushTarget) -> None:
    sink.push(outgoing())
    assert target.rejected == 0
    [accepted] = target.accepted
    assert accepted.webhook_id == f"101:Accounts:{KEY}:17:Update"
    assert accepted.payload == {
        "type": "exact.Accounts.updated",
        "timestamp": "2026-03-04T05:06:07.089Z",
        "data": {
            "division": 101,
            "topic": "Accounts",
            "key": KEY,
            "action": "Update",
            "record": {"ID": KEY, "Name": "Ada", "Modified": "2026-03-04T05:06:07.000Z"},
        },
    }


def test_a_delete_has_no_record(sink: HttpSink, target: PushTarget) -> None:
    sink.push(outgoing("Delete", 18))
    [accepted] = target.accepted
    assert accepted.payload["type"] == "exact.Accounts.deleted"
    assert accepted.payload["data"]["record"] is None
    assert accepted.payload["data"]["action"] == "Delete"


def test_the_webhook_id_is_the_same_on_a_retry(sink: HttpSink, target: PushTarget) -> None:
    target.fail_next = 1
    with pytest.raises(PushFailed, match="answered 503"):
        sink.push(outgoing())
    sink.push(outgoing())
    sink.push(outgoing())  # a crash after the POST sends it again: the target sees the same id
    assert target.requests == 3
    assert target.ids() == [f"101:Accounts:{KEY}:17:Update"]
    assert target.duplicates == [f"101:Accounts:{KEY}:17:Update"]


def test_a_wrong_secret_fails_verification(settings: Settings, server: ServerThread, target: PushTarget) -> None:
    other = HttpSink(push_settings(settings, f"{server.url}/push", push_secret="whsec_b3RoZXItc2VjcmV0LXZhbHVl"))
    with pytest.raises(PushFailed, match="answered 401"):
        other.push(outgoing())
    assert target.rejected == 1
    assert target.accepted == []


@pytest.mark.parametrize("status", [400, 404, 422, 500, 502])
def test_any_answer_but_2xx_is_a_failed_attempt(sink: HttpSink, target: PushTarget, status: int) -> None:
    target.fail_next, target.fail_status = 1, status
    with pytest.raises(PushFailed, match=f"answered {status}"):
        sink.push(outgoing())
    assert target.accepted == []


def test_a_slow_target_times_out(sink: HttpSink, target: PushTarget) -> None:
    target.delay_seconds = 3.0  # the sink waits 1 s
    with pytest.raises(PushFailed, match="timed out after 1s"):
        sink.push(outgoing())


def test_a_target_that_is_not_listening(settings: Settings) -> None:
    sink = HttpSink(push_settings(settings, f"http://127.0.0.1:{free_port()}/push"))
    with pytest.raises(PushFailed, match="ConnectError"):
        sink.push(outgoing())


def test_a_secret_that_is_not_base64_is_refused(settings: Settings) -> None:
    with pytest.raises(SinkError, match="whsec_"):
        HttpSink(push_settings(settings, "http://127.0.0.1:9/push", push_secret="whsec_not base64!"))


def test_the_signature_header_has_the_v1_form(sink: HttpSink) -> None:
    from delivery.sinks.http import sign

    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", sign(b"k" * 24, "id", 1, b"{}"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("5", 5.0, id="seconds"),
        pytest.param("120", 60.0, id="above-the-cap"),
        pytest.param("inf", None, id="inf"),
        pytest.param("1e400", None, id="overflows-to-inf"),
        pytest.param("nan", None, id="nan"),
        pytest.param("-5", None, id="negative"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="date-in-the-past"),
    ],
)
def test_retry_after_is_seconds_or_a_date_within_the_cap(value: str, expected: float | None) -> None:
    assert retry_after(value, 60.0) == expected


def test_retry_after_as_an_http_date_from_the_target(
    settings: Settings, scripted: tuple[ScriptedTarget, ServerThread]
) -> None:
    target, server = scripted
    when = datetime.now(UTC) + timedelta(seconds=40)
    target.status, target.headers = 503, {"Retry-After": format_datetime(when, usegmt=True)}
    sink = HttpSink(push_settings(settings, f"{server.url}/push", delivery_backoff_max_seconds=900.0))
    with pytest.raises(PushFailed) as failed:
        sink.push(outgoing())
    assert failed.value.retry_after is not None
    assert 30.0 <= failed.value.retry_after <= 40.0


def test_410_gone_stops_the_target(settings: Settings, scripted: tuple[ScriptedTarget, ServerThread]) -> None:
    target, server = scripted
    target.status = 410
    with pytest.raises(TargetGone, match="answered 410 Gone"):
        HttpSink(push_settings(settings, f"{server.url}/push")).push(outgoing())


def test_credentials_in_push_url_are_sent_but_never_in_an_error(
    settings: Settings, scripted: tuple[ScriptedTarget, ServerThread]
) -> None:
    target, server = scripted
    target.status = 503
    url = server.url.replace("http://", f"http://{USER}:{PASSWORD}@") + "/push"
    with pytest.raises(PushFailed) as answered:
        HttpSink(push_settings(settings, url)).push(outgoing())
    assert target.seen[0].authorization == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    refused = f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/push"
    with pytest.raises(PushFailed) as unreachable:
        HttpSink(push_settings(settings, refused, push_timeout_seconds=1.0)).push(outgoing())
    for error in (str(answered.value), str(unreachable.value)):
        assert PASSWORD not in error
        assert "***@127.0.0.1" in error
