"""The snapshot's JSON: stable (sorted, indented, newline at the end), round-trips, and refuses another format."""

from __future__ import annotations

import json

import pytest

from schema import Field, Refusal, Resource, Snapshot


def a_snapshot() -> Snapshot:
    good = Resource(
        fields={"Name": Field("string"), "Modified": Field("string", "ms"), "ID": Field("string")},
        envelope="d.results",
        row_shape="line_rows",
        header_key="InvoiceID",
        page_size=2,
        next=True,
    )
    return Snapshot("production", {"z/Last": good, "a/First": Resource(error=Refusal(403, "Forbidden"))})


def test_json_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = a_snapshot().to_json()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "format": 1,')
    data = json.loads(text)
    assert list(data["resources"]) == ["a/First", "z/Last"]
    assert list(data["resources"]["z/Last"]["fields"]) == ["ID", "Modified", "Name"]
    assert data["resources"]["z/Last"]["dates"] == {"Modified": "ms"}
    # Nothing a side does not know is written: a refusal has its error and no envelope or page.
    assert data["resources"]["a/First"] == {"error": {"message": "Forbidden", "status": 403}, "fields": {}}


def test_the_same_snapshot_gives_the_same_text_and_round_trips() -> None:
    text = a_snapshot().to_json()
    assert Snapshot.from_json(text) == a_snapshot()
    assert Snapshot.from_json(text).to_json() == text
    assert "time" not in text.lower()  # no timestamp in what is compared


@pytest.mark.parametrize(
    "text", ['{"format": 99, "source": "sandbox", "resources": {}}', "[]", '{"format": 1, "source": "x"}']
)
def test_another_format_or_source_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="format|source"):
        Snapshot.from_json(text)
