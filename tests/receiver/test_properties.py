"""Arbitrary bodies and headers: never a 5xx, never an enqueue unless the HashCode is valid."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.signature import InvalidSignature, verify
from tests.receiver.builders import content, signed_raw
from tests.receiver.conftest import Receiver
from tests.vectors import VECTOR_SECRET, VECTORS

HEADER_NAMES = st.sampled_from(["content-type", "x-exact", "user-agent", "accept", "x-forwarded-for"])
# Printable, not starting or ending with a space: what an HTTP client can send at all.
HEADER_VALUES = st.from_regex(r"[!-~]([ -~]{0,38}[!-~])?", fullmatch=True)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
BODIES = st.one_of(
    st.binary(max_size=2048),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    JSON_VALUES.map(lambda v: b'{"Content":' + json.dumps(v).encode() + b',"HashCode":"' + b"A" * 64 + b'"}'),
    st.dictionaries(st.sampled_from(list(content())), JSON_VALUES, max_size=7).map(
        lambda c: b'{"Content":' + json.dumps(c).encode() + b',"HashCode":"00"}'
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3))
def test_unsigned_input_never_5xx_never_enqueued(receiver: Receiver, body: bytes, headers: dict[str, str]) -> None:
    response = httpx.post(f"{receiver.url}/webhooks/exact", content=body, headers=headers, timeout=10)
    assert response.status_code < 500
    assert receiver.queue() == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(list(content())), JSON_VALUES, max_size=7))
def test_signed_arbitrary_content_never_5xx(receiver: Receiver, data: dict[str, object]) -> None:
    before = len(receiver.queue())
    response = receiver.post(signed_raw(json.dumps(data).encode()))
    assert response.status_code in (200, 400)
    grew = len(receiver.queue()) - before
    assert grew == (1 if response.json()["outcome"] == "enqueued" else 0)


BOM = b"\xef\xbb\xbf"
WHITESPACE = st.lists(st.sampled_from([b" ", b"\t", b"\r", b"\n"]), max_size=6).map(b"".join)
# Bytes that are not framing: appended, they keep a non-whitespace byte at the end; prefixed, they are not a BOM.
OTHER_SUFFIXES = st.binary(min_size=1, max_size=8).filter(lambda b: bool(b.rstrip(b" \t\r\n")))
OTHER_PREFIXES = st.binary(min_size=1, max_size=8).filter(lambda b: b != BOM)


@given(
    vector=st.sampled_from([v.values for v in VECTORS]),
    bom=st.booleans(),
    trailing=WHITESPACE,
    suffix=OTHER_SUFFIXES,
    prefix=OTHER_PREFIXES,
)
def test_a_bom_and_trailing_whitespace_are_framing_anything_else_is_refused(
    vector: tuple[bytes, str], bom: bool, trailing: bytes, suffix: bytes, prefix: bytes
) -> None:
    raw, hashcode = vector
    body = signed_raw(raw, hashcode=hashcode)
    framed = (BOM if bom else b"") + body + trailing
    assert verify(framed, VECTOR_SECRET) == raw  # the signed bytes, untouched
    for altered in (framed + suffix, prefix + body):
        with pytest.raises(InvalidSignature):
            verify(altered, VECTOR_SECRET)
