"""Pre-flight checks: what Exact refuses (or books wrongly) after a post, asked of the target division before it.

Each check is one small function over the write as it will be sent (references resolved, dates ISO 8601); the first
that fails raises `PreflightFailed` naming the check, the reason and the values. Reads are list queries with
`$filter` and `$select` (a GET by key answers 404 for a missing record, and 404s count towards Exact's block of the
endpoint), cached per division for `ttl`; what a write changes (an order line's open quantity, the entry numbers
taken) is read afresh every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from exact._catalogue import CATALOGUE, WriteSpec
from exact._dates import parse_date
from exact._exceptions import PreflightFailed
from exact._odata import Query, guid_literal, string_literal
from exact._references import is_guid

if TYPE_CHECKING:
    from exact._client import ExactClient
    from exact._references import References

__all__ = ["CONTROL_TYPES", "LOOKUP_ROLES", "Preflight"]

# GL account types an entry line cannot book to: Exact keeps them for its own postings.
CONTROL_TYPES = {
    10: "cash",
    12: "bank",
    14: "credit card",
    16: "payment service provider",
    20: "accounts receivable",
    22: "accounts payable",
    24: "VAT",
}
# The roles each `[lookup.*]` of exact/catalogue.toml must name (tests/exact/catalogue_check.py holds them).
LOOKUP_ROLES: dict[str, tuple[str, ...]] = {
    "journal": ("code", "type", "allow_vat", "description"),
    "financial_period": ("year", "period", "start", "end"),
    "journal_status": ("journal", "year", "period", "status"),
    "gl_account": ("key", "code", "type", "description"),
    "entry_number": ("journal", "entry_number"),
    "account": ("key", "code", "name", "status", "supplier", "payment_condition"),
    "sales_order_line": ("key", "ordered", "done"),
    "purchase_order_line": ("key", "ordered", "done"),
}
_CLOSED = 1
_CENT = Decimal("0.01")

Row = dict[str, Any]  # a lookup's record by role


@dataclass(frozen=True)
class _Write:
    """The write under check."""

    division: int
    spec: WriteSpec
    body: Mapping[str, Any]
    lines: Sequence[Mapping[str, Any]]

    def header(self, role: str) -> Any:
        """The body's value of the (first) field playing `role`, None if absent or blank."""
        for name in self.spec.check_fields.named(role):
            value = self.body.get(name)
            if value not in (None, ""):
                return value
        return None

    def line_values(self, role: str) -> list[tuple[int, Any]]:
        """(line number, value) of each line with a value for `role` (the first of its fields a line has)."""
        found = []
        for number, line in enumerate(self.lines, start=1):
            value = next((line[n] for n in self.spec.check_fields.named(role) if line.get(n) not in (None, "")), None)
            if value is not None:
                found.append((number, value))
        return found

    def dates(self) -> list[tuple[int | None, date]]:
        """The booking dates: the header's, or each line's (line number, date)."""
        header = self.header("date")
        found = [(None, header)] if header is not None else self.line_values("line_date")
        dates: list[tuple[int | None, date]] = []
        for line, value in found:
            try:
                dates.append((line, parse_date(str(value)).date()))
            except ValueError:
                continue  # the Writer refuses a date it cannot read before this is asked
        return dates


