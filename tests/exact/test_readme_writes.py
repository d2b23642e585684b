"""README.md's "Writing to Exact" table says what the write specs do, row for row."""

from __future__ import annotations

from pathlib import Path

from exact import CATALOGUE
from tests.exact.readme_writes import HEADER, rows

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_every_writable_entity_as_the_catalogue_writes_it() -> None:
    text = README.read_text("utf-8")
    start = text.index(HEADER)
    table = text[start:].split("\n\n", 1)[0].splitlines()[2:]
    assert table == rows(CATALOGUE)
