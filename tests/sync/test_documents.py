"""Line rows grouped into documents against the real database: merging, pages, held documents, deletions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery.changes import ChangeRecord
from exact import CATALOGUE
from runtime.db import session_scope
from sync.coalesce import Lane
from sync.cursors import DocumentState
from sync.documents import Documents
from sync.reading import Reading
from tests.factories import create_connection

ORDERS = Reading.of(CATALOGUE.require("SalesOrders"))
DIVISION = 101


@pytest.fixture
def lane(session_factory: sessionmaker[Session]) -> Lane:
    with session_scope(session_factory) as session:
        connection_id = create_connection(session).id
    return Lane(connection_id, DIVISION, "SalesOrders")


def _row(order: str, line: str, number: int, stamp: int, modified_s: int, **fields: Any) -> dict[str, Any]:
    """A row of sync/SalesOrder/SalesOrders: the header's fields repeated, the line's own, `ID` = the line."""
    return {
        "OrderID": order,
        "YourRef": "PO-7",
        "Division": DIVISION,
        "Modified": f"/Date({modified_s * 1000})/",
        "ID": line,
        "LineNumber": number,
        "Description": f"line {number}",
        "Quantity": 1.0,
        "Timestamp": stamp,
        **fields,
    }


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _page(
    sessions: sessionmaker[Session], docs: Documents, rows: list[dict[str, Any]], cursor: int
) -> list[ChangeRecord]:
    with session_scope(sessions) as session:
        return docs.sync_page(session, rows, cursor)


def _finish(sessions: sessionmaker[Session], docs: Documents) -> list[ChangeRecord]:
    with session_scope(sessions) as session:
        return docs.finish(session)


def _lines(change: ChangeRecord) -> list[tuple[int, str]]:
    assert change.record is not None
    return [(line["LineNumber"], line["Description"]) for line in change.record["lines"]]


def test_rows_become_one_record_per_document_keyed_by_the_header(
    session_factory: sessionmaker[Session], lane: Lane
) -> None:
    a, b = _ids(2)
    la, lb = _ids(3), _ids(2)
    rows = [_row(a, la[n], 3 - n, 10 + n, 100) for n in range(3)] + [_row(b, lb[n], n + 1, 20, 100) for n in range(2)]
    docs = Documents(lane, ORDERS)
    first = _page(session_factory, docs, rows, 20)
    # b has a row at the page's last Timestamp: its rows may go on over the next page, so it waits.
    assert [c.key for c in first] == [a]
    assert docs.position == 19
    [change] = first
    assert change.version == 12
    assert _lines(change) == [(1, "line 1"), (2, "line 2"), (3, "line 3")]
    assert change.record is not None
    assert change.record["OrderID"] == a
    assert change.record["YourRef"] == "PO-7"
    assert set(change.record["lines"][0]) == set(ORDERS.lines)
    assert "YourRef" not in change.record["lines"][0]
    [held] = _finish(session_factory, docs)
    assert (held.key, held.version, len(_lines(held))) == (b, 20, 2)


def test_a_document_split_over_two_pages_is_emitted_whole_once(
    session_factory: sessionmaker[Session], lane: Lane
) -> None:
    [order], lines = _ids(1), _ids(3)
    docs = Documents(lane, ORDERS)
    assert _page(session_factory, docs, [_row(order, lines[n], n + 1, 30, 100) for n in range(2)], 30) == []
    assert docs.position == 29  # a crash now re-reads these rows; the state already holds them
    assert _page(session_factory, docs, [_row(order, lines[2], 3, 30, 100)], 30) == []
    [whole] = _finish(session_factory, docs)
    assert _lines(whole) == [(1, "line 1"), (2, "line 2"), (3, "line 3")]
    assert whole.version == 30


def test_a_walk_replaces_a_documents_lines_and_its_later_pages_add_to_them(
    session_factory: sessionmaker[Session], lane: Lane
) -> None:
    [order], lines = _ids(1), _ids(3)
    docs = Documents(lane, ORDERS)
    _page(session_factory, docs, [_row(order, lines[n], n + 1, 40, 100) for n in range(3)], 40)
    _finish(session_factory, docs)
    # Line 2 deleted in Exact: the header moved (Modified), every remaining row was re-stamped and comes back.
    newer = [_row(order, lines[0], 1, 50, 200), _row(order, lines[2], 3, 50, 200, Description="edited")]
    docs = Documents(lane, ORDERS)
    _page(session_factory, docs, newer, 50)
    [change] = _finish(session_factory, docs)
    assert _lines(change) == [(1, "line 1"), (3, "edited")]
    assert change.version == 50
    # A walk whose pages split the document: the later page's rows add to the earlier page's.
    docs = Documents(lane, ORDERS)
    _page(session_factory, docs, [_row(order, lines[0], 1, 51, 300)], 51)
    _page(session_factory, docs, [_row(order, lines[2], 3, 52, 300, Description="again")], 52)
    [change] = _finish(session_factory, docs)
    assert _lines(change) == [(1, "line 1"), (3, "again")]
    assert change.version == 52


def _deleted(sessions: sessionmaker[Session], docs: Documents, *rows: tuple[int, str, int]) -> dict[str, ChangeRecord]:
    with session_scope(sessions) as session:
        changes = docs.deleted_page(session, [{"EntityType": t, "EntityKey": k, "Timestamp": s} for t, k, s in rows])
    return {c.key: c for c in changes}


def test_deleted_lines_leave_their_document_and_the_last_one_is_a_tombstone(
    session_factory: sessionmaker[Session], lane: Lane
) -> None:
    (a, b), la, lb = _ids(2), _ids(2), _ids(2)
    docs = Documents(lane, ORDERS)
    rows = [_row(a, la[n], n + 1, 60, 100) for n in range(2)] + [_row(b, lb[n], n + 1, 61, 100) for n in range(2)]
    _page(session_factory, docs, rows, 61)
    _finish(session_factory, docs)
    line_type, header_type = 33, 32
    changes = _deleted(session_factory, docs, (line_type, la[0], 70), (header_type, b, 71), (line_type, lb[0], 72))
    assert changes[a].action == "Update"
    assert changes[a].version == 70
    assert _lines(changes[a]) == [(2, "line 2")]
    assert (changes[b].action, changes[b].record, changes[b].version) == ("Delete", None, 71)
    with session_factory() as session:
        kept = {
            row.key
            for row in session.scalars(select(DocumentState).where(DocumentState.connection_id == lane.connection_id))
        }
    assert kept == {a}
    # The last line gone: no document left.
    changes = _deleted(session_factory, docs, (line_type, la[1].upper(), 80))
    assert (changes[a].action, changes[a].version) == ("Delete", 80)
    # A line the lane never saw changes nothing.
    assert _deleted(session_factory, docs, (line_type, str(uuid.uuid4()), 81)) == {}


def test_a_full_resync_starts_the_lane_afresh(session_factory: sessionmaker[Session], lane: Lane) -> None:
    [order], lines = _ids(1), _ids(1)
    docs = Documents(lane, ORDERS)
    _page(session_factory, docs, [_row(order, lines[0], 1, 90, 100)], 90)
    with session_scope(session_factory) as session:
        docs.forget(session)
    with session_factory() as session:
        assert (
            session.scalars(select(DocumentState).where(DocumentState.connection_id == lane.connection_id)).all() == []
        )
    assert _finish(session_factory, docs) == []
