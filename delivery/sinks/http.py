"""HTTP push sinks: each change POSTed to PUSH_URL (the sink `http`) or to a SINKS_FILE sink's URL, signed per the
Standard Webhooks specification."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord
from delivery.sinks.base import Outgoing, PushFailed, SinkError, TargetGone
from delivery.sinks.outbox import record_pending
from delivery.sinks.urls import masked_url, url_secrets
from runtime.dates import iso_utc
from runtime.settings import Settings

if TYPE_CHECKING:
    from delivery.sinks.routes import HttpTarget, Route

__all__ = ["HttpSink", "body_of", "retry_after", "sign"]


def body_of(outgoing: Outgoing) -> bytes:
    """The JSON body: `{"type": "exact.<Topic>.updated|deleted", "timestamp", "data": {...}}`; `data.origin` is the
    change's origin when known (rows logged before origins were kept have none)."""
    change = outgoing.change
    kind = "deleted" if change.action == "Delete" else "updated"
    payload: dict[str, Any] = {
        "type": f"exact.{change.topic}.{kind}",
        "timestamp": iso_utc(outgoing.accepted_at),
        "data": {
            "division": change.division,
            "topic": change.topic,
            "key": change.key,
            "action": change.action,
            "record": change.record if change.action != "Delete" else None,
        },
    }
    if change.origin is not None:
        payload["data"]["origin"] = change.origin
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def secret_key(secret: str, what: str = "PUSH_SECRET") -> bytes:
    """The HMAC key of a Standard Webhooks secret: the bytes base64-encoded after `whsec_`."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise SinkError(f"{what} must be 'whsec_' followed by base64 (Standard Webhooks)") from exc


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class HttpSink:
    """Logs each change in the caller's transaction; the delivery tasks then POST it.

    Any answer but 2xx is a failed attempt, retried with backoff until the attempt limit makes it a dead letter. A 4xx
    is treated like a 5xx: the receiver refused this body, but a receiver is usually fixed by a deploy, and the
    attempt limit (then `deadletters replay`) bounds the cost. 410 Gone is the exception: the target is stopped
    (`TargetGone`). `Retry-After` (seconds or an HTTP date) is honoured up to the backoff cap. Credentials in
    the URL go on the request as they are, and never into an error message.

    Built as `HttpSink(settings)` it is the sink `http` of PUSH_URL, which takes every change; with a SINKS_FILE
    `target`, it is that named sink, with its URL, secret and route.
    """

    name = "http"
    route: Route | None = None
    # POSTs of different keys a delivery task may have in flight at once (`delivery.push`); the client is shared.
    concurrent_pushes = 4

    def __init__(self, settings: Settings, target: HttpTarget | None = None) -> None:
        if target is None:
            settings.require("push_url", "push_secret")
            self.url, secret, what = str(settings.push_url), settings.secret("push_secret"), "PUSH_SECRET"
        else:
            self.name, self.route = target.name, target.route
            self.url, secret = target.url, target.secret.get_secret_value()
            what = f"SINKS_FILE: sinks.{target.name}.secret"
        self.shown_url = masked_url(self.url)
        self._hidden = sorted(url_secrets(self.url), key=len, reverse=True)
        self._max_wait = settings.delivery_backoff_max_seconds
        self._key = secret_key(secret, what)
        self._timeout = settings.push_timeout_seconds
        self._client: httpx.Client | None = None

    def accept(self, session: Session, changes: Sequence[ChangeRecord]) -> int:
        return record_pending(session, self.name, changes)

    def push(self, outgoing: Outgoing) -> None:
        body = body_of(outgoing)
        message_id = outgoing.change.event_id  # the same on every retry: the receiver dedupes by it
        timestamp = int(time.time())  # this attempt's time; receivers reject stale timestamps
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, message_id, timestamp, body),
            "content-type": "application/json",
        }
        try:
            response = self._http().post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise PushFailed(f"timed out after {self._timeout:g}s posting to {self.shown_url}") from exc
        except httpx.HTTPError as exc:
            raise PushFailed(self._scrub(f"{type(exc).__name__} posting to {self.shown_url}: {exc}")) from exc
        if response.status_code == 410:
            raise TargetGone(f"{self.shown_url} answered 410 Gone")
        if not 200 <= response.status_code < 300:
            wait = retry_after(response.headers.get("retry-after", ""), self._max_wait)
            raise PushFailed(f"{self.shown_url} answered {response.status_code}", retry_after=wait)

    def _scrub(self, message: str) -> str:
        # httpx may quote the URL in its own messages.
        message = message.replace(self.url, self.shown_url)
        for secret in self._hidden:
            message = message.replace(secret, "***")
        return message

    def _http(self) -> httpx.Client:
        # Built on first use, so that a prefork child never shares a parent's connections.
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._client


def retry_after(value: str, cap: float) -> float | None:
    """Seconds a `Retry-After` value (seconds or an HTTP date) asks for, at most `cap`; None when absent or
    not a finite, non-negative wait (`inf`, `nan`, `-5`, garbage), so the usual backoff applies."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        seconds = max(0.0, (moment - datetime.now(UTC)).total_seconds())  # a date in the past: now
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, cap)
