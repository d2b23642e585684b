"""The entities the sandbox serves: paths, webhook topics, key fields, sync resources, lines and EntityTypes.

The table is the sandbox's own (it must not share the client's mistakes); the fields of every resource come from
`resources.json`, the sandbox's trimmed copy of the reference (see `entity` and `reference_trim`).
"""

from __future__ import annotations

from typing import Any

from sandbox.entity import DOCUMENT_SHARED, FIELD_REPORTS, RESOURCES, Entity, fields_of, resource, written_as

__all__ = [
    "ENTITIES",
    "RESOURCES",
    "SYNC_ENTITIES",
    "SYSTEM_PATHS",
    "TOPICS",
    "Entity",
    "by_path",
    "by_sync_path",
    "by_topic",
    "DOCUMENT_SHARED",
    "FIELD_REPORTS",
    "written_as",
    "fields_of",
    "header_of",
    "line_of",
    "resource",
    "served_paths",
]
# Served but not entities of the store: their own modules build the answers.
SYSTEM_PATHS = ("system/Divisions", "current/Me", "sync/Deleted", "webhooks/WebhookSubscriptions")


def _doc(path: str, key: str, topic: str | None, lines: str, line_path: str, **kw: Any) -> tuple[Entity, Entity]:
    header = Entity(path, key, topic, lines=lines, line_path=line_path, **kw)
    return header, Entity(line_path, header_path=path)


