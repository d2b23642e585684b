"""`POST /webhooks/exact` as raw ASGI: no router, middleware, `Request` or `Response`; the same answers as routes.py.

Starlette spends more per webhook than the webhook's own work (routing, three middlewares, `Request`, `Headers`,
`JSONResponse`, an `asyncio.timeout`), so `ReceiverApp` hands this one route here before any of it; every other path
and method goes through Starlette as before. The checks and answers are routes.py's own (`judge`, `conclude`), so
the two paths differ only in how the body is read and the answer written, both byte for byte the same as Starlette's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from receiver.routes import Outcome, conclude, judge
from runtime.bodies import BodyRefused

if TYPE_CHECKING:
    from receiver.app import State

__all__ = ["ReceiverApp", "read_raw_body", "webhook"]

T = TypeVar("T")

# PlainTextResponse("Internal Server Error", 500), what Starlette's ServerErrorMiddleware answers an exception with.
_ERROR_HEADERS = [(b"content-length", b"21"), (b"content-type", b"text/plain; charset=utf-8")]


class ReceiverApp(Starlette):
    """Starlette, except that `POST <webhook_path>` goes straight to `webhook` below."""

    def __init__(self, *, webhook_path: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.webhook_path = webhook_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a root_path the router's path rules apply (prefix stripping), so that case stays with Starlette.
        if (
            scope["type"] == "http"
            and scope["path"] == self.webhook_path
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await webhook(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """routes.webhook without Starlette: read the body, judge it, count and log, answer."""
    state = cast("State", scope["state"])
    started = time.perf_counter()
    settings = state["settings"]
    try:
        body = await read_raw_body(
            scope, receive, settings.webhook_max_body_bytes, settings.webhook_body_timeout_seconds
        )
        result = (
            Outcome(body.status, body.reason, body.detail)
            if isinstance(body, BodyRefused)
            else await judge(body, state)
        )
        status, payload = conclude(state, result, started)
    except Exception:
        # As ServerErrorMiddleware: a 500 for the client, the exception for the server's log.
        await send({"type": "http.response.start", "status": 500, "headers": _ERROR_HEADERS})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise
    headers = [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def read_raw_body(scope: Scope, receive: Receive, limit: int, timeout: float) -> bytes | BodyRefused:
    """`runtime.bodies.read_body` on raw ASGI, with the same answers: 413 over `limit` (declared or streamed), 408
    slower than `timeout` seconds, 400 when the client went away."""
    declared = _content_length(scope)
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return BodyRefused(413, "too_large", f"body over {limit} bytes")
    try:
        body = await _Deadline(_read_capped(receive, limit), timeout)
    except _Expired:
        return BodyRefused(408, "timeout", f"body not received within {timeout:g}s")
    if isinstance(body, BodyRefused):
        return body
    if body is None:
        return BodyRefused(413, "too_large", f"body over {limit} bytes")
    return body


class _Expired(Exception):
    """The body's deadline passed while it was being read."""


_FIRST = object()  # _Resumed's first step not yet handed on


class _Deadline(Generic[T]):
    """`await _Deadline(coro, seconds)`: coro's result, or `_Expired` when it is still waiting `seconds` after it first
    had to wait. asyncio.timeout's semantics (cancel the task at the deadline, tell that cancel from any other), with
    the timer started only once the read has to wait: a body that arrived with its head (the usual webhook) is read
    without one, and a timer handle cost more than the read."""

    def __init__(self, coro: Coroutine[Any, Any, T], seconds: float) -> None:
        self._coro = coro
        self._seconds = seconds

    def __await__(self) -> Generator[Any, Any, T]:
        coro = self._coro
        try:
            first = coro.send(None)
        except StopIteration as done:
            return cast("T", done.value)  # read without waiting
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        expired: list[bool] = []
        timer = asyncio.get_running_loop().call_later(self._seconds, _expire, task, expired)
        try:
            return cast("T", (yield from _Resumed(coro, first)))
        except asyncio.CancelledError:
            if expired and task.uncancel() <= cancelling:
                raise _Expired from None
            raise
        finally:
            timer.cancel()


class _Resumed(Generic[T]):
    """`coro` after its first step, which yielded `first`: `yield from` hands on `first`, then every send and throw
    (the task's cancel included) to `coro`, as `yield from coro` would have from the start."""

    def __init__(self, coro: Coroutine[Any, Any, T], first: object) -> None:
        self._coro = coro
        self._first = first

    def __iter__(self) -> _Resumed[T]:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        if self._first is not _FIRST:
            first, self._first = self._first, _FIRST
            return first
        return self._coro.send(value)

    def throw(self, exc: BaseException) -> Any:
        return self._coro.throw(exc)

    def close(self) -> None:
        self._coro.close()


def _expire(task: asyncio.Task[object], expired: list[bool]) -> None:
    expired.append(True)
    task.cancel()


def _content_length(scope: Scope) -> str | None:
    """The first Content-Length header, as Starlette's `Headers.get` reads it (names arrive lower-cased)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return cast("bytes", value).decode("latin-1")
    return None


async def _read_capped(receive: Receive, limit: int) -> bytes | BodyRefused | None:
    """The body, None as soon as it passes `limit` bytes, or 400 when the client disconnected before its end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif kind == "http.disconnect":
            return BodyRefused(400, "disconnected", "body incomplete")
