"""The Celery message built from a template is the very bytes `json.dumps` gives of the whole message dict."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

import pytest

from receiver.handoff import _ORIGIN, _Ids, build_message
from runtime.contracts import EVENTS_QUEUE, HANDLE_EVENT


def _dumped(event: dict[str, Any], task_id: str, tag: str, queue: str, task: str) -> bytes:
    """The message as it was built before the template: one `json.dumps` of the whole dict."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    message = {
        "body": base64.b64encode(json.dumps([[event], {}, embed]).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": f"[{event.get('event_id')}]",
            "kwargsrepr": "{}",
            "origin": _ORIGIN,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": tag,
        },
    }
    return json.dumps(message).encode()


EVENTS = [
    {
        "event_id": uuid.uuid4().hex,
        "division": 101,
        "topic": "Accounts",
        "key": str(uuid.uuid4()),
        "action": "Update",
        "event_created_on": "2026-11-23T00:00:00.000",
        "client_id": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "received_at": time.time(),
    },
    # Characters JSON escapes, and braces, which the template must not take for its own fields.
    {"event_id": 'a"b\\c{id}}', "division": 1, "topic": "Tëst\n", "key": "{body}", "action": None, "received_at": 1.5},
]


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize(("queue", "task"), [(EVENTS_QUEUE, HANDLE_EVENT), ("other{queue}", 'a "task"')])
def test_the_message_is_byte_for_byte_the_dumped_dict(event: dict[str, Any], queue: str, task: str) -> None:
    built = build_message(event, queue=queue, task=task)
    parsed = json.loads(built)
    task_id, tag = parsed["headers"]["id"], parsed["properties"]["delivery_tag"]
    assert built == _dumped(event, task_id, tag, queue, task)
    assert json.loads(base64.b64decode(parsed["body"]))[0] == [event]


def test_ids_are_uuid4_strings_and_never_repeat() -> None:
    ids = _Ids()
    drawn = [ids.next() for _ in range(1000)]  # several refills of the random pool
    assert len(set(drawn)) == len(drawn)
    for value in drawn:
        parsed = uuid.UUID(value)
        assert (str(parsed), parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    ids = _Ids()
    ids.next()  # the pool is filled: without the reset a child would repeat what the parent draws next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert child != ids.next()
