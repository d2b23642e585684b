"""A request body read whole, within a size cap and a time limit, before anything parses it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

__all__ = ["BodyRefused", "read_body"]


@dataclass(frozen=True)
class BodyRefused:
    """Why the body was not read: 413 `too_large`, 408 `timeout` or 400 `disconnected`."""

    status: int
    reason: str
    detail: str


async def read_body(request: Request, limit: int, timeout: float) -> bytes | BodyRefused:
    """The whole body (empty when none was sent), or why not: over `limit` bytes, slower than `timeout` seconds, or the
    client went away."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return BodyRefused(413, "too_large", f"body over {limit} bytes")  # before reading a byte of it
    try:
        async with asyncio.timeout(timeout):
            body = await _read_capped(request, limit)
    except TimeoutError:
        # A body trickling in (slow loris) would hold a connection and its memory for as long as the sender likes.
        return BodyRefused(408, "timeout", f"body not received within {timeout:g}s")
    except ClientDisconnect:
        return BodyRefused(400, "disconnected", "body incomplete")  # nobody is left to read the answer
    if body is None:
        return BodyRefused(413, "too_large", f"body over {limit} bytes")
    return body


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` bytes (chunked bodies are counted as they stream)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
