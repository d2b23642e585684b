"""OData v2 as Exact serves it: query options, `/Date(ms)/` values, envelopes and `__next` paging."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sandbox.odata_filter import FilterError, Predicate, compile_filter

__all__ = ["FilterError", "QueryOptions", "page", "parse_options", "serialize"]


@dataclass(frozen=True)
class QueryOptions:
    predicate: Predicate | None
    filter_text: str | None
    select: tuple[str, ...] | None
    orderby: tuple[tuple[str, bool], ...]  # (field, descending)
    top: int | None
    skiptoken: str | None
    expand: tuple[str, ...]
    inlinecount: bool


def parse_options(params: Mapping[str, str], fields: Sequence[str]) -> QueryOptions:
    """Parse `$filter`, `$select`, `$orderby`, `$top`, `$skiptoken`, `$expand`; `$skip` is ignored like Exact does."""
    known = frozenset(fields)
    filter_text = params.get("$filter")
    predicate = compile_filter(filter_text, known) if filter_text else None
    select = None
    if raw := params.get("$select"):
        if raw.strip() == "*":
            select = tuple(fields)
        else:
            select = tuple(s.strip() for s in raw.split(",") if s.strip())
            unknown = [s for s in select if s not in known]
            if unknown:
                raise FilterError(f"$select: unknown field(s) {', '.join(unknown)}")
    orderby: list[tuple[str, bool]] = []
    for part in (params.get("$orderby") or "").split(","):
        words = part.split()
        if not words:
            continue
        if words[0] not in known:
            raise FilterError(f"$orderby: unknown field {words[0]}")
        orderby.append((words[0], len(words) > 1 and words[1].lower() == "desc"))
    top = params.get("$top")
    if top is not None and not top.isdigit():
        raise FilterError("$top must be a non-negative integer")
    return QueryOptions(
        predicate=predicate,
        filter_text=filter_text,
        select=select,
        orderby=tuple(orderby),
        top=int(top) if top is not None else None,
        skiptoken=params.get("$skiptoken"),
        expand=tuple(s.strip() for s in (params.get("$expand") or "").split(",") if s.strip()),
        inlinecount=params.get("$inlinecount") == "allpages",
    )


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    if isinstance(value, datetime):
        return (2, value.timestamp())
    return (3, str(value))


def order(rows: list[dict[str, Any]], options: QueryOptions, key_field: str) -> list[dict[str, Any]]:
    """Sort by `$orderby`, then by the key so that pages are stable."""
    rows = sorted(rows, key=lambda r: _sort_key(r.get(key_field)))
    for field, descending in reversed(options.orderby):
        rows.sort(key=lambda r, f=field: _sort_key(r.get(f)), reverse=descending)  # type: ignore[misc]
    return rows


def page(
    rows: list[dict[str, Any]], options: QueryOptions, *, key_field: str, size: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page after `$skiptoken` and the token for the next page, or None on the last page.

    The token is the key of the last record served, so records that change between pages keep their
    place and are neither missed nor repeated (paging by position would shift them)."""
    if options.predicate is not None:
        rows = [r for r in rows if options.predicate(r)]
    rows = order(rows, options, key_field)
    if options.skiptoken is not None:
        token = _token_value(options.skiptoken)
        keys = [_norm_key(r.get(key_field)) for r in rows]
        if not options.orderby:
            rows = [r for r, k in zip(rows, keys, strict=True) if _sort_key(k) > _sort_key(token)]
        else:
            rows = rows[keys.index(token) + 1 :] if token in keys else []
    if options.top is not None:
        return rows[: options.top], None
    chunk = rows[:size]
    more = len(rows) > size
    return chunk, (_token_literal(chunk[-1][key_field]) if more else None)


def _norm_key(value: Any) -> Any:
    return str(value).lower() if isinstance(value, str) else value


def _token_literal(value: Any) -> str:
    if isinstance(value, int):
        return f"{value}L"
    try:
        return f"guid'{uuid.UUID(str(value))}'"
    except ValueError:
        return "'" + str(value).replace("'", "''") + "'"  # a Code key (Currencies)


def _token_value(token: str) -> Any:
    token = token.strip()
    if token.endswith("L") and token[:-1].isdigit():
        return int(token[:-1])
    if token.startswith("guid'") and token.endswith("'"):
        return str(uuid.UUID(token[5:-1].strip()))
    if len(token) > 1 and token.startswith("'") and token.endswith("'"):
        return token[1:-1].replace("''", "'").lower()
    raise FilterError(f"bad $skiptoken: {token}")


def next_url(base_url: str, params: Mapping[str, str], token: str) -> str:
    """Exact's `__next`: the same URL with every original option and `$skiptoken` set."""
    query = {k: v for k, v in params.items() if k != "$skiptoken"}
    query["$skiptoken"] = token
    return base_url + "?" + urlencode(query, safe="$',()")


def to_ms_date(value: datetime) -> str:
    return f"/Date({int(value.timestamp() * 1000)})/"


def serialize(row: Mapping[str, Any], *, select: Sequence[str] | None, uri: str, type_name: str) -> dict[str, Any]:
    """A record as Exact reads it: `__metadata` first, dates as `/Date(ms)/`."""
    out: dict[str, Any] = {"__metadata": {"uri": uri, "type": type_name}}
    for name in select if select is not None else row.keys():
        value = row.get(name)
        out[name] = to_ms_date(value) if isinstance(value, datetime) else value
    return out
