"""README.md's table of topics says what the catalogue does, row for row."""

from __future__ import annotations

from pathlib import Path

from exact import CATALOGUE
from tests.exact.readme_topics import HEADER, rows

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_every_topic_as_the_catalogue_reads_it() -> None:
    text = README.read_text("utf-8")
    start = text.index(HEADER)
    table = text[start:].split("\n\n", 1)[0].splitlines()[2:]
    assert table == rows(CATALOGUE)
