"""Exact's OData envelopes, unwrapped in one place: `{"d":{"results":[…],"__next":…}}`, `{"d":[…]}`, `{"d":{…}}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Page", "unwrap", "unwrap_page"]


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_url: str | None


def unwrap(body: Any) -> Any:
    """The payload inside `d`: a list for collections, a dict for one record."""
    if not isinstance(body, dict) or "d" not in body:
        raise ValueError("not an Exact OData envelope (no 'd')")
    data = body["d"]
    if isinstance(data, dict) and "results" in data and isinstance(data["results"], list):
        return data["results"]
    return data


def unwrap_page(body: Any) -> Page:
    data = body.get("d") if isinstance(body, dict) else None
    if isinstance(data, list):
        return Page(data, None)
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return Page(data["results"], data.get("__next") or None)
    if isinstance(data, dict):
        return Page([data], None)
    raise ValueError("not an Exact OData envelope (no 'd')")
