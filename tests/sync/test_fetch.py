"""Exact's records as changes, against the sandbox over HTTP: sync walks, keyed batches, tombstones, call counts."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from connections.factory import client_from_settings
from exact import CATALOGUE, ExactClient, key_filters, normalize_record
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from sync.fetch import KEYS_PER_CALL, by_keys, deleted_walk, epoch_ms, key_budget, modified_walk, sync_walk
from sync.reading import Reading
from tests.conftest import ServerThread
from tests.pipeline.connected import connect_to


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(sync_page_size=100)


@pytest.fixture
def client(settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session]) -> ExactClient:
    settings = settings.model_copy(update={"exact_base_url": sandbox.url})
    return client_from_settings(settings, session_factory, connect_to(settings))


def _control(sandbox: ServerThread, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response


def _reading(topic: str) -> Reading:
    return Reading.of(CATALOGUE.require(topic))


def _records(sandbox: ServerThread, division: int, reading: Reading) -> dict[str, dict[str, Any]]:
    rows = _control(sandbox, "GET", f"records/{division}/{reading.entity.path}").json()["records"]
    return {str(r[reading.entity.key]).lower(): normalize_record(r) for r in rows}


def _fields(record: dict[str, Any] | None, reading: Reading) -> dict[str, Any]:
    assert record is not None
    return {f: record.get(f) for f in reading.header}


def _calls(sandbox: ServerThread, **filters: object) -> int:
    return int(_control(sandbox, "GET", "calls", params={k: str(v) for k, v in filters.items()}).json()["total"])


def test_a_sync_walk_reads_1000_a_call_from_its_cursor(client: ExactClient, sandbox: ServerThread) -> None:
    reading = _reading("contacts")
    _control(sandbox, "POST", "records/101/crm/Contacts/bulk", json={"count": 230})
    want = _records(sandbox, 101, reading)
    before = _calls(sandbox, division=101)
    pages = list(sync_walk(client, 101, reading, 0))
    assert _calls(sandbox, division=101) - before == math.ceil(len(want) / 100)
    changes = [c for page in pages for c in page.changes]
    assert {c.key: _fields(c.record, reading) for c in changes} == {k: _fields(v, reading) for k, v in want.items()}
    assert all(c.version == int(want[c.key]["Timestamp"]) and c.action == "Update" for c in changes)
    # Each page's position is the highest Timestamp so far: persisting it resumes after that page.
    assert [p.position for p in pages] == sorted(p.position for p in pages)
    assert pages[-1].position == max(c.version for c in changes)
    assert all(page.seen[c.key] == epoch_ms(c.record["Modified"]) for page in pages for c in page.changes if c.record)
    # From the last position, a change made since is all there is.
    key = next(iter(want))
    _control(sandbox, "PUT", f"records/101/crm/Contacts/{key}", json={"LastName": "Later"})
    again = [c for page in sync_walk(client, 101, reading, pages[-1].position) for c in page.changes]
    assert [(c.key, c.record and c.record["LastName"]) for c in again] == [(key, "Later")]


def test_keyed_batches_stay_in_one_page_and_under_the_url_limit(client: ExactClient, sandbox: ServerThread) -> None:
    reading = _reading("Opportunities")  # no sync resource: a webhook's keys are read in batches
    _control(sandbox, "POST", "records/202/crm/Opportunities/bulk", json={"count": KEYS_PER_CALL + 15})
    want = _records(sandbox, 202, reading)
    # The filter of keys gets what the URL limit leaves beside `$select`.
    narrow = Reading.of(reading.entity, ["Name"])
    spent = len(quote(",".join(reading.select), safe="")) - len(quote(",".join(narrow.select), safe=""))
    assert key_budget(client, narrow) - key_budget(client, reading) == spent
    budget = key_budget(client, reading)
    calls = sum(len(list(key_filters(batch, budget=budget))) for batch in _batches(list(want)))
    assert calls == math.ceil(len(want) / KEYS_PER_CALL)
    before = _calls(sandbox, division=202)
    fetched = list(by_keys(client, 202, reading, [k.upper() for k in want]))
    assert _calls(sandbox, division=202) - before == calls
    changes = {c.key: c for page in fetched for c in page.changes}
    assert set(changes) == set(want)
    assert all(c.version == epoch_ms(want[k]["Modified"]) for k, c in changes.items())
    assert _calls(sandbox, status=400) == 0


def _batches(keys: list[str]) -> list[list[str]]:
    return [keys[n : n + KEYS_PER_CALL] for n in range(0, len(keys), KEYS_PER_CALL)]


def test_deletions_become_tombstones_without_fetching(client: ExactClient, sandbox: ServerThread) -> None:
    contacts = _reading("Contacts")
    gone = list(_records(sandbox, 101, contacts))[:3]
    for key in gone:
        _control(sandbox, "DELETE", f"records/101/crm/Contacts/{key}")
    before = _calls(sandbox, division=101)
    pages = list(deleted_walk(client, 101, contacts, 0))
    tombstones = [c for page in pages for c in page.changes]
    assert _calls(sandbox, division=101) - before == 1
    assert sorted(c.key for c in tombstones) == sorted(gone)
    assert all(c.action == "Delete" and c.record is None for c in tombstones)
    # The Deleted Timestamp, above every Timestamp the record had.
    assert all(c.version == pages[-1].position for c in tombstones[-1:])
    assert _calls(sandbox, status=404) == 0


def test_a_walk_by_modified_reads_everything_then_what_changed(client: ExactClient, sandbox: ServerThread) -> None:
    reading = _reading("Opportunities")
    want = _records(sandbox, 101, reading)
    assert want
    pages = list(modified_walk(client, 101, reading, 0))
    assert {c.key: _fields(c.record, reading) for p in pages for c in p.changes} == {
        k: _fields(v, reading) for k, v in want.items()
    }
    position = pages[-1].position
    assert position == max(epoch_ms(r["Modified"]) for r in want.values())
    # From a position, the overlap re-reads a little of the past; versions make that harmless.
    key = next(iter(want))
    _control(sandbox, "PUT", f"records/101/crm/Opportunities/{key}", json={"Name": "changed"})
    later = {c.key: c for p in modified_walk(client, 101, reading, position) for c in p.changes}
    assert key in later
    assert later[key].version > position
