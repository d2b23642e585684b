"""Deterministic seed data: three divisions, one user, reference data and a few hundred records."""

from __future__ import annotations

import random
from typing import Any, Protocol

from sandbox.entities import (
    ACCOUNTS,
    CONTACTS,
    CURRENCIES,
    GL_ACCOUNTS,
    ITEMS,
    PURCHASE_ORDERS,
    SALES_INVOICES,
    VAT_CODES,
    Entity,
)

__all__ = ["SeedTarget", "seed_store"]

_CITIES = ("Amsterdam", "Rotterdam", "Utrecht", "Arnhem", "Gent", "Antwerpen", "Zwolle", "Leuven")
_NAMES = ("Bakker", "Jansen", "de Vries", "Peeters", "Visser", "Smit", "Maes", "O'Brien", "Müller & Zn", "Dubois")
_VAT = {
    101: (("1", "BTW 21% incl.", 21.0, False), ("2", "BTW 21%", 21.0, True), ("5", "BTW 9%", 9.0, False)),
    202: (("2", "BTW 21%", 21.0, True), ("5", "BTW 9%", 9.0, False)),
}
_CURRENCIES = {101: ("EUR", "USD"), 202: ("EUR",), 303: ("EUR",)}
_GL = (("8000", "Omzet", 110), ("1300", "Debiteuren", 20), ("4000", "Inkoop", 111), ("1600", "Crediteuren", 22))


Row = dict[str, Any]


class SeedTarget(Protocol):
    """The store's writes the seed needs (a protocol, so the store can seed itself without an import cycle)."""

    rng: random.Random
    default_user_id: str

    def add_division(self, code: int, **fields: Any) -> None: ...

    def add_user(self, user_id: str, granted: set[int], **fields: Any) -> None: ...

    def create(self, division: int, entity: Entity, body: Row, *, emit: bool = True) -> Row: ...

    def rows(self, division: int, entity: Entity) -> list[Row]: ...


def seed_store(store: SeedTarget) -> None:
    store.add_division(101, Description="Installatiegroep Arnhem BV", Country="NL", IsMainDivision=True, Current=True)
    store.add_division(202, Description="Installatiegroep België BV", Country="BE")
    store.add_division(303, Description="Oude administratie (gearchiveerd)", Country="NL", Status=2)
    store.add_user(
        store.default_user_id,
        {101, 202, 303},
        FullName="Sandra Sandbox",
        UserName="sandra@example.nl",
        Email="sandra@example.nl",
        CurrentDivision=101,
        Language="NL",
        LanguageCode="nl-NL",
        Legislation=1,
        ServerUtcOffset=3600,
    )
    for division in (101, 202, 303):
        _seed_division(store, division)


def _seed_division(store: SeedTarget, division: int) -> None:
    # Order matters: every record draws its ID from the seeded `store.rng`.
    _seed_reference(store, division)
    accounts = _seed_accounts(store, division)
    _seed_contacts(store, division, accounts)
    items = _seed_items(store, division)
    _seed_invoices(store, division, accounts, items)
    _seed_orders(store, division, accounts, items)


def _seed_reference(store: SeedTarget, division: int) -> None:
    for code in _CURRENCIES[division]:
        store.create(division, CURRENCIES, {"Code": code, "Description": code}, emit=False)
    for code, description, percentage, is_default in _VAT.get(division, _VAT[202]):
        body = {"Code": code, "Description": description, "Percentage": percentage, "IsDefault": is_default}
        store.create(division, VAT_CODES, body, emit=False)
    for code, description, type_ in _GL:
        body = {"Code": code, "Description": description, "Type": type_}
        store.create(division, GL_ACCOUNTS, body, emit=False)


def _seed_accounts(store: SeedTarget, division: int) -> list[Row]:
    accounts: list[Row] = []
    for n in range(1, 31):
        body = {
            "Code": str(1000 + n),
            "Name": f"{_NAMES[n % len(_NAMES)]} {n}",
            "Email": f"info{n}@example.nl",
            "City": _CITIES[store.rng.randrange(len(_CITIES))],
            "Country": "NL" if division != 202 else "BE",
            "IsSupplier": n % 3 == 0,
            "IsCustomer": n % 3 != 0,
            "Status": "C",
        }
        accounts.append(store.create(division, ACCOUNTS, body, emit=False))
    return accounts


def _seed_contacts(store: SeedTarget, division: int, accounts: list[Row]) -> None:
    for n in range(1, 21):
        account = accounts[n % len(accounts)]
        body = {"Account": account["ID"], "FirstName": f"Contact{n}", "LastName": _NAMES[n % len(_NAMES)]}
        store.create(division, CONTACTS, body, emit=False)


def _seed_items(store: SeedTarget, division: int) -> list[Row]:
    items = []
    for n in range(1, 21):
        price = round(store.rng.uniform(5, 500), 2)
        body = {
            "Code": f"ITEM-{n:03d}",
            "Description": f"Onderdeel {n}",
            "SalesPrice": price,
            "CostPriceStandard": round(price * 0.6, 2),
            "Unit": "pc",
            "IsSalesItem": True,
            "IsStockItem": True,
        }
        items.append(store.create(division, ITEMS, body, emit=False))
    return items


def _seed_invoices(store: SeedTarget, division: int, accounts: list[Row], items: list[Row]) -> None:
    gl_sales = next(r for r in store.rows(division, GL_ACCOUNTS) if r["Code"] == "8000")
    for n in range(1, 6):
        lines = [
            {
                "Item": items[n]["ID"],
                "Quantity": n,
                "UnitPrice": items[n]["SalesPrice"],
                "VATCode": "2",
                "GLAccount": gl_sales["ID"],
                "Description": items[n]["Description"],
            }
        ]
        body = {
            "InvoiceTo": accounts[n]["ID"],
            "Currency": "EUR",
            "InvoiceDate": f"2026-01-0{n}T00:00:00",
            "Description": f"Factuur {n}",
            "Status": 20,
            "SalesInvoiceLines": lines,
        }
        store.create(division, SALES_INVOICES, body, emit=False)


def _seed_orders(store: SeedTarget, division: int, accounts: list[Row], items: list[Row]) -> None:
    for n in range(1, 4):
        lines = [{"Item": items[n]["ID"], "Quantity": 2 * n, "UnitPrice": 10.0, "VATCode": "2"}]
        body = {
            "Supplier": accounts[3 * n - 1]["ID"],
            "Currency": "EUR",
            "OrderDate": "2026-02-01T00:00:00",
            "Description": f"Inkooporder {n}",
            "PurchaseOrderLines": lines,
        }
        store.create(division, PURCHASE_ORDERS, body, emit=False)
