"""HashCode vectors from ../shared/exact-api.md §1.2 (computed with Python's hmac, not by Exact)."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.signature import sign, signed_body
from tests.vectors import ITEMS, SALES_ORDER, VECTOR_SECRET, VECTORS


@pytest.mark.parametrize(("content", "expected"), VECTORS)
def test_vectors(content: bytes, expected: str) -> None:
    assert sign(content, VECTOR_SECRET) == expected


def test_signed_body_splices_the_signed_bytes_unchanged() -> None:
    body = signed_body({"Topic": "Accounts", "Division": 1, "Key": "é/ü"}, VECTOR_SECRET)
    content = body[len(b'{"Content":') : body.index(b',"HashCode":')]
    assert content == '{"Topic":"Accounts","Division":1,"Key":"é/ü"}'.encode()
    assert body.endswith(b',"HashCode":"' + sign(content, VECTOR_SECRET).encode() + b'"}')


def test_the_signature_is_over_bytes_not_over_the_parsed_object() -> None:
    respaced = json.dumps(json.loads(SALES_ORDER)).encode()  # same object, Python's default ", " and ": "
    assert respaced != SALES_ORDER
    assert sign(respaced, VECTOR_SECRET) != sign(SALES_ORDER, VECTOR_SECRET)


def test_the_webhook_secret_is_the_key() -> None:
    signature = sign(ITEMS, VECTOR_SECRET)
    assert re.fullmatch(r"[0-9A-F]{64}", signature)
    assert sign(ITEMS, "sandbox-client-secret") != signature


def test_signed_body_is_compact_with_unescaped_slashes() -> None:
    body = signed_body({"Topic": "Items", "ExactOnlineEndpoint": "https://x/api/v1/1/logistics/Items"}, "s")
    assert b" " not in body
    assert b"https://x/api/v1/1/logistics/Items" in body
    assert list(json.loads(body)) == ["Content", "HashCode"]
