"""Every topic of the contract is served and seeded in divisions 101 and 202, every field of its resource filled."""

from __future__ import annotations

import httpx
import pytest

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.entities import ENTITIES, TOPICS, Entity, by_topic
from sandbox.store import Store
from tests.sandbox.conftest import Api, error_message, results
from tests.sandbox.test_webhooks import SUBS, Callback, callback

__all__ = ["callback"]  # the fixture, shared with test_webhooks

# The contract's table (topics-spec): topic -> (service path, key, sync path, sync/Deleted header, line).
CONTRACT = {
    "Accounts": ("crm/Accounts", "ID", "sync/CRM/Accounts", 2, None),
    "Contacts": ("crm/Contacts", "ID", "sync/CRM/Contacts", 5, None),
    "Items": ("logistics/Items", "ID", "sync/Logistics/Items", 9, None),
    "SalesInvoices": ("salesinvoice/SalesInvoices", "InvoiceID", "sync/SalesInvoice/SalesInvoices", 13, None),
    "PurchaseOrders": (
        "purchaseorder/PurchaseOrders",
        "PurchaseOrderID",
        "sync/PurchaseOrder/PurchaseOrders",
        22,
        None,
    ),
    "SalesOrders": ("salesorder/SalesOrders", "OrderID", "sync/SalesOrder/SalesOrders", 32, 33),
    "Quotations": ("crm/Quotations", "QuotationID", "sync/CRM/Quotations", 34, 35),
    "GoodsDeliveries": ("salesorder/GoodsDeliveries", "EntryID", "sync/SalesOrder/GoodsDeliveryLines", 16, 17),
    "FinancialTransactions": (
        "financialtransaction/Transactions",
        "EntryID",
        "sync/Financial/TransactionLines",
        None,
        1,
    ),
    "StockPositions": ("sync/Inventory/StockPositions", "ID", "sync/Inventory/StockPositions", 15, None),
    "Projects": ("project/Projects", "ID", "sync/Project/Projects", 21, None),
    "Documents": ("documents/Documents", "ID", "sync/Documents/Documents", 6, None),
    "SalesItemPrices": ("logistics/SalesItemPrices", "ID", "sync/Logistics/SalesItemPrices", 8, None),
    "Subscriptions": ("subscription/Subscriptions", "EntryID", "sync/Subscription/Subscriptions", 23, None),
    "TimeTransactions": ("project/TimeTransactions", "ID", None, None, None),
    "CostTransactions": ("project/CostTransactions", "ID", None, None, None),
    "GeneralJournalEntries": ("generaljournalentry/GeneralJournalEntries", "EntryID", None, None, None),
    "BankEntries": ("financialtransaction/BankEntries", "EntryID", None, None, None),
    "CashEntries": ("financialtransaction/CashEntries", "EntryID", None, None, None),
    "PurchaseEntries": ("purchaseentry/PurchaseEntries", "EntryID", None, None, None),
    "BankAccounts": ("crm/BankAccounts", "ID", None, None, None),
    "Opportunities": ("crm/Opportunities", "ID", None, None, None),
}
LANES = {"financial/GLAccounts", "vat/VATCodes", "general/Currencies"}


def _filter(entity: Entity) -> dict[str, str]:
    return {"$filter": f"{entity.key} ne null"} if entity.mandatory_filter else {}


class TestTheTable:
    def test_every_webhook_topic_of_the_contract_and_no_other(self) -> None:
        assert {e.topic for e in TOPICS.values()} == set(CONTRACT)
        for topic, (path, key, sync_path, header_type, line_type) in CONTRACT.items():
            entity = by_topic(topic)
            assert entity is not None
            got = (entity.path, entity.key, entity.sync_path, entity.entity_type, entity.line_entity_type)
            assert got == (path, key, sync_path, header_type, line_type), topic

    def test_the_lanes_without_webhooks(self) -> None:
        lanes = {e.path: e for e in ENTITIES if e.path in LANES}
        assert set(lanes) == LANES
        assert all(e.topic is None for e in lanes.values())
        assert lanes["general/Currencies"].key == "Code"


