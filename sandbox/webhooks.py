"""Webhook subscriptions per app, division and topic, and the delivery of every change to their callbacks.

API (each through `sandbox.guard.guarded`, endpoint "webhooks/WebhookSubscriptions"):
    GET    /api/v1/{division}/webhooks/WebhookSubscriptions                 this app's subscriptions in the division
    POST   /api/v1/{division}/webhooks/WebhookSubscriptions                 {"Topic","CallbackURL"[,"IsInstant",…]}
    GET    /api/v1/{division}/webhooks/WebhookSubscriptions(guid'{id}')
    DELETE /api/v1/{division}/webhooks/WebhookSubscriptions(guid'{id}')
    PUT    … → 400: Exact has no update of a subscription (delete and create instead)
Control API:
    GET    /_sandbox/webhooks?last=N             counts (sent, delivered, failed, dropped, suppressed, …), pending, the
                                                 last N deliveries (attempt, status, raw body)
    GET    /_sandbox/webhooks/idle               {"idle": true} once no delivery is queued, delayed or retrying
    POST   /_sandbox/webhooks/config             {"delivery": bool, "duplicates": bool, "late_seconds": S,
                                                 "retry_delays": [S, …], "timeout": S}
    POST   /_sandbox/webhooks/reset              zero the counts and forget the recent deliveries
    GET    /_sandbox/webhooks/subscriptions      every subscription of every app
    POST   /_sandbox/webhooks/subscriptions      plant one: {"Division","Topic","CallbackURL"[,"ClientID","UserID"]};
                                                 no callback check, no uniqueness (reconcile tests need stale ones)
    DELETE /_sandbox/webhooks/subscriptions/{id} remove one behind the app's back

Delivery: a `Change` from the store is matched against the subscriptions when it happens; each match becomes a job
whose body is built and signed then (compact JSON, Content signed as serialised and spliced in unchanged). Jobs wait
for `late_seconds` of the sandbox clock, then POST; non-2xx or unreachable is retried after each of `retry_delays`
(real seconds), then dropped. Delivery off: the change is lost and only counted ("suppressed").
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
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

__all__ = ["Subscription", "WebhookHub", "routes"]

ENDPOINT = "webhooks/WebhookSubscriptions"
_INVALID = "Error 500: Invalid: Post to callback URL endpoint returns"
_UNREACHABLE = f"{_INVALID} 500 An error occurred while sending the request."
_KEYED = re.compile(r"^WebhookSubscriptions\(guid'(?P<key>[^']*)'\)$", re.IGNORECASE)
_STATS = ("sent", "delivered", "failed", "dropped", "suppressed", "duplicated", "delayed", "not_running")
# The only topic that may be instant (exact-api.md §1.6).
_INSTANT_TOPIC = "GoodsDeliveries"
_DUE_POLL = 0.05


@dataclass
class Subscription:
    """One WebhookSubscription; `base_url` is the sandbox address the creating request used."""

    id: str
    division: int
    topic: str
    callback_url: str
    client_id: str
    user_id: str
    created: float
    base_url: str
    description: str = "exact-pipeline"
    is_instant: bool = False
    creator_full_name: str = ""

    def matches(self, change: Change) -> bool:
        return self.division == change.division and self.topic.lower() == change.topic.lower()

    def to_exact(self) -> dict[str, Any]:
        """The entity as `/api/v1` shows it, `__metadata` first."""
        uri = f"{self.base_url}/api/v1/{self.division}/{ENDPOINT}(guid'{self.id}')"
        return {
            "__metadata": {"uri": uri, "type": "Exact.Web.Api.Models.Webhooks.WebhookSubscription"},
            "ID": self.id,
            "CallbackURL": self.callback_url,
            "ClientID": self.client_id,
            "Created": f"/Date({int(self.created * 1000)})/",
            "Creator": self.user_id,
            "CreatorFullName": self.creator_full_name,
            "Description": self.description,
            "Division": self.division,
            "IsInstant": self.is_instant,
            "Topic": self.topic,
            "UserID": self.user_id,
        }


@dataclass(frozen=True)
class _Job:
    """One POST of one change to one subscription (a duplicate is a second job with the same body)."""

    url: str
    body: bytes
    due: float
    change: Change


@dataclass
class WebhookHub:
    config: SandboxConfig
    clock: SandboxClock
    store: Store
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    pending: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queue: asyncio.Queue[_Job] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _in_flight: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        self.store.subscribe(self.on_change)

    # the delivery loop
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Deliver from the running event loop until the context exits; queued jobs are then abandoned."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._in_flight = asyncio.Semaphore(max(1, self.config.webhook_concurrency))
        async with httpx.AsyncClient(timeout=self.config.webhook_timeout) as client:
            pump = asyncio.create_task(self._pump(client))
            try:
                yield
            finally:
                self._loop = None
                pump.cancel()
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(pump, *self._tasks, return_exceptions=True)

    def on_change(self, change: Change) -> None:
        """Store listener, called synchronously by request handlers: match, build, sign, enqueue; never block."""
        matched = [s for s in list(self.subscriptions.values()) if s.matches(change)]
        if not matched:
            return
        loop, queue = self._loop, self._queue
        with self._lock:
            if loop is None or queue is None:
                self.stats["not_running"] += len(matched)
                return
            if not self.config.webhook_delivery:
                # A lost webhook: Exact gives no notice of it.
                self.stats["suppressed"] += len(matched)
                return
            copies = 2 if self.config.webhook_duplicates else 1
            late = self.config.webhook_late_seconds
            jobs = [
                _Job(s.callback_url, self.payload(s, change), change.created_at + late, change)
                for s in matched
                for _ in range(copies)
            ]
            self.pending += len(jobs)
            self.stats["duplicated"] += len(jobs) - len(matched)
            self.stats["delayed"] += len(jobs) if late > 0 else 0
        for job in jobs:
            loop.call_soon_threadsafe(queue.put_nowait, job)

    async def _pump(self, client: httpx.AsyncClient) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            task = asyncio.create_task(self._deliver(client, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, client: httpx.AsyncClient, job: _Job) -> None:
        try:
            await self._until(job.due)
            delays = (0.0, *self.config.webhook_retry_delays)
            for attempt, delay in enumerate(delays, start=1):
                if delay:
                    await asyncio.sleep(delay)  # real backoff: the receiver's outage is real
                status = await self._post(client, job.url, job.body)
                self._record(job, attempt, status)
                if status is not None and 200 <= status < 300:
                    self.stats["delivered"] += 1
                    return
                self.stats["failed"] += 1
            self.stats["dropped"] += 1
        finally:
            with self._lock:
                self.pending -= 1

    async def _until(self, due: float) -> None:
        """Wait until the sandbox clock reaches `due`; tests get there by advancing the clock."""
        while (left := due - self.clock.now()) > 0:
            await asyncio.sleep(min(left, _DUE_POLL))

    async def _post(self, client: httpx.AsyncClient, url: str, body: bytes) -> int | None:
        assert self._in_flight is not None
        async with self._in_flight:
            self.stats["sent"] += 1
            try:
                response = await client.post(
                    url, content=body, headers={"Content-Type": "application/json"}, timeout=self.config.webhook_timeout
                )
            except httpx.HTTPError:
                return None
        return response.status_code

    def _record(self, job: _Job, attempt: int, status: int | None) -> None:
        self.recent.append(
            {
                "at": self.clock.now(),
                "url": job.url,
                "status": status,
                "attempt": attempt,
                "division": job.change.division,
                "topic": job.change.topic,
                "action": job.change.action,
                "key": job.change.key,
                "body": job.body.decode(),
            }
        )

    def payload(self, subscription: Subscription, change: Change) -> bytes:
        """Exact's body for this change: keys in production's order, compact, signed over the Content bytes."""
        # Exact's `.fff`: whole milliseconds, no zone (exact-api.md §1.1).
        ms = round(change.created_at * 1000)
        created = f"{datetime.fromtimestamp(ms // 1000, UTC):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}"
        endpoint = f"{subscription.base_url}/api/v1/{change.division}/{change.resource_path}(guid'{change.key}')"
        content = {
            "Topic": change.topic,
            "ClientId": subscription.client_id,
            "Division": change.division,
            "Action": change.action,
            "Key": change.key,
            "ExactOnlineEndpoint": endpoint,
            "EventCreatedOn": created,
        }
        return signed_body(content, self.config.webhook_secret)

    def idle(self) -> bool:
        return self.pending == 0

    # subscriptions
    async def validate_callback(self, url: str) -> str | None:
        """Exact's create first POSTs an empty body to the callback; anything but 2xx fails the create."""
        try:
            async with httpx.AsyncClient(timeout=self.config.webhook_timeout) as client:
                response = await client.post(url, content=b"")
        except httpx.HTTPError:
            return _UNREACHABLE
        if 200 <= response.status_code < 300:
            return None
        return f"{_INVALID} {response.status_code} {response.reason_phrase}"

    def add(
        self,
        division: int,
        topic: str,
        callback_url: str,
        client_id: str,
        user_id: str,
        base_url: str,
        *,
        description: str = "exact-pipeline",
        is_instant: bool = False,
    ) -> Subscription:
        user = self._user(user_id)
        sub = Subscription(
            id=str(uuid.uuid4()),
            division=division,
            topic=topic,
            callback_url=callback_url,
            client_id=client_id,
            user_id=user_id,
            created=self.clock.now(),
            base_url=base_url,
            description=description,
            is_instant=is_instant,
            creator_full_name=str(user.get("FullName", "")),
        )
        self.subscriptions[sub.id] = sub
        return sub

    def _user(self, user_id: str) -> dict[str, Any]:
        try:
            return self.store.user(user_id)
        except KeyError:
            return {}

    def owned(self, client_id: str, division: int) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.client_id == client_id and s.division == division]

    def snapshot(self, last: int = 20) -> dict[str, Any]:
        return {
            "stats": {name: self.stats[name] for name in _STATS},
            "pending": self.pending,
            "idle": self.idle(),
            "subscriptions": len(self.subscriptions),
            "switches": {
                "delivery": self.config.webhook_delivery,
                "duplicates": self.config.webhook_duplicates,
                "late_seconds": self.config.webhook_late_seconds,
                "retry_delays": list(self.config.webhook_retry_delays),
                "timeout": self.config.webhook_timeout,
            },
            "recent": list(self.recent)[-last:] if last > 0 else [],
        }

    def reset_stats(self) -> None:
        self.stats.clear()
        self.recent.clear()


