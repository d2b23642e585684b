"""Webhook bodies in Exact's exact byte shape, signed; each test changes one thing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

SECRET = "sandbox-webhook-secret"


def content(**overrides: Any) -> dict[str, Any]:
    key = overrides.pop("Key", str(uuid.uuid4()))
    base = {
        "Topic": "Accounts",
        "ClientId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "Division": 101,
        "Action": "Update",
        "Key": key,
        "ExactOnlineEndpoint": f"https://start.exactonline.nl/api/v1/101/crm/Accounts(guid'{key}')",
        "EventCreatedOn": "2026-11-22T10:00:00.123",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def sign(raw: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().upper()


def signed_raw(raw: bytes, secret: str = SECRET, hashcode: str | None = None) -> bytes:
    """Splice raw Content bytes into a body, signed over exactly those bytes."""
    code = hashcode if hashcode is not None else sign(raw, secret)
    return b'{"Content":' + raw + b',"HashCode":"' + code.encode() + b'"}'


def signed_webhook(secret: str = SECRET, **overrides: Any) -> bytes:
    raw = json.dumps(content(**overrides), separators=(",", ":"), ensure_ascii=False).encode()
    return signed_raw(raw, secret)