class Preflight:
    """Checks a write against the target division before it is sent; raises `PreflightFailed` on the first failure.

    preflight = Preflight(client, References(client))
    preflight.check(101, SPECS["GeneralJournalEntry"], {"JournalCode": "90"}, [{"GLAccount": gl, "AmountDC": 10.0}])
    """

    def __init__(
        self,
        client: ExactClient,
        references: References,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # `references` keeps the Writer's shape: the body's references are resolved before it reaches `check`.
        del references
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[int, str, str], tuple[float, list[Row]]] = {}
        self._lock = threading.Lock()
        self._checks: dict[str, Callable[[_Write], None]] = {
            "journal_required": self._journal_required,
            "financial_period": self._financial_period,
            "period_open": self._period_open,
            "balanced": _balanced,
            "customer": self._customer,
            "supplier": self._supplier,
            "gl_type": self._gl_type,
            "journal_vat": self._journal_vat,
            "payment_condition": self._payment_condition,
            "entry_number": self._entry_number,
            "open_quantity": self._open_quantity,
        }

    def check(
        self,
        division: int,
        spec: WriteSpec,
        body: Mapping[str, Any],
        lines: Sequence[Mapping[str, Any]] | None,
    ) -> None:
        write = _Write(division, spec, body, lines or ())
        for name in spec.checks:
            self._checks[name](write)

    # -- the checks, in the order of exact._catalogue.CHECKS
    def _journal_required(self, w: _Write) -> None:
        if w.header("journal") is None:
            field = w.spec.check_fields.named("journal")[0]
            raise PreflightFailed("journal_required", f"no journal: {w.spec.name} needs {field}", {"field": field})

    def _financial_period(self, w: _Write) -> None:
        for line, day in w.dates():
            if self._period_of(w.division, day) is None:
                years = sorted({row["year"] for row in self._periods(w.division)})
                shown = ", ".join(str(y) for y in years) or "none"
                raise PreflightFailed(
                    "financial_period",
                    f"{_where(line)}date {day} is in no financial period of division {w.division} "
                    f"(financial years: {shown})",
                    {"date": day.isoformat(), "line": line, "financial_years": years},
                )

    def _period_open(self, w: _Write) -> None:
        journal = w.header("journal")
        if journal is None:
            return  # no journal named: Exact takes the default one, which this cannot know
        for line, day in w.dates():
            period = self._period_of(w.division, day)
            if period is not None and self._closed(w.division, str(journal), *period):
                year, number = period
                raise PreflightFailed(
                    "period_open",
                    f"{_where(line)}period {year}/{number} is closed for journal {journal} (date {day})",
                    {"journal": str(journal), "year": year, "period": number, "date": day.isoformat(), "line": line},
                )

    def _customer(self, w: _Write) -> None:
        for field, row in self._accounts(w, "customer"):
            if row["status"] != "C":
                raise PreflightFailed(
                    "customer",
                    f"{field}: account {_code(row)} ({row['name']}) is not a customer (Status {row['status']})",
                    {"field": field, "account": _code(row), "name": row["name"], "status": row["status"]},
                )

    def _supplier(self, w: _Write) -> None:
        for field, row in self._accounts(w, "supplier"):
            if row["supplier"] is not True:
                raise PreflightFailed(
                    "supplier",
                    f"{field}: account {_code(row)} ({row['name']}) is not a supplier "
                    f"(IsSupplier {_flag(row['supplier'])})",
                    {"field": field, "account": _code(row), "name": row["name"], "is_supplier": row["supplier"]},
                )

    def _gl_type(self, w: _Write) -> None:
        for line, key in w.line_values("gl_account"):
            row = (
                self._one(w.division, "gl_account", _key_filter("gl_account", str(key))) if is_guid(str(key)) else None
            )
            if row is not None and row["type"] in CONTROL_TYPES:
                raise PreflightFailed(
                    "gl_type",
                    f"line {line}: GL account {row['code']} is of type {row['type']} ({CONTROL_TYPES[row['type']]}), "
                    "which an entry line cannot book to",
                    {"line": line, "gl_account": row["code"], "type": row["type"]},
                )

    def _journal_vat(self, w: _Write) -> None:
        journal = w.header("journal")
        row = self._journal(w.division, str(journal)) if journal is not None else None
        if row is None or row["allow_vat"] is not False:
            return
        with_vat = w.line_values("vat_code")
        if with_vat:
            line, vat = with_vat[0]
            raise PreflightFailed(
                "journal_vat",
                f"line {line}: VAT code {vat} on journal {journal} ({row['description']}), which takes no VAT",
                {"line": line, "vat_code": str(vat), "journal": str(journal)},
            )

    def _payment_condition(self, w: _Write) -> None:
        if w.header("payment_condition") is not None:
            return
        accounts = self._accounts(w, "customer")
        if accounts and not accounts[0][1]["payment_condition"]:
            field, row = accounts[0]
            own = w.spec.check_fields.named("payment_condition")[0]
            default = CATALOGUE.lookups["account"].fields["payment_condition"]
            raise PreflightFailed(
                "payment_condition",
                f"no payment condition: {own} is empty and customer {_code(row)} ({row['name']}) has no {default}",
                {"field": own, "account": _code(row), "name": row["name"]},
            )

    def _entry_number(self, w: _Write) -> None:
        number, journal = w.header("entry_number"), w.header("journal")
        if number is None or journal is None:
            return
        # The journal's bookings, and this resource's own entries in case they are not booked yet.
        f = CATALOGUE.lookups["entry_number"].fields
        flt = _number_filter(f["journal"], f["entry_number"], journal, number)
        taken = self._one(w.division, "entry_number", flt, cached=False)
        if taken is None:
            [journal_field], [number_field] = (
                w.spec.check_fields.named("journal"),
                w.spec.check_fields.named("entry_number"),
            )
            query = Query(
                filter=_number_filter(journal_field, number_field, journal, number), select=[w.spec.key], top=1
            )
            taken = next(iter(self._client.iter_records(w.division, w.spec.path, query)), None)
        if taken is not None:
            raise PreflightFailed(
                "entry_number",
                f"entry number {number} is already used in journal {journal}",
                {"entry_number": int(number), "journal": str(journal)},
            )

    def _open_quantity(self, w: _Write) -> None:
        lines = w.spec.lines
        [field] = w.spec.check_fields.named("order_line")
        kind = lines.references[field] if lines is not None else ""
        quantities = dict(w.line_values("quantity"))
        wanted: dict[str, tuple[list[int], Decimal]] = {}
        for line, key in w.line_values("order_line"):
            if not is_guid(str(key)):
                continue
            numbers, total = wanted.get(str(key).lower(), ([], Decimal(0)))
            wanted[str(key).lower()] = ([*numbers, line], total + _decimal(quantities.get(line, 0)))
        for key, (numbers, total) in wanted.items():
            row = self._one(w.division, kind, _key_filter(kind, key), cached=False)
            if row is None:
                continue
            open_ = _decimal(row["ordered"] or 0) - _decimal(row["done"] or 0)
            if total > open_:
                label = "line" if len(numbers) == 1 else "lines"
                raise PreflightFailed(
                    "open_quantity",
                    f"{label} {', '.join(map(str, numbers))}: quantity {_shown(total)} over the {_shown(open_)} open "
                    f"on {kind.replace('_', ' ')} {key}",
                    {"lines": numbers, "order_line": key, "quantity": _plain(total), "open": _plain(open_)},
                )

    # -- what the checks read
    def _rows(self, division: int, name: str, flt: str | None, *, cached: bool = True) -> list[Row]:
        cache_key = (division, name, flt or "")
        now = self._clock()
        with self._lock:
            hit = self._cache.get(cache_key) if cached else None
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        lookup = CATALOGUE.lookups[name]
        query = Query(filter=flt, select=list(dict.fromkeys(lookup.fields.values())))
        records = self._client.iter_records(division, lookup.path, query)
        rows = [{role: record.get(f) for role, f in lookup.fields.items()} for record in records]
        if cached:
            with self._lock:
                self._cache[cache_key] = (now, rows)
        return rows

    def _one(self, division: int, name: str, flt: str, *, cached: bool = True) -> Row | None:
        return next(iter(self._rows(division, name, flt, cached=cached)), None)

    def _periods(self, division: int) -> list[Row]:
        year = CATALOGUE.lookups["financial_period"].fields["year"]
        return self._rows(division, "financial_period", f"{year} gt 0")  # all of them: a division has a few dozen

    def _period_of(self, division: int, day: date) -> tuple[int, int] | None:
        """(year, period) holding `day`; of two that touch it (an end given as the next start), the later one."""
        holding = [
            row
            for row in self._periods(division)
            if parse_date(row["start"]).date() <= day <= parse_date(row["end"]).date()
        ]
        if not holding:
            return None
        row = max(holding, key=lambda r: parse_date(r["start"]))
        return int(row["year"]), int(row["period"])

    def _closed(self, division: int, journal: str, year: int, period: int) -> bool:
        f = CATALOGUE.lookups["journal_status"].fields
        flt = f"{f['journal']} eq {string_literal(journal)} and {f['year']} eq {year} and {f['period']} eq {period}"
        return any(row["status"] == _CLOSED for row in self._rows(division, "journal_status", flt))

    def _journal(self, division: int, code: str) -> Row | None:
        return self._one(
            division, "journal", f"{CATALOGUE.lookups['journal'].fields['code']} eq {string_literal(code)}"
        )

    def _accounts(self, w: _Write, role: str) -> list[tuple[str, Row]]:
        """(field, account) for each field of `role` the body names."""
        found = []
        for field in w.spec.check_fields.named(role):
            value = w.body.get(field)
            row = self._one(w.division, "account", _key_filter("account", str(value))) if _guid(value) else None
            if row is not None:
                found.append((field, row))
        return found


