"""What a command's values must be before a write is tried: dates, numbers, flags and references of each spec."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from exact._dates import format_date

__all__ = ["DATE_YEARS", "MAX_NUMBER", "check_values", "write_date"]

# A business date outside these years is a typo or a placeholder (0001-01-01), and near year 1 or 9999 an offset
# over- or underflows on the way to UTC.
DATE_YEARS = (1900, 2999)
# Past 1e15 a double no longer holds cents: no quantity or price of a real document comes near it.
MAX_NUMBER = 1e15


class Typed(Protocol):
    """A write spec or a line spec: which of its fields hold which kind of value."""

    @property
    def dates(self) -> frozenset[str]: ...
    @property
    def numbers(self) -> frozenset[str]: ...
    @property
    def flags(self) -> frozenset[str]: ...
    @property
    def references(self) -> Mapping[str, Any]: ...


def check_values(what: str, spec: Typed, given: Mapping[str, Any]) -> None:
    """ValueError naming the first field whose value Exact cannot take: a date that is no ISO 8601 string of a
    sane year, a number that is not finite or too large, a flag that is not a boolean, a reference that is no code."""
    for name, value in given.items():
        if value is None:
            continue
        problem = _value_problem(spec, name, value)
        if problem is not None:
            raise ValueError(f"{what}.{name}: {problem}, got {_shown(value)}")


def _value_problem(spec: Typed, name: str, value: Any) -> str | None:
    if name in spec.dates:
        try:
            write_date(value)
        except ValueError as exc:
            return str(exc)
    elif name in spec.numbers:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "expected a number"
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            return f"expected a finite number within ±{MAX_NUMBER:g}"
    elif name in spec.flags and not isinstance(value, bool):
        return "expected true or false"
    elif name in spec.references and (
        isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip()
    ):
        return "expected a code or GUID"
    return None


def write_date(value: Any) -> str:
    """A command's date as Exact takes it on write; ValueError unless an ISO 8601 string of a year in DATE_YEARS."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date string such as 2026-03-04")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected an ISO 8601 date string such as 2026-03-04") from None
    low, high = DATE_YEARS
    if not low <= moment.year <= high:
        raise ValueError(f"expected a year from {low} to {high}")
    return format_date(moment)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
