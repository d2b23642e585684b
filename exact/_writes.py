"""Safe writes: references resolved in the target division, updates as GET → change → PUT, every write read back.

Exact answers 201 to writes that lost a field (gotchas 1–6). A `Writer` makes a write land completely or fail
loudly: an unknown reference stops it before anything is sent (`UnknownReference`), and after the write the record is
read back and every written field compared, through each entity's write → read name map (`WriteNotVerified`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exact._catalogue import CATALOGUE, Kind, LineSpec, WriteSpec
from exact._dates import format_date, parse_date
from exact._exceptions import (
    ExactUnavailable,
    FieldMismatch,
    UnknownReference,
    WriteNotVerified,
    WriteOutcomeUnknown,
)
from exact._odata import Query, guid_literal
from exact._references import References, is_guid
from exact._values import check_values, write_date

if TYPE_CHECKING:
    from exact._client import ExactClient

__all__ = [
    "SPECS",
    "LineSpec",
    "WriteProgress",
    "WriteResult",
    "WriteSpec",
    "Writer",
    "check_writable",
]

# Never sent back on a PUT and never compared: Exact fills them.
_SYSTEM = frozenset({"ID", "Division", "Created", "Creator", "Modified", "Modifier", "Timestamp"})
_ABSENT = "<absent>"


# The writable entities, by the name commands use ("SalesInvoice"): exact/catalogue.toml's `[entity.write]` tables.
SPECS: dict[str, WriteSpec] = CATALOGUE.writes


@dataclass(frozen=True)
class WriteResult:
    """A write that landed and read back as written: its ID and every verified field (read names, read values)."""

    entity: str
    division: int
    key: str
    action: str  # "create" | "update"
    verified: dict[str, Any]
    lines: list[dict[str, Any]] | None = None


@dataclass
class WriteProgress:
    """How far a write got, for a caller that must tell "nothing was sent" from "it may have landed".

    `sent`: the POST or PUT was handed to the client; `landed`: Exact answered it with a 2xx; `key`: the record's
    ID once known (an update's from the start, a create's from its answer).
    """

    sent: bool = False
    landed: bool = False
    key: str | None = None


class Writer:
    """Creates and updates through one `ExactClient`, each write verified by a read-back.

    writer = Writer(client, References(client))
    result = writer.create(101, SPECS["PurchaseOrder"], {"Supplier": "1003", "Currency": "EUR"},
                           [{"Item": "ITEM-001", "Quantity": 7, "GLAccount": "7000", "VATCode": "2"}])
    """

    def __init__(self, client: ExactClient, references: References) -> None:
        self._client = client
        self._references = references

    def create(
        self,
        division: int,
        spec: WriteSpec,
        fields: Mapping[str, Any],
        lines: Sequence[Mapping[str, Any]] | None = None,
        *,
        progress: WriteProgress | None = None,
    ) -> WriteResult:
        progress = progress if progress is not None else WriteProgress()
        body, new_lines = self._prepare(division, spec, fields, lines)
        if new_lines is not None and spec.lines is not None:
            body[spec.lines.name] = new_lines
        progress.sent = True
        try:
            created = self._client.create(division, spec.path, body)
        except ExactUnavailable as exc:
            raise WriteOutcomeUnknown(
                f"{spec.path} in division {division}: no answer to the create ({exc.message}); it may have landed, "
                "so it was not sent again: look for it in Exact before writing it anew",
                status=exc.status,
            ) from exc
        key = str(created[spec.key]).lower()
        progress.landed, progress.key = True, key
        return self._verify(division, spec, key, "create", body, new_lines)

    def update(
        self,
        division: int,
        spec: WriteSpec,
        key: str,
        fields: Mapping[str, Any],
        lines: Sequence[Mapping[str, Any]] | None = None,
        *,
        progress: WriteProgress | None = None,
    ) -> WriteResult:
        """PUT replaces the whole record (gotcha 4): read it all, change the copy, send it all back.

        `lines`, when given, replace the record's lines; when None, the lines are left as they are. A record the
        division lacks is `UnknownReference` on `id`, found by a list query: a GET by key would answer 404, and
        404s count towards Exact's block of the endpoint.
        """
        progress = progress if progress is not None else WriteProgress()
        key = progress.key = str(uuid.UUID(key))
        changes, new_lines = self._prepare(division, spec, fields, lines)
        current = self._existing(division, spec, key)
        body = {k: _writable_value(spec, k, v) for k, v in current.items() if _sendable(spec, k, v)}
        body.update(changes)
        if new_lines is not None and spec.lines is not None:
            body[spec.lines.name] = new_lines
        progress.sent = True
        self._client.update(division, spec.path, key, body)
        progress.landed = True
        return self._verify(division, spec, key, "update", body, new_lines)

    # -- before anything is sent
    def _prepare(
        self, division: int, spec: WriteSpec, fields: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        check_writable(spec.name, spec.fields, fields)
        check_values(spec.name, spec, fields)
        body = {name: self._value(division, spec.references, spec, name, value) for name, value in fields.items()}
        if lines is None:
            return body, None
        if spec.lines is None:
            raise ValueError(f"{spec.name} has no lines")
        line_spec = spec.lines
        resolved = []
        for number, line in enumerate(lines, start=1):
            check_writable(f"{line_spec.name}[{number}]", line_spec.fields, line)
            check_values(f"{line_spec.name}[{number}]", line_spec, line)
            resolved.append(
                {n: self._value(division, line_spec.references, spec, n, v, line=number) for n, v in line.items()}
            )
        return body, resolved

    def _value(
        self,
        division: int,
        references: Mapping[str, Kind],
        spec: WriteSpec,
        name: str,
        value: Any,
        line: int | None = None,
    ) -> Any:
        if value is None:
            return None
        if name in references:
            where = name if line is None else f"{spec.lines.name if spec.lines else 'lines'}[{line}].{name}"
            return self._references.resolve(division, references[name], str(value), field=where)
        if line is None and name in spec.dates:
            return write_date(value)
        if line is None and name in spec.transforms:
            return spec.transforms[name](str(value))
        return value

    def _existing(self, division: int, spec: WriteSpec, key: str) -> dict[str, Any]:
        rows = list(self._client.iter_records(division, spec.path, Query(filter=f"{spec.key} eq {guid_literal(key)}")))
        if not rows:
            raise UnknownReference(field="id", value=key, division=division, entity=spec.path)
        return dict(rows[0])

    # -- after the write
    def _read(self, division: int, spec: WriteSpec, key: str, *, expand: bool) -> dict[str, Any]:
        query = Query(expand=spec.lines.name) if expand and spec.lines else None
        return dict(self._client.get(division, f"{spec.path}(guid'{key}')", query))

    def _verify(
        self,
        division: int,
        spec: WriteSpec,
        key: str,
        action: str,
        body: Mapping[str, Any],
        lines: list[dict[str, Any]] | None,
    ) -> WriteResult:
        record = self._read(division, spec, key, expand=lines is not None)
        mismatches: list[FieldMismatch] = []
        verified: dict[str, Any] = {}
        for name, written in body.items():
            if spec.lines is not None and name == spec.lines.name:
                continue
            read = record.get(name, _ABSENT)
            verified[name] = read
            if not _same(written, read, is_date=name in spec.dates):
                mismatches.append(FieldMismatch(name, name, written, read))
        verified_lines: list[dict[str, Any]] | None = None
        if lines is not None and spec.lines is not None:
            read_lines = _lines_of(record, spec.lines.name)
            mismatches += _compare_lines(spec.lines, lines, read_lines)
            if not mismatches:
                verified_lines = [_picked(spec.lines, w, r) for w, r in zip(lines, read_lines, strict=True)]
        if mismatches:
            raise WriteNotVerified(entity=spec.path, key=key, division=division, mismatches=mismatches)
        return WriteResult(spec.name, division, key, action, verified, verified_lines)


def check_writable(what: str, allowed: frozenset[str], given: Mapping[str, Any]) -> None:
    """ValueError naming every field of `given` that `allowed` lacks: a name Exact would ignore is refused here."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"{what}: cannot write {', '.join(unknown)}; writable: {', '.join(sorted(allowed))}")


