"""The postings Exact refuses, each rule a function: no journal, no financial year for the date, a closed period,
an unbalanced entry, an account that is no customer or supplier, a GL account of a control type, a VAT code on a
journal without VAT, no payment condition, an entry number in use. Exact's own texts; the first failing rule wins.

The data plane asks `refusal` before a POST or PUT of a header writes anything. A quantity over what is open on an
order line is no refusal: Exact books it (see `bookings.deliver`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox import bookings, documents, quirks
from sandbox.entities import (
    GENERAL_JOURNAL_ENTRIES,
    GL_ACCOUNTS,
    GOODS_RECEIPTS,
    PURCHASE_ENTRIES,
    PURCHASE_INVOICES,
    PURCHASE_ORDERS,
    SALES_ENTRIES,
    SALES_INVOICES,
    SALES_ORDERS,
    Entity,
)

__all__ = ["CONTROL_GL_TYPES", "Posting", "refusal"]

Row = dict[str, Any]
# Cash, bank, card, payment service; receivables; payables; VAT: Exact books these itself, never on an entry line.
CONTROL_GL_TYPES = frozenset({10, 12, 14, 16, 20, 22, 24})


@dataclass(frozen=True)
class Posting:
    """A write of a header as the rules see it: its body, its lines and where the entity keeps what they check."""

    store: documents.Store
    division: int
    entity: Entity
    body: Row
    lines: list[Row]
    key: str | None = None  # the record a PUT replaces
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def journal_code(self) -> str | None:
        value = self.body.get(self.spec.get("journal", ""))
        return str(value) if value not in (None, "") else None

    def dates(self) -> list[datetime]:
        """The dates the entry is booked on (a GJE: its lines'); none given: Exact takes today, so no check."""
        raw = (
            [x.get("Date") for x in self.lines]
            if self.spec.get("date") == "lines"
            else [self.body.get(self.spec.get("date", ""))]
        )
        dates: list[datetime] = []
        for value in raw:
            try:
                parsed = quirks.parse_write_date(value)
            except ValueError:
                continue  # the store refuses it with its own message
            if parsed is not None:
                dates.append(parsed)
        return dates


Rule = Callable[[Posting], "str | None"]


def journal_required(posting: Posting) -> str | None:
    return "Verplicht: Dagboek" if posting.journal_code is None else None


def financial_period(posting: Posting) -> str | None:
    store, division = posting.store, posting.division
    if any(bookings.period_of(store, division, d) is None for d in posting.dates()):
        return "Unknown: Fiscal year"
    return None


def period_open(posting: Posting) -> str | None:
    code = posting.journal_code
    if code is None:
        return None
    for day in posting.dates():
        found = bookings.period_of(posting.store, posting.division, day)
        if found and bookings.period_closed(posting.store, posting.division, code, *found):
            return "Periode is afgesloten"
    return None


def balanced(posting: Posting) -> str | None:
    total = sum(float(x.get("AmountDC", x.get("AmountFC")) or 0) for x in posting.lines)
    return "BTW verschil (boeking niet in evenwicht)" if round(total, 2) != 0 else None


def _accounts(posting: Posting, role: str) -> list[Row]:
    found = (bookings.account(posting.store, posting.division, posting.body.get(f)) for f in posting.spec.get(role, ()))
    return [a for a in found if a is not None]


def customer(posting: Posting) -> str | None:
    # An account the division lacks is a phantom link (written as null, like Exact); one it has must be a customer.
    if any(a.get("Status") != "C" for a in _accounts(posting, "customer")):
        return "Ongeldig: Klant (Type)"
    return None


def supplier(posting: Posting) -> str | None:
    if any(not a.get("IsSupplier") for a in _accounts(posting, "supplier")):
        return "Ongeldig: Leverancier (type)"
    return None


def gl_type(posting: Posting) -> str | None:
    table = posting.store.table(posting.division, GL_ACCOUNTS.path)
    for line in posting.lines:
        gl = table.get(quirks.guid_of(line.get("GLAccount")) or "")
        if gl is not None and gl.get("Type") in CONTROL_GL_TYPES:
            return f"Ledger account {str(gl['Code']).strip()} is of a wrong type"
    return None


def journal_vat(posting: Posting) -> str | None:
    journal = bookings.journal(posting.store, posting.division, posting.journal_code)
    if journal is not None and not journal.get("AllowVAT") and any(x.get("VATCode") for x in posting.lines):
        return "Niet toegestaan: Btw-code"
    return None


def payment_condition(posting: Posting) -> str | None:
    if posting.body.get("PaymentCondition"):
        return None
    accounts = _accounts(posting, "customer")
    if accounts and not accounts[0].get("PaymentConditionSales"):
        return "Verplicht: Betalingsconditie"
    return None


def entry_number(posting: Posting) -> str | None:
    number, code = posting.body.get("EntryNumber"), posting.journal_code
    if number is None or code is None:
        return None
    used = bookings.entry_numbers(posting.store, posting.division, code, but=posting.key)
    return "In gebruik: Boekstuknummer" if int(number) in used else None


_ENTRY = (journal_required, financial_period, period_open)
# header path → (where its journal, date and accounts are, the rules in Exact's order)
_RULES: dict[str, tuple[dict[str, Any], tuple[Rule, ...]]] = {
    GENERAL_JOURNAL_ENTRIES.path: (
        {"journal": "JournalCode", "date": "lines"},
        (*_ENTRY, balanced, gl_type, journal_vat, entry_number),
    ),
    SALES_ENTRIES.path: (
        {"journal": "Journal", "date": "EntryDate", "customer": ("Customer",)},
        (*_ENTRY, customer, gl_type, journal_vat, payment_condition, entry_number),
    ),
    PURCHASE_ENTRIES.path: (
        {"journal": "Journal", "date": "EntryDate", "supplier": ("Supplier",)},
        (*_ENTRY, supplier, gl_type, journal_vat, entry_number),
    ),
    SALES_INVOICES.path: (
        {"journal": "Journal", "date": "InvoiceDate", "customer": ("InvoiceTo", "OrderedBy")},
        (financial_period, period_open, customer, payment_condition),
    ),
    PURCHASE_INVOICES.path: (
        {"journal": "Journal", "date": "InvoiceDate", "supplier": ("Supplier",)},
        (financial_period, period_open, supplier),
    ),
    SALES_ORDERS.path: ({"customer": ("OrderedBy",)}, (customer,)),
    PURCHASE_ORDERS.path: ({"supplier": ("Supplier",)}, (supplier,)),
    GOODS_RECEIPTS.path: ({"supplier": ("Supplier",)}, (supplier,)),
}


def refusal(store: documents.Store, division: int, entity: Entity, body: Row, *, key: str | None = None) -> str | None:
    """Exact's message for a header write it refuses, or None. A PUT without lines is checked with the stored ones."""
    if entity.path not in _RULES:
        return None
    spec, rules = _RULES[entity.path]
    raw = body.get(entity.lines or "")
    if raw is None and key is not None:
        lines = documents.lines_of(store, division, entity, quirks.guid_of(key) or key)
    else:
        lines = [x for x in raw or [] if isinstance(x, dict)]
    posting = Posting(store, division, entity, body, lines, key and (quirks.guid_of(key) or key), spec)
    return next((message for rule in rules if (message := rule(posting)) is not None), None)
