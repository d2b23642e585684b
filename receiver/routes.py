"""`POST /webhooks/exact` and the health, readiness and metrics endpoints."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from receiver.handoff import event_id
from receiver.schemas import KNOWN_ACTIONS, WebhookContent
from receiver.signature import InvalidSignature, verify
from runtime.logging import log_event

if TYPE_CHECKING:
    from receiver.app import State

__all__ = ["healthz", "metrics", "readyz", "webhook"]

log = logging.getLogger("receiver")


@dataclass(frozen=True)
class Outcome:
    status: int
    outcome: str
    detail: str = ""
    content: WebhookContent | None = None


async def webhook(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    started = time.perf_counter()
    result = await _handle(request, state)
    state["metrics"].requests.labels(result.outcome).inc()
    state["metrics"].latency.observe(time.perf_counter() - started)
    content = result.content
    log_event(log, "receiver.webhook", outcome=result.outcome, status=result.status,
              division=content.Division if content else None, topic=content.Topic if content else None,
              key=content.Key if content else None, action=content.Action if content else None)  # fmt: skip
    return JSONResponse({"outcome": result.outcome, "detail": result.detail}, status_code=result.status)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` bytes (chunked bodies are counted as they stream)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _handle(request: Request, state: State) -> Outcome:
    limit = state["settings"].webhook_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return Outcome(413, "too_large", f"body over {limit} bytes")
    body = await _read_capped(request, limit)
    if body is None:
        return Outcome(413, "too_large", f"body over {limit} bytes")
    if not body:
        return Outcome(200, "validation")  # Exact's empty POST when a subscription is created
    try:
        raw = verify(body, state["secret"])
    except InvalidSignature as exc:
        return Outcome(401, "forged", str(exc))
    try:
        content = WebhookContent.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "Content"
        return Outcome(400, "malformed", f"{where}: {first.get('msg', 'invalid')}"[:200])
    if content.Action not in KNOWN_ACTIONS:
        state["metrics"].requests.labels("unknown_action").inc()
        log_event(log, "receiver.unknown_action", logging.WARNING, action=content.Action, division=content.Division)
    if not await state["tracked"].tracks(content.Division, content.Topic):
        return Outcome(200, "untracked", content=content)
    return await _hand_on(state, content)


async def _hand_on(state: State, content: WebhookContent) -> Outcome:
    event = {
        "event_id": event_id(content.Division, content.Topic, content.Key, content.Action, content.EventCreatedOn),
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
    except (redis.RedisError, OSError) as exc:
        # Not handed on: a non-2xx makes Exact deliver again later.
        log_event(log, "receiver.handoff_failed", logging.ERROR, error=type(exc).__name__, division=content.Division)
        return Outcome(503, "unavailable", "try again", content)
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
    except Exception as exc:
        checks["database"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


def _ping_db(state: State) -> None:
    with state["engine"].connect() as conn:
        conn.execute(text("SELECT 1"))


async def metrics(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    return Response(generate_latest(state["metrics"].registry), media_type=CONTENT_TYPE_LATEST)
