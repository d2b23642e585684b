"""The receiver's Starlette app: `create_app(settings)` with a lifespan that owns the Redis pool and the caches.

The lifespan yields a typed `State` (starlette's lifespan state): the async Redis pool and the `Handoff` built on it,
the tracked-pairs cache with its background refresh task, a sync engine used only off the request path (the cache's
reloads and /readyz), and a metrics registry of this app's own, so tests can run several apps in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

import redis.asyncio
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.routing import Route

from commands.http import command_status, submit_command
from receiver.apps import WebhookSecrets
from receiver.fast import ReceiverApp
from receiver.handoff import Handoff
from receiver.metrics import ReceiverMetrics
from receiver.routes import healthz, metrics, readyz, webhook
from receiver.tracking import TrackedPairs, TrackingUnavailable
from runtime.db import make_engine
from runtime.logging import configure_logging, log_event
from runtime.redis import async_client
from runtime.settings import Settings, get_settings

__all__ = ["COMMANDS_PATH", "WEBHOOK_PATH", "State", "create_app", "create_app_from_env"]

WEBHOOK_PATH = "/webhooks/exact"
COMMANDS_PATH = "/commands"
log = logging.getLogger("receiver")


class State(TypedDict):
    settings: Settings
    secrets: WebhookSecrets
    redis: redis.asyncio.Redis
    engine: Engine
    handoff: Handoff
    tracked: TrackedPairs
    metrics: ReceiverMetrics


def create_app(settings: Settings, *, lean: bool = True) -> Starlette:
    """The receiver. A missing webhook secret (EXACT_WEBHOOK_SECRET, or an app's) stops it here, never at the first
    request. `lean=False` serves the webhook through its Starlette route too: the reference fast.py is held to."""
    secrets = WebhookSecrets.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        client = async_client(settings.redis_url)
        engine = make_engine(settings.database_url)
        tracked = TrackedPairs(engine)
        try:
            await tracked.refresh()
        except TrackingUnavailable as exc:
            # Start anyway: /readyz reports the database, and a miss answers 503 until it is back.
            log_event(log, "receiver.tracking_unavailable", logging.WARNING, error=str(exc))
        refresher = asyncio.create_task(tracked.run(), name="tracked-pairs-refresh")
        handoff = Handoff(client, prefix=settings.redis_prefix, dedupe_seconds=settings.dedupe_window_seconds)
        # Everything loaded so far lives as long as the process: out of the collector's sight, a full collection no
        # longer walks it, which would stall every request in flight (tens of ms, seen as p99 in bench/receiver.py).
        gc.collect()
        gc.freeze()
        try:
            yield State(
                settings=settings,
                secrets=secrets,
                redis=client,
                engine=engine,
                handoff=handoff,
                tracked=tracked,
                metrics=ReceiverMetrics.create(),
            )
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await client.aclose()
            engine.dispose()

    routes = [
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route(COMMANDS_PATH, submit_command, methods=["POST"]),
        Route(COMMANDS_PATH + "/{key:path}", command_status, methods=["GET"]),
    ]
    if not lean:
        return Starlette(routes=routes, lifespan=lifespan)
    # The route stays in the router for every other method (405 with Allow: POST), and for a root_path.
    return ReceiverApp(webhook_path=WEBHOOK_PATH, routes=routes, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and `exact-pipeline receiver`."""
    settings = get_settings()
    configure_logging(settings.log_level, secrets=settings.secret_values())
    return create_app(settings)
