"""Safe writes: references resolved in the target division, updates as GET → change → PUT, every write read back.

Exact answers 201 to writes that lost a field (gotchas 1–6). A `Writer` makes a write land completely or fail
loudly: an unknown reference stops it before anything is sent (`UnknownReference`), so do the pre-flight checks it
is given (Exact's after-the-fact refusals, checked in the division first), and after the write the record is read
back and every written field compared, through each entity's write → read name map (`WriteNotVerified`). Upserts
find their record by natural key (`exact._matching`); a create whose answer was lost is looked up before it is
called unknown, and sent once more only when Exact itself answered and the lookup found nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from exact._catalogue import CATALOGUE, Kind, LineSpec, WriteSpec
from exact._dates import format_date, parse_date
from exact._exceptions import (
    ExactError,
    ExactUnavailable,
    UnknownReference,
    WriteNotVerified,
    WriteOutcomeUnknown,
)
from exact._matching import AmbiguousMatch, Candidate, DuplicateAccount, Matcher, normalise
from exact._odata import Query, guid_literal
from exact._readback import compare
from exact._references import References
from exact._values import check_values, write_date

if TYPE_CHECKING:
    from exact._client import ExactClient

__all__ = [
    "SPECS",
    "Checks",
    "LineSpec",
    "WriteProgress",
    "WriteResult",
    "WriteSpec",
    "Writer",
    "check_writable",
]

# Never sent back on a PUT and never compared: Exact fills them.
_SYSTEM = frozenset({"ID", "Division", "Created", "Creator", "Modified", "Modifier", "Timestamp"})
# What the dedupe check of a new account compares (the seed's duplicate check).
_DUPLICATE_KEYS = ("VATNumber", "ChamberOfCommerce")
# Exact's own 500: the call ran to its end, so a lookup that finds nothing means nothing landed.
_FINISHED = 500


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
    found_by: str | None = None  # a create whose answer was lost, found again by this field
    modified: str | None = None  # the record's `Modified` as read back: tells the change fetched of it later


@dataclass
class WriteProgress:
    """How far a write got, for a caller that must tell "nothing was sent" from "it may have landed".

    `sent`: the POST or PUT was handed to the client; `landed`: Exact answered it with a 2xx; `key`: the record's
    ID once known (an update's from the start, a create's from its answer).
    """

    sent: bool = False
    landed: bool = False
    key: str | None = None


class Checks(Protocol):
    """Pre-flight checks of a write as it will be sent (`exact.Preflight`): raise to stop it before any POST/PUT."""

    def check(
        self, division: int, spec: WriteSpec, body: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None
    ) -> None: ...


class Writer:
    """Creates, updates and upserts through one `ExactClient`, each write checked before it is sent and verified by a
    read-back.

    writer = Writer(client, References(client), Preflight(client, references), settle_seconds=2.0)
    result = writer.create(101, SPECS["PurchaseOrder"], {"Supplier": "1003", "Currency": "EUR"},
                           [{"Item": "ITEM-001", "Quantity": 7, "GLAccount": "7000", "VATCode": "2"}])
    writer.upsert(101, SPECS["Account"], ["VATNumber"], {"VATNumber": "NL812345678B01", "City": "Ede"})

    A create whose answer is lost (`ExactUnavailable`) is looked up, after `settle_seconds`, by its YourRef or by
    the `marker` stamped into the spec's marker field: found, it is verified and returned; surely absent (Exact
    itself answered 500 and the lookup finds nothing) it is sent once more; otherwise `WriteOutcomeUnknown`.
    """

    def __init__(
        self,
        client: ExactClient,
        references: References,
        preflight: Checks | None = None,
        *,
        matcher: Matcher | None = None,
        settle_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._references = references
        self._preflight = preflight
        self._matcher = matcher if matcher is not None else Matcher(client)
        self._settle_seconds = settle_seconds
        self._sleep = sleep

    def create(
        self,
        division: int,
        spec: WriteSpec,
        fields: Mapping[str, Any],
        lines: Sequence[Mapping[str, Any]] | None = None,
        *,
        progress: WriteProgress | None = None,
        marker: str | None = None,
        dedupe: bool = False,
    ) -> WriteResult:
        """`marker` (a text unique to this write) is stamped into the spec's marker field when the write leaves it
        empty and has no YourRef, to find the record again after a lost answer. `dedupe`: first look for a record
        with the same VAT or KvK number (`DuplicateAccount`, nothing sent)."""
        progress = progress if progress is not None else WriteProgress()
        if dedupe and (duplicates := self._duplicates(division, spec, fields)):
            names = ", ".join(str(c) for c in duplicates)
            raise DuplicateAccount(
                f"{spec.path} in division {division} already has {names} with this VAT or KvK number; nothing was "
                'sent (update it, upsert, or send "dedupe": false)',
                candidates=duplicates,
            )
        fields, lookup = _lookup_key(spec, fields, marker)
        body, new_lines = self._prepare(division, spec, fields, lines)
        self._check(division, spec, body, new_lines)
        if new_lines is not None and spec.lines is not None:
            body[spec.lines.name] = new_lines
        return self._post(division, spec, body, new_lines, progress, lookup)

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
        # The record's own entry number is not one "already used" by another: checked only when it changes.
        unchanged = spec.check_fields.entry_number
        self._check(division, spec, {k: v for k, v in body.items() if k in changes or k != unchanged}, new_lines)
        if new_lines is not None and spec.lines is not None:
            body[spec.lines.name] = new_lines
        progress.sent = True
        self._client.update(division, spec.path, key, body)
        progress.landed = True
        return self._verify(division, spec, key, "update", body, new_lines)

    def upsert(
        self,
        division: int,
        spec: WriteSpec,
        match_on: Sequence[str],
        fields: Mapping[str, Any],
        lines: Sequence[Mapping[str, Any]] | None = None,
        *,
        progress: WriteProgress | None = None,
        marker: str | None = None,
        dedupe: bool = True,
    ) -> WriteResult:
        """The record whose `match_on` fields all equal the write's (normalised) is updated; none: created (an
        account found by VAT or KvK number first, unless `dedupe` is off, is updated instead); several:
        `AmbiguousMatch` naming them, nothing written."""
        found = self._matcher.find_all(division, spec, {name: fields.get(name) for name in match_on})
        if not found and dedupe:
            found = self._duplicates(division, spec, fields)
        if len(found) > 1:
            names = ", ".join(str(c) for c in found)
            raise AmbiguousMatch(
                f"{spec.path} in division {division}: {len(found)} records match on {', '.join(match_on)}: {names}; "
                "nothing was written",
                candidates=found,
            )
        if found:
            return self.update(division, spec, found[0].key, fields, lines, progress=progress)
        return self.create(division, spec, fields, lines, progress=progress, marker=marker)

    # -- a create, and its lost answer settled
    def _post(
        self,
        division: int,
        spec: WriteSpec,
        body: dict[str, Any],
        lines: list[dict[str, Any]] | None,
        progress: WriteProgress,
        lookup: tuple[str, str] | None,
    ) -> WriteResult:
        progress.sent = True
        resent = False
        while True:
            try:
                created = self._client.create(division, spec.path, body)
                break
            except ExactUnavailable as exc:
                lost = exc
            if lookup is None:
                raise _unknown(spec, division, lost) from lost
            found = self._look_up(division, spec, lookup, lost)
            if found is not None:
                return self._adopt(division, spec, found, lookup, body, lines, progress)
            if resent or lost.status != _FINISHED:
                # A timeout or a gateway's 5xx may come while Exact is still writing: absent now is not absent.
                again = "sent twice" if resent else "not sent again"
                raise _unknown(spec, division, lost, f"not found by {lookup[0]} {lookup[1]!r} yet; {again}") from lost
            resent = True
        key = str(created[spec.key]).lower()
        progress.landed, progress.key = True, key
        return self._verify(division, spec, key, "create", body, lines)

    def _look_up(
        self, division: int, spec: WriteSpec, lookup: tuple[str, str], lost: ExactUnavailable
    ) -> Candidate | None:
        """The one record the lost create made, None when surely absent; `WriteOutcomeUnknown` when unsure."""
        self._sleep(self._settle_seconds)
        name, value = lookup
        try:
            found = self._matcher.find(division, spec, name, value)
        except ExactError as exc:
            raise _unknown(spec, division, lost, f"looking it up by {name} failed too ({exc.message})") from exc
        if len(found) > 1:
            names = ", ".join(str(c) for c in found)
            raise _unknown(spec, division, lost, f"{len(found)} records have {name} {value!r}: {names}")
        return found[0] if found else None

    def _adopt(
        self,
        division: int,
        spec: WriteSpec,
        found: Candidate,
        lookup: tuple[str, str],
        body: Mapping[str, Any],
        lines: list[dict[str, Any]] | None,
        progress: WriteProgress,
    ) -> WriteResult:
        """A record found after a lost answer is this write if it reads back as written. One found by the marker is
        surely this write's; one found by YourRef may be another document with the same reference."""
        name, value = lookup
        if name == spec.marker:
            progress.landed, progress.key = True, found.key
            return replace(self._verify(division, spec, found.key, "create", body, lines), found_by=name)
        try:
            result = self._verify(division, spec, found.key, "create", body, lines)
        except WriteNotVerified as exc:
            raise WriteOutcomeUnknown(
                f"{spec.path} in division {division}: no answer to the create; {found} has {name} {value!r} but "
                f"differs from this write ({exc.message}); not sent again: look for it in Exact",
                status=None,
            ) from exc
        progress.landed, progress.key = True, found.key
        return replace(result, found_by=name)

    def _duplicates(self, division: int, spec: WriteSpec, fields: Mapping[str, Any]) -> list[Candidate]:
        keys = spec.natural_keys
        values = {name: fields[name] for name in _DUPLICATE_KEYS if name in keys and normalise(name, fields.get(name))}
        return self._matcher.find_any(division, spec, values) if values else []

    def _check(
        self, division: int, spec: WriteSpec, body: Mapping[str, Any], lines: list[dict[str, Any]] | None
    ) -> None:
        if self._preflight is not None:
            self._preflight.check(division, spec, body, lines)

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
        if line is not None and spec.lines is not None and name in spec.lines.dates:
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
        verified, verified_lines, mismatches = compare(spec, record, body, lines)
        if mismatches:
            raise WriteNotVerified(entity=spec.path, key=key, division=division, mismatches=mismatches)
        modified = record.get("Modified")
        return WriteResult(
            spec.name, division, key, action, verified, verified_lines, modified=str(modified) if modified else None
        )


def _lookup_key(
    spec: WriteSpec, fields: Mapping[str, Any], marker: str | None
) -> tuple[Mapping[str, Any], tuple[str, str] | None]:
    """The fields to send and what finds them again after a lost answer: the write's YourRef, else `marker`
    stamped into the spec's marker field when the write leaves it empty; None when neither can."""
    if "YourRef" in spec.natural_keys and normalise("YourRef", fields.get("YourRef")):
        return fields, ("YourRef", str(fields["YourRef"]))
    name = spec.marker
    if marker and name and name in spec.fields and not normalise(name, fields.get(name)):
        return {**fields, name: marker}, (name, marker)
    return fields, None


def _unknown(spec: WriteSpec, division: int, lost: ExactUnavailable, why: str | None = None) -> WriteOutcomeUnknown:
    found = f"; {why}" if why else ""
    return WriteOutcomeUnknown(
        f"{spec.path} in division {division}: no answer to the create ({lost.message}){found}; it may have landed, "
        "so it was not sent again: look for it in Exact before writing it anew",
        status=lost.status,
    )


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
