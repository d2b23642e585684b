"""The `http` sink's POST: Standard Webhooks headers that the reference library verifies, and the body of the issue."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from runtime.settings import Settings
from tests.conftest import ServerThread, free_port
from tests.workers.push_support import PushTarget, push_settings
from workers.changes import ChangeRecord
from workers.sinks import Outgoing, PushFailed, SinkError
from workers.sinks.http import HttpSink

KEY = "0f0e0d0c-0000-4000-8000-000000000001"
ACCEPTED_AT = datetime(2026, 3, 4, 5, 6, 7, 89000, tzinfo=UTC)


@pytest.fixture
def sink(settings: Settings, server: ServerThread) -> HttpSink:
    return HttpSink(push_settings(settings, f"{server.url}/push", push_timeout_seconds=1.0))


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
        "data": {"division": 101, "topic": "Accounts", "key": KEY, "action": "Update",
                 "record": {"ID": KEY, "Name": "Ada", "Modified": "2026-03-04T05:06:07.000Z"}},
    }  # fmt: skip


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
    from workers.sinks.http import sign

    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", sign(b"k" * 24, "id", 1, b"{}"))
