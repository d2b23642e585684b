"""The one date adapter: Exact reads `/Date(ms)/` (sometimes with an offset) and takes ISO 8601 on write."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from runtime.dates import iso_utc

__all__ = ["format_date", "normalize_record", "parse_date"]

_MS_DATE = re.compile(r"^/Date\((?P<ms>-?\d+)(?P<offset>[+-]\d{4})?\)/$")


def parse_date(value: str | datetime) -> datetime:
    """`/Date(1718150400000)/`, `/Date(1718150400000+0200)/` or ISO 8601 → an aware datetime.

    The milliseconds are UTC; an offset only says in which zone to show the moment. A zone-less ISO
    value (EventCreatedOn, for one) is taken as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if m := _MS_DATE.match(value.strip()):
        zone: timezone = UTC
        if offset := m.group("offset"):
            sign = -1 if offset[0] == "-" else 1
            zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return datetime.fromtimestamp(int(m.group("ms")) / 1000, zone)
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_date(value: datetime) -> str:
    """ISO 8601 for writes, in UTC without a zone suffix: Exact accepts a `Z` and then shifts the value."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _normalize(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("/Date("):
        try:
            return iso_utc(parse_date(value))
        except ValueError:
            return value
    if isinstance(value, Mapping):
        if "__deferred" in value:
            return None
        if set(value) == {"results"}:
            return [_normalize(v) for v in value["results"]]
        return normalize_record(value)
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def normalize_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as it leaves the pipeline: dates as ISO 8601 UTC, `__metadata` and deferred links dropped,
    Exact's field names kept."""
    return {k: _normalize(v) for k, v in record.items() if k != "__metadata" and not _is_deferred(v)}


def _is_deferred(value: Any) -> bool:
    return isinstance(value, Mapping) and "__deferred" in value