@pytest.mark.parametrize("division", [101, 202])
@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.path)
class TestSeeded:
    def test_records_with_every_field_filled(self, entity: Entity, division: int, sandbox_http: httpx.Client) -> None:
        rows = sandbox_http.get(f"/_sandbox/records/{division}/{entity.path}").json()["records"]
        assert rows, f"{entity.path} has no records in {division}"
        for row in rows:
            missing = [f for f in entity.data_fields if row.get(f) is None]
            assert not missing, f"{entity.path}: {missing}"

    def test_served_with_every_field(self, entity: Entity, division: int, api: Api) -> None:
        if entity.service:
            record = results(api.get(f"{division}/{entity.path}", **_filter(entity)))[0]
            assert set(record) - {"__metadata"} == set(entity.fields)
            assert all(record[f] is not None for f in entity.data_fields)
        if entity.sync_path:
            page = results(api.get(f"{division}/{entity.sync_path}", **{"$filter": "Timestamp gt 0L"}))
            assert page
            assert set(page[0]) - {"__metadata"} == set(entity.sync_fields)


class TestSeedLinks:
    def test_links_point_at_real_records_of_the_division(self, sandbox_http: httpx.Client) -> None:
        accounts = {r["ID"]: r for r in sandbox_http.get("/_sandbox/records/202/crm/Accounts").json()["records"]}
        items = {r["ID"]: r for r in sandbox_http.get("/_sandbox/records/202/logistics/Items").json()["records"]}
        invoices = sandbox_http.get("/_sandbox/records/202/salesinvoice/SalesInvoices").json()["records"]
        lines = sandbox_http.get("/_sandbox/records/202/salesinvoice/SalesInvoiceLines").json()["records"]
        for invoice in invoices:
            assert accounts[invoice["InvoiceTo"]]["Name"] == invoice["InvoiceToName"]
            own = [x for x in lines if x["InvoiceID"] == invoice["InvoiceID"]]
            assert 2 <= len(own) <= 4
            assert invoice["AmountDC"] == round(sum(x["AmountDC"] for x in own), 2)
        for line in lines:
            assert items[line["Item"]]["Code"] == line["ItemCode"]
            assert line["AmountDC"] == round(line["Quantity"] * line["UnitPrice"], 2)

    def test_the_archived_division_keeps_its_records(self, sandbox_http: httpx.Client) -> None:
        for path, count in (("crm/Accounts", 30), ("salesinvoice/SalesInvoices", 5), ("project/Projects", 0)):
            assert len(sandbox_http.get(f"/_sandbox/records/303/{path}").json()["records"]) == count

    def test_seeding_is_deterministic(self) -> None:
        def codes(store: Store) -> list[object]:
            return [r["ID"] for r in store.rows(101, by_topic("Accounts"))]  # type: ignore[arg-type]

        first, second = Store(SandboxConfig(), SandboxClock()), Store(SandboxConfig(), SandboxClock())
        assert codes(first) == codes(second)


class TestUnknownTopic:
    def test_a_topic_exact_does_not_send_is_refused(self, api: Api, callback: Callback) -> None:
        for topic in ("Nonsense", "GLAccounts", "VATCodes"):
            response = api.post(SUBS, {"Topic": topic, "CallbackURL": callback.url})
            assert response.status_code == 400
            assert set(response.json()["error"]) == {"code", "message"}
            assert topic in error_message(response)
        assert results(api.get(SUBS)) == []
        assert callback.bodies == []

    def test_every_topic_of_the_contract_can_be_subscribed(self, api: Api, callback: Callback) -> None:
        for topic in CONTRACT:
            assert api.post(SUBS, {"Topic": topic, "CallbackURL": callback.url}).status_code == 201, topic
