"""What the workers know of each webhook topic: where to read it, its sync endpoint, its sync/Deleted code, fields."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOPICS", "TopicSpec", "spec_of"]


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    path: str
    sync_path: str | None
    entity_type: int | None  # EntityType in sync/Deleted
    fields: tuple[str, ...]


_COMMON = ("ID", "Division", "Created", "Modified", "Timestamp")
TOPICS = {
    spec.topic.lower(): spec
    for spec in (
        TopicSpec(
            "Accounts",
            "crm/Accounts",
            "sync/CRM/Accounts",
            2,
            (
                *_COMMON,
                "Code",
                "Name",
                "Email",
                "City",
                "Country",
                "Phone",
                "VATNumber",
                "IsSupplier",
                "IsCustomer",
                "Status",
            ),
        ),
        TopicSpec(
            "Contacts",
            "crm/Contacts",
            "sync/CRM/Contacts",
            5,
            (*_COMMON, "Account", "FirstName", "LastName", "FullName", "Email", "Phone", "JobTitleDescription"),
        ),
        TopicSpec(
            "Items",
            "logistics/Items",
            "sync/Logistics/Items",
            9,
            (*_COMMON, "Code", "Description", "CostPriceStandard", "SalesPrice", "Unit", "IsSalesItem", "IsStockItem"),
        ),
        TopicSpec(
            "SalesInvoices",
            "salesinvoice/SalesInvoices",
            "sync/SalesInvoice/SalesInvoices",
            13,
            (
                *_COMMON,
                "InvoiceID",
                "InvoiceNumber",
                "InvoiceTo",
                "OrderedBy",
                "Currency",
                "InvoiceDate",
                "Description",
                "Status",
                "AmountDC",
                "YourRef",
            ),
        ),
        TopicSpec(
            "PurchaseOrders",
            "purchaseorder/PurchaseOrders",
            None,
            22,
            (
                *_COMMON,
                "PurchaseOrderID",
                "OrderNumber",
                "Supplier",
                "SupplierCode",
                "Currency",
                "OrderDate",
                "Description",
                "AmountDC",
                "YourRef",
            ),
        ),
        TopicSpec("GLAccounts", "financial/GLAccounts", None, 7, (*_COMMON, "Code", "Description", "Type")),
    )
}


def spec_of(topic: str) -> TopicSpec | None:
    return TOPICS.get(topic.lower())
