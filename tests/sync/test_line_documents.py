"""Documents with their lines against the sandbox over HTTP: line-row sync resources grouped into one record per
document, line edits and deletes, split pages, line EntityTypes in sync/Deleted, and `$expand`ed documents."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from delivery.changes import ChangeRecord
from exact import CATALOGUE, normalize_record
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from sync.coalesce import Batch, Lane
from sync.context import WorkerContext
from sync.reading import Reading
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to
from tests.sync.lanes import accepted_changes, calls, control, make_ctx, mirror, tombstones

PAGE = 4
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
INVOICES = Reading.of(CATALOGUE.require("SalesInvoices"))
ORDERS = Reading.of(CATALOGUE.require("SalesOrders"))
BANK = Reading.of(CATALOGUE.require("BankEntries"))
# Fields compared between the sandbox's line resource and a mirrored line (both name them; the line's value).
LINE_FIELDS = ("ID", "LineNumber", "Description", "Quantity", "Item")


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(sync_page_size=PAGE)


@pytest.fixture
def ctx(
    settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> WorkerContext:
    return make_ctx(settings, sandbox, session_factory, redis_client)


@pytest.fixture
def connection_id(ctx: WorkerContext) -> int:
    return connect_to(ctx.settings)


def _record(ctx: WorkerContext, division: int, path: str, key: str) -> dict[str, Any]:
    return dict(control(ctx, "GET", f"records/{division}/{path}/{key}").json()["record"])


def _sandbox_lines(ctx: WorkerContext, division: int, reading: Reading, key: str) -> list[dict[str, Any]]:
    """The document's lines as the sandbox keeps them, by LineNumber, in the fields both sides name."""
    lines = reading.entity.lines
    assert lines is not None
    rows = control(ctx, "GET", f"records/{division}/{lines.path}").json()["records"]
    mine = [normalize_record(r) for r in rows if str(r.get(reading.entity.key, "")).lower() == key]
    return sorted(({f: r.get(f) for f in LINE_FIELDS} for r in mine), key=lambda r: r["LineNumber"])


def _header_only(reading: Reading) -> list[str]:
    """Header fields the line resource does not name too. On a line row a name both have holds the line's value
    (topics-spec), though the catalogue files some of them (`header_fields`: GoodsDeliveries' DeliveryDate,
    FinancialTransactions' Created/Modified...) as the document's."""
    lines = reading.entity.lines
    assert lines is not None
    if reading.entity.shape == "expanded":
        return list(reading.header)
    shared = set(CATALOGUE.reference.plain_fields(lines.path)) - {"Division", reading.entity.key}
    return [f for f in reading.header if f not in shared]