def _balanced(w: _Write) -> None:
    amounts = [_decimal(v) for _, v in w.line_values("amount")]
    total = sum(amounts, Decimal(0)).quantize(_CENT, ROUND_HALF_UP)
    if total != 0:
        debit = sum((a for a in amounts if a > 0), Decimal(0))
        credit = -sum((a for a in amounts if a < 0), Decimal(0))
        raise PreflightFailed(
            "balanced",
            f"entry not balanced: lines sum to {total:.2f} (debit {debit:.2f}, credit {credit:.2f})",
            {"difference": float(total), "debit": float(debit), "credit": float(credit)},
        )


def _number_filter(journal_field: str, number_field: str, journal: Any, number: Any) -> str:
    return f"{journal_field} eq {string_literal(str(journal))} and {number_field} eq {int(number)}"


def _key_filter(lookup: str, key: str) -> str:
    return f"{CATALOGUE.lookups[lookup].fields['key']} eq {guid_literal(key)}"


def _guid(value: Any) -> bool:
    return value is not None and is_guid(str(value))


def _flag(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _code(row: Row) -> str:
    # Exact stores account codes right-aligned in 18 characters; a message shows them as people type them.
    return str(row["code"] or "").strip()


def _where(line: int | None) -> str:
    return "" if line is None else f"line {line}: "


def _decimal(value: Any) -> Decimal:
    # str() first: Decimal(0.1) keeps the binary error that a sum to the cent must not see.
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _shown(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
