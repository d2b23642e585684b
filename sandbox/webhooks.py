"""Webhook subscriptions per app, division and topic, and the delivery of every change to their callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.guard import CallContext, error_response, guarded
from sandbox.signature import signed_body

if TYPE_CHECKING:
    from sandbox.state import SandboxState
    from sandbox.store import Change, Store

__all__ = ["WebhookHub", "routes"]

_INVALID = "Error 500: Invalid: Post to callback URL endpoint returns"
_KEYED = re.compile(r"^WebhookSubscriptions\(guid'(?P<key>[^']*)'\)$", re.IGNORECASE)


@dataclass
class WebhookHub:
    config: SandboxConfig
    clock: SandboxClock
    store: Store
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    pending: int = 0
    _queue: asyncio.Queue[Change] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.store.subscribe(self._on_change)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        async with httpx.AsyncClient(timeout=self.config.webhook_timeout) as client:
            pump = asyncio.create_task(self._pump(client))
            try:
                yield
            finally:
                pump.cancel()
                for task in list(self._tasks):
                    task.cancel()
                self._loop = None

    def _on_change(self, change: Change) -> None:
        if self._loop is None or self._queue is None:
            return
        self.pending += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, change)

    async def _pump(self, client: httpx.AsyncClient) -> None:
        assert self._queue is not None
        while True:
            change = await self._queue.get()
            task = asyncio.create_task(self._deliver_change(client, change))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def matching(self, change: Change) -> list[dict[str, Any]]:
        return [
            s for s in self.subscriptions.values()
            if s["Division"] == change.division and s["Topic"].lower() == change.topic.lower()
        ]  # fmt: skip

    async def _deliver_change(self, client: httpx.AsyncClient, change: Change) -> None:
        try:
            subs = self.matching(change)
            if not subs:
                return
            if not self.config.webhook_delivery:
                # A lost webhook: Exact gives no notice of it.
                self.stats["suppressed"] += len(subs)
                return
            if self.config.webhook_late_seconds:
                await asyncio.sleep(self.config.webhook_late_seconds)
            copies = 2 if self.config.webhook_duplicates else 1
            await asyncio.gather(*(self._deliver(client, s, change) for s in subs for _ in range(copies)))
        finally:
            self.pending -= 1

    def payload(self, subscription: dict[str, Any], change: Change) -> bytes:
        created = datetime.fromtimestamp(change.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        content = {
            "Topic": subscription["Topic"],
            "ClientId": subscription["ClientID"],
            "Division": change.division,
            "Action": change.action,
            "Key": change.key,
            "ExactOnlineEndpoint": f"{subscription['_base_url']}/api/v1/{change.division}/{change.resource_path}"
            f"(guid'{change.key}')",
            "EventCreatedOn": created,
        }
        return signed_body(content, self.config.webhook_secret)

    async def _deliver(self, client: httpx.AsyncClient, subscription: dict[str, Any], change: Change) -> None:
        body = self.payload(subscription, change)
        delays = (0.0, *self.config.webhook_retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            self.stats["sent"] += 1
            status = await self._post(client, subscription["CallbackURL"], body)
            self.recent.append({"url": subscription["CallbackURL"], "status": status, "attempt": attempt,
                                "body": body.decode()})  # fmt: skip
            if status is not None and 200 <= status < 300:
                self.stats["delivered"] += 1
                return
            self.stats["failed"] += 1
        self.stats["dropped"] += 1

    @staticmethod
    async def _post(client: httpx.AsyncClient, url: str, body: bytes) -> int | None:
        try:
            response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError:
            return None
        return response.status_code

    async def validate_callback(self, url: str) -> str | None:
        """Exact's create first POSTs an empty body to the callback; anything but 2xx fails the create."""
        try:
            async with httpx.AsyncClient(timeout=self.config.webhook_timeout) as client:
                response = await client.post(url, content=b"")
        except httpx.HTTPError:
            return f"{_INVALID} 500 An error occurred while sending the request."
        if 200 <= response.status_code < 300:
            return None
        return f"{_INVALID} {response.status_code} {response.reason_phrase}"

    def add(
        self, division: int, topic: str, callback_url: str, client_id: str, user_id: str, base_url: str
    ) -> dict[str, Any]:
        key = str(uuid.uuid4())
        sub: dict[str, Any] = {
            "ID": key, "CallbackURL": callback_url, "ClientID": client_id,
            "Created": f"/Date({int(self.clock.now() * 1000)})/", "Creator": user_id,
            "CreatorFullName": "Sandra Sandbox", "Description": "exact-pipeline", "Division": division,
            "IsInstant": False, "Topic": topic, "UserID": user_id, "_base_url": base_url,
        }  # fmt: skip
        self.subscriptions[key] = sub
        return sub

    def public(self, sub: dict[str, Any], base_url: str) -> dict[str, Any]:
        uri = f"{base_url}/api/v1/{sub['Division']}/webhooks/WebhookSubscriptions(guid'{sub['ID']}')"
        return {"__metadata": {"uri": uri, "type": "Exact.Web.Api.Models.Webhooks.WebhookSubscription"},
                **{k: v for k, v in sub.items() if not k.startswith("_")}}  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        return {"stats": dict(self.stats), "pending": self.pending, "subscriptions": len(self.subscriptions),
                "recent": list(self.recent)[-20:]}  # fmt: skip


