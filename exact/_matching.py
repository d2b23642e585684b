"""Natural keys: values normalised as people type them, and the records of a division that carry one.

A VAT or KvK number is stored as it was typed: "NL 8123.45.678.B01", "nl812345678b01" and "812345678B01" are one
VAT number, and no `$filter` of one spelling finds the others (Exact's OData has no replace()). So VATNumber and
ChamberOfCommerce are matched in an index of the division's accounts, (ID, Code, VATNumber, ChamberOfCommerce) read
through the entity's sync resource with `$select`, 1,000 a page, kept per division and brought up to date by
Timestamp on each lookup: the first lookup in a division reads its accounts once, every later one costs one call
(no rows when nothing changed). The sync API lists no deletions and the index may lag a moment, so what the index
finds is confirmed by one keyed read of the candidates before it is trusted. Every other natural key (Code, which
Exact pads, and YourRef) is an `eq` filter of the value as written, then the same normalised compare.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exact._catalogue import CATALOGUE, CatalogueError, WriteSpec, account_code
from exact._exceptions import ExactError
from exact._odata import Query, key_filters, string_literal

if TYPE_CHECKING:
    from exact._client import ExactClient

__all__ = ["AmbiguousMatch", "Candidate", "DuplicateAccount", "MatchIndex", "Matcher", "normalise"]

# Matched through the index: their spellings differ by more than an `eq` filter can bridge.
INDEXED = ("VATNumber", "ChamberOfCommerce")
# What names a candidate to a person, in order of preference, when the entity has it.
_LABELS = ("Code", "EntryNumber", "InvoiceNumber", "OrderNumber")
_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[\s.\-]+")


def normalise(field: str, value: Any) -> str:
    """`value` of natural key `field` as it is compared: trimmed, spaces collapsed, case-folded; VAT and KvK numbers
    without spaces, dots and dashes, a VAT number's `NL` prefix dropped; an account Code padded as Exact stores it.
    "" for no value (which matches nothing)."""
    if value is None:
        return ""
    text = _SPACES.sub(" ", str(value).strip()).casefold()
    if field in INDEXED:
        text = _PUNCTUATION.sub("", text)
        if field == "VATNumber" and text.startswith("nl"):
            text = text[2:]
    elif field == "Code" and text:
        text = account_code(text)
    return text


@dataclass(frozen=True)
class Candidate:
    """A record of the division a natural key matched: its key and what names it (an account's Code)."""

    key: str
    label: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        label = (self.label or "").strip()
        return f"{self.key} ({label})" if label else self.key


class AmbiguousMatch(ExactError):
    """Several records match the command's natural key; nothing was written."""

    def __init__(self, message: str, *, candidates: Sequence[Candidate]) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


class DuplicateAccount(ExactError):
    """Creating this account would duplicate one by VAT or KvK number (the seed's duplicate check); nothing sent."""

    def __init__(self, message: str, *, candidates: Sequence[Candidate]) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


@dataclass
class _Division:
    cursor: int = 0
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → the indexed fields, normalised, + label


class MatchIndex:
    """The indexed natural keys of each division's records, per sync path; thread-safe, kept for the process."""

    def __init__(self) -> None:
        self._divisions: dict[tuple[int, str], _Division] = {}
        self._lock = threading.Lock()

    def refresh(self, client: ExactClient, division: int, sync_path: str, key: str) -> dict[str, dict[str, Any]]:
        """Read what changed since the last refresh (everything, the first time) and return the rows."""
        with self._lock:
            kept = self._divisions.setdefault((division, sync_path), _Division())
            select = list(dict.fromkeys([key, "Code", *INDEXED]))
            for page in client.sync(division, sync_path, kept.cursor, select):
                for row in page.records:
                    kept.rows[str(row[key]).lower()] = {
                        "label": row.get("Code"),
                        **{f: normalise(f, row.get(f)) for f in INDEXED},
                    }
                kept.cursor = page.cursor
            return dict(kept.rows)


class Matcher:
    """Finds the records of a division whose natural key equals a value, normalised (see the module docstring).

    matcher = Matcher(client, MatchIndex())
    matcher.find(101, SPECS["Account"], "VATNumber", "nl812345678b01")   # [Candidate(key=..., label='  …1002')]
    """

    def __init__(self, client: ExactClient, index: MatchIndex | None = None) -> None:
        self._client = client
        self._index = index if index is not None else MatchIndex()

    def find(self, division: int, spec: WriteSpec, name: str, value: Any) -> list[Candidate]:
        wanted = normalise(name, value)
        if not wanted:
            return []
        sync_path = _sync_path(spec)
        if name in INDEXED and sync_path is not None:
            rows = self._index.refresh(self._client, division, sync_path, spec.key)
            keys = [k for k, row in rows.items() if row[name] == wanted]
            return self._confirmed(division, spec, keys, name, wanted)
        written = spec.transforms[name](str(value)) if name in spec.transforms else _SPACES.sub(" ", str(value).strip())
        query = Query(filter=f"{name} eq {string_literal(written)}", select=_select(spec, name))
        return _matching(self._client.iter_records(division, spec.path, query), spec, name, wanted)

    def find_all(self, division: int, spec: WriteSpec, values: Mapping[str, Any]) -> list[Candidate]:
        """The records matching every one of `values` (field → value)."""
        found: dict[str, Candidate] | None = None
        for name, value in values.items():
            these = {c.key: c for c in self.find(division, spec, name, value)}
            found = these if found is None else {k: c for k, c in found.items() if k in these}
            if not found:
                return []
        return list((found or {}).values())

    def find_any(self, division: int, spec: WriteSpec, values: Mapping[str, Any]) -> list[Candidate]:
        """The records matching at least one of `values`, each once."""
        found: dict[str, Candidate] = {}
        for name, value in values.items():
            found.update((c.key, c) for c in self.find(division, spec, name, value))
        return list(found.values())

    def _confirmed(self, division: int, spec: WriteSpec, keys: list[str], name: str, wanted: str) -> list[Candidate]:
        if not keys:
            return []
        rows: list[dict[str, Any]] = []
        for flt in key_filters(keys, field=spec.key):
            rows += self._client.iter_records(division, spec.path, Query(filter=flt, select=_select(spec, name)))
        return _matching(rows, spec, name, wanted)


def _matching(rows: Iterable[Mapping[str, Any]], spec: WriteSpec, name: str, wanted: str) -> list[Candidate]:
    label = _label(spec)
    return [
        Candidate(str(r[spec.key]).lower(), None if label is None else r.get(label), {name: r.get(name)})
        for r in rows
        if normalise(name, r.get(name)) == wanted
    ]


def _fields(spec: WriteSpec) -> frozenset[str]:
    try:
        return frozenset(CATALOGUE.reference.fields(spec.path, reported=False))
    except CatalogueError:
        return spec.fields


def _label(spec: WriteSpec) -> str | None:
    fields = _fields(spec)
    return next((f for f in _LABELS if f in fields), None)


def _select(spec: WriteSpec, name: str) -> list[str]:
    label = _label(spec)
    return list(dict.fromkeys([spec.key, name, *([label] if label else [])]))


def _sync_path(spec: WriteSpec) -> str | None:
    for entity in CATALOGUE.entities.values():
        if entity.write is not None and entity.write.name == spec.name:
            return entity.sync_path
    return None
