"""Deterministic seed data: three divisions, one user, reference data, accounts, contacts, items, then every topic.

Divisions 101 and 202 hold records of every topic (`seed_flat`, `seed_docs`) and, after all of those, what postings
are checked against and name (`seed_ledger`, `seed_postings`); 303 is archived and holds what it
always held (reference data, accounts, contacts, items, a few invoices and purchase orders). Every record has a
value for every field of its resource (`values`), linked to real records where a field names one. A division added
later (`seed_division`, the control API's `POST /_sandbox/divisions`) is seeded as 101 and 202 are.
"""

from __future__ import annotations

import random
from typing import Any

from sandbox import seed_docs, seed_flat, seed_ledger, seed_postings, values
from sandbox.entities import ACCOUNTS, CONTACTS, CURRENCIES, GL_ACCOUNTS, ITEMS, VAT_CODES
from sandbox.seed_pool import Pool, SeedTarget

__all__ = ["SeedTarget", "seed_division", "seed_store"]

_VAT = {
    101: (("1", "BTW 21% incl.", 0.21, False), ("2", "BTW 21%", 0.21, True), ("5", "BTW 9%", 0.09, False)),
    202: (("2", "BTW 21%", 0.21, True), ("5", "BTW 9%", 0.09, False)),
}
_CURRENCIES = {101: (("EUR", "Euro"), ("USD", "Amerikaanse dollar")), 202: (("EUR", "Euro"),), 303: (("EUR", "Euro"),)}
_GL = (
    ("8000", "Omzet", 110, "Opbrengsten"),
    ("1300", "Debiteuren", 20, "Debiteuren"),
    ("4000", "Inkoop", 111, "Kostprijs omzet"),
    ("1600", "Crediteuren", 22, "Crediteuren"),
    ("1100", "Bank", 12, "Bank"),
    ("1000", "Kas", 10, "Kas"),
)


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
    pools = {division: Pool(store, division) for division in (101, 202, 303)}
    for division, pool in pools.items():
        # Order matters: every record draws its values from the seeded `store.rng`.
        _seed_base(pool)
        if division == 303:
            seed_docs.seed_archived(pool)
            continue
        seed_flat.seed(pool)
        seed_docs.seed(pool)
    # Issue 18's records come after all the older ones, so those keep their values.
    for division in (101, 202):
        seed_ledger.seed(pools[division])
        seed_postings.seed(pools[division])


def seed_division(store: SeedTarget, code: int, rng: random.Random, **fields: Any) -> None:
    """Division `code`, active and granted to no one yet, seeded as 101 and 202 are. It draws from `rng`, not the
    store's, so the same division is the same in every sandbox and the ids drawn after it stay as they were."""
    store.add_division(code, **fields)
    pool = Pool(store, code)
    pool.rng = rng
    _seed_base(pool)
    seed_flat.seed(pool)
    seed_docs.seed(pool)
    seed_ledger.seed(pool)
    seed_postings.seed(pool)


def _seed_base(pool: Pool) -> None:
    _seed_reference(pool)
    _seed_accounts(pool)
    _seed_contacts(pool)
    _backfill(pool)
    _seed_items(pool)


def _seed_reference(pool: Pool) -> None:
    for code, description in _CURRENCIES.get(pool.division, _CURRENCIES[202]):
        pool.add(CURRENCIES, 0, Code=code, Description=description, AmountPrecision=0.01, PricePrecision=0.0001)
    for n, (code, description, percentage, is_default) in enumerate(_VAT.get(pool.division, _VAT[202])):
        row = pool.add(VAT_CODES, n, Code=code, Description=description, Percentage=percentage, IsBlocked=False)
        row["_default"] = is_default  # hidden: not a field of the resource (see quirks.default_vat_code)
        pool.vat[code] = row
    for n, (code, description, type_, type_description) in enumerate(_GL):
        fields: dict[str, Any] = {"Code": code, "Description": description, "Type": type_}
        fields["TypeDescription"] = type_description
        pool.gl[code] = pool.add(GL_ACCOUNTS, n, BalanceSide="C" if type_ >= 100 else "D", **fields)


def _seed_accounts(pool: Pool) -> None:
    country = "BE" if pool.division == 202 else "NL"
    for n in range(1, 31):
        supplier = n % 3 == 0
        fields = {
            "Code": str(1000 + n).rjust(18),
            "Name": f"{values.NAMES[n % len(values.NAMES)]} {n}",
            "Email": f"info{n}@example.nl",
            "City": values.CITIES[pool.rng.randrange(len(values.CITIES))],
            "Country": country,
            "CountryName": "België" if country == "BE" else "Nederland",
            "IsSupplier": supplier,
            "IsSales": not supplier,
            "Status": "C",
            "Blocked": False,
        }
        row = pool.add(ACCOUNTS, n, kind="accounts", **fields)
        pool.kind("suppliers" if supplier else "customers").append(row)


def _seed_contacts(pool: Pool) -> None:
    for n in range(1, 21):
        account = pool.kind("accounts")[n % 30]
        first, last = f"Contact{n}", values.NAMES[n % len(values.NAMES)]
        middle = ("van", "de", "ter")[n % 3]
        fields = {"FirstName": first, "MiddleName": middle, "LastName": last, "FullName": f"{first} {middle} {last}"}
        contact = pool.add(CONTACTS, n, kind="contacts", **fields)
        values.link(contact, "Account", account)
        contact["AccountIsCustomer"], contact["AccountIsSupplier"] = account["IsSales"], account["IsSupplier"]


def _backfill(pool: Pool) -> None:
    """Links to records seeded after the one that names them: an account's main contact, a VAT code's account."""
    contacts = pool.kind("contacts")
    for n, account in enumerate(pool.kind("accounts")):
        own = [c for c in contacts if c["Account"] == account["ID"]]
        values.link(account, "MainContact", (own or contacts)[0 if own else n % len(contacts)])
        values.link(account, "InvoiceAccount", account)
    for vat in pool.vat.values():
        values.link(vat, "Account", pool.kind("suppliers")[0])


def _seed_items(pool: Pool) -> None:
    for n in range(1, 21):
        price = round(pool.rng.uniform(5, 500), 2)
        fields = {
            "Code": f"ITEM-{n:03d}",
            "Description": f"Onderdeel {n}",
            "StandardSalesPrice": price,
            "CostPriceStandard": round(price * 0.6, 2),
            "Unit": "pc",
            "UnitDescription": "Stuk",
            "IsSalesItem": True,
            "IsStockItem": True,
        }
        pool.add(ITEMS, n, kind="items", **fields)
