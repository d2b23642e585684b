"""Hands an accepted event to the workers: dedupe and enqueue in one atomic Redis round trip.

The message is a genuine Celery task message (protocol 2, JSON) for `workers.handle_event`, pushed onto the queue's
Redis list the way kombu's Redis transport does (LPUSH; workers BRPOP). Building it here costs a few microseconds;
Celery's own `apply_async` costs ~0.6 ms of CPU and would block the event loop. Dedupe key and message are written
together or not at all, so a failed handoff leaves no dedupe key behind and Exact's retry is accepted. The script also
stamps the pair's last-webhook time, which subscriptions uses to flag pairs that went silent.

Per accepted event this is one Redis round trip (EVALSHA; after a Redis restart redis-py reloads the script once). If
the reply is lost after the script ran, Exact's retry finds the dedupe key and is answered as a duplicate, which is
right: the message is already on the queue.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import uuid
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError

from runtime.contracts import EVENTS_QUEUE, HANDLE_EVENT, LAST_WEBHOOK_KEY

__all__ = ["Handoff", "HandoffFailed", "build_message", "webhook_key"]

_DEDUPE_AND_PUSH = """
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
_ORIGIN = f"receiver@{socket.gethostname()}"


class HandoffFailed(Exception):
    """Redis did not take the event (down, timed out, refused): nothing was written, Exact must retry."""


def webhook_key(division: int, topic: str, key: str, action: str, event_created_on: str | None) -> str:
    """The webhook's dedupe key, stable for one change: Exact's duplicates and retries of it map to the same key.

    It travels as the handed-on event's `event_id` field and is stored as `dedupe:<key>`; it is not the delivery's
    event id (`delivery.changes.event_id_of`, the push's `webhook-id`)."""
    raw = f"{division}|{topic.lower()}|{key.lower()}|{action}|{event_created_on or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def build_message(event: dict[str, Any], *, queue: str = EVENTS_QUEUE, task: str = HANDLE_EVENT) -> bytes:
    task_id = str(uuid.uuid4())
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    body = json.dumps([[event], {}, embed]).encode()
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": f"[{event.get('event_id')}]",
            "kwargsrepr": "{}",
            "origin": _ORIGIN,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(message).encode()


# One submitted event: the script's keys and arguments, and the future its request awaits.
_Pending = tuple[list[str], list[str | int | bytes], asyncio.Future[bool]]


class Handoff:
    """`await handoff.submit(event)` → True when enqueued, False when a duplicate within the window.

    Events submitted while a round trip is under way go out together in the next one, as one pipeline of script
    calls (a group commit): each request still waits for its own event's result, so a 200 still means "in Redis",
    while the per-call cost of the Redis client is paid once per batch instead of once per webhook.
    """

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str, dedupe_seconds: int, max_batch: int = 256) -> None:
        self._client = client
        self._script = client.register_script(_DEDUPE_AND_PUSH)
        self._prefix = prefix
        self._queue_key = f"{prefix}{EVENTS_QUEUE}"
        self._dedupe_seconds = dedupe_seconds
        self._max_batch = max_batch
        self._waiting: list[_Pending] = []
        self._sender: asyncio.Task[None] | None = None
        self._loaded = False

    async def submit(self, event: dict[str, Any]) -> bool:
        keys = [f"{self._prefix}dedupe:{event['event_id']}", self._queue_key, f"{self._prefix}{LAST_WEBHOOK_KEY}"]
        pair = f"{event['division']}:{str(event['topic']).lower()}"
        args: list[str | int | bytes] = [self._dedupe_seconds, build_message(event), pair, int(event["received_at"])]
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await done

    async def _send(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            results = await self._run(batch)
            if any(isinstance(r, redis.ConnectionError) for r in results):
                # A pooled connection that died with a Redis restart: once more on a fresh one. Safe to repeat,
                # since an event that did get in is then answered as a duplicate, and it is on the queue once.
                results = await self._run(batch)
            if any(isinstance(r, NoScriptError) for r in results):
                # Redis restarted (or flushed its scripts) since we loaded ours: load it once and try again.
                results = await self._run(batch, load=True)
            for (_, _, done), result in zip(batch, results, strict=True):
                if done.cancelled():
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(HandoffFailed(type(result).__name__))
                else:
                    done.set_result(bool(result))

    async def _run(self, batch: list[_Pending], load: bool = False) -> list[Any]:
        """One round trip: EVALSHA per event in a pipeline (never SCRIPT EXISTS first, as redis-py's would)."""
        try:
            if load or not self._loaded:
                await self._client.script_load(_DEDUPE_AND_PUSH)
                self._loaded = True
            pipe = self._client.pipeline(transaction=False)
            for keys, args, _ in batch:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))
        except (redis.RedisError, OSError) as exc:
            return [exc] * len(batch)
