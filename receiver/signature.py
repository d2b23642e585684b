"""Exact's HashCode, checked on the raw bytes of `Content` exactly as they arrived (never re-serialised)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["InvalidSignature", "check", "split", "verify"]

_PREFIX = b'{"Content":'
_MARKER = b',"HashCode":"'
_SUFFIX = b'"}'
# Framing some senders and proxies add around a body, outside the signed `Content`: a UTF-8 BOM before it and
# whitespace (a trailing newline) after it. Nothing else is tolerated.
_BOM = b"\xef\xbb\xbf"
_TRAILING = b" \t\r\n"


class InvalidSignature(ValueError):
    """Missing, malformed or wrong HashCode: the request is not from Exact."""


def verify(body: bytes, secret: str) -> bytes:
    """Return the raw `Content` bytes when the HashCode (uppercase hex HMAC-SHA256 under the webhook secret) matches."""
    content, received = split(body)
    check(content, received, secret)
    return content


def split(body: bytes) -> tuple[bytes, bytes]:
    """The raw `Content` bytes and the HashCode of a body shaped as Exact's, neither checked yet."""
    body = body.removeprefix(_BOM).rstrip(_TRAILING)
    if not body.startswith(_PREFIX) or not body.endswith(_SUFFIX):
        raise InvalidSignature("not an Exact webhook body")
    marker = body.rfind(_MARKER)
    if marker < len(_PREFIX):
        raise InvalidSignature("no HashCode")
    return body[len(_PREFIX) : marker], body[marker + len(_MARKER) : -len(_SUFFIX)]


def check(content: bytes, received: bytes, secret: str) -> None:
    """Raise `InvalidSignature` unless `received` is the HashCode of `content` under `secret`."""
    if not secret:
        # An empty secret verifies against an empty key, which anyone can forge.
        raise InvalidSignature("no webhook secret configured")
    expected = hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper().encode()
    if not hmac.compare_digest(expected, received.upper()):
        raise InvalidSignature("HashCode does not match")
