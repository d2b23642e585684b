"""SINKS_FILE: named http sinks and their routes, read and refused as documented; `accept` logs a change only for the
sinks whose route admits it, with its origin (a command's recorded write, else Exact's), and pushes carry it."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import CommandWrite, Delivery, MirrorRecord
from delivery.origin import prune_writes, record_write
from delivery.push import DeliveryContext, deliver_lane
from delivery.sinks import SinkConfigError, load_sinks
from delivery.sinks.http import HttpSink
from runtime.db import utc_now
from runtime.logging import REDACTOR
from runtime.settings import Settings
from tests.pipeline.push_support import push_settings
from tests.pipeline.sinks_support import origins, serve_targets, write_sinks_file

DIVISION = 4242
MODIFIED = "2026-12-02T01:02:03.456Z"
USER = "6e0c8a3a-1b2c-4d5e-8f90-123456789abc"


def named(
    settings: Settings, tmp_path: Path, routes: dict[str, dict[str, Any]], url: str = "http://127.0.0.1:9"
) -> Settings:
    path = write_sinks_file(tmp_path / f"sinks-{uuid.uuid4().hex[:6]}.toml", url, routes)
    return settings.model_copy(update={"sinks": "sql", "sinks_file": str(path)})


def account(key: str, version: int = 1, modified: str = MODIFIED, division: int = DIVISION) -> ChangeRecord:
    record = {"ID": key, "Name": "Ada", "Modified": modified, "Modifier": USER}
    return ChangeRecord(division, "Accounts", key, "Update", record, version)


def logged(sessions: sessionmaker[Session], key: str) -> dict[str, dict[str, Any] | None]:
    with sessions() as session:
        return {r.sink: r.origin for r in session.scalars(select(Delivery).where(Delivery.key == key))}


class TestSinksFile:
    def test_named_sinks_follow_the_sinks_names(self, settings: Settings, tmp_path: Path) -> None:
        routes = {"crm": {"topics": ["accounts"], "divisions": [101], "suppress_echo": True}, "erp": {}}
        sinks = load_sinks(named(settings, tmp_path, routes))
        assert [s.name for s in sinks] == ["sql", "crm", "erp"]
        crm = sinks[1]
        assert isinstance(crm, HttpSink)
        assert crm.url == "http://127.0.0.1:9/push/crm"
        assert crm.route is not None
        assert (crm.route.topics, crm.route.divisions, crm.route.suppress_echo) == ({"Accounts"}, {101}, True)

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            pytest.param('[sinks.x]\nurl = "ftp://h/p"\nsecret = "whsec_c2VjcmV0"\n', "http:// or https://", id="url"),
            pytest.param('[sinks.x]\nurl = "http://h/p"\n', "sinks.x.secret: Field required", id="no-secret"),
            pytest.param(
                '[sinks.x]\nurl = "http://h/p"\nsecret = "whsec_c2VjcmV0"\ntopics = ["Acounts"]\n',
                "unknown topic 'Acounts'",
                id="topic",
            ),
            pytest.param(
                '[sinks.x]\nurl = "http://h/p"\nsecret = "whsec_c2VjcmV0"\ndivisions = []\n',
                "at least one division",
                id="no-divisions",
            ),
            pytest.param(
                '[sinks.x]\nurl = "http://h/p"\nsecret = "whsec_c2VjcmV0"\nsupress_echo = true\n',
                "supress_echo: Extra inputs",
                id="misspelt",
            ),
            pytest.param('[sinks.X]\nurl = "http://h/p"\nsecret = "whsec_c2VjcmV0"\n', "sink name 'X'", id="name"),
            pytest.param("[sinks.x\n", "not TOML", id="toml"),
            pytest.param('[sinks.x]\nurl = "http://h/p"\nsecret = "whsec_not base64!"\n', "whsec_", id="secret"),
        ],
    )
    def test_a_wrong_file_says_what_is_wrong(self, settings: Settings, tmp_path: Path, text: str, problem: str) -> None:
        path = tmp_path / "sinks.toml"
        path.write_text(text)
        with pytest.raises(SinkConfigError, match=problem) as refused:
            load_sinks(settings.model_copy(update={"sinks_file": str(path)}))
        assert "not base64!" not in str(refused.value)  # a secret never reaches a message

    def test_a_missing_file_is_named(self, settings: Settings, tmp_path: Path) -> None:
        with pytest.raises(SinkConfigError, match="cannot read it"):
            load_sinks(settings.model_copy(update={"sinks_file": str(tmp_path / "absent.toml")}))

    def test_a_name_sinks_already_names_is_refused(self, settings: Settings, tmp_path: Path) -> None:
        with_push = push_settings(named(settings, tmp_path, {"http": {}}), "http://127.0.0.1:9/push")
        with pytest.raises(SinkConfigError, match="'http'.*SINKS"):
            load_sinks(with_push)
        alone = named(settings, tmp_path, {"http": {"topics": ["Items"]}})  # SINKS without http: the file's is it
        assert [s.name for s in load_sinks(alone)] == ["sql", "http"]

    def test_the_files_secrets_never_reach_a_log_line(self, settings: Settings, tmp_path: Path) -> None:
        secret = f"whsec_{base64.b64encode(uuid.uuid4().bytes).decode()}"
        password = f"pw-{uuid.uuid4().hex}"
        path = tmp_path / "sinks.toml"
        path.write_text(f'[sinks.crm]\nurl = "https://u:{password}@crm.test/hook"\nsecret = "{secret}"\n')
        line = f"posting with {secret} to https://u:{password}@crm.test failed"
        assert secret in REDACTOR.redact(line)  # not known before the file is read
        load_sinks(settings.model_copy(update={"sinks": "sql", "sinks_file": str(path)}))
        masked = REDACTOR.redact(line)
        assert secret not in masked
        assert password not in masked


class TestAccept:
    def test_a_change_is_logged_for_the_sinks_its_route_admits(
        self, settings: Settings, tmp_path: Path, session_factory: sessionmaker[Session]
    ) -> None:
        routes = {
            "every": {},
            "accounts": {"topics": ["Accounts"]},
            "here": {"divisions": [DIVISION]},
            "there": {"divisions": [DIVISION + 1]},
            "items": {"topics": ["Items"]},
        }
        settings = named(settings, tmp_path, routes)
        key = str(uuid.uuid4())
        with session_factory() as session, session.begin():
            accepted = delivery.accept(session, [account(key)], settings)
        assert accepted.applied == {"sql": 1, "every": 1, "accounts": 1, "here": 1, "there": 0, "items": 0}
        assert {lane.sink for lane in accepted.lanes} == {"every", "accounts", "here"}
        assert set(logged(session_factory, key)) == {"every", "accounts", "here"}

    def test_a_version_a_command_wrote_is_the_commands_and_not_echoed_to_its_client(
        self, settings: Settings, tmp_path: Path, session_factory: sessionmaker[Session]
    ) -> None:
        settings = named(settings, tmp_path, {"shop": {"suppress_echo": True}, "erp": {"suppress_echo": True}})
        key = str(uuid.uuid4())
        with session_factory() as session, session.begin():
            # The read-back's `/Date(ms)/` and the fetched record's ISO text are one moment.
            ms = 1796173323456
            assert record_write(
                session,
                division=DIVISION,
                entity="Account",
                key=key.upper(),
                modified=f"/Date({ms})/",
                command="c-1",
                source="shop",
            )
        with session_factory() as session, session.begin():
            delivery.accept(session, [account(key, 1), account(key, 2, "2026-12-02T01:09:09.000Z")], settings)
        by_command = {"kind": "command", "key": "c-1", "source": "shop"}
        by_exact = {"kind": "exact", "modifier": USER}
        with session_factory() as session:
            rows = session.execute(select(Delivery.sink, Delivery.version, Delivery.origin).where(Delivery.key == key))
            assert sorted(rows) == [("erp", 1, by_command), ("erp", 2, by_exact), ("shop", 2, by_exact)]
            mirrored = session.scalars(select(MirrorRecord).where(MirrorRecord.key == key)).one()
            assert mirrored.origin == by_exact  # the mirror keeps its version's origin

    def test_a_command_result_reaches_its_own_client(
        self, settings: Settings, tmp_path: Path, session_factory: sessionmaker[Session]
    ) -> None:
        settings = named(settings, tmp_path, {"shop": {"suppress_echo": True}})
        key, by_command = str(uuid.uuid4()), {"kind": "command", "key": "c-2", "source": "shop"}
        result = ChangeRecord(DIVISION, "Commands", key, "Update", {"key": "c-2"}, 5, origin=by_command)
        with session_factory() as session, session.begin():
            delivery.accept(session, [result], settings)
        assert logged(session_factory, key) == {"shop": by_command}

    def test_a_push_carries_the_origin(
        self, settings: Settings, tmp_path: Path, session_factory: sessionmaker[Session], redis_client: Any
    ) -> None:
        with serve_targets(["crm"]) as (server, targets):
            settings = named(settings, tmp_path, {"crm": {}}, server.url)
            key = str(uuid.uuid4())
            with session_factory() as session, session.begin():
                accepted = delivery.accept(session, [account(key)], settings)
            ctx = DeliveryContext.build(settings, session_factory, redis_client)
            [lane] = accepted.lanes
            assert deliver_lane(ctx, lane, owner="test").delivered == 1
        assert origins(targets["crm"], DIVISION, "Accounts", key) == [{"kind": "exact", "modifier": USER}]


def test_recorded_writes_are_pruned_with_the_retention(session_factory: sessionmaker[Session]) -> None:
    key = str(uuid.uuid4())
    with session_factory() as session, session.begin():
        record_write(
            session, division=DIVISION, entity="Account", key=key, modified=MODIFIED, command="c-3", source="a"
        )
        assert not record_write(  # no topic reads a standalone write: nothing to match later
            session, division=DIVISION, entity="NoSuchEntity", key=key, modified=MODIFIED, command="c-4", source="a"
        )
    assert prune_writes(session_factory, 0) == 0
    assert prune_writes(session_factory, 1.0) == 0
    with session_factory() as session, session.begin():
        session.execute(
            update(CommandWrite).where(CommandWrite.key == key).values(created_at=utc_now() - timedelta(days=2))
        )
    assert prune_writes(session_factory, 1.0) >= 1
    with session_factory() as session:
        assert session.scalars(select(CommandWrite).where(CommandWrite.key == key)).all() == []