def _mirrored_lines(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [{f: line.get(f) for f in LINE_FIELDS} for line in record["lines"]]


def _level(ctx: WorkerContext, division: int, reading: Reading, key: str) -> dict[str, Any]:
    """The mirrored document equals the sandbox's: header fields and every line."""
    assert reading.entity.path is not None
    record = mirror(ctx, division, reading.topic)[key]
    header = normalize_record(_record(ctx, division, reading.entity.path, key))
    fields = _header_only(reading)
    assert {f: record.get(f) for f in fields} == {f: header.get(f) for f in fields}
    assert _mirrored_lines(record) == _sandbox_lines(ctx, division, reading, key)
    return record


def _of(changes: list[ChangeRecord], key: str) -> list[ChangeRecord]:
    return [c for c in changes if c.key == key]


def _create_invoice(ctx: WorkerContext, division: int, lines: int) -> str:
    accounts = control(ctx, "GET", f"records/{division}/crm/Accounts").json()["records"]
    items = control(ctx, "GET", f"records/{division}/logistics/Items").json()["records"]
    body = {
        "InvoiceTo": accounts[0]["ID"],
        "OrderedBy": accounts[0]["ID"],
        "Currency": "EUR",
        "Description": "three lines",
        "SalesInvoiceLines": [
            {"Item": items[n]["ID"], "Quantity": n + 1, "UnitPrice": 10.0, "Description": f"regel {n + 1}"}
            for n in range(lines)
        ],
    }
    record = control(ctx, "POST", f"records/{division}/salesinvoice/SalesInvoices", json=body).json()["record"]
    return str(record["InvoiceID"]).lower()


def test_an_invoice_is_one_record_with_its_lines_through_edits_and_deletes(
    ctx: WorkerContext, connection_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = Lane(connection_id, 101, "SalesInvoices")
    ctx.lane_sync(lane).walk()
    seeded = mirror(ctx, 101, "SalesInvoices")
    assert seeded
    assert all(r["lines"] for r in seeded.values())
    changes = accepted_changes(monkeypatch)
    key = _create_invoice(ctx, 101, 3)
    ctx.lane_sync(lane).walk()
    [created] = _of(changes, key)
    record = _level(ctx, 101, INVOICES, key)
    assert created.record == record
    assert [line["Description"] for line in record["lines"]] == ["regel 1", "regel 2", "regel 3"]
    # One line edited: the whole document again, one new version.
    second = record["lines"][1]["ID"]
    control(ctx, "PUT", f"records/101/salesinvoice/SalesInvoiceLines/{second}", json={"Quantity": 7})
    ctx.lane_sync(lane).walk()
    [_, edited] = _of(changes, key)
    assert edited.version > created.version
    record = _level(ctx, 101, INVOICES, key)
    assert edited.record == record
    assert [line["Quantity"] for line in record["lines"]] == [1, 7, 3]
    # One line deleted: the document without it.
    control(ctx, "DELETE", f"records/101/salesinvoice/SalesInvoiceLines/{record['lines'][0]['ID']}")
    ctx.lane_sync(lane).walk()
    [_, _, shorter] = _of(changes, key)
    assert shorter.version > edited.version
    record = _level(ctx, 101, INVOICES, key)
    assert [line["ID"] for line in record["lines"]] == [second, record["lines"][1]["ID"]]
    assert len(record["lines"]) == 2
    # The document deleted: a tombstone under the header key.
    control(ctx, "DELETE", f"records/101/salesinvoice/SalesInvoices/{key}")
    ctx.lane_sync(lane).walk()
    [*_, gone] = _of(changes, key)
    assert (gone.action, gone.record) == ("Delete", None)
    assert gone.version > shorter.version
    assert key in tombstones(ctx, 101, "SalesInvoices")
    assert len(_of(changes, key)) == 4
    assert all(c.key in seeded or c.key == key for c in changes)


def test_a_document_split_over_sync_pages_ends_whole_in_one_version(
    ctx: WorkerContext, connection_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = Lane(connection_id, 202, "SalesInvoices")
    ctx.lane_sync(lane).walk()
    changes = accepted_changes(monkeypatch)
    key = _create_invoice(ctx, 202, PAGE + 2)  # its rows take two pages at least
    before = calls(ctx, 202)
    ctx.lane_sync(lane).walk()
    assert calls(ctx, 202) - before >= 3  # two sync pages and sync/Deleted
    [whole] = _of(changes, key)
    assert whole.record is not None
    assert len(whole.record["lines"]) == PAGE + 2
    assert whole.record == _level(ctx, 202, INVOICES, key)


def _without_timestamps(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines less their Timestamp: every row of a changed document is re-stamped."""
    return [{f: v for f, v in line.items() if f != "Timestamp"} for line in record["lines"]]


def _an_order(ctx: WorkerContext, division: int, lines: int) -> tuple[str, dict[str, Any]]:
    for key, record in mirror(ctx, division, "SalesOrders").items():
        if len(record["lines"]) >= lines:
            return key, record
    raise AssertionError(f"no seeded sales order with {lines} lines in {division}")


def test_a_deleted_line_of_its_own_entity_type_leaves_the_order(
    ctx: WorkerContext, connection_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = Lane(connection_id, 101, "SalesOrders")
    ctx.lane_sync(lane).walk()
    key, record = _an_order(ctx, 101, 2)
    line = record["lines"][0]["ID"]
    changes = accepted_changes(monkeypatch)
    control(ctx, "DELETE", f"records/101/salesorder/SalesOrderLines/{line}")
    sync = ctx.lane_sync(lane)
    # sync/Deleted first (as a flush of a Delete would read it): the line's EntityType row names only the line.
    cursor = sync.cursors_now()
    before = calls(ctx, 101)
    accepted, gone = sync._deleted(cursor)
    assert calls(ctx, 101) - before == 1  # EntityType 32 or 33, one call
    assert (accepted, gone) == (1, set())
    [shorter] = _of(changes, key)
    assert shorter.record is not None
    assert line not in {item["ID"] for item in shorter.record["lines"]}
    assert len(shorter.record["lines"]) == len(record["lines"]) - 1
    # The sync walk after it agrees: the remaining rows, re-stamped, are the same document.
    sync.walk()
    assert _without_timestamps(_level(ctx, 101, ORDERS, key)) == _without_timestamps(shorter.record)
    # The whole order deleted: header (32) and lines (33) in sync/Deleted, one tombstone.
    control(ctx, "DELETE", f"records/101/salesorder/SalesOrders/{key}")
    ctx.lane_sync(lane).walk()
    assert [c.action for c in _of(changes, key)][-1] == "Delete"
    assert key in tombstones(ctx, 101, "SalesOrders")


def test_expanded_documents_by_keyed_batch_and_by_walk(
    ctx: WorkerContext, connection_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BANK.entity.path is not None
    lines = BANK.entity.lines
    assert lines is not None
    rows = control(ctx, "GET", f"records/101/{BANK.entity.path}").json()["records"]
    keys = [str(r["EntryID"]).lower() for r in rows][:3]
    lane = Lane(connection_id, 101, "BankEntries")
    before = calls(ctx, 101)
    assert ctx.lane_sync(lane).flush(Batch(updates=dict.fromkeys(keys, 1), deletes={})) == len(keys)
    assert calls(ctx, 101) - before == 1  # one keyed batch, lines expanded
    for key in keys:
        record = _level(ctx, 101, BANK, key)
        assert record["lines"]
        assert set(record["lines"][0]) == set(BANK.lines)
    # A line edited: the walk by Modified reads the entry again with its lines.
    changes = accepted_changes(monkeypatch)
    line = mirror(ctx, 101, "BankEntries")[keys[0]]["lines"][0]["ID"]
    control(ctx, "PUT", f"records/101/{lines.path}/{line}", json={"Description": "herboekt"})
    ctx.lane_sync(lane).walk()
    assert {c.key for c in changes} >= set(mirror(ctx, 101, "BankEntries"))
    record = _level(ctx, 101, BANK, keys[0])
    assert [item["Description"] for item in record["lines"] if item["ID"] == line] == ["herboekt"]


@pytest.mark.parametrize(
    "topic", [t for t in CATALOGUE.topics() if CATALOGUE.require(t).shape != "flat" and CATALOGUE.require(t).path]
)
def test_every_document_topic_levels_with_the_sandbox_header_and_lines(
    ctx: WorkerContext, connection_id: int, topic: str
) -> None:
    reading = Reading.of(CATALOGUE.require(topic))
    ctx.lane_sync(Lane(connection_id, 202, topic)).walk()
    assert reading.entity.path is not None
    rows = control(ctx, "GET", f"records/202/{reading.entity.path}").json()["records"]
    keys = {str(r[reading.entity.key]).lower() for r in rows}
    assert keys
    assert set(mirror(ctx, 202, topic)) == keys
    for key in keys:
        _level(ctx, 202, reading, key)
