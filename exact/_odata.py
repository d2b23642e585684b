"""OData queries for Exact: `$filter` literals that stay literals, `$select` by default, URLs under 6,000 characters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "MAX_URL_LENGTH",
    "Query",
    "datetime_literal",
    "guid_literal",
    "int64_literal",
    "key_filters",
    "string_literal",
]

# Exact refuses URLs longer than this after encoding (KB "Restrictions").
MAX_URL_LENGTH = 6000


def string_literal(value: str) -> str:
    """`O'Brien` → `'O''Brien'`: a quote is doubled, so hostile input cannot leave the literal."""
    return "'" + value.replace("'", "''") + "'"


def guid_literal(value: str | uuid.UUID) -> str:
    return f"guid'{uuid.UUID(str(value))}'"


def datetime_literal(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return f"datetime'{aware.astimezone(UTC):%Y-%m-%dT%H:%M:%S}'"


def int64_literal(value: int) -> str:
    return f"{int(value)}L"


@dataclass(frozen=True)
class Query:
    """OData options; `params()` gives the query string parameters.

    Query(filter=f"Name eq {string_literal(name)}", select=["ID", "Name"], top=1)
    """

    filter: str | None = None
    select: Sequence[str] | None = None
    orderby: str | None = None
    top: int | None = None
    expand: str | None = None

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.filter:
            params["$filter"] = self.filter
        if self.select:
            params["$select"] = ",".join(self.select)
        if self.orderby:
            params["$orderby"] = self.orderby
        if self.top is not None:
            params["$top"] = str(self.top)
        if self.expand:
            params["$expand"] = self.expand
        return params


def key_filters(keys: Iterable[str], *, field: str = "ID", budget: int = MAX_URL_LENGTH - 1500) -> Iterator[str]:
    """`ID eq guid'…' or …` filters, each short enough (URL-encoded) to fit `budget` characters."""
    terms = [f"{field} eq {guid_literal(k)}" for k in dict.fromkeys(keys)]
    batch: list[str] = []
    size = 0
    for term in terms:
        cost = len(quote(term, safe="")) + len(quote(" or ", safe=""))
        if batch and size + cost > budget:
            yield " or ".join(batch)
            batch, size = [], 0
        batch.append(term)
        size += cost
    if batch:
        yield " or ".join(batch)
