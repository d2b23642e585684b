"""The entity catalogue: exact/catalogue.toml with its field lists filled from the trimmed reference, loaded once."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, ClassVar, Literal, cast

__all__ = [
    "CATALOGUE",
    "CHECKS",
    "Catalogue",
    "CatalogueError",
    "CheckFields",
    "Entity",
    "Kind",
    "LineSpec",
    "Lines",
    "Lookup",
    "Reference",
    "ReferenceSpec",
    "Shape",
    "UnsupportedTopic",
    "WriteSpec",
    "account_code",
]

Shape = Literal["flat", "line_rows", "expanded"]
Kind = Literal[
    "account",
    "activity",
    "cost_center",
    "cost_unit",
    "currency",
    "employee",
    "gl_account",
    "item",
    "journal",
    "payment_condition",
    "project",
    "purchase_order_line",
    "sales_order_line",
    "vat_code",
    "warehouse",
]
# The pre-flight checks (exact/_preflight.py), each with the check-field roles it needs (any one of a tuple).
CHECKS: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "journal_required": ("journal",),
    "financial_period": (("date", "line_date"),),
    "period_open": ("journal", ("date", "line_date")),
    "balanced": ("amount",),
    "customer": ("customer",),
    "supplier": ("supplier",),
    "gl_type": ("gl_account",),
    "journal_vat": ("journal", "vat_code"),
    "payment_condition": ("payment_condition", "customer"),
    "entry_number": ("journal", "entry_number"),
    "open_quantity": ("order_line", "quantity"),
}
# What `$select` may spend of Exact's URL limit, so that a filter of keys still fits beside it.
SELECT_BUDGET = 2600
# Read on every record whatever a setting narrows to: keys, versions and the order of lines.
_ALWAYS = ("ID", "Division", "Timestamp", "Modified", "LineNumber")


def account_code(code: str) -> str:
    """Exact stores account codes right-aligned in 18 characters; `1001` is `'              1001'`."""
    return code.strip().rjust(18)


_TRANSFORMS: dict[str, Callable[[str], str]] = {"account_code": account_code}


class CatalogueError(ValueError):
    """exact/catalogue.toml names something the reference lacks, or breaks a rule of its own."""


class UnsupportedTopic(ValueError):
    """A topic the catalogue has no entry for; the message lists the supported ones."""

    def __init__(self, topic: str, supported: Iterable[str]) -> None:
        self.topic = topic
        self.supported = tuple(supported)
        super().__init__(f"unsupported topic {topic!r}; supported: {', '.join(self.supported)}")


@dataclass(frozen=True)
class CheckFields:
    """Which field of a write plays which part in its pre-flight checks: header fields, then line fields."""

    journal: str | None = None
    date: str | None = None
    customer: tuple[str, ...] = ()
    supplier: tuple[str, ...] = ()
    payment_condition: str | None = None
    entry_number: str | None = None
    line_date: str | None = None
    gl_account: str | None = None
    vat_code: str | None = None
    amount: tuple[str, ...] = ()  # a line's amount is the first of these it has
    order_line: str | None = None
    quantity: str | None = None

    HEADER: ClassVar[tuple[str, ...]] = ("journal", "date", "customer", "supplier", "payment_condition", "entry_number")
    LINE: ClassVar[tuple[str, ...]] = ("line_date", "gl_account", "vat_code", "amount", "order_line", "quantity")

    def named(self, role: str) -> tuple[str, ...]:
        """The fields a role names (none, one or several)."""
        value = getattr(self, role)
        return value if isinstance(value, tuple) else () if value is None else (value,)


@dataclass(frozen=True)
class LineSpec:
    """The lines collection of a header entity (`SalesInvoiceLines`), written inside the header's body."""

    name: str
    fields: frozenset[str]
    references: Mapping[str, Kind] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()
    read_names: Mapping[str, str] = field(default_factory=dict)  # write name → read name (gotcha 5)
    numbers: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    path: str = ""  # the lines resource


@dataclass(frozen=True)
class WriteSpec:
    """One writable entity: the fields a command may set, which of them are references, what Exact computes."""

    name: str  # as commands name it: "SalesInvoice"
    path: str
    fields: frozenset[str]
    key: str = "ID"  # the record's key field (`InvoiceID`): read from a create's answer, filtered on, never sent
    references: Mapping[str, Kind] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()  # computed by Exact: dropped from a PUT body, never compared
    dates: frozenset[str] = frozenset()
    transforms: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    numbers: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()  # booleans
    lines: LineSpec | None = None
    checks: tuple[str, ...] = ()  # pre-flight checks, in order (CHECKS)
    natural_keys: tuple[str, ...] = ()  # the fields an upsert may match on
    marker: str | None = None  # a free-text field a create may stamp, to find it after a lost answer
    check_fields: CheckFields = field(default_factory=CheckFields)


