"""Hands an accepted event to the workers: dedupe and enqueue in one atomic Redis round trip.

The message is a genuine Celery task message (protocol 2, JSON) for `workers.handle_event`, pushed onto the queue's
Redis list the way kombu's Redis transport does (LPUSH; workers BRPOP). Building it here costs a few microseconds;
Celery's own `apply_async` costs ~0.6 ms of CPU and would block the event loop. Dedupe key and message are written
together or not at all, so a failed handoff leaves no dedupe key behind and Exact's retry is accepted. The script also
stamps the pair's last-webhook time, which subscriptions uses to flag pairs that went silent.

Per accepted event this is one Redis round trip, shared with the events submitted alongside it: one EVALSHA of the
script over the whole batch (after a Redis restart the script is loaded once more). If the reply is lost after the
script ran, Exact's retry finds the dedupe key and is answered as a duplicate, which is right: the message is already
on the queue.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import hashlib
import json
import os
import socket
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError

from runtime.contracts import EVENTS_QUEUE, HANDLE_EVENT, LAST_WEBHOOK_KEY

__all__ = ["Handoff", "HandoffFailed", "build_message", "webhook_key"]

# KEYS: the batch's dedupe keys, then the queue and the last-webhook hash. ARGV: the batch size, the dedupe window,
# then per event its message, its pair and its time. In order, so a repeat later in one batch is its duplicate. The
# reply is one string, a digit an event (1 enqueued, 0 duplicate): one bulk reply to parse instead of an array.
_DEDUPE_AND_PUSH = """
local n = tonumber(ARGV[1])
local queue, last = KEYS[n + 1], KEYS[n + 2]
local out = {}
for i = 1, n do
  local at = 3 * i
  redis.call('HSET', last, ARGV[at + 1], ARGV[at + 2])
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) then
    redis.call('LPUSH', queue, ARGV[at])
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
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
    """The Celery message for `event`: the bytes `json.dumps` gives of the whole message, from a template per queue and
    task (the dumps of that nested dict and two uuid4 calls were most of a webhook's handoff cost)."""
    body = b"[[" + _dumps(event).encode() + _EMBED
    values = {
        b"id": _ids.next().encode(),
        b"tag": _ids.next().encode(),
        b"body": binascii.b2a_base64(body, newline=False),
        # json.dumps of a str is this C function: the same bytes without dumps' per-call encoder set-up.
        b"args": encode_basestring_ascii(f"[{event.get('event_id')}]")[1:-1].encode(),
    }
    return _template(queue, task) % values


def _dumps(event: dict[str, Any]) -> str:
    """`json.dumps(event)`, through an encoder built once: dumps builds one per call (a third of its cost)."""
    if _c_encoder is None:  # pragma: no cover - only without json's C accelerator
        return json.dumps(event)
    return "".join(_c_encoder(event, 0))


# json.dumps' defaults (ensure_ascii, ", " and ": ", no sort, allow_nan), without the circular-reference check: an
# event is flat, built by routes.py.
_c_encoder = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True)
)
_EMBED = b'], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


@functools.cache
def _template(queue: str, task: str) -> bytes:
    """`json.dumps` of the message with markers where the per-message values go, as a bytes `%` template."""
    marks = {"id": "\x01id\x01", "body": "\x01body\x01", "args": "\x01args\x01", "tag": "\x01tag\x01"}
    message = {
        "body": marks["body"],
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": marks["id"],
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": marks["id"],
            "parent_id": None,
            "argsrepr": marks["args"],
            "kwargsrepr": "{}",
            "origin": _ORIGIN,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": marks["id"],
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": marks["tag"],
        },
    }
    template = json.dumps(message).replace("%", "%%")
    for name, mark in marks.items():
        template = template.replace(json.dumps(mark)[1:-1], f"%({name})s")
    return template.encode()


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}  # RFC 4122 variant digit of a random digit


class _Ids:
    """uuid4 strings from random bytes read 4 KiB at a time: one `os.urandom` per 256 ids instead of one per id."""

    def __init__(self) -> None:
        self._pool = ""  # hex digits, 32 an id
        self._at = 0
        os.register_at_fork(after_in_child=self._reset)  # a forked child must not repeat its parent's ids

    def _reset(self) -> None:
        self._pool, self._at = "", 0

    def next(self) -> str:
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(4096).hex(), 0
        at = self._at
        self._at = at + 32
        h = self._pool[at : at + 32]
        # uuid.UUID(bytes=..., version=4)'s str(), from hex digits: the version digit set to 4, the variant's two
        # top bits to 10 (the digit's two low bits kept), as its int arithmetic would.
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_ids = _Ids()


# One submitted event: its dedupe key and its arguments to the script, both already in RESP, and the future its
# request awaits.
_Pending = tuple[bytes, bytes, asyncio.Future[bool]]


class Handoff:
    """`await handoff.submit(event)` → True when enqueued, False when a duplicate within the window.

    Events submitted while a round trip is under way go out together in the next one, as one call of the script
    (a group commit): each request still waits for its own event's result, so a 200 still means "in Redis", while
    the per-call cost of the Redis client is paid once per batch instead of once per webhook.
    """

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str, dedupe_seconds: int, max_batch: int = 256) -> None:
        self._client = client
        self._sha = hashlib.sha1(_DEDUPE_AND_PUSH.encode()).hexdigest()
        self._prefix = prefix
        self._queue_key = f"{prefix}{EVENTS_QUEUE}"
        self._last_key = f"{prefix}{LAST_WEBHOOK_KEY}"
        self._dedupe_seconds = dedupe_seconds
        self._max_batch = max_batch
        self._waiting: list[_Pending] = []
        self._sender: asyncio.Task[None] | None = None
        self._loaded = False

    async def submit(self, event: dict[str, Any]) -> bool:
        key = f"{self._prefix}dedupe:{event['event_id']}".encode()
        pair = f"{event['division']}:{str(event['topic']).lower()}".encode()
        message, at = build_message(event), b"%d" % int(event["received_at"])
        args = b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(message), message, len(pair), pair, len(at), at)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((b"$%d\r\n%b\r\n" % (len(key), key), args, done))
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
                    done.set_result(result)

    async def _run(self, batch: list[_Pending], load: bool = False) -> list[Any]:
        """One round trip: one EVALSHA for the whole batch (never SCRIPT EXISTS first, as redis-py's would)."""
        n = len(batch)
        head = _pack(["EVALSHA", self._sha, n + 2])
        tail = _pack([self._queue_key, self._last_key, n, self._dedupe_seconds])
        command = b"".join([b"*%d\r\n" % (7 + 4 * n), head, *[p[0] for p in batch], tail, *[p[1] for p in batch]])
        try:
            if load or not self._loaded:
                await self._client.script_load(_DEDUPE_AND_PUSH)
                self._loaded = True
            reply = await self._call(command)
        except (redis.RedisError, OSError) as exc:
            return [exc] * n
        return [digit in (49, "1") for digit in reply]  # b"1" iterates as 49, a decoded reply as "1"

    async def _call(self, command: bytes) -> Any:
        """One packed command on a pooled connection; redis-py's packing of a batch cost more than the batch's
        script. Its connection still times out, and drops itself on any error but an error reply."""
        pool = self._client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped *args, none passed
        try:
            await connection.send_packed_command(command)
            return await connection.read_response()
        finally:
            await pool.release(connection)


def _pack(parts: list[str | int | bytes]) -> bytes:
    """Bulk strings in RESP, without the array's header."""
    out = []
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(out)
