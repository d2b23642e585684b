"""Exact's webhook HashCode: uppercase hex HMAC-SHA256 of the raw `Content` bytes under the webhook secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

__all__ = ["sign", "signed_body"]


def sign(content: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()


def signed_body(content: dict[str, Any], secret: str) -> bytes:
    """The exact bytes Exact POSTs: compact JSON, `Content` signed as serialised, then spliced in unchanged."""
    raw = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return b'{"Content":' + raw + b',"HashCode":"' + sign(raw, secret).encode() + b'"}'