ACCOUNTS = Entity("crm/Accounts", topic="Accounts", sync_path="sync/CRM/Accounts", entity_type=2, mandatory_filter=True)
CONTACTS = Entity("crm/Contacts", topic="Contacts", sync_path="sync/CRM/Contacts", entity_type=5)
ITEMS = Entity("logistics/Items", topic="Items", sync_path="sync/Logistics/Items", entity_type=9, mandatory_filter=True)
SALES_INVOICES, SALES_INVOICE_LINES = _doc(
    "salesinvoice/SalesInvoices",
    "InvoiceID",
    "SalesInvoices",
    "SalesInvoiceLines",
    "salesinvoice/SalesInvoiceLines",
    sync_path="sync/SalesInvoice/SalesInvoices",
    line_rows=True,
    entity_type=13,
)
PURCHASE_ORDERS, PURCHASE_ORDER_LINES = _doc(
    "purchaseorder/PurchaseOrders",
    "PurchaseOrderID",
    "PurchaseOrders",
    "PurchaseOrderLines",
    "purchaseorder/PurchaseOrderLines",
    sync_path="sync/PurchaseOrder/PurchaseOrders",
    line_rows=True,
    entity_type=22,
)
SALES_ORDERS, SALES_ORDER_LINES = _doc(
    "salesorder/SalesOrders",
    "OrderID",
    "SalesOrders",
    "SalesOrderLines",
    "salesorder/SalesOrderLines",
    sync_path="sync/SalesOrder/SalesOrders",
    line_rows=True,
    entity_type=32,
    line_entity_type=33,
)
QUOTATIONS, QUOTATION_LINES = _doc(
    "crm/Quotations",
    "QuotationID",
    "Quotations",
    "QuotationLines",
    "crm/QuotationLines",
    sync_path="sync/CRM/Quotations",
    line_rows=True,
    entity_type=34,
    line_entity_type=35,
)
GOODS_DELIVERIES, GOODS_DELIVERY_LINES = _doc(
    "salesorder/GoodsDeliveries",
    "EntryID",
    "GoodsDeliveries",
    "GoodsDeliveryLines",
    "salesorder/GoodsDeliveryLines",
    sync_path="sync/SalesOrder/GoodsDeliveryLines",
    line_rows=True,
    entity_type=16,
    line_entity_type=17,
)
TRANSACTIONS, TRANSACTION_LINES = _doc(
    "financialtransaction/Transactions",
    "EntryID",
    "FinancialTransactions",
    "TransactionLines",
    "financialtransaction/TransactionLines",
    sync_path="sync/Financial/TransactionLines",
    line_rows=True,
    line_entity_type=1,
)
STOCK_POSITIONS = Entity(
    "sync/Inventory/StockPositions",
    topic="StockPositions",
    sync_path="sync/Inventory/StockPositions",
    entity_type=15,
    service=False,
)
PROJECTS = Entity("project/Projects", topic="Projects", sync_path="sync/Project/Projects", entity_type=21)
DOCUMENTS = Entity("documents/Documents", topic="Documents", sync_path="sync/Documents/Documents", entity_type=6)
SALES_ITEM_PRICES = Entity(
    "logistics/SalesItemPrices", topic="SalesItemPrices", sync_path="sync/Logistics/SalesItemPrices", entity_type=8
)
SUBSCRIPTIONS = Entity(
    "subscription/Subscriptions",
    "EntryID",
    "Subscriptions",
    sync_path="sync/Subscription/Subscriptions",
    entity_type=23,
)
TIME_TRANSACTIONS = Entity("project/TimeTransactions", topic="TimeTransactions")
COST_TRANSACTIONS = Entity("project/CostTransactions", topic="CostTransactions")
GENERAL_JOURNAL_ENTRIES, GENERAL_JOURNAL_ENTRY_LINES = _doc(
    "generaljournalentry/GeneralJournalEntries",
    "EntryID",
    "GeneralJournalEntries",
    "GeneralJournalEntryLines",
    "generaljournalentry/GeneralJournalEntryLines",
)
BANK_ENTRIES, BANK_ENTRY_LINES = _doc(
    "financialtransaction/BankEntries",
    "EntryID",
    "BankEntries",
    "BankEntryLines",
    "financialtransaction/BankEntryLines",
)
CASH_ENTRIES, CASH_ENTRY_LINES = _doc(
    "financialtransaction/CashEntries",
    "EntryID",
    "CashEntries",
    "CashEntryLines",
    "financialtransaction/CashEntryLines",
)
PURCHASE_ENTRIES, PURCHASE_ENTRY_LINES = _doc(
    "purchaseentry/PurchaseEntries",
    "EntryID",
    "PurchaseEntries",
    "PurchaseEntryLines",
    "purchaseentry/PurchaseEntryLines",
)
BANK_ACCOUNTS = Entity("crm/BankAccounts", topic="BankAccounts")
OPPORTUNITIES = Entity("crm/Opportunities", topic="Opportunities")
# Read-only lanes: Exact sends no webhook for these three.
GL_ACCOUNTS = Entity("financial/GLAccounts", sync_path="sync/Financial/GLAccounts", entity_type=7)
VAT_CODES = Entity("vat/VATCodes")
CURRENCIES = Entity("general/Currencies", "Code")
# What a posting names and is checked against (issue 18); Exact sends no webhook for these.
JOURNALS = Entity("financial/Journals")
# No key of its own: rows are keyed by a hidden `ID` (not a field of the resource, so never served).
JOURNAL_STATUS = Entity("read/financial/JournalStatusByFinancialPeriod")
FINANCIAL_PERIODS = Entity("financial/FinancialPeriods")
PAYMENT_CONDITIONS = Entity("cashflow/PaymentConditions")
EMPLOYEES = Entity("payroll/Employees")
COST_CENTERS = Entity("hrm/Costcenters")
COST_UNITS = Entity("hrm/Costunits")
WAREHOUSES = Entity("inventory/Warehouses")
WBS_ACTIVITIES = Entity("project/WBSActivities")
SALES_ENTRIES, SALES_ENTRY_LINES = _doc(
    "salesentry/SalesEntries", "EntryID", None, "SalesEntryLines", "salesentry/SalesEntryLines"
)
PURCHASE_INVOICES, PURCHASE_INVOICE_LINES = _doc(
    "purchase/PurchaseInvoices", "ID", None, "PurchaseInvoiceLines", "purchase/PurchaseInvoiceLines", link="InvoiceID"
)
GOODS_RECEIPTS, GOODS_RECEIPT_LINES = _doc(
    "purchaseorder/GoodsReceipts",
    "ID",
    None,
    "GoodsReceiptLines",
    "purchaseorder/GoodsReceiptLines",
    link="GoodsReceiptID",
)
STOCK_COUNTS, STOCK_COUNT_LINES = _doc(
    "inventory/StockCounts", "StockCountID", None, "StockCountLines", "inventory/StockCountLines"
)