class _Switches(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery: bool | None = None
    duplicates: bool | None = None
    late_seconds: float | None = Field(default=None, ge=0)
    retry_delays: tuple[float, ...] | None = None
    timeout: float | None = Field(default=None, gt=0)


class _Planted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Division: int
    Topic: str = Field(min_length=1)
    CallbackURL: str = Field(min_length=1)
    ClientID: str | None = None
    UserID: str | None = None
    Description: str = "exact-pipeline"
    IsInstant: bool = False


def _bad_body(exc: ValidationError) -> JSONResponse:
    return JSONResponse({"error": exc.errors(include_url=False, include_context=False)}, status_code=400)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def routes(state: SandboxState) -> list[BaseRoute]:
    hub = state.webhooks
    subscriptions_api = guarded(state, ENDPOINT, _handler(state))

    async def api(request: Request) -> Response:
        path = request.path_params["path"]
        if path.lower() == "webhooksubscriptions" or _KEYED.match(path):
            return await subscriptions_api(request)
        return await guarded(state, f"webhooks/{path}", _not_found)(request)

    async def control(request: Request) -> Response:
        last = request.query_params.get("last", "20")
        return JSONResponse(hub.snapshot(int(last) if last.isdigit() else 20))

    async def idle(request: Request) -> Response:
        return JSONResponse({"idle": hub.idle(), "pending": hub.pending})

    async def configure(request: Request) -> Response:
        try:
            body = _Switches.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return _bad_body(exc)
        for name, value in body.model_dump(exclude_none=True).items():
            setattr(state.config, f"webhook_{name}", value)
        return JSONResponse(hub.snapshot(0)["switches"])

    async def reset(request: Request) -> Response:
        hub.reset_stats()
        return JSONResponse(hub.snapshot(0))

    async def plant(request: Request) -> Response:
        try:
            body = _Planted.model_validate_json(await request.body())
        except ValidationError as exc:
            return _bad_body(exc)
        sub = hub.add(
            body.Division,
            body.Topic,
            body.CallbackURL,
            body.ClientID or state.config.client_id,
            body.UserID or state.store.default_user_id,
            _base(request),
            description=body.Description,
            is_instant=body.IsInstant,
        )
        return JSONResponse(sub.to_exact(), status_code=201)

    async def listing(request: Request) -> Response:
        return JSONResponse({"subscriptions": [s.to_exact() for s in hub.subscriptions.values()]})

    async def remove(request: Request) -> Response:
        if hub.subscriptions.pop(str(request.path_params["id"]).lower(), None) is None:
            return JSONResponse({"error": "no such subscription"}, status_code=404)
        return Response(status_code=204)

    return [
        Route("/api/v1/{division:int}/webhooks/{path:path}", api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/_sandbox/webhooks", control, methods=["GET"]),
        Route("/_sandbox/webhooks/idle", idle, methods=["GET"]),
        Route("/_sandbox/webhooks/config", configure, methods=["POST"]),
        Route("/_sandbox/webhooks/reset", reset, methods=["POST"]),
        Route("/_sandbox/webhooks/subscriptions", plant, methods=["POST"]),
        Route("/_sandbox/webhooks/subscriptions", listing, methods=["GET"]),
        Route("/_sandbox/webhooks/subscriptions/{id}", remove, methods=["DELETE"]),
    ]


async def _not_found(request: Request, ctx: CallContext) -> Response:
    # Exact has no other webhooks resource: `webhooks/WebhookTopics` is a 404 (exact-api.md §1.6).
    return error_response(404, "Not found: unknown resource")


def _handler(state: SandboxState) -> Any:
    hub = state.webhooks

    async def handle(request: Request, ctx: CallContext) -> Response:
        assert ctx.division is not None
        if not state.store.can_access(ctx.user_id, ctx.division):
            return error_response(403, "Forbidden - User division is not accessible")
        path = request.path_params["path"]
        own = {s.id: s for s in hub.owned(ctx.client_id, ctx.division)}
        if path.lower() == "webhooksubscriptions":
            if request.method == "GET":
                return JSONResponse({"d": {"results": [s.to_exact() for s in own.values()]}})
            if request.method == "POST":
                return await _create(state, request, ctx)
            return error_response(405, "The requested method is not allowed for this resource")
        match = _KEYED.match(path)
        assert match is not None
        key = match.group("key").lower()
        if request.method == "POST":
            return error_response(405, "The requested method is not allowed for this resource")
        if key not in own:
            return error_response(404, "Not found")
        if request.method == "GET":
            return JSONResponse({"d": own[key].to_exact()})
        if request.method == "DELETE":
            hub.subscriptions.pop(key, None)
            return Response(status_code=204)
        # Exact has no update for a subscription: delete and create instead.
        return error_response(400, "Update is not allowed for WebhookSubscriptions")

    return handle


def _duplicate(state: SandboxState, ctx: CallContext, topic: str) -> bool:
    assert ctx.division is not None
    return any(s.topic.lower() == topic.lower() for s in state.webhooks.owned(ctx.client_id, ctx.division))


async def _create(state: SandboxState, request: Request, ctx: CallContext) -> Response:
    assert ctx.division is not None
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, "Error reading JSON")
    if not isinstance(body, dict):
        return error_response(400, "Error reading JSON")
    topic, callback = body.get("Topic"), body.get("CallbackURL")
    if not isinstance(topic, str) or not topic or not isinstance(callback, str) or not callback:
        return error_response(400, "Mandatory: Topic, CallbackURL")
    is_instant = bool(body.get("IsInstant"))
    if is_instant and topic.lower() != _INSTANT_TOPIC.lower():
        return error_response(400, f"IsInstant is only supported for topic '{_INSTANT_TOPIC}'")
    # One per app, topic and division, whatever the CallbackURL (exact-api.md §1.7).
    if _duplicate(state, ctx, topic):
        return error_response(500, "Data already exists")
    if (failure := await state.webhooks.validate_callback(callback)) is not None:
        return error_response(500, failure)
    if _duplicate(state, ctx, topic):  # a concurrent create won while the callback was being checked
        return error_response(500, "Data already exists")
    description = body.get("Description")
    sub = state.webhooks.add(
        ctx.division,
        topic,
        callback,
        ctx.client_id,
        ctx.user_id,
        _base(request),
        description=description if isinstance(description, str) else "exact-pipeline",
        is_instant=is_instant,
    )
    return JSONResponse({"d": sub.to_exact()}, status_code=201)
