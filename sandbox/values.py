"""Realistic seed values for any field, chosen by its name and type: GUIDs, dates, codes, amounts, Dutch names.

`filler(entity)` compiles, once per resource, one value maker per field; the seed calls it per record with the
store's seeded rng and a record number, then links the record to real ones (`link`) and overrides what it must.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.entities import Entity, fields_of

__all__ = ["CITIES", "NAMES", "filler", "guid", "link"]

CITIES = ("Amsterdam", "Rotterdam", "Utrecht", "Arnhem", "Gent", "Antwerpen", "Zwolle", "Leuven")
NAMES = ("Bakker", "Jansen", "de Vries", "Peeters", "Visser", "Smit", "Maes", "O'Brien", "Müller & Zn", "Dubois")
_FIRST = ("Anna", "Daan", "Sanne", "Lotte", "Bram", "Fleur", "Jeroen", "Elke", "Wout", "Ine")
_STREETS = ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenlaan", "Nieuwstraat", "Grote Markt")
_WORDS = ("levering", "onderhoud", "installatie", "project", "montage", "service", "controle", "advies")
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# Fields typed `string` by the reference that hold codes, not GUIDs, though a companion names them.
_CODES = frozenset(
    {
        "Currency",
        "PurchaseCurrency",
        "SalesCurrency",
        "CostPriceCurrency",
        "VATCode",
        "SalesVATCode",
        "SalesVatCode",
        "PurchaseVATCode",
        "CostCenter",
        "Costcenter",
        "CostUnit",
        "Costunit",
        "Unit",
        "Journal",
        "PaymentCondition",
        "PaymentConditionSales",
        "PaymentConditionPurchase",
        "Language",
        "Country",
        "State",
        "Type",
        "Status",
        "ReasonCode",
        "SalesType",
        "Category",
        "Format",
        "Pricelist",
    }
)
_GUIDS = frozenset(
    {
        "Creator",
        "Modifier",
        "Document",
        "Employee",
        "Parent",
        "MainContact",
        "Accountant",
        "Person",
        "Opportunity",
        "Campaign",
        "Owner",
        "Approver",
        "SalesOrder",
        "SalesOrderLine",
        "PurchaseOrder",
        "PurchaseOrderLine",
        "ShopOrder",
        "OffsetID",
        "Subscription",
        "Warehouse",
        "StorageLocation",
        "Attachment",
        "Activity",
        "Expense",
        "ProjectWBS",
        "Contact",
        "Manager",
        "DeliveryAddress",
        "InvoiceAddress",
        "InvoicedTo",
        "AccountContact",
        "SourceQuotation",
        "DocumentFolder",
        "Salesperson",
        "SalesPerson",
        "PurchaseAgent",
        "GLAP",
        "GLAR",
        "GLAccountSales",
        "GLAccountPurchase",
        "PrivateGLAccount",
        "VATNonDeductibleGLAccount",
        "YearEndCostGLAccount",
        "YearEndReflectionGLAccount",
        "BankStatementDocument",
    }
)
_DATES = frozenset({"Created", "Modified", "Approved", "StartTime", "EndTime", "ServerTime", "Date"})
_COMPANIONS = (
    ("Code", "Code"),
    ("Name", "Name"),
    ("Description", "Description"),
    ("FullName", "FullName"),
    ("ContactPersonFullName", "FullName"),
    ("ContactFullName", "FullName"),
)

Maker = Callable[[random.Random, int], Any]


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _date(rng: random.Random, n: int) -> datetime:
    return _EPOCH + timedelta(days=(n * 7 + rng.randrange(28)) % 420, hours=9)


def _string_maker(name: str, names: frozenset[str]) -> Maker:
    lower = name.lower()
    if name in _CODES:
        return _code_maker(name)
    if name in _GUIDS or name == "ID" or name.endswith(("ID", "Id")):
        return lambda rng, _n: guid(rng)
    if any(f"{name}{suffix}" in names for suffix, _ in _COMPANIONS):
        return lambda rng, _n: guid(rng)
    if name in _DATES or name.endswith("Date") or name.startswith("FreeDateField"):
        return _date
    if "email" in lower:
        return lambda _rng, n: f"info{n}@example.nl"
    if lower.endswith(("phone", "mobile", "fax")):
        return lambda _rng, n: f"+31 26 {3000000 + n * 137:07d}"[:15]
    if lower.endswith("url") or lower == "website":
        return lambda _rng, n: f"https://www.example.nl/{lower}/{n}"
    if lower == "postcode":
        return lambda _rng, n: f"{6800 + n % 99} {'ABCDEFGH'[n % 8]}{'KLMNPRST'[n % 8]}"
    if lower == "city" or lower.endswith("place"):
        return lambda _rng, n: CITIES[n % len(CITIES)]
    if lower.startswith("address") or lower.endswith("street"):
        return lambda _rng, n: f"{_STREETS[n % len(_STREETS)]} {n % 120 + 1}"
    if lower.endswith(("fullname", "holdername")):
        return lambda _rng, n: f"{_FIRST[n % len(_FIRST)]} {NAMES[(n + 3) % len(NAMES)]}"
    if lower == "firstname":
        return lambda _rng, n: _FIRST[n % len(_FIRST)]
    if lower in ("lastname", "partnername"):
        return lambda _rng, n: NAMES[n % len(NAMES)]
    if lower.endswith("name"):
        return lambda _rng, n: f"{NAMES[n % len(NAMES)]} Installaties BV"
    if "vatnumber" in lower or lower == "rsin":
        return lambda _rng, n: f"NL{800000000 + n * 7919:09d}B01"
    if lower == "bankaccount":
        return lambda _rng, n: f"NL{10 + n % 89:02d}ABNA{417164300 + n:010d}"
    if lower == "biccode":
        return lambda _rng, _n: "ABNANL2A"
    return _text_maker(name)


def _code_maker(name: str) -> Maker:
    fixed = {
        "Currency": "EUR",
        "PurchaseCurrency": "EUR",
        "SalesCurrency": "EUR",
        "CostPriceCurrency": "EUR",
        "Unit": "pc",
        "Language": "NL",
        "Country": "NL",
        "Journal": "70",
        "Format": "IBAN",
    }
    if name in fixed:
        value = fixed[name]
        return lambda _rng, _n: value
    if "VAT" in name.upper():
        return lambda _rng, _n: "2"
    if name.startswith("PaymentCondition"):
        return lambda _rng, n: ("14", "30", "60")[n % 3]
    return lambda _rng, n: f"{name[:2].upper()}{n % 5 + 1:02d}"


def _text_maker(name: str) -> Maker:
    lower = name.lower()
    if lower in ("code", "searchcode") or lower.endswith(("code", "number")):
        return lambda _rng, n: f"{n:05d}"
    if lower.endswith("description") or lower in ("notes", "remarks", "subject", "body"):
        return lambda _rng, n: f"{_WORDS[n % len(_WORDS)].capitalize()} {name[:12].lower()} {n}"
    if lower == "yourref" or lower.endswith("reference"):
        return lambda _rng, n: f"REF-2026-{n:04d}"
    return lambda _rng, n: f"{_WORDS[n % len(_WORDS)]} {n}"


def _int_maker(name: str) -> Maker:
    lower = name.lower()
    if lower == "financialyear" or lower == "reportingyear":
        return lambda _rng, _n: 2026
    if lower in ("financialperiod", "reportingperiod"):
        return lambda _rng, n: n % 12 + 1
    if lower.endswith(("number", "hid")) or lower == "hid":
        return lambda _rng, n: 26000 + n
    if lower.startswith("incotermversion"):
        return lambda _rng, _n: 2020
    if lower.endswith("days"):
        return lambda _rng, n: (7, 14, 30)[n % 3]
    if lower.endswith("status"):
        return lambda _rng, n: (10, 20, 30)[n % 3]
    return lambda _rng, n: n % 3


def _float_maker(name: str) -> Maker:
    lower = name.lower()
    if "percentage" in lower:
        return lambda _rng, _n: 0.21 if "vat" in lower else 0.0
    if lower in ("exchangerate", "rate", "ratefc"):
        return lambda _rng, _n: 1.0
    if lower == "latitude":
        return lambda _rng, n: round(51.0 + n % 20 / 10, 4)
    if lower == "longitude":
        return lambda _rng, n: round(4.0 + n % 25 / 10, 4)
    if lower in ("probability",):
        return lambda _rng, n: (0.25, 0.5, 0.75)[n % 3]
    if "quantity" in lower or lower in ("stock", "instock", "currentstock", "freestock"):
        return lambda _rng, n: float(n % 9 + 1)
    if "precision" in lower:
        return lambda _rng, _n: 0.01
    return lambda rng, _n: round(rng.uniform(5, 950), 2)


def _maker(name: str, type_: str, names: frozenset[str]) -> Maker:
    if type_ == "bool":
        return lambda _rng, n: (n + len(name)) % 3 == 0
    if type_ == "int":
        return _int_maker(name)
    if type_ == "float":
        return _float_maker(name)
    return _string_maker(name, names)


@functools.cache
def _makers(path: str) -> tuple[tuple[str, Maker], ...]:
    fields = [(n, t) for n, t in fields_of(path) if t in ("string", "int", "float", "bool")]
    names = frozenset(n for n, _ in fields)
    return tuple((n, _maker(n, t, names)) for n, t in fields)


def filler(entity: Entity, rng: random.Random, n: int) -> dict[str, Any]:
    """A value for every stored field of the entity's resource."""
    return {name: make(rng, n) for name, make in _makers(entity.path)}


def link(row: dict[str, Any], field: str, target: Mapping[str, Any] | None, key: str = "ID") -> None:
    """Point `field` at a real record, with the companions the resource has (`AccountName`, `ItemCode`, ...)."""
    row[field] = target[key] if target else None
    for suffix, source in _COMPANIONS:
        companion = f"{field}{suffix}"
        if companion in row:
            row[companion] = (target.get(source) or target.get("Name") or target.get("Description")) if target else None
