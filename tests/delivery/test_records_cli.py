"""`exact-pipeline records dump`: the mirror of one division and topic as JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from cli.main import _mount, app
from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from runtime.settings import Settings, get_settings

runner = CliRunner()
DIVISION = 31337


def invoke(args: list[str], env: dict[str, str]) -> Result:
    get_settings.cache_clear()  # settings another test built from this process's environment must not be used
    return runner.invoke(app, args, env=env)


@pytest.fixture
def env(settings: Settings) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    _mount()
    yield settings.child_environment(os.environ)
    get_settings.cache_clear()


def test_dump_prints_latest_versions_and_tombstones_by_key(
    env: dict[str, str], settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    a, b, c = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002", "cc" + "0" * 34
    changes = [
        ChangeRecord(DIVISION, "Accounts", b, "Update", {"ID": b, "Name": "old"}, 1),
        ChangeRecord(DIVISION, "Accounts", b, "Update", {"ID": b, "Name": "new"}, 2),
        ChangeRecord(DIVISION, "Accounts", a, "Update", {"ID": a, "Modified": "2026-01-02T03:04:05.000Z"}, 5),
        ChangeRecord(DIVISION, "Accounts", c, "Update", {"ID": c}, 1),
        ChangeRecord(DIVISION, "Accounts", c, "Delete", None, 9),
        ChangeRecord(DIVISION, "Contacts", a, "Update", {"ID": a}, 1),  # another topic: not in this dump
        ChangeRecord(DIVISION + 1, "Accounts", a, "Update", {"ID": a}, 1),  # another division: neither
    ]
    with session_factory() as session, session.begin():
        delivery.accept(session, changes, settings)
    result = invoke(["records", "dump", "--division", str(DIVISION), "--topic", "accounts"], env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == [
        {
            "division": DIVISION,
            "topic": "Accounts",
            "key": a,
            "version": 5,
            "deleted": False,
            "record": {"ID": a, "Modified": "2026-01-02T03:04:05.000Z"},
        },
        {
            "division": DIVISION,
            "topic": "Accounts",
            "key": b,
            "version": 2,
            "deleted": False,
            "record": {"ID": b, "Name": "new"},
        },
        {"division": DIVISION, "topic": "Accounts", "key": c, "version": 9, "deleted": True, "record": None},
    ]


def test_dump_of_an_empty_lane_prints_nothing(env: dict[str, str]) -> None:
    result = invoke(["records", "dump", "--division", "1", "--topic", "Items"], env)
    assert result.exit_code == 0, result.output
    assert result.output == ""
