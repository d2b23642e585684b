"""`POST /webhooks/exact` and the health, readiness and metrics endpoints.

The webhook's path, in order, each step answering as soon as it can:
size cap (Content-Length, then streamed bytes) → 413; a body slower than the timeout → 408; empty body (Exact's
validation POST) → 200; with several Exact apps, a `Content.ClientId` of none of them → 403 (apps.py); HashCode on
the raw `Content` bytes, under the secret of the app it names → 401; pydantic → 400; a topic the catalogue has no
webhook entry for (a set lookup) → 200 "unknown_topic", counted (unknown_topics.py); tracked pair (in memory) → 200
"untracked"; one Redis round trip that dedupes and enqueues → 200 "duplicate" / 200 "enqueued", or 503 when Redis
did not take it. No database read or write on that path: the tracked pairs are cached (tracking.py) and the event is
handed on through Redis only. Everything after the body is read is `judge` and `conclude`, which the served path,
raw ASGI in fast.py, shares with the Starlette route here.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from receiver.apps import WebhookSecrets
from receiver.handoff import HandoffFailed, webhook_key
from receiver.schemas import KNOWN_ACTIONS, WebhookContent
from receiver.signature import InvalidSignature, check, split
from receiver.tracking import TrackingUnavailable
from receiver.unknown_topics import WEBHOOK_TOPICS, count_unknown
from runtime.bodies import BodyRefused, read_body
from runtime.logging import log_event

if TYPE_CHECKING:
    from receiver.app import State

__all__ = ["Outcome", "conclude", "healthz", "judge", "metrics", "readyz", "webhook"]

log = logging.getLogger("receiver")


@dataclass(frozen=True)
class Outcome:
    status: int
    outcome: str
    detail: str = ""
    content: WebhookContent | None = None
    error: str | None = None  # why Redis or the database failed, for the log only


async def webhook(request: Request) -> Response:
    """The Starlette route; `POST /webhooks/exact` is served by fast.py, this stays as the reference it is held to."""
    state = cast("State", request.scope["state"])
    started = time.perf_counter()
    settings = state["settings"]
    body = await read_body(request, settings.webhook_max_body_bytes, settings.webhook_body_timeout_seconds)
    result = (
        Outcome(body.status, body.reason, body.detail) if isinstance(body, BodyRefused) else await judge(body, state)
    )
    status, payload = conclude(state, result, started)
    return Response(payload, status_code=status, media_type="application/json")


def conclude(state: State, result: Outcome, started: float) -> tuple[int, bytes]:
    """Count, time and log one answered webhook; its status and JSON body (JSONResponse's bytes exactly)."""
    metrics = state["metrics"]
    metrics.outcome(result.outcome).inc()
    metrics.latency.observe(time.perf_counter() - started)
    _log(result)
    return result.status, _render(result.outcome, result.detail)


@functools.lru_cache(maxsize=256)
def _render(outcome: str, detail: str) -> bytes:
    """The answer's JSON, as JSONResponse renders it; the few usual answers are rendered once (bounded: a detail can
    quote its input)."""
    payload = {"outcome": outcome, "detail": detail}
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _log(result: Outcome) -> None:
    """One line per request: outcome and ids only, never the body or the HashCode."""
    content = result.content
    if content is None:
        level = logging.INFO
    else:
        odd = content.Action not in KNOWN_ACTIONS or result.outcome == "unknown_topic"
        level = logging.WARNING if result.status >= 500 or odd else logging.INFO
    if not log.isEnabledFor(level):
        return  # the usual case under LOG_LEVEL=WARNING: no fields built for a line nobody writes
    fields: dict[str, Any] = {"outcome": result.outcome, "status": result.status}
    if result.error is not None:
        fields["error"] = result.error
    if content is None:
        log_event(log, "receiver.webhook", level, **fields)
        return
    log_event(
        log,
        "receiver.webhook",
        level,
        division=content.Division,
        topic=content.Topic,
        key=content.Key,
        action=content.Action,
        **fields,
    )


async def judge(body: bytes, state: State) -> Outcome:
    """Everything after the body is read, shared by both paths: what to answer, the event handed on if it counts."""
    if not body:
        return Outcome(200, "validation")  # Exact's empty POST when a subscription is created
    content = _parse(body, state["secrets"])
    if isinstance(content, Outcome):
        return content
    if content.Action not in KNOWN_ACTIONS:
        # Exact documents Update and Delete only; a new action is handed on for the workers to decide on.
        state["metrics"].unknown_actions.inc()
    if content.Topic.lower() not in WEBHOOK_TOPICS:
        return await _unknown_topic(state, content)
    try:
        tracked = await state["tracked"].tracks(content.Division, content.Topic)
    except TrackingUnavailable as exc:
        return Outcome(503, "tracking_unavailable", "try again", content, error=str(exc))
    if not tracked:
        return Outcome(200, "untracked", content=content)
    return await _hand_on(state, content)


def _parse(body: bytes, secrets: WebhookSecrets) -> WebhookContent | Outcome:
    try:
        raw, hashcode = split(body)
        secret = secrets.secret_for(raw)
        if secret is None:
            return Outcome(403, "unknown_client", "Content.ClientId names no Exact app of this receiver")
        check(raw, hashcode, secret)
    except InvalidSignature as exc:
        return Outcome(401, "forged", str(exc))
    try:
        return WebhookContent.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "Content"
        return Outcome(400, "malformed", f"{where}: {first.get('msg', 'invalid')}"[:200])


async def _unknown_topic(state: State, content: WebhookContent) -> Outcome:
    """Counted, not handed on: no lane could fetch it. A 200 all the same, even when Redis missed the count, since
    Exact's retries of it could never be handed on either."""
    state["metrics"].unknown_topics.labels(content.Topic).inc()
    detail = "no webhook topic of the catalogue: not handed on"
    try:
        await count_unknown(state["redis"], state["settings"].redis_prefix, content.Topic)
    except (redis.RedisError, OSError) as exc:
        return Outcome(200, "unknown_topic", detail, content, error=type(exc).__name__)
    return Outcome(200, "unknown_topic", detail, content)


async def _hand_on(state: State, content: WebhookContent) -> Outcome:
    event = {
        "event_id": webhook_key(content.Division, content.Topic, content.Key, content.Action, content.EventCreatedOn),
        "division": content.Division,
        "topic": content.Topic,
        "key": content.Key,
        "action": content.Action,
        "event_created_on": content.EventCreatedOn,
        "client_id": content.ClientId,
        "received_at": time.time(),
    }
    try:
        enqueued = await state["handoff"].submit(event)
    except HandoffFailed as exc:
        # Not handed on: a non-2xx makes Exact deliver again later.
        return Outcome(503, "unavailable", "try again", content, error=str(exc))
    if not enqueued:
        state["metrics"].duplicates.inc()
        return Outcome(200, "duplicate", content=content)
    state["metrics"].enqueued.inc()
    return Outcome(200, "enqueued", content=content)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    checks: dict[str, str] = {}
    try:
        await state["redis"].ping()
        checks["redis"] = "ok"
    except (redis.RedisError, OSError) as exc:
        checks["redis"] = type(exc).__name__
    try:
        await run_in_threadpool(_ping_db, state)
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


def _ping_db(state: State) -> None:
    with state["engine"].connect() as conn:
        conn.execute(text("SELECT 1"))


async def metrics(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    return Response(generate_latest(state["metrics"].registry), media_type=CONTENT_TYPE_LATEST)
