"""The demo's push target accepts what the http sink signs and nothing else (its check is the demo's proof)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from delivery.changes import ChangeRecord
from delivery.sinks import Outgoing
from delivery.sinks.http import body_of, secret_key, sign
from ops.push_target import verify

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def _signed(secret: str = SECRET, at: int | None = None) -> tuple[dict[str, str], bytes]:
    change = ChangeRecord(101, "Accounts", "k", "Update", {"ID": "k"}, 3)
    body = body_of(Outgoing(change, datetime.now(UTC), attempt=1))
    stamp = at if at is not None else int(time.time())
    headers = {
        "webhook-id": change.event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret_key(secret), change.event_id, stamp, body),
    }
    return headers, body


def test_what_the_sink_signs_verifies() -> None:
    headers, body = _signed()
    assert verify(secret_key(SECRET), headers, body)


@pytest.mark.parametrize("tamper", ["body", "id", "secret", "stale", "no signature"])
def test_anything_else_does_not(tamper: str) -> None:
    headers, body = _signed(
        secret="whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==" if tamper == "secret" else SECRET,
        at=int(time.time()) - 600 if tamper == "stale" else None,
    )
    if tamper == "body":
        body = body.replace(b'"ID":"k"', b'"ID":"x"')
    if tamper == "id":
        headers["webhook-id"] += "0"
    if tamper == "no signature":
        del headers["webhook-signature"]
    assert not verify(secret_key(SECRET), headers, body)
