"""The `http` sink: each change POSTed to PUSH_URL, signed per the Standard Webhooks specification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from sqlalchemy.orm import Session

from runtime.db import upsert
from runtime.settings import Settings
from workers.changes import ChangeRecord
from workers.models import Delivery
from workers.sinks.base import PushFailed

__all__ = ["HttpSink", "body_of", "sign"]


def body_of(change: ChangeRecord) -> bytes:
    kind = "deleted" if change.action == "Delete" else "updated"
    payload = {
        "type": f"exact.{change.topic}.{kind}",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "division": change.division,
            "topic": change.topic,
            "key": change.key,
            "action": change.action,
            "record": change.record,
        },  # fmt: skip
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the secret's bytes (after `whsec_`)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class HttpSink:
    name = "http"

    def __init__(self, settings: Settings, *, timeout: float = 15.0) -> None:
        settings.require("push_url", "push_secret")
        self.url = str(settings.push_url)
        self._secret = settings.secret("push_secret")
        self._timeout = timeout

    def accept(self, session: Session, changes: Sequence[ChangeRecord]) -> None:
        """Log each change for delivery; the push itself happens after the caller commits."""
        for change in changes:
            values = {
                "sink": self.name, "event_id": change.event_id, "division": change.division, "topic": change.topic,
                "key": change.key, "version": change.version, "action": change.action, "record": change.record,
                "state": "pending", "attempts": 0,
            }  # fmt: skip
            upsert(session, Delivery.__table__, values, index_elements=["sink", "event_id"])  # type: ignore[arg-type]

    def push(self, change: ChangeRecord) -> None:
        body = body_of(change)
        timestamp = int(time.time())
        headers = {
            "webhook-id": change.event_id,  # the same on every retry
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, change.event_id, timestamp, body),
            "content-type": "application/json",
        }
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise PushFailed(f"{type(exc).__name__} posting to {self.url}") from exc
        if response.status_code >= 300:
            # 408 and 429 are passing troubles; other 4xx mean the receiver refused, which retries rarely fix.
            retry = response.status_code >= 500 or response.status_code in (408, 429)
            raise PushFailed(f"{self.url} answered {response.status_code}", retry=retry)