def _sendable(spec: WriteSpec, name: str, value: Any) -> bool:
    if name.startswith("__") or name in _SYSTEM or name in spec.read_only or name == spec.key:
        return False
    if spec.lines is not None and name == spec.lines.name:
        return False  # lines are replaced only when the command gives them
    return not (isinstance(value, Mapping) and "__deferred" in value)


def _writable_value(spec: WriteSpec, name: str, value: Any) -> Any:
    # Reads give `/Date(ms)/`; writes take ISO 8601 (gotcha 11).
    if name in spec.dates and isinstance(value, str) and value:
        return format_date(parse_date(value))
    return value


def _lines_of(record: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    value = record.get(name)
    rows = value.get("results", []) if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return sorted((dict(r) for r in rows), key=lambda r: r.get("LineNumber") or 0)


def _compare_lines(spec: LineSpec, written: list[dict[str, Any]], read: list[dict[str, Any]]) -> list[FieldMismatch]:
    if len(written) != len(read):
        return [FieldMismatch(spec.name, spec.name, f"{len(written)} lines", f"{len(read)} lines")]
    mismatches = []
    for number, (sent, back) in enumerate(zip(written, read, strict=True), start=1):
        for name, value in sent.items():
            read_as = spec.read_names.get(name, name)
            got = back.get(read_as, _ABSENT)
            if not _same(value, got, is_date=False):
                mismatches.append(
                    FieldMismatch(f"{spec.name}[{number}].{name}", f"{spec.name}[{number}].{read_as}", value, got)
                )
    return mismatches


def _picked(spec: LineSpec, written: Mapping[str, Any], read: Mapping[str, Any]) -> dict[str, Any]:
    """The line as read back: its ID and each written field under its read name."""
    names = [spec.read_names.get(n, n) for n in written]
    return {"ID": read.get("ID"), **{name: read.get(name) for name in names}}


def _same(written: Any, read: Any, *, is_date: bool) -> bool:
    if read is _ABSENT:
        return False
    if written is None or read is None:
        return written is None and read is None
    if is_date:
        return bool(_moment(written) == _moment(read))
    if isinstance(written, bool) or isinstance(read, bool):
        return written is read
    if isinstance(written, int | float) and isinstance(read, int | float):
        return math.isclose(written, read, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(written, str) and isinstance(read, str):
        return written == read or (is_guid(written) and written.lower() == read.lower())
    return bool(written == read)


def _moment(value: Any) -> datetime | None:
    try:
        return parse_date(value)
    except (TypeError, ValueError):
        return None