ENTITIES: tuple[Entity, ...] = (
    ACCOUNTS,
    CONTACTS,
    ITEMS,
    SALES_INVOICES,
    SALES_INVOICE_LINES,
    PURCHASE_ORDERS,
    PURCHASE_ORDER_LINES,
    SALES_ORDERS,
    SALES_ORDER_LINES,
    QUOTATIONS,
    QUOTATION_LINES,
    GOODS_DELIVERIES,
    GOODS_DELIVERY_LINES,
    TRANSACTIONS,
    TRANSACTION_LINES,
    STOCK_POSITIONS,
    PROJECTS,
    DOCUMENTS,
    SALES_ITEM_PRICES,
    SUBSCRIPTIONS,
    TIME_TRANSACTIONS,
    COST_TRANSACTIONS,
    GENERAL_JOURNAL_ENTRIES,
    GENERAL_JOURNAL_ENTRY_LINES,
    BANK_ENTRIES,
    BANK_ENTRY_LINES,
    CASH_ENTRIES,
    CASH_ENTRY_LINES,
    PURCHASE_ENTRIES,
    PURCHASE_ENTRY_LINES,
    BANK_ACCOUNTS,
    OPPORTUNITIES,
    GL_ACCOUNTS,
    VAT_CODES,
    CURRENCIES,
    JOURNALS,
    JOURNAL_STATUS,
    FINANCIAL_PERIODS,
    PAYMENT_CONDITIONS,
    EMPLOYEES,
    COST_CENTERS,
    COST_UNITS,
    WAREHOUSES,
    WBS_ACTIVITIES,
    SALES_ENTRIES,
    SALES_ENTRY_LINES,
    PURCHASE_INVOICES,
    PURCHASE_INVOICE_LINES,
    GOODS_RECEIPTS,
    GOODS_RECEIPT_LINES,
    STOCK_COUNTS,
    STOCK_COUNT_LINES,
)
SYNC_ENTITIES: tuple[Entity, ...] = tuple(e for e in ENTITIES if e.sync_path)
TOPICS: dict[str, Entity] = {e.topic.lower(): e for e in ENTITIES if e.topic}
_BY_PATH = {e.path.lower(): e for e in ENTITIES}
_BY_SYNC = {e.sync_path.lower(): e for e in SYNC_ENTITIES if e.sync_path}


def by_path(path: str) -> Entity | None:
    """Exact's paths are case-insensitive."""
    return _BY_PATH.get(path.lower())


def by_sync_path(path: str) -> Entity | None:
    return _BY_SYNC.get(path.lower())


def by_topic(topic: str) -> Entity | None:
    """The entity of a webhook topic (topics are case-insensitive), or None for a topic Exact does not send."""
    return TOPICS.get(topic.lower())


def header_of(line: Entity) -> Entity:
    header = by_path(line.header_path or "")
    assert header is not None, line.path
    return header


def line_of(header: Entity) -> Entity:
    line = by_path(header.line_path or "")
    assert line is not None, header.path
    return line


def served_paths() -> tuple[str, ...]:
    """Every resource the sandbox serves: entities, their sync resources and the system resources."""
    paths = [e.path for e in ENTITIES] + [e.sync_path for e in SYNC_ENTITIES if e.sync_path]
    return tuple(dict.fromkeys([*paths, *SYSTEM_PATHS]))
