"""`schema.diff` on hand-made snapshots: each kind of difference, which are breaking, and `missing_read_fields`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exact import CATALOGUE
from schema import Field, Refusal, Resource, Snapshot, diff, expected, missing_read_fields, reads

PATH = "crm/Accounts"
READ = reads(CATALOGUE)[PATH]
USED = sorted(READ.used)[0]  # a field the project reads of crm/Accounts


def recorded(**changes: object) -> Resource:
    """crm/Accounts as a good recording shows it: every field the code reads, Modified as `/Date(ms)/`."""
    base = expected(CATALOGUE).resources[PATH]
    fields = {**base.fields, "Modified": Field("string", "ms")}
    resource = Resource(fields=fields, envelope="d.results", row_shape="flat", page_size=30, next=False)
    return replace(resource, **changes)  # type: ignore[arg-type]


def snap(resource: Resource, source: str = "production") -> Snapshot:
    return Snapshot(source, {PATH: resource})  # type: ignore[arg-type]


def kinds(a: Resource, b: Resource) -> list[tuple[str, str | None, bool]]:
    return [(c.kind, c.field, c.breaking) for c in diff(snap(a), snap(b, "sandbox"), CATALOGUE).changes]


def without(resource: Resource, name: str) -> Resource:
    return replace(resource, fields={k: v for k, v in resource.fields.items() if k != name})


def test_the_same_recording_has_no_differences() -> None:
    report = diff(snap(recorded()), snap(recorded(), "sandbox"), CATALOGUE)
    assert report.changes == []
    assert not report.breaking


def test_a_field_the_code_reads_dropped_is_breaking() -> None:
    assert kinds(recorded(), without(recorded(), USED)) == [("missing", USED, True)]


def test_a_field_the_code_reads_lacking_on_the_baseline_is_breaking_too() -> None:
    # `schema diff schema/sandbox.json catalogue`: the sandbox lacks a field the catalogue reads.
    assert kinds(without(recorded(), USED), recorded()) == [("added", USED, True)]


def test_an_addition_the_code_does_not_use_is_not_breaking() -> None:
    more = recorded(fields={**recorded().fields, "BrandNewField": Field("string")})
    report = diff(snap(recorded()), snap(more, "sandbox"), CATALOGUE)
    assert [(c.kind, c.field, c.breaking) for c in report.changes] == [("added", "BrandNewField", False)]
    assert not report.breaking


def test_a_rename_is_a_breaking_missing_field_and_a_harmless_addition() -> None:
    renamed = without(recorded(), USED)
    renamed = replace(renamed, fields={**renamed.fields, f"{USED}Renamed": recorded().fields[USED]})
    assert sorted(kinds(recorded(), renamed)) == [("added", f"{USED}Renamed", False), ("missing", USED, True)]


def test_type_and_date_format_changes_of_a_read_field_are_breaking() -> None:
    changed = recorded(fields={**recorded().fields, "Modified": Field("string", "iso"), USED: Field("array")})
    assert sorted(kinds(recorded(), changed)) == [("date_format", "Modified", True), ("type", USED, True)]


def test_null_is_no_type_so_it_differs_from_none() -> None:
    nulls = recorded(fields={**recorded().fields, USED: Field("null")})
    assert kinds(recorded(), nulls) == []


def test_row_shape_and_envelope_changes_are_breaking() -> None:
    lines = recorded(row_shape="line_rows", header_key="ID", envelope="d[]")
    assert sorted(kinds(recorded(), lines)) == [("envelope", None, True), ("row_shape", None, True)]


def test_a_refused_read_is_breaking_and_compares_nothing_else() -> None:
    refused = Resource(error=Refusal(404, "Not found: unknown resource"))
    assert kinds(recorded(), refused) == [("refused", None, True)]
    assert kinds(refused, refused) == []


def test_page_size_and_next_are_reported_but_never_breaking() -> None:
    assert sorted(kinds(recorded(), recorded(page_size=60, next=True))) == [
        ("next", None, False),
        ("page_size", None, False),
    ]


def test_an_empty_page_shows_no_fields_and_is_not_drift() -> None:
    empty = Resource(envelope="d.results", page_size=0, next=False)
    assert kinds(recorded(), empty) == [("no_rows", None, False), ("page_size", None, False)]


def test_the_catalogue_side_compares_only_what_it_knows() -> None:
    # No envelope, date format or page on the catalogue side: a good recording matches it exactly.
    report = diff(snap(recorded()), expected(CATALOGUE), CATALOGUE)
    assert [c for c in report.changes if c.resource == PATH] == []


def test_a_resource_only_one_side_read_is_breaking_when_the_code_reads_it() -> None:
    report = diff(Snapshot("production", {}), snap(recorded(), "sandbox"), CATALOGUE)
    assert [(c.kind, c.breaking) for c in report.changes] == [("resource", True)]
    gone = Snapshot("production", {"crm/Retired": Resource()})
    assert [(c.kind, c.breaking) for c in diff(gone, Snapshot("sandbox", {}), CATALOGUE).changes] == [
        ("resource", False)
    ]


def test_report_json_names_each_change() -> None:
    report = diff(snap(recorded()), snap(without(recorded(), USED), "sandbox"), CATALOGUE).to_dict()
    assert report["breaking"] is True
    assert (report["a"], report["b"]) == ("production", "sandbox")
    assert report["changes"] == [
        {"resource": PATH, "kind": "missing", "field": USED, "a": "string", "b": None, "breaking": True}
    ]


@pytest.mark.parametrize("name", [USED, "Modified"])
def test_missing_read_fields_lists_what_the_code_reads_and_the_snapshot_lacks(name: str) -> None:
    assert missing_read_fields(snap(without(recorded(), name)), CATALOGUE) == {PATH: (name,)}


def test_missing_read_fields_skips_other_refusals_and_empty_pages() -> None:
    assert missing_read_fields(snap(Resource(error=Refusal(403, "Forbidden"))), CATALOGUE) == {}
    assert missing_read_fields(snap(Resource(envelope="d.results", page_size=0)), CATALOGUE) == {}


def test_a_refusal_naming_a_retired_field_reports_the_field_too() -> None:
    refused = Resource(error=Refusal(400, f"$select: unknown field(s) {USED}", (USED,)))
    assert kinds(recorded(), refused) == [("refused", None, True), ("missing", USED, True)]
    assert kinds(refused, recorded()) == [("refused", None, True), ("added", USED, True)]
    assert missing_read_fields(snap(refused), CATALOGUE) == {PATH: (USED,)}
