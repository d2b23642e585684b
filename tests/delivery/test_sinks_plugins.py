"""Sinks come from the `exact_pipeline.sinks` entry points; SINKS picks them, and a wrong pick says what is wrong."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.sinks import PushSink, UnknownSink, load_sinks
from delivery.sinks.http import HttpSink
from delivery.sinks.sql import SqlSink
from runtime.settings import MissingSetting, Settings

PLUGIN = """
from __future__ import annotations

SEEN: list[tuple[str, int]] = []


class ListSink:
    name = "listsink"

    def __init__(self, settings: object) -> None:
        self.settings = settings

    def accept(self, session: object, changes: list) -> int:
        SEEN.extend((c.key, c.version) for c in changes)
        return len(changes)
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[str]:
    """An installed third-party sink: a module plus a dist-info that declares the entry point."""
    module = f"ep_test_sink_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    info = tmp_path / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[exact_pipeline.sinks]\nlistsink = {module}:ListSink\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


def test_builtins_come_from_the_entry_points(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"sinks": "sql, http", "push_url": "http://127.0.0.1:9/push", "push_secret": SecretStr("whsec_c2VjcmV0")}
    )
    sinks = load_sinks(settings)
    assert [type(s) for s in sinks] == [SqlSink, HttpSink]
    assert [isinstance(s, PushSink) for s in sinks] == [False, True]


def test_an_unknown_sink_is_named(settings: Settings) -> None:
    with pytest.raises(UnknownSink, match=r"'kafka'.*installed: .*http.*sql"):
        load_sinks(settings.model_copy(update={"sinks": "sql,kafka"}))


def test_http_needs_push_url_and_secret(settings: Settings) -> None:
    with pytest.raises(MissingSetting, match="PUSH_URL, PUSH_SECRET") as caught:
        load_sinks(settings.model_copy(update={"sinks": "http"}))
    assert caught.value.variables == ("PUSH_URL", "PUSH_SECRET")


def test_a_plugin_sink_is_found_and_accepts_in_the_transaction(
    plugin: str, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    settings = settings.model_copy(update={"sinks": "sql,listsink"})
    key = str(uuid.uuid4())
    with session_factory() as session, session.begin():
        result = delivery.accept(session, [ChangeRecord(1, "Accounts", key, "Update", {"ID": key}, 3)], settings)
    assert result.applied == {"sql": 1, "listsink": 1}
    assert result.lanes == ()  # no push step: nothing to dispatch
    assert sys.modules[plugin].SEEN == [(key, 3)]
