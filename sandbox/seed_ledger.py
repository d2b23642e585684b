"""Seed data the postings are checked against (issue 18): GL accounts of every type, customers and suppliers with
payment conditions and VAT and KvK numbers, journals, financial periods 2025–2026 and each journal's period status.

Added after every older seed, so the seeded rng draws of the older records stay as they were.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, datetime
from typing import Any

from sandbox import values
from sandbox.entities import ACCOUNTS, FINANCIAL_PERIODS, GL_ACCOUNTS, JOURNAL_STATUS, JOURNALS, PAYMENT_CONDITIONS
from sandbox.seed_pool import Pool

__all__ = ["CLOSED", "YEARS", "seed"]

YEARS = (2025, 2026)
_GL = (("1500", "Te betalen btw", 24), ("7000", "Kosten", 120), ("0100", "Inventaris", 30))
_CONDITIONS = (("30", "30 dagen", 30), ("14", "14 dagen", 14), ("00", "Contant", 0))
# (code, description, type, AllowVAT, the journal's GL account)
_JOURNALS = (
    ("70", "Verkoopboek", 20, True, "1300"),
    ("60", "Inkoopboek", 22, True, "1600"),
    ("90", "Memoriaal", 90, False, "8000"),
    ("91", "Memoriaal btw", 90, True, "8000"),
    ("20", "Bank", 12, False, "1100"),
    ("10", "Kas", 10, False, "1000"),
)
_JOURNAL_TYPES = {10: "Kas", 12: "Bank", 20: "Verkoop", 22: "Inkoop", 90: "Memoriaal"}
# Division → (journal or None for every journal, year, period) closed; all other periods are open.
CLOSED: dict[int, tuple[tuple[str | None, int, int], ...]] = {
    101: (*((None, 2025, p) for p in range(1, 7)), ("90", 2026, 1)),
    202: tuple((None, 2025, p) for p in range(1, 7)),
}
_NUMBERS = {
    "1002": ("NL 8123.45.678.B01", "12.34.56.78"),
    "1005": ("NL001234567B02", "87654321"),
    "1007": ("NL999999999B01", None),
    "1008": ("NL999999999B01", None),
}


def seed(pool: Pool) -> None:
    _gl_accounts(pool)
    _payment_conditions(pool)
    _accounts(pool)
    _journals(pool)
    _periods(pool)


def _gl_accounts(pool: Pool) -> None:
    for n, (code, description, type_) in enumerate(_GL, start=10):
        fields: dict[str, Any] = {"Code": code, "Description": description, "Type": type_}
        fields.update(TypeDescription=description, BalanceSide="C" if type_ >= 100 else "D")
        pool.gl[code] = pool.add(GL_ACCOUNTS, n, **fields)


def _payment_conditions(pool: Pool) -> None:
    for n, (code, description, days) in enumerate(_CONDITIONS, start=1):
        fields = {"Code": code, "Description": description, "PaymentDays": days, "PaymentEndOfMonths": 0}
        pool.add(PAYMENT_CONDITIONS, n, kind="payment_conditions", DiscountPaymentDays=0, **fields)


def _terms(row: dict[str, Any], sales: str, purchase: str) -> None:
    descriptions = {code: description for code, description, _ in _CONDITIONS}
    row["PaymentConditionSales"], row["PaymentConditionSalesDescription"] = sales, descriptions.get(sales, "")
    row["PaymentConditionPurchase"] = purchase
    row["PaymentConditionPurchaseDescription"] = descriptions.get(purchase, "")


def _accounts(pool: Pool) -> None:
    """Payment conditions and numbers on the older accounts (values set, no draw), then a prospect and a customer
    without a payment condition (kept out of the pool: nothing else links to them)."""
    for account in pool.kind("accounts"):
        _terms(account, "30", "30" if account["IsSupplier"] else "")
        vat, kvk = _NUMBERS.get(account["Code"].strip(), (None, None))
        account["VATNumber"] = vat or account["VATNumber"]
        account["ChamberOfCommerce"] = kvk or account["ChamberOfCommerce"]
    country = "BE" if pool.division == 202 else "NL"
    for n, (code, name, status, sales) in enumerate(
        (("1031", "Prospect BV", "P", "30"), ("1032", "Zonder Conditie BV", "C", "")), start=31
    ):
        fields: dict[str, Any] = {
            "Code": code.rjust(18),
            "Name": name,
            "Status": status,
            "IsSupplier": False,
            "IsSales": status == "C",
        }
        fields.update(Country=country, CountryName="België" if country == "BE" else "Nederland", Blocked=False)
        row = pool.add(ACCOUNTS, n, **fields)
        _terms(row, sales, "")
        values.link(row, "InvoiceAccount", row)


def _journals(pool: Pool) -> None:
    for n, (code, description, type_, allow_vat, gl_code) in enumerate(_JOURNALS, start=1):
        fields: dict[str, Any] = {
            "Code": code,
            "Description": description,
            "Type": type_,
            "AllowVAT": allow_vat,
            "IsBlocked": False,
        }
        row = pool.add(JOURNALS, n, kind="journals", Currency="EUR", **fields)
        gl = pool.gl[gl_code]
        values.link(row, "GLAccount", gl)
        row["GLAccountType"] = gl["Type"]


def _periods(pool: Pool) -> None:
    closed = CLOSED.get(pool.division, ())
    for year in YEARS:
        for period in range(1, 13):
            start = datetime(year, period, 1, tzinfo=UTC)
            end = datetime(year, period, monthrange(year, period)[1], tzinfo=UTC)
            period_fields: dict[str, Any] = {"FinYear": year, "FinPeriod": period, "StartDate": start, "EndDate": end}
            pool.add(FINANCIAL_PERIODS, year * 100 + period, **period_fields)
            for journal in pool.kind("journals"):
                shut = any(j in (None, journal["Code"]) and (y, p) == (year, period) for j, y, p in closed)
                fields: dict[str, Any] = {
                    "Journal": journal["Code"],
                    "Year": year,
                    "Period": period,
                    "Status": int(shut),
                }
                fields.update(JournalDescription=journal["Description"], JournalType=journal["Type"])
                fields["JournalTypeDescription"] = _JOURNAL_TYPES[journal["Type"]]
                fields["StatusDescription"] = "Afgesloten" if shut else "Open"
                pool.add(JOURNAL_STATUS, period, **fields)
