"""The entities the sandbox serves: paths, webhook topics, sync endpoints, fields and write quirks."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ENTITIES", "Entity", "SYNC_ENTITIES", "by_path", "by_sync_path"]


@dataclass(frozen=True)
class Entity:
    path: str
    type_name: str
    fields: tuple[str, ...]
    topic: str | None = None
    sync_path: str | None = None
    entity_type: int | None = None  # code in sync/Deleted
    mandatory_filter: bool = False
    lines: str | None = None  # name of the nested lines collection on the header
    line_path: str | None = None


_COMMON = ("ID", "Division", "Created", "Modified", "Timestamp")

ACCOUNTS = Entity(
    "crm/Accounts",
    "Exact.Web.Api.Models.Account",
    (*_COMMON, "Code", "Name", "Email", "City", "Country", "Phone", "VATNumber", "IsSupplier", "IsCustomer", "Status"),
    topic="Accounts",
    sync_path="sync/CRM/Accounts",
    entity_type=2,
    mandatory_filter=True,
)
CONTACTS = Entity(
    "crm/Contacts",
    "Exact.Web.Api.Models.Contact",
    (*_COMMON, "Account", "FirstName", "LastName", "FullName", "Email", "Phone", "JobTitleDescription"),
    topic="Contacts",
    sync_path="sync/CRM/Contacts",
    entity_type=5,
)
ITEMS = Entity(
    "logistics/Items",
    "Exact.Web.Api.Models.Logistics.Item",
    (*_COMMON, "Code", "Description", "CostPriceStandard", "SalesPrice", "Unit", "IsSalesItem", "IsStockItem"),
    topic="Items",
    sync_path="sync/Logistics/Items",
    entity_type=9,
    mandatory_filter=True,
)
GL_ACCOUNTS = Entity(
    "financial/GLAccounts",
    "Exact.Web.Api.Models.GLAccount",
    (*_COMMON, "Code", "Description", "Type", "TypeDescription"),
    topic="GLAccounts",
    entity_type=7,
)
VAT_CODES = Entity(
    "vat/VATCodes",
    "Exact.Web.Api.Models.VATCode",
    (*_COMMON, "Code", "Description", "Percentage", "IsDefault"),
)
CURRENCIES = Entity(
    "system/Currencies",
    "Exact.Web.Api.Models.Currency",
    (*_COMMON, "Code", "Description"),
)
_INVOICE_LINE_FIELDS = (
    "ID",
    "Division",
    "InvoiceID",
    "LineNumber",
    "Item",
    "ItemCode",
    "Description",
    "Quantity",
    "UnitPrice",
    "AmountDC",
    "GLAccount",
    "VATCode",
    "Created",
    "Modified",
    "Timestamp",
)
SALES_INVOICE_LINES = Entity(
    "salesinvoice/SalesInvoiceLines", "Exact.Web.Api.Models.SalesInvoiceLine", _INVOICE_LINE_FIELDS
)
SALES_INVOICES = Entity(
    "salesinvoice/SalesInvoices",
    "Exact.Web.Api.Models.SalesInvoice",
    (
        *_COMMON,
        "InvoiceID",
        "InvoiceNumber",
        "InvoiceTo",
        "InvoiceToName",
        "OrderedBy",
        "Currency",
        "InvoiceDate",
        "Description",
        "Status",
        "AmountDC",
        "YourRef",
        "SalesInvoiceLines",
    ),
    topic="SalesInvoices",
    sync_path="sync/SalesInvoice/SalesInvoices",
    entity_type=13,
    lines="SalesInvoiceLines",
    line_path="salesinvoice/SalesInvoiceLines",
)
_PO_LINE_FIELDS = (
    "ID",
    "Division",
    "PurchaseOrderID",
    "LineNumber",
    "Item",
    "ItemCode",
    "Description",
    "QuantityOrdered",
    "UnitPrice",
    "AmountDC",
    "GLAccount",
    "VATCode",
    "Created",
    "Modified",
    "Timestamp",
)
PURCHASE_ORDER_LINES = Entity(
    "purchaseorder/PurchaseOrderLines", "Exact.Web.Api.Models.PurchaseOrderLine", _PO_LINE_FIELDS
)
PURCHASE_ORDERS = Entity(
    "purchaseorder/PurchaseOrders",
    "Exact.Web.Api.Models.PurchaseOrder",
    (
        *_COMMON,
        "PurchaseOrderID",
        "OrderNumber",
        "Supplier",
        "SupplierCode",
        "SupplierName",
        "Currency",
        "OrderDate",
        "Description",
        "AmountDC",
        "YourRef",
        "PurchaseOrderLines",
    ),
    topic="PurchaseOrders",
    entity_type=22,
    lines="PurchaseOrderLines",
    line_path="purchaseorder/PurchaseOrderLines",
)

TIME_TRANSACTIONS = Entity(
    "project/TimeTransactions",
    "Exact.Web.Api.Models.TimeTransaction",
    (*_COMMON, "Account", "AccountName", "Item", "ItemCode", "Quantity", "Date", "Notes"),
)

ENTITIES: tuple[Entity, ...] = (
    ACCOUNTS,
    CONTACTS,
    ITEMS,
    GL_ACCOUNTS,
    VAT_CODES,
    CURRENCIES,
    SALES_INVOICES,
    SALES_INVOICE_LINES,
    PURCHASE_ORDERS,
    PURCHASE_ORDER_LINES,
    TIME_TRANSACTIONS,
)
SYNC_ENTITIES: tuple[Entity, ...] = tuple(e for e in ENTITIES if e.sync_path)
_BY_PATH = {e.path.lower(): e for e in ENTITIES}
_BY_SYNC = {e.sync_path.lower(): e for e in SYNC_ENTITIES if e.sync_path}


def by_path(path: str) -> Entity | None:
    """Exact's paths are case-insensitive."""
    return _BY_PATH.get(path.lower())


def by_sync_path(path: str) -> Entity | None:
    return _BY_SYNC.get(path.lower())