@dataclass(frozen=True)
class Lines:
    """The lines of a document: where Exact keeps them, which fields of a row are the line's, their EntityType."""

    name: str  # the navigation property on the header, and the lines' resource name
    path: str
    fields: tuple[str, ...]
    deleted: int | None = None


@dataclass(frozen=True)
class Entity:
    """One topic: how to read it, what its records hold, and (where commands may) how to write it."""

    topic: str
    webhook: bool
    # False: no source at hand shows Exact sending this topic (asked for anyway; see exact/catalogue.toml)
    confirmed: bool
    path: str | None
    key: str
    sync_path: str | None
    shape: Shape
    fields: tuple[str, ...]  # the record's fields (a document's header fields)
    deleted: int | None = None
    lines: Lines | None = None
    write: WriteSpec | None = None

    @property
    def read_path(self) -> Literal["sync", "walk"]:
        """How the delta sync reads it: by sync Timestamp, else by a `Modified` walk of `path`."""
        return "sync" if self.sync_path else "walk"

    @property
    def flush_path(self) -> Literal["sync", "keyed"]:
        """How a webhook's changes are fetched: one sync walk, else keyed batches of `path`."""
        return "sync" if self.sync_path else "keyed"

    @property
    def entity_types(self) -> tuple[int, ...]:
        """sync/Deleted EntityTypes that concern it: the record's, then its lines'."""
        line = self.lines.deleted if self.lines else None
        return tuple(t for t in (self.deleted, line) if t is not None)

    def select(self, narrow: Sequence[str] | None = None) -> list[str]:
        """`$select` of a read: every field (or `narrow`, plus the keys and versions), lines included."""
        header = self._narrowed(self.fields, narrow)
        if self.lines is None:
            return header
        if self.shape == "expanded":
            return [*header, self.lines.name]
        return list(dict.fromkeys([*header, *self._narrowed(self.lines.fields, narrow)]))

    def record_fields(self, narrow: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
        """The fields a record keeps when its read is narrowed to `narrow`: the header's, and each line's."""
        lines = self._narrowed(self.lines.fields, narrow) if self.lines else []
        return self._narrowed(self.fields, narrow), lines

    def _narrowed(self, fields: tuple[str, ...], narrow: Sequence[str] | None) -> list[str]:
        if narrow is None:
            return list(fields)
        keep = {*narrow, *_ALWAYS, self.key}
        return [f for f in fields if f in keep]

    def check_narrow(self, narrow: Sequence[str]) -> None:
        """ValueError naming every field of `narrow` this topic does not have."""
        known = {*self.fields, *(self.lines.fields if self.lines else ())}
        unknown = sorted(set(narrow) - known)
        if unknown:
            raise ValueError(f"{self.topic}: no such field {', '.join(unknown)}")


@dataclass(frozen=True)
class ReferenceSpec:
    """What a reference of one kind resolves to: records of `path` (a topic's, or none), matched on `match`,
    written as `writes`; `guid`: what is written is the record's key. `match == writes` on a key: GUIDs only."""

    kind: Kind
    topic: str | None
    path: str
    match: str
    writes: str
    guid: bool = False

    @property
    def guid_only(self) -> bool:
        return self.guid and self.match == self.writes


@dataclass(frozen=True)
class Lookup:
    """What a pre-flight check reads: list queries of `path`, its fields by role (`{"allow_vat": "AllowVAT"}`)."""

    name: str
    path: str
    fields: Mapping[str, str]


class Reference:
    """The trimmed reference (exact/reference.json): resources, their fields and types, EntityTypes, topics seen,
    with the catalogue's `[field_reports]` applied: names production is reported to return instead (gotcha 5)."""

    def __init__(self, data: Mapping[str, Any], reports: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.source: str = data["source"]
        self.resources: dict[str, dict[str, Any]] = data["resources"]
        self.deleted_entity_types: dict[int, str] = {int(k): v for k, v in data["deleted_entity_types"].items()}
        self.topics_seen: tuple[str, ...] = tuple(data["webhook_topics_seen"]["confirmed"])
        self.reports: dict[str, dict[str, str]] = {path: dict(renames) for path, renames in (reports or {}).items()}

    def fields(self, path: str, *, reported: bool = True) -> dict[str, str]:
        """Field name → type of a resource (as production is reported to name them, unless `reported=False`);
        `CatalogueError` if the reference has no such resource."""
        if path not in self.resources:
            raise CatalogueError(f"{path} is not in exact/reference.json")
        fields = cast(dict[str, str], self.resources[path]["fields"])
        renames = self.reports.get(path, {}) if reported else {}
        return {renames.get(name, name): kind for name, kind in fields.items()}

    def plain_fields(self, path: str) -> tuple[str, ...]:
        """The fields of a resource that are values, not navigation collections (`X[]`)."""
        return tuple(name for name, kind in self.fields(path).items() if not kind.endswith("[]"))


@dataclass(frozen=True)
class Catalogue:
    """Every supported topic by lower-cased name, the reference kinds of writes, and the reference they came from."""

    entities: Mapping[str, Entity]
    references: Mapping[Kind, ReferenceSpec]
    reference: Reference
    lookups: Mapping[str, Lookup] = field(default_factory=dict)
    standalone: Mapping[str, WriteSpec] = field(default_factory=dict)  # writes with no topic, by name

    def get(self, topic: str) -> Entity | None:
        return self.entities.get(topic.lower())

    def require(self, topic: str) -> Entity:
        entity = self.get(topic)
        if entity is None:
            raise UnsupportedTopic(topic, self.topics())
        return entity

    def topics(self, *, webhook: bool | None = None) -> tuple[str, ...]:
        """Topic names in catalogue order; `webhook=True` only those Exact sends webhooks for."""
        return tuple(e.topic for e in self.entities.values() if webhook is None or e.webhook == webhook)

    def canonical(self, topic: str) -> str:
        """The catalogue's spelling of `topic` (Exact's topics are case-insensitive)."""
        return self.require(topic).topic

    @property
    def writes(self) -> dict[str, WriteSpec]:
        """Every write spec by name: the topics' and those with no topic."""
        return {**{e.write.name: e.write for e in self.entities.values() if e.write is not None}, **self.standalone}


def _lines(entry: Mapping[str, Any], reference: Reference, fields: tuple[str, ...]) -> tuple[tuple[str, ...], Lines]:
    """Header fields and lines of a document. On a line row, a name both resources have is the line's value."""
    line_path = entry["line_path"]
    line_fields = set(reference.plain_fields(line_path))
    if entry["shape"] == "expanded":
        return fields, Lines(entry["lines"], line_path, tuple(reference.plain_fields(line_path)))
    header_fields = set(reference.plain_fields(entry.get("header_path", entry["path"])))
    named = {"Division", entry["key"], *entry.get("header_fields", ())}
    header = tuple(f for f in fields if (f in header_fields and f not in line_fields) or f in named)
    line = tuple(f for f in fields if f not in header or f == "Division")
    return header, Lines(entry["lines"], line_path, line, entry.get("line_deleted"))


def _write(
    spec: Mapping[str, Any], path: str, key: str, lines: tuple[str, str] | None, reference: Reference
) -> WriteSpec:
    """A write spec from its table; `lines` is (navigation name, lines path) where the entity has lines."""
    types = reference.fields(path, reported=False)  # a write names fields as Exact takes them
    line_spec = None
    if "lines" in spec:
        assert lines is not None, f"write {spec['name']}: lines without a lines path"
        ls, line_types = spec["lines"], reference.fields(lines[1], reported=False)
        line_spec = LineSpec(
            lines[0],
            frozenset(ls["fields"]),
            references=dict(ls.get("references", {})),
            read_only=frozenset(ls.get("read_only", ())),
            read_names=dict(ls.get("read_names", {})),
            numbers=_typed(ls["fields"], line_types, ("int", "float")),
            dates=frozenset(ls.get("dates", ())),
            flags=_typed(ls["fields"], line_types, ("bool",)),
            path=lines[1],
        )
    return WriteSpec(
        spec["name"],
        path,
        frozenset(spec["fields"]),
        key=key,
        references=dict(spec.get("references", {})),
        read_only=frozenset(spec.get("read_only", ())),
        dates=frozenset(spec.get("dates", ())),
        transforms={name: _TRANSFORMS[how] for name, how in spec.get("transforms", {}).items()},
        numbers=_typed(spec["fields"], types, ("int", "float")),
        flags=_typed(spec["fields"], types, ("bool",)),
        lines=line_spec,
        checks=_checks(spec),
        natural_keys=tuple(spec.get("natural_keys", ())),
        marker=spec.get("marker"),
        check_fields=_check_fields(spec),
    )


def _check_fields(spec: Mapping[str, Any]) -> CheckFields:
    table = spec.get("check_fields", {})
    unknown = sorted(set(table) - {*CheckFields.HEADER, *CheckFields.LINE})
    if unknown:
        raise CatalogueError(f"write {spec['name']}: unknown check_fields role {', '.join(unknown)}")
    roles: dict[str, Any] = {role: tuple(v) if isinstance(v, list) else v for role, v in table.items()}
    return CheckFields(**roles)


def _checks(spec: Mapping[str, Any]) -> tuple[str, ...]:
    checks, roles = tuple(spec.get("checks", ())), _check_fields(spec)
    for check in checks:
        if check not in CHECKS:
            raise CatalogueError(f"write {spec['name']}: no check {check!r}; checks: {', '.join(CHECKS)}")
        for need in CHECKS[check]:
            options = need if isinstance(need, tuple) else (need,)
            if not any(roles.named(role) for role in options):
                raise CatalogueError(f"write {spec['name']}: check {check} needs check_fields {' or '.join(options)}")
    return checks


def _typed(names: Iterable[str], types: Mapping[str, str], wanted: tuple[str, ...]) -> frozenset[str]:
    return frozenset(n for n in names if types.get(n) in wanted)


def _entity_write(entry: Mapping[str, Any], reference: Reference) -> WriteSpec | None:
    if "write" not in entry:
        return None
    lines = (entry["lines"], entry["line_path"]) if "line_path" in entry else None
    return _write(entry["write"], entry["path"], entry["key"], lines, reference)


def _standalone(entry: Mapping[str, Any], reference: Reference) -> WriteSpec:
    lines = (entry["lines"]["name"], entry["lines"]["path"]) if "lines" in entry else None
    return _write(entry, entry["path"], entry["key"], lines, reference)


def _entity(entry: Mapping[str, Any], reference: Reference) -> Entity:
    read = entry.get("sync_path") or entry["path"]
    fields = reference.plain_fields(read)
    lines = None
    if entry["shape"] != "flat":
        fields, lines = _lines(entry, reference, fields)
    entity = Entity(
        topic=entry["topic"],
        webhook=bool(entry["webhook"]),
        confirmed=bool(entry.get("confirmed", entry["webhook"])),
        path=entry.get("path"),
        key=entry["key"],
        sync_path=entry.get("sync_path"),
        shape=entry["shape"],
        fields=fields,
        deleted=entry.get("deleted"),
        lines=lines,
        write=_entity_write(entry, reference),
    )
    if len(",".join(entity.select())) > SELECT_BUDGET:
        raise CatalogueError(f"{entity.topic}: $select of every field is over {SELECT_BUDGET} characters: narrow it")
    return entity


def load(catalogue_text: str, reference_text: str) -> Catalogue:
    """A catalogue from the TOML text and the reference JSON text (tests load variants; the app uses CATALOGUE)."""
    data = tomllib.loads(catalogue_text)
    reference = Reference(json.loads(reference_text), data.get("field_reports"))
    entities = {e["topic"].lower(): _entity(e, reference) for e in data["entity"]}
    references: dict[Kind, ReferenceSpec] = {}
    for kind, spec in data["reference"].items():
        topic, path = spec.get("topic"), spec.get("path")
        if topic is not None:
            target = entities[topic.lower()]
            assert target.path is not None, f"reference {kind}: {target.topic} has no service path"
            topic, path = target.topic, target.path
        assert path is not None, f"reference {kind}: neither topic nor path"
        # Exact's GUID keys are `ID` or `…ID`; a code key (general/Currencies' `Code`) is written as the code.
        key = reference.resources.get(path, {}).get("primary_key", "")
        guid = spec["writes"] == key and key.endswith("ID")
        references[kind] = ReferenceSpec(kind, topic, path, spec["match"], spec["writes"], guid=guid)
    lookups = {name: Lookup(name, s["path"], dict(s["fields"])) for name, s in data.get("lookup", {}).items()}
    standalone = {w["name"]: _standalone(w, reference) for w in data.get("write", ())}
    return Catalogue(entities, references, reference, lookups, standalone)


@cache
def _default() -> Catalogue:
    here = files("exact")
    return load((here / "catalogue.toml").read_text("utf-8"), (here / "reference.json").read_text("utf-8"))


CATALOGUE = _default()