def routes(state: SandboxState) -> list[BaseRoute]:
    hub = state.webhooks

    async def api(request: Request) -> Response:
        return await guarded(state, "webhooks/WebhookSubscriptions", _handler(state))(request)

    async def control(request: Request) -> Response:
        return JSONResponse(hub.snapshot())

    async def idle(request: Request) -> Response:
        return JSONResponse({"idle": hub.pending == 0, "pending": hub.pending})

    async def configure(request: Request) -> Response:
        body = await request.json()
        for name in ("webhook_delivery", "webhook_duplicates", "webhook_late_seconds"):
            short = name.removeprefix("webhook_")
            if short in body:
                setattr(state.config, name, body[short])
        return JSONResponse({"delivery": state.config.webhook_delivery, "duplicates": state.config.webhook_duplicates,
                             "late_seconds": state.config.webhook_late_seconds})  # fmt: skip

    async def plant(request: Request) -> Response:
        body = await request.json()
        sub = hub.add(int(body["Division"]), body["Topic"], body["CallbackURL"],
                      body.get("ClientID", state.config.client_id), state.store.default_user_id,
                      str(request.base_url).rstrip("/"))  # fmt: skip
        return JSONResponse(hub.public(sub, str(request.base_url).rstrip("/")), status_code=201)

    async def listing(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"subscriptions": [hub.public(s, base) for s in hub.subscriptions.values()]})

    return [
        Route("/api/v1/{division:int}/webhooks/{path:path}", api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/_sandbox/webhooks", control, methods=["GET"]),
        Route("/_sandbox/webhooks/idle", idle, methods=["GET"]),
        Route("/_sandbox/webhooks/config", configure, methods=["POST"]),
        Route("/_sandbox/webhooks/subscriptions", plant, methods=["POST"]),
        Route("/_sandbox/webhooks/subscriptions", listing, methods=["GET"]),
    ]


def _handler(state: SandboxState) -> Any:
    hub = state.webhooks

    async def handle(request: Request, ctx: CallContext) -> Response:
        assert ctx.division is not None
        if not state.store.can_access(ctx.user_id, ctx.division):
            return error_response(403, "Forbidden - User division is not accessible")
        path = request.path_params["path"]
        base = str(request.base_url).rstrip("/")
        own = {
            k: s
            for k, s in hub.subscriptions.items()
            if s["ClientID"] == ctx.client_id and s["Division"] == ctx.division
        }
        if path.lower() == "webhooksubscriptions":
            if request.method == "GET":
                return JSONResponse({"d": {"results": [hub.public(s, base) for s in own.values()]}})
            if request.method == "POST":
                return await _create(state, request, ctx, own, base)
            return error_response(405, "The requested method is not allowed for this resource")
        match = _KEYED.match(path)
        if match is None:
            return error_response(404, "Not found: unknown resource")
        key = match.group("key").lower()
        if key not in own:
            return error_response(404, "Not found")
        if request.method == "GET":
            return JSONResponse({"d": hub.public(own[key], base)})
        if request.method == "DELETE":
            del hub.subscriptions[key]
            return Response(status_code=204)
        # Exact has no update for a subscription: delete and create instead.
        return error_response(400, "Update is not allowed for WebhookSubscriptions")

    return handle


async def _create(
    state: SandboxState, request: Request, ctx: CallContext, own: dict[str, dict[str, Any]], base: str
) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, "Error reading JSON")
    topic, callback = body.get("Topic"), body.get("CallbackURL")
    if not isinstance(topic, str) or not topic or not isinstance(callback, str) or not callback:
        return error_response(400, "Mandatory: Topic, CallbackURL")
    if body.get("IsInstant") and topic != "GoodsDeliveries":
        return error_response(400, "IsInstant is only supported for topic 'GoodsDeliveries'")
    if any(s["Topic"].lower() == topic.lower() for s in own.values()):
        return error_response(500, "Data already exists")
    if (failure := await state.webhooks.validate_callback(callback)) is not None:
        return error_response(500, failure)
    assert ctx.division is not None
    sub = state.webhooks.add(ctx.division, topic, callback, ctx.client_id, ctx.user_id, base)
    return JSONResponse({"d": state.webhooks.public(sub, base)}, status_code=201)
