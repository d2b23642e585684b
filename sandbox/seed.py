"""Deterministic seed data: three divisions, one user, reference data and a few hundred records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.entities import (
    ACCOUNTS,
    CONTACTS,
    CURRENCIES,
    GL_ACCOUNTS,
    ITEMS,
    PURCHASE_ORDERS,
    SALES_INVOICES,
    VAT_CODES,
)

if TYPE_CHECKING:
    from sandbox.store import Store

__all__ = ["seed_store"]

_CITIES = ("Amsterdam", "Rotterdam", "Utrecht", "Arnhem", "Gent", "Antwerpen", "Zwolle", "Leuven")
_NAMES = ("Bakker", "Jansen", "de Vries", "Peeters", "Visser", "Smit", "Maes", "O'Brien", "Müller & Zn", "Dubois")
_VAT = {
    101: (("1", "BTW 21% incl.", 21.0, False), ("2", "BTW 21%", 21.0, True), ("5", "BTW 9%", 9.0, False)),
    202: (("2", "BTW 21%", 21.0, True), ("5", "BTW 9%", 9.0, False)),
}
_CURRENCIES = {101: ("EUR", "USD"), 202: ("EUR",), 303: ("EUR",)}
_GL = (("8000", "Omzet", 110), ("1300", "Debiteuren", 20), ("4000", "Inkoop", 111), ("1600", "Crediteuren", 22))


def seed_store(store: Store) -> None:
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


def _seed_division(store: Store, division: int) -> None:
    rng = store.rng
    for code in _CURRENCIES[division]:
        store.create(division, CURRENCIES, {"Code": code, "Description": code}, emit=False)
    for code, description, percentage, is_default in _VAT.get(division, _VAT[202]):
        body = {"Code": code, "Description": description, "Percentage": percentage, "IsDefault": is_default}
        store.create(division, VAT_CODES, body, emit=False)
    for code, description, type_ in _GL:
        body = {"Code": code, "Description": description, "Type": type_}
        store.create(division, GL_ACCOUNTS, body, emit=False)
    accounts = []
    for n in range(1, 31):
        body = {
            "Code": str(1000 + n),
            "Name": f"{_NAMES[n % len(_NAMES)]} {n}",
            "Email": f"info{n}@example.nl",
            "City": _CITIES[rng.randrange(len(_CITIES))],
            "Country": "NL" if division != 202 else "BE",
            "IsSupplier": n % 3 == 0,
            "IsCustomer": n % 3 != 0,
            "Status": "C",
        }
        accounts.append(store.create(division, ACCOUNTS, body, emit=False))
    for n in range(1, 21):
        account = accounts[n % len(accounts)]
        body = {"Account": account["ID"], "FirstName": f"Contact{n}", "LastName": _NAMES[n % len(_NAMES)]}
        store.create(division, CONTACTS, body, emit=False)
    items = []
    for n in range(1, 21):
        price = round(rng.uniform(5, 500), 2)
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
