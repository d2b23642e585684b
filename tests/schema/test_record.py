"""`schema.record` against the sandbox over HTTP: the committed snapshot is current, one call per resource, no 429,
and no value of a record ever reaches the snapshot.

If `test_recording_the_sandbox_gives_the_committed_snapshot` fails after a deliberate change to the sandbox or the
catalogue, regenerate: `exact-pipeline schema record --sandbox --yes --out schema/sandbox.json` (and review the diff).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from exact import CATALOGUE
from runtime.settings import Settings
from schema import Field, Snapshot, calls_needed, expected, reads, record
from schema.local import record_sandbox, sandbox_client
from schema.record import observe
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected

COMMITTED = Path(__file__).parents[2] / "schema" / "sandbox.json"
DIVISION = 101


def test_recording_the_sandbox_gives_the_committed_snapshot(settings: Settings) -> None:
    recorded = record_sandbox(settings)  # a fresh sandbox started here, as `schema record --sandbox` does
    assert recorded.to_json() == COMMITTED.read_text(encoding="utf-8")


def test_the_committed_snapshot_reads_every_resource_and_knows_its_formats() -> None:
    committed = Snapshot.from_json(COMMITTED.read_text(encoding="utf-8"))
    assert committed.source == "sandbox"
    assert set(committed.resources) == set(reads(CATALOGUE))
    assert all(r.error is None and r.envelope == "d.results" for r in committed.resources.values())
    assert committed.resources["crm/Accounts"].fields["Modified"].date == "ms"
    invoices = committed.resources["sync/SalesInvoice/SalesInvoices"]
    assert (invoices.row_shape, invoices.header_key) == ("line_rows", "InvoiceID")
    assert expected(CATALOGUE).resources.keys() == committed.resources.keys()


def test_one_call_per_resource_through_a_stored_connection_and_no_429(
    connected: Connected, sandbox: ServerThread, sandbox_http: httpx.Client
) -> None:
    sandbox_http.post("/_sandbox/calls/reset")
    snapshot = record(connected.client(), DIVISION, CATALOGUE)
    calls = sandbox_http.get("/_sandbox/calls").json()
    by_endpoint = {c["endpoint"]: (c["status"], c["count"]) for c in calls["calls"]}
    assert by_endpoint == {path: (200, 1) for path in reads(CATALOGUE)}
    assert calls["total"] == calls_needed(CATALOGUE)
    assert snapshot.source == "production"
    assert all(r.error is None for r in snapshot.resources.values())


def test_a_planted_marker_is_nowhere_in_the_snapshot(
    settings: Settings, sandbox: ServerThread, sandbox_http: httpx.Client
) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    before = Snapshot.from_json(COMMITTED.read_text(encoding="utf-8"))  # a fresh sandbox, as this one is
    account = sandbox_http.post(f"/_sandbox/records/{DIVISION}/crm/Accounts", json={"Name": marker, "City": marker})
    assert account.status_code == 201, account.text
    assert marker in sandbox_http.get(f"/_sandbox/records/{DIVISION}/crm/Accounts").text
    after = record(sandbox_client(settings, sandbox.url), DIVISION, CATALOGUE, source="sandbox")
    # The planted record was read (the page grew by one) and still nothing of it is in the text.
    for path in ("crm/Accounts", "sync/CRM/Accounts"):
        assert after.resources[path].page_size == (before.resources[path].page_size or 0) + 1
    assert marker not in after.to_json()
    assert marker.lower() not in after.to_json().lower()


def test_observe_reads_each_envelope_type_date_format_and_row_shape() -> None:
    read = reads(CATALOGUE)["sync/SalesInvoice/SalesInvoices"]
    rows = [
        {"__metadata": {"uri": "x"}, "ID": "l1", "InvoiceID": "d1", "Modified": "/Date(1718150400000)/", "N": 1},
        {"ID": "l2", "InvoiceID": "d1", "Modified": "2024-06-12T00:00:00Z", "N": None, "Lines": {"results": []}},
    ]
    page = observe({"d": {"results": rows, "__next": "http://next"}}, read)
    assert (page.envelope, page.page_size, page.next) == ("d.results", 2, True)
    assert (page.row_shape, page.header_key) == ("line_rows", "InvoiceID")
    assert page.fields["Modified"] == Field("string", "mixed")
    assert (page.fields["N"].type, page.fields["Lines"].type) == ("number", "array")
    assert "__metadata" not in page.fields
    top = observe({"d": [rows[0]]}, read)
    assert (top.envelope, top.next, top.row_shape) == ("d[]", False, "flat")
    assert top.fields["Modified"].date == "ms"
    one = observe({"d": {"ID": "l1", "InvoiceID": "d1"}}, read)
    assert (one.envelope, one.page_size) == ("d{}", 1)
    # A header resource repeating its key without line IDs is one row per line too.
    headers = observe({"d": {"results": [{"InvoiceID": "d1"}, {"InvoiceID": "d1"}]}}, read)
    assert headers.row_shape == "line_rows"
    assert observe({"d": {"results": []}}, read).row_shape is None
