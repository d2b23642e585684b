"""How `exact-pipeline receiver` serves: uvicorn's options and an httptools protocol that bounds heads and connections.

uvicorn bounds neither the request head nor the number of connections, and no timer runs while a head arrives (its
keep-alive timeout restarts with every byte). `BoundedHttpToolsProtocol` adds, per worker process, before the app
sees a request:

- a head (request line and headers) over `max_header_bytes`, finished or not → 431 and closed, so an unfinished huge
  header costs at most the bound plus one read;
- more than `max_headers` headers → 431 and closed;
- a head not complete within `header_timeout_seconds` of the connection opening (or of its first byte, on a kept-alive
  connection) → closed; a header trickled a byte at a time no longer holds a connection for ever;
- past `max_connections` open connections, a new one gets 503 and is closed; the open ones are served as before.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from runtime.logging import log_event

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from runtime.settings import Settings

__all__ = ["BoundedHttpToolsProtocol", "HeadLimits", "uvicorn_options"]

log = logging.getLogger("receiver")


@dataclass(frozen=True)
class HeadLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(
            max_header_bytes=settings.receiver_max_header_bytes,
            max_headers=settings.receiver_max_headers,
            header_timeout_seconds=settings.receiver_header_timeout_seconds,
            max_connections=settings.receiver_max_connections,
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """`uvicorn.run`'s keyword arguments for the receiver, the bounds included, however many workers serve it."""
    # uvicorn calls `http` as a class; a partial carries the limits and pickles into each `--workers` process.
    protocol = functools.partial(BoundedHttpToolsProtocol, limits=HeadLimits.from_settings(settings))
    # ws="none": the app has no websocket route, and an upgrade would hand the connection to a protocol without these
    # bounds.
    return {"http": cast("type[asyncio.Protocol]", protocol), "ws": "none", "log_level": "warning", "access_log": False}


class _HeadRefused(Exception):
    """Raised in a parser callback to stop parsing a head past a bound; httptools re-raises it as a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with `HeadLimits` enforced before the app sees a request:

    functools.partial(BoundedHttpToolsProtocol, limits=HeadLimits.from_settings(settings))
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HeadLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._awaiting_head = True  # no head yet on this connection, or the last request's body has been read
        self._head_bytes = 0  # bytes received for the head being awaited
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: str | None = None  # why a callback stopped the parser

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too_many_connections", logging.WARNING)
            return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            self._start_head_timer()
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(431, self._refusal)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._awaiting_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, "header_too_large")  # unfinished: stop before buffering more of it

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > self.limits.max_headers:
            self._refusal = "too_many_headers"
            raise _HeadRefused(self._refusal)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._stop_head_timer()
        # As received, give or take the request line's few bytes: ": " and CRLF are 4 bytes a header.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = "header_too_large"
            raise _HeadRefused(self._refusal)
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # a request, not yet run (its task starts at the next turn)
            transport = _OneWrite(self.transport, cycle)
            cycle.transport = transport  # type: ignore[assignment]  # the writes uvicorn makes, and close
            cycle.on_response = functools.partial(_flushed, transport, cycle.on_response)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head, self._head_bytes = True, 0  # what follows is the next request's head

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        log_event(log, "receiver.refused", logging.INFO, reason="header_timeout")
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head: finish the response in flight, then close
        else:
            self.transport.close()

    def _refuse(self, status: int, reason: str, level: int = logging.INFO) -> None:
        """Answer `status` and close; only close when a response is still being written (the head was pipelined)."""
        log_event(log, "receiver.refused", level, status=status, reason=reason)
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            body = http.HTTPStatus(status).phrase.encode()
            head = [STATUS_LINE[status], *(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers)]
            head.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body))
            self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", body]))
        self.transport.close()


class _OneWrite:
    """A response's transport: its head is held until the body's first write and goes out with it, one socket write a
    response instead of two (a third of uvicorn's cost a response). Writes before the head (100 Continue) and after
    the first body write pass straight on; a response without a body write (HEAD) is flushed as it completes or
    closes."""

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None
        self._holding = True  # until the head has been held once

    def write(self, data: bytes) -> None:
        if self._holding and self._cycle.response_started:
            self._holding = False
            self._held = data  # the head: uvicorn writes it as the response starts
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)  # is_closing, get_extra_info, ...


def _flushed(transport: _OneWrite, on_response: Callable[[], None]) -> None:
    transport.flush()
    on_response()
