"""HashCode vectors from ../shared/exact-api.md §1.2 (computed with Python's hmac, not by Exact)."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.signature import sign, signed_body

SALES_ORDER = (
    b'{"Topic":"SalesOrders","ClientId":"63824703-cf5c-4143-be7d-db3113b83b0e","Division":441609,"Action":"Update",'
    b'"Key":"19cee073-095e-46d1-8d2d-f3fc97ba5bc1","ExactOnlineEndpoint":"https://start.exactonline.be/api/v1/441609/'
    b'salesorder/SalesOrders(guid\'19cee073-095e-46d1-8d2d-f3fc97ba5bc1\')","EventCreatedOn":"2020-01-06T16:26:08.587"}'
)
ITEMS = (
    b'{"Topic":"Items","ClientId":"00000000-0000-0000-0000-000000000000","Division":1234567890,"Action":"Update",'
    b'"Key":"00000000-0000-0000-0000-000000000001"}'
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(SALES_ORDER, "49ED6F39570998C4FC3259B7F27AC93A2E1FA4CF36B413C091CCF8D7CC287A48", id="sales-order"),
        pytest.param(ITEMS, "D5BF1635317477097D59883A52717B065C6CE5BCBEF792B5EBB4CD147350C8B2", id="items"),
    ],
)
def test_vectors(content: bytes, expected: str) -> None:
    assert sign(content, "webhook-secret") == expected


def test_signed_body_splices_the_signed_bytes_unchanged() -> None:
    body = signed_body({"Topic": "Accounts", "Division": 1, "Key": "é/ü"}, "webhook-secret")
    content = body[len(b'{"Content":') : body.index(b',"HashCode":')]
    assert content == '{"Topic":"Accounts","Division":1,"Key":"é/ü"}'.encode()
    assert body.endswith(b',"HashCode":"' + sign(content, "webhook-secret").encode() + b'"}')


def test_the_signature_is_over_bytes_not_over_the_parsed_object() -> None:
    respaced = json.dumps(json.loads(SALES_ORDER)).encode()  # same object, Python's default ", " and ": "
    assert respaced != SALES_ORDER
    assert sign(respaced, "webhook-secret") != sign(SALES_ORDER, "webhook-secret")


def test_the_webhook_secret_is_the_key() -> None:
    signature = sign(ITEMS, "webhook-secret")
    assert re.fullmatch(r"[0-9A-F]{64}", signature)
    assert sign(ITEMS, "sandbox-client-secret") != signature


def test_signed_body_is_compact_with_unescaped_slashes() -> None:
    body = signed_body({"Topic": "Items", "ExactOnlineEndpoint": "https://x/api/v1/1/logistics/Items"}, "s")
    assert b" " not in body
    assert b"https://x/api/v1/1/logistics/Items" in body
    assert list(json.loads(body)) == ["Content", "HashCode"]
