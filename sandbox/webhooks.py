"""Webhook subscriptions and the delivery engine that posts every matching change to their callbacks.

A `Change` from the store is matched against the subscriptions when it happens; each match becomes a job whose
body is built and signed then (compact JSON, Content signed as serialised and spliced in unchanged). Jobs wait for
`late_seconds` of the sandbox clock, then POST; non-2xx or unreachable is retried after each of `retry_delays` (real
seconds), then dropped. Delivery off: the change is lost and only counted ("suppressed"). The routes are in
`webhook_api` (data plane) and `webhook_control` (`/_sandbox/webhooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.records import Change
from sandbox.signature import signed_body

if TYPE_CHECKING:
    from sandbox.store import Store

__all__ = ["ENDPOINT", "DeliveryStat", "Subscription", "WebhookHub"]

ENDPOINT = "webhooks/WebhookSubscriptions"
_DUE_POLL = 0.05


class DeliveryStat(StrEnum):
    """What the hub counts, in the order `/_sandbox/webhooks` shows them."""

    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    DROPPED = "dropped"
    # Delivery switched off: the change is lost without notice.
    SUPPRESSED = "suppressed"
    DUPLICATED = "duplicated"
    DELAYED = "delayed"
    # The delivery loop was not running (no lifespan), so the change was not queued.
    NOT_RUNNING = "not_running"


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
    stats: Counter[DeliveryStat] = field(default_factory=Counter)
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
                self.stats[DeliveryStat.NOT_RUNNING] += len(matched)
                return
            if not self.config.webhook_delivery:
                # A lost webhook: Exact gives no notice of it.
                self.stats[DeliveryStat.SUPPRESSED] += len(matched)
                return
            copies = 2 if self.config.webhook_duplicates else 1
            late = self.config.webhook_late_seconds
            jobs = [
                _Job(s.callback_url, self.payload(s, change), change.created_at + late, change)
                for s in matched
                for _ in range(copies)
            ]
            self.pending += len(jobs)
            self.stats[DeliveryStat.DUPLICATED] += len(jobs) - len(matched)
            self.stats[DeliveryStat.DELAYED] += len(jobs) if late > 0 else 0
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
                    self.stats[DeliveryStat.DELIVERED] += 1
                    return
                self.stats[DeliveryStat.FAILED] += 1
            self.stats[DeliveryStat.DROPPED] += 1
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
            self.stats[DeliveryStat.SENT] += 1
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
        # Exact's `.fff`: whole milliseconds, no zone.
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
        # Each app's webhooks are signed with its own secret; one planted for an unknown app, with the sandbox's own.
        app = self.config.app(subscription.client_id)
        return signed_body(content, app.webhook_secret if app is not None else self.config.webhook_secret)

    def idle(self) -> bool:
        return self.pending == 0

    # subscriptions
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
            "stats": {stat.value: self.stats[stat] for stat in DeliveryStat},
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
