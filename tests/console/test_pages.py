"""The console's pages over real HTTP, a fresh database and Redis: the call chart from the per-minute counts,
commands with their results, every needs-attention item with what to do, the record page's input check."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from commands.models import CommandRecord, CommandState
from connections.models import Division
from console.pages import attention
from ops.status import Status
from runtime.settings import Settings
from runtime.usage import record_call
from tests.conftest import ServerThread
from tests.console.support import console_settings, logged_in, serve_console
from tests.factories import create_connection
from tests.pipeline import fresh_db

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with serve_console(console_settings(settings)) as server:
        yield server


def test_the_pages_show_calls_commands_and_what_needs_attention(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis, server: ServerThread
) -> None:
    with session_factory() as session, session.begin():
        connection = create_connection(session, key=settings.secret("token_encryption_key"))
        connection.needs_consent = True
        connection.consent_error = "refresh token expired"
        session.add(Division(connection_id=connection.id, code=101, description="Arnhem"))
        session.add(
            CommandRecord(
                key="cmd-1",
                division=101,
                entity="SalesInvoices",
                action="create",
                body={},
                fingerprint="f",
                status=CommandState.SUCCEEDED,
                result={"exact_id": "guid-of-the-invoice"},
            )
        )
    now = time.time()
    for moment in (now, now, now - 60, now - 7200):
        record_call(redis_client, prefix=settings.redis_prefix, client_id="app", division=101, now=moment)

    with logged_in(server) as client:
        overview = client.get("/console").text
        assert "needs consent" in overview
        assert "refresh token expired: run `exact-pipeline connect`" in overview.replace("&#96;", "`")

        calls = client.get("/console/calls").text
        totals = re.findall(r'aria-label="division 101, last (hour|day)" data-total="(\d+)"', calls)
        # The last hour's 60 buckets hold three calls (a minute rolling over before the read keeps them in); the
        # day's, all four: two hours back is outside the hour.
        assert totals == [("hour", "3"), ("day", "4")]

        commands = client.get("/console/commands?state=succeeded").text
        assert 'data-command="cmd-1"' in commands
        assert "guid-of-the-invoice" in commands
        assert 'data-command="cmd-1"' not in client.get("/console/commands?state=failed").text

        bad = client.get("/console/records?division=x&topic=Accounts&key=k")
        assert bad.status_code == 400
        empty = client.get("/console/records?division=101&topic=Accounts&key=nothing-kept")
        assert empty.status_code == 200
        assert 'id="no-trace"' in empty.text


def test_every_needs_attention_item_of_status_is_listed_with_what_to_do() -> None:
    status = Status(
        subscriptions=[
            {
                "connection": 1,
                "division": 101,
                "topic": "Accounts",
                "state": "active",
                "silent": True,
                "attention": None,
                "last_error": None,
            },
            {
                "connection": 1,
                "division": 202,
                "topic": "Contacts",
                "state": "failed",
                "silent": False,
                "attention": None,
                "last_error": "Exact said no",
            },
        ],
        dead_letters={
            "count": 2,
            "oldest": "2026-12-04T10:00:00Z",
            "pending_deliveries": 0,
            "stopped_targets": [{"sink": "http", "url": "https://x/push", "since": "2026-12-04T09:00:00Z"}],
        },
        commands_to_check=[
            {"key": "k1", "status": "unknown", "stuck": False, "division": 101, "entity": "Accounts"},
            {"key": "k2", "status": "running", "stuck": True, "division": 101, "entity": "Accounts"},
        ],
        schema={
            "recorded": [1],
            "missing_fields": [
                {"connection": 1, "division": 101, "resource": "crm/Accounts", "field": "Name", "attention": "look"}
            ],
        },
    )
    assert status.needs_attention
    items = [f"{a.what}: {a.todo}" for a in attention(status, silent_hours=48)]
    assert len(items) == 7
    assert "silent (no webhook for 48 hours)" in items[0]
    assert "failed (Exact said no)" in items[1]
    assert "2 dead letter(s)" in items[2]
    assert "deadletters resume --sink http" in items[3]
    assert "outcome unknown" in items[4]
    assert "stuck running" in items[5]
    assert items[6].endswith("crm/Accounts field Name missing in production: look")
    assert attention(Status(), silent_hours=48) == []
