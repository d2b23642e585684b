"""Seed records of the flat topics: projects, opportunities, subscriptions, bank accounts, prices, documents,
stock positions, time and cost transactions (a handful each, linked to the division's accounts and items)."""

from __future__ import annotations

from sandbox.entities import (
    BANK_ACCOUNTS,
    COST_TRANSACTIONS,
    DOCUMENTS,
    OPPORTUNITIES,
    PROJECTS,
    SALES_ITEM_PRICES,
    STOCK_POSITIONS,
    SUBSCRIPTIONS,
    TIME_TRANSACTIONS,
)
from sandbox.seed_pool import Pool

__all__ = ["seed"]

_PROJECTS = ("Renovatie kantoor Arnhem", "Nieuwbouw school Gent", "Onderhoud zwembad Zwolle", "Warmtepompen Leuven")
_STAGES = (("Offerte", 0.25), ("Onderhandeling", 0.5), ("Gewonnen", 1.0), ("Verloren", 0.0))


def seed(pool: Pool) -> None:
    _projects(pool)
    _opportunities(pool)
    _subscriptions(pool)
    _bank_accounts(pool)
    _prices(pool)
    _documents(pool)
    _stock_positions(pool)
    _hours_and_costs(pool)


def _projects(pool: Pool) -> None:
    for n, description in enumerate(_PROJECTS, start=1):
        fields = {"Code": f"P{pool.division}-{n:03d}", "Description": description, "Type": 2, "BudgetType": 1}
        pool.add(PROJECTS, n, kind="projects", TypeDescription="Vaste prijs", BudgetTypeDescription="Uren", **fields)


def _opportunities(pool: Pool) -> None:
    for n, (stage, probability) in enumerate(_STAGES, start=1):
        fields = {"Name": f"Kans {n}: {_PROJECTS[n % 4]}", "OpportunityStageDescription": stage}
        pool.add(OPPORTUNITIES, n, kind="opportunities", Probability=probability, OpportunityStatus=n % 3 + 1, **fields)


def _subscriptions(pool: Pool) -> None:
    for n in range(1, 4):
        fields = {"Number": 100 + n, "Description": f"Onderhoudscontract {n}", "BlockEntry": False}
        pool.add(SUBSCRIPTIONS, n, kind="subscriptions", InvoiceDay=1, Printed=n % 2 == 0, **fields)


def _bank_accounts(pool: Pool) -> None:
    for n, account in enumerate(pool.kind("accounts")[:5], start=1):
        row = pool.add(BANK_ACCOUNTS, n, Main=True, Blocked=False, Type="B", TypeDescription="Bank", Format="IBAN")
        row["Account"], row["AccountName"] = account["ID"], account["Name"]
        row["BankAccountHolderName"] = account["Name"]


def _prices(pool: Pool) -> None:
    for n, item in enumerate(pool.kind("items")[:6], start=1):
        row = pool.add(SALES_ITEM_PRICES, n, Price=item["StandardSalesPrice"], Currency="EUR", Quantity=1.0)
        row.update(Item=item["ID"], ItemCode=item["Code"], ItemDescription=item["Description"], Unit="pc")


def _documents(pool: Pool) -> None:
    for n in range(1, 5):
        pool.add(DOCUMENTS, n, Subject=f"Werkbon {n}", Type=10, TypeDescription="Werkbon", HasEmptyBody=False)


def _stock_positions(pool: Pool) -> None:
    for n, item in enumerate(pool.kind("items")[:8], start=1):
        row = pool.add(STOCK_POSITIONS, n, CurrentStock=float(10 * n), ReorderPoint=5.0)
        row.update(ItemId=item["ID"], ItemCode=item["Code"], ItemDescription=item["Description"], UnitCode="pc")
        row["ReservedStock"] = float(n % 3)
        row["FreeStock"] = row["CurrentStock"] - row["ReservedStock"]


def _hours_and_costs(pool: Pool) -> None:
    for n in range(1, 6):
        hours = float(n % 4 + 1)
        pool.add(
            TIME_TRANSACTIONS,
            n,
            kind="time_transactions",
            Quantity=hours,
            PriceFC=75.0,
            AmountFC=hours * 75.0,
            HourStatus=20,
        )
    for n in range(1, 5):
        pool.add(COST_TRANSACTIONS, n, Quantity=1.0, PriceFC=45.5 * n, AmountFC=45.5 * n, HourStatus=20)
