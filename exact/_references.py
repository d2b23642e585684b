"""References (codes or GUIDs of accounts, GL accounts, items, journals, projects) resolved in one division, cached."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from exact._catalogue import CATALOGUE, Kind, account_code
from exact._exceptions import UnknownReference
from exact._odata import Query, guid_literal, string_literal

if TYPE_CHECKING:
    from exact._client import ExactClient

__all__ = ["References", "is_guid"]


class References:
    """Resolves a reference to what a write must carry, asking the target division itself (gotchas 1, 2, 3, 6, 12).

    A GUID is accepted only if it exists in that division: a GUID from another division is what Exact turns into a
    silent null. Answers are cached per (division, kind, value) for `ttl` seconds; misses are not cached, so a code
    created a moment ago resolves on the next try. A stale hit is caught by the write's read-back.
    """

    def __init__(self, client: ExactClient, *, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[int, Kind, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def resolve(self, division: int, kind: Kind, value: str, *, field: str) -> str:
        """The ID or code to write; `UnknownReference` (naming `field`, the value and the division) if none."""
        text = str(value).strip()
        cache_key = (division, kind, text.lower())
        now = self._clock()
        with self._lock:
            hit = self._cache.get(cache_key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        resolved = self._lookup(division, kind, text)
        if resolved is None:
            raise UnknownReference(field=field, value=text, division=division, entity=CATALOGUE.references[kind].path)
        with self._lock:
            self._cache[cache_key] = (now, resolved)
        return resolved

    def _lookup(self, division: int, kind: Kind, text: str) -> str | None:
        lookup = CATALOGUE.references[kind]
        if lookup.guid_only and not is_guid(text):
            return None  # an activity or order line has no code to name it by
        if lookup.guid and is_guid(text):
            flt = f"{lookup.writes} eq {guid_literal(text)}"
        else:
            code = account_code(text) if kind == "account" else text
            flt = f"{lookup.match} eq {string_literal(code)}"
        select = list(dict.fromkeys([lookup.writes, lookup.match]))
        rows = list(self._client.iter_records(division, lookup.path, Query(filter=flt, select=select)))
        if not rows:
            return None
        value = str(rows[0][lookup.writes])
        return value.lower() if is_guid(value) else value


def is_guid(text: str) -> bool:
    """`text` parses as a GUID (in any of the forms `uuid.UUID` reads)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
