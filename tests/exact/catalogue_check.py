"""What makes a catalogue disagree with the reference: each problem named, so a test shows them all at once."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from exact import Catalogue, Entity, LineSpec, WriteSpec
from exact._catalogue import SELECT_BUDGET, CheckFields, Reference, ReferenceSpec
from exact._preflight import LOOKUP_ROLES

__all__ = ["PACKAGES", "catalogue_problems", "literal_paths"]

# The packages of the service (the sandbox keeps its own definitions and is checked in tests/sandbox).
PACKAGES = (
    "runtime",
    "exact",
    "connections",
    "delivery",
    "subscriptions",
    "sync",
    "commands",
    "receiver",
    "workers",
    "ops",
    "cli",
)
_PATH = re.compile(r"^(sync|bulk|read/[a-z]+|[a-z]+)/[A-Z][A-Za-z]+$")


def catalogue_problems(catalogue: Catalogue) -> list[str]:
    problems: list[str] = []
    for entity in catalogue.entities.values():
        problems += _entity_problems(catalogue.reference, entity)
    for path, renames in catalogue.reference.reports.items():
        raw = catalogue.reference.fields(path, reported=False)
        problems += [f"field report {path}: the reference has no {name}" for name in renames if name not in raw]
    for kind, spec in catalogue.references.items():
        if spec.path not in catalogue.reference.resources:
            problems.append(f"reference {kind}: {spec.path} is not in the reference")
            continue
        problems += _missing(catalogue.reference, spec.path, [spec.match, spec.writes], f"reference {kind}")
    for spec in catalogue.standalone.values():
        problems += _standalone_problems(catalogue.reference, spec)
    for spec in catalogue.writes.values():
        problems += _check_problems(catalogue.reference, spec)
        problems += _guid_problems(catalogue.reference, catalogue.references, spec)
    problems += _lookup_problems(catalogue)
    return problems


def literal_paths(root: Path, packages: Iterable[str] = PACKAGES) -> Iterator[tuple[str, str]]:
    """(file, literal) for every string constant in the packages' sources that is shaped like an Exact path."""
    for package in packages:
        for source in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text("utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and _PATH.match(node.value):
                    yield str(source.relative_to(root)), node.value


def _entity_problems(reference: Reference, entity: Entity) -> list[str]:
    where = f"topic {entity.topic}"
    problems: list[str] = []
    read = entity.sync_path or entity.path
    for path in (entity.path, entity.sync_path, entity.lines.path if entity.lines else None):
        if path is not None and path not in reference.resources:
            problems.append(f"{where}: {path} is not in the reference")
    if problems or read is None:
        return problems or [f"{where}: no path to read"]
    types = reference.fields(read)
    for name in entity.select():
        if name not in types:
            problems.append(f"{where}: {read} has no field {name}")
        elif entity.shape == "expanded" and entity.lines and name == entity.lines.name:
            if not types[name].endswith("[]"):
                problems.append(f"{where}: {read}.{name} is no lines collection")
    problems += _key_problems(reference, entity, where)
    problems += _deleted_problems(reference, entity, where)
    if (entity.webhook and entity.confirmed) != (entity.topic in reference.topics_seen):
        problems.append(
            f"{where}: webhook={entity.webhook}, confirmed={entity.confirmed}, but the reference's "
            "confirmed topics say otherwise"
        )
    if len(",".join(entity.select())) > SELECT_BUDGET:
        problems.append(f"{where}: $select is over {SELECT_BUDGET} characters")
    if entity.write is not None:
        problems += _write_problems(reference, entity, entity.write)
    return problems


def _key_problems(reference: Reference, entity: Entity, where: str) -> list[str]:
    problems = []
    if entity.path is not None and reference.resources[entity.path]["primary_key"] != entity.key:
        problems.append(f"{where}: the key of {entity.path} is {reference.resources[entity.path]['primary_key']}")
    if entity.sync_path is not None:
        grouped = reference.resources[entity.sync_path].get("rows_are_lines_grouped_by")
        if (entity.shape == "line_rows") != (grouped is not None) or (grouped and grouped != entity.key):
            problems.append(
                f"{where}: {entity.sync_path} rows are grouped by {grouped}, the catalogue says "
                f"{entity.shape} by {entity.key}"
            )
        if entity.key not in reference.fields(entity.sync_path):
            problems.append(f"{where}: {entity.sync_path} rows have no {entity.key}")
    return problems


def _deleted_problems(reference: Reference, entity: Entity, where: str) -> list[str]:
    problems = []
    pairs = [(entity.deleted, entity.topic)]
    if entity.lines is not None:
        pairs.append((entity.lines.deleted, entity.lines.path.rpartition("/")[2]))
    for code, name in pairs:
        if code is None:
            continue
        known = reference.deleted_entity_types.get(code)
        if known is None or not _names_match(known, name):
            problems.append(f"{where}: sync/Deleted EntityType {code} is {known!r}, not {name}")
    return problems


def _names_match(known: str, name: str) -> bool:
    """`SalesOrderHeaders` is the header of `SalesOrders`; `ItemPrices` the type of `SalesItemPrices`."""
    stem = name[:-3] + "y" if name.endswith("ies") else name.rstrip("s")
    return known == name or name.endswith(known) or known.startswith(stem)


def _write_problems(reference: Reference, entity: Entity, spec: WriteSpec) -> list[str]:
    where = f"write {spec.name}"
    methods = reference.resources[spec.path]["methods"]
    problems = [] if {"POST", "PUT"} <= set(methods) else [f"{where}: {spec.path} is not writable ({methods})"]
    problems += _typed_problems(reference, spec.path, spec, where)
    if spec.lines is not None and entity.lines is not None:
        problems += _typed_problems(reference, entity.lines.path, spec.lines, f"{where} lines")
        read_names = [spec.lines.read_names.get(n, n) for n in spec.lines.fields]
        problems += _missing(reference, entity.lines.path, read_names, f"{where} lines (read back)")
    return problems


def _standalone_problems(reference: Reference, spec: WriteSpec) -> list[str]:
    """A write with no topic: its resources exist, its key is theirs, and its fields are as for a topic's write."""
    where = f"write {spec.name}"
    paths = [spec.path, *([spec.lines.path] if spec.lines else [])]
    missing = [f"{where}: {path} is not in the reference" for path in paths if path not in reference.resources]
    if missing:
        return missing
    resource = reference.resources[spec.path]
    problems = (
        [] if resource["primary_key"] == spec.key else [f"{where}: the key of {spec.path} is {resource['primary_key']}"]
    )
    if not {"POST", "PUT"} <= set(resource["methods"]):
        problems.append(f"{where}: {spec.path} is not writable ({resource['methods']})")
    problems += _typed_problems(reference, spec.path, spec, where)
    if spec.lines is not None:
        problems += _typed_problems(reference, spec.lines.path, spec.lines, f"{where} lines")
        if not reference.fields(spec.path).get(spec.lines.name, "").endswith("[]"):
            problems.append(f"{where}: {spec.path}.{spec.lines.name} is no lines collection")
    return problems


def _check_problems(reference: Reference, spec: WriteSpec) -> list[str]:
    """Natural keys, marker and check fields are fields of the write (header or lines) that the reference has."""
    where = f"write {spec.name}"
    problems = [
        f"{where}: natural key {n} is not a field of the write" for n in spec.natural_keys if n not in spec.fields
    ]
    if spec.marker is not None:
        kind = reference.fields(spec.path, reported=False).get(spec.marker)
        if spec.marker not in spec.fields or kind != "string":
            problems.append(f"{where}: marker {spec.marker} is no free-text field of the write ({kind})")
    for roles, fields, path in (
        (CheckFields.HEADER, spec.fields, spec.path),
        (CheckFields.LINE, spec.lines.fields if spec.lines else frozenset(), spec.lines.path if spec.lines else None),
    ):
        types = reference.fields(path, reported=False) if path else {}
        for role in roles:
            for name in spec.check_fields.named(role):
                if name not in types:
                    problems.append(f"{where}: check field {role}: {path} has no field {name}")
                elif name not in fields:
                    problems.append(f"{where}: check field {role}: {name} is not a field of the write")
    return problems


def _guid_problems(reference: Reference, kinds: Mapping[str, ReferenceSpec], spec: WriteSpec) -> list[str]:
    """What the reference can tell of a field: `X` beside an `XCode`, or `…ID`, holds a GUID; `…Code` a code."""
    problems = []
    specs: list[tuple[str, Mapping[str, str]]] = [(spec.path, spec.references)]
    if spec.lines is not None:
        specs.append((spec.lines.path, spec.lines.references))
    for path, references in specs:
        types = reference.fields(path, reported=False)
        for name, kind in references.items():
            guid = f"{name}Code" in types or name.endswith("ID")
            code = name.endswith("Code")
            if (guid and not kinds[kind].guid) or (code and kinds[kind].guid):
                wanted = "a GUID" if guid else "a code"
                problems.append(
                    f"write {spec.name}: {path}.{name} takes {wanted}, but {kind} writes {kinds[kind].writes}"
                )
    return problems


def _lookup_problems(catalogue: Catalogue) -> list[str]:
    """Each pre-flight read names a resource and fields the reference has, with every role the checks use."""
    problems = []
    for name, roles in LOOKUP_ROLES.items():
        lookup = catalogue.lookups.get(name)
        if lookup is None:
            problems.append(f"lookup {name}: missing")
            continue
        if lookup.path not in catalogue.reference.resources:
            problems.append(f"lookup {name}: {lookup.path} is not in the reference")
            continue
        problems += [f"lookup {name}: no field for role {role}" for role in roles if role not in lookup.fields]
        problems += _missing(catalogue.reference, lookup.path, lookup.fields.values(), f"lookup {name}")
    return problems


def _typed_problems(reference: Reference, path: str, spec: WriteSpec | LineSpec, where: str) -> list[str]:
    types = reference.fields(path, reported=False)
    problems = [f"{where}: {path} has no field {name}" for name in spec.fields if name not in types]
    problems += _missing(reference, path, spec.read_only, where)
    wanted = {"string": set(spec.dates) | set(spec.references), "bool": set(spec.flags), "number": set(spec.numbers)}
    for kind, names in wanted.items():
        for name in names:
            found = types.get(name)
            ok = found in ("int", "float") if kind == "number" else found == kind
            if found is not None and not ok:
                problems.append(f"{where}: {path}.{name} is {found}, written as a {kind}")
    return problems


def _missing(reference: Reference, path: str, names: Iterable[str], where: str) -> list[str]:
    types = reference.fields(path)
    return [f"{where}: {path} has no field {name}" for name in names if name not in types]
