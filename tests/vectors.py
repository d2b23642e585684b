"""HashCode test vectors from ../shared/exact-api.md §1.2: real payload shapes, signed with Python's hmac under
`VECTOR_SECRET` (not by Exact). The receiver and the sandbox are both checked against them."""

from __future__ import annotations

import pytest

VECTOR_SECRET = "webhook-secret"
SALES_ORDER = (
    b'{"Topic":"SalesOrders","ClientId":"63824703-cf5c-4143-be7d-db3113b83b0e","Division":441609,"Action":"Update",'
    b'"Key":"19cee073-095e-46d1-8d2d-f3fc97ba5bc1","ExactOnlineEndpoint":"https://start.exactonline.be/api/v1/441609/'
    b'salesorder/SalesOrders(guid\'19cee073-095e-46d1-8d2d-f3fc97ba5bc1\')","EventCreatedOn":"2020-01-06T16:26:08.587"}'
)
ITEMS = (
    b'{"Topic":"Items","ClientId":"00000000-0000-0000-0000-000000000000","Division":1234567890,"Action":"Update",'
    b'"Key":"00000000-0000-0000-0000-000000000001"}'
)
VECTORS = [
    pytest.param(SALES_ORDER, "49ED6F39570998C4FC3259B7F27AC93A2E1FA4CF36B413C091CCF8D7CC287A48", id="sales-order"),
    pytest.param(ITEMS, "D5BF1635317477097D59883A52717B065C6CE5BCBEF792B5EBB4CD147350C8B2", id="items"),
]
