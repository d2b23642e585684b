"""Exact's records as changes, against the sandbox over HTTP: sync walks, keyed batches, tombstones, call counts."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from connections.factory import client_from_settings
from exact import ExactClient, normalize_record
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from sync.fetch import KEYS_PER_CALL, by_keys, deleted_walk, epoch_ms, modified_walk, sync_walk
from sync.topics import spec_of
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


def _records(sandbox: ServerThread, division: int, path: str) -> dict[str, dict[str, Any]]:
    rows = _control(sandbox, "GET", f"records/{division}/{path}").json()["records"]
    return {r["ID"].lower(): normalize_record(r) for r in rows}


def _calls(sandbox: ServerThread, **filters: object) -> int:
    return int(_control(sandbox, "GET", "calls", params={k: str(v) for k, v in filters.items()}).json()["total"])


def test_a_sync_walk_reads_1000_a_call_from_its_cursor(client: ExactClient, sandbox: ServerThread) -> None:
    spec = spec_of("contacts")
    assert spec is not None
    _control(sandbox, "POST", "records/101/crm/Contacts/bulk", json={"count": 230})
    want = _records(sandbox, 101, spec.path)
    before = _calls(sandbox, division=101)
    pages = list(sync_walk(client, 101, spec, 0))
    assert _calls(sandbox, division=101) - before == math.ceil(len(want) / 100)
    changes = [c for page in pages for c in page.changes]
    assert {c.key: c.record for c in changes} == {k: {f: v.get(f) for f in spec.fields} for k, v in want.items()}
    assert all(c.version == int(want[c.key]["Timestamp"]) and c.action == "Update" for c in changes)
    # Each page's position is the highest Timestamp so far: persisting it resumes after that page.
    assert [p.position for p in pages] == sorted(p.position for p in pages)
    assert pages[-1].position == max(c.version for c in changes)
    assert all(page.seen[c.key] == epoch_ms(c.record["Modified"]) for page in pages for c in page.changes if c.record)
    # From the last position, a change made since is all there is.
    key = next(iter(want))
    _control(sandbox, "PUT", f"records/101/{spec.path}/{key}", json={"LastName": "Later"})
    again = [c for page in sync_walk(client, 101, spec, pages[-1].position) for c in page.changes]
    assert [(c.key, c.record and c.record["LastName"]) for c in again] == [(key, "Later")]


def test_keyed_batches_stay_in_one_page_and_under_the_url_limit(client: ExactClient, sandbox: ServerThread) -> None:
    spec = spec_of("PurchaseOrders")
    assert spec is not None
    for n in range(KEYS_PER_CALL + 15):
        _control(sandbox, "POST", f"records/202/{spec.path}", json={"Description": f"po{n}", "Currency": "EUR"})
    want = _records(sandbox, 202, spec.path)
    before = _calls(sandbox, division=202)
    fetched = list(by_keys(client, 202, spec, [k.upper() for k in want]))
    assert _calls(sandbox, division=202) - before == math.ceil(len(want) / KEYS_PER_CALL)
    changes = {c.key: c for page in fetched for c in page.changes}
    assert set(changes) == set(want)
    assert all(c.version == epoch_ms(want[k]["Modified"]) for k, c in changes.items())
    assert _calls(sandbox, status=400) == 0


def test_deletions_become_tombstones_without_fetching(client: ExactClient, sandbox: ServerThread) -> None:
    contacts, orders = spec_of("Contacts"), spec_of("PurchaseOrders")
    assert contacts is not None
    assert orders is not None
    gone = list(_records(sandbox, 101, contacts.path))[:3]
    for key in gone:
        _control(sandbox, "DELETE", f"records/101/{contacts.path}/{key}")
    order = next(iter(_records(sandbox, 101, orders.path)))
    _control(sandbox, "DELETE", f"records/101/{orders.path}/{order}")
    before = _calls(sandbox, division=101)
    pages = list(deleted_walk(client, 101, contacts, 0))
    tombstones = [c for page in pages for c in page.changes]
    assert _calls(sandbox, division=101) - before == 1
    assert sorted(c.key for c in tombstones) == sorted(gone)
    assert all(c.action == "Delete" and c.record is None for c in tombstones)
    # Sync topics: the Deleted Timestamp, above every Timestamp the record had.
    assert all(c.version == pages[-1].position for c in tombstones[-1:])
    # Topics without a sync endpoint: DeletedDate in ms, comparable with their Modified versions.
    [order_tombstone] = [c for page in deleted_walk(client, 101, orders, 0) for c in page.changes]
    assert order_tombstone.key == order
    assert order_tombstone.version > 1_600_000_000_000
    assert _calls(sandbox, status=404) == 0


def test_a_walk_by_modified_reads_everything_then_what_changed(client: ExactClient, sandbox: ServerThread) -> None:
    spec = spec_of("PurchaseOrders")
    assert spec is not None
    want = _records(sandbox, 101, spec.path)
    pages = list(modified_walk(client, 101, spec, 0))
    assert {c.key for p in pages for c in p.changes} == set(want)
    position = pages[-1].position
    assert position == max(epoch_ms(r["Modified"]) for r in want.values())
    # From a position, the overlap re-reads a little of the past; versions make that harmless.
    key = next(iter(want))
    _control(sandbox, "PUT", f"records/101/{spec.path}/{key}", json={"Description": "changed"})
    later = {c.key: c for p in modified_walk(client, 101, spec, position) for c in p.changes}
    assert key in later
    assert later[key].version > position
