"""`exact-pipeline status --json`: what it reports about a connection, its divisions, budget, subscriptions and log."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli.main import _mount, app
from connections.factory import client_from_settings, limiter_from_settings, oauth_from_settings
from connections.models import Connection
from delivery.models import Delivery
from exact import NeedsConsent
from runtime.contracts import LAST_WEBHOOK_KEY
from runtime.crypto import TokenCipher
from runtime.db import session_scope
from runtime.settings import Settings, get_settings
from sandbox.config import SandboxConfig
from subscriptions.models import Subscription
from sync.cursors import CursorStore
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to

# A database of its own: status counts every row there is.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()


@pytest.fixture
def sandboxed(settings: Settings, sandbox: ServerThread) -> Iterator[Settings]:
    get_settings.cache_clear()
    _mount()
    yield settings.model_copy(update={"exact_base_url": sandbox.url, "silent_subscription_hours": 1.0})
    get_settings.cache_clear()


def _status(settings: Settings) -> dict[str, object]:
    get_settings.cache_clear()
    result = runner.invoke(app, ["status", "--json"], env=settings.child_environment(os.environ))
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_status_reports_consent_budget_silence_dead_letters_and_lag(
    sandboxed: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    settings = sandboxed
    connection_id = connect_to(settings)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    with session_scope(session_factory) as session:
        for topic in ("Accounts", "Contacts"):
            session.add(
                Subscription(
                    connection_id=connection_id,
                    division=101,
                    topic=topic,
                    state="active",
                    callback_url=settings.callback_url,
                    created_at=long_ago,
                )
            )
        session.add(
            Delivery(
                sink="http",
                event_id="101:Accounts:k:1:Update",
                division=101,
                topic="Accounts",
                key="k",
                version=1,
                action="Update",
                record={},
                state="dead",
                attempts=8,
                last_error="503 from the target",
            )
        )
    # The receiver saw a Contacts webhook a moment ago; Accounts has been quiet for three hours.
    redis_client.hset(settings.redis_prefix + LAST_WEBHOOK_KEY, "101:Contacts", int(time.time()))
    for _ in range(3):
        limiter_from_settings(settings).acquire(101)
    CursorStore(session_factory).advance(connection_id, 101, "Accounts", generation=0, timestamp=42)

    report = _status(settings)
    [connection] = report["connections"]  # type: ignore[misc]
    assert connection["needs_consent"] is False
    assert {d["code"] for d in report["divisions"]} == {101, 202, 303}  # type: ignore[attr-defined]
    budget = next(b for b in report["budgets"] if b["division"] == 101)  # type: ignore[attr-defined]
    assert budget["minute_used"] >= 3  # the connect's own calls count too
    assert budget["minute_limit"] == settings.rate_limit_per_minute
    silent = {s["topic"]: s["silent"] for s in report["subscriptions"]}  # type: ignore[attr-defined]
    assert silent == {"Accounts": True, "Contacts": False}
    assert report["dead_letters"]["count"] == 1  # type: ignore[index]
    [cursor] = report["cursors"]  # type: ignore[misc]
    assert (cursor["topic"], cursor["timestamp"]) == ("Accounts", 42)
    assert cursor["lag_seconds"] >= 0
    assert set(report["queues"]) == {"exact-events", "exact-deliveries", "unacked"}  # type: ignore[arg-type]
    assert report["needs_attention"] is True

    with session_scope(session_factory) as session:
        session.execute(update(Connection).values(needs_consent=True, consent_error="invalid_grant"))
    [connection] = _status(settings)["connections"]  # type: ignore[misc]
    assert (connection["needs_consent"], connection["consent_error"]) == (True, "invalid_grant")


def test_status_shows_each_budget_classs_spend(sandboxed: Settings) -> None:
    settings = sandboxed
    connect_to(settings)

    def spent(report: dict[str, object]) -> dict[str, tuple[int, int]]:
        budget = next(b for b in report["budgets"] if b["division"] == 202)  # type: ignore[attr-defined]
        return {name: (c["minute_used"], c["day_used"]) for name, c in budget["classes"].items()}

    before = spent(_status(settings))
    limiter = limiter_from_settings(settings)
    for name in ("command", "command", "backfill"):
        limiter.acquire(202, name)
    report = _status(settings)
    after = spent(report)
    grown = {name: (after[name][0] - before[name][0], after[name][1] - before[name][1]) for name in after}
    assert grown == {"command": (2, 2), "webhook": (0, 0), "delta": (0, 0), "backfill": (1, 1)}
    budget = next(b for b in report["budgets"] if b["division"] == 202)  # type: ignore[attr-defined]
    reserved = int(settings.budget_share_backfill * settings.rate_limit_per_minute)
    assert budget["classes"]["backfill"]["minute_reserved"] == reserved
    get_settings.cache_clear()
    table = runner.invoke(app, ["status"], env=settings.child_environment(os.environ), terminal_width=200)
    assert f"backfill {after['backfill'][0]}/{reserved}" in table.output


def test_the_table_says_needs_consent_and_silent(sandboxed: Settings, session_factory: sessionmaker[Session]) -> None:
    settings = sandboxed
    connection_id = connect_to(settings)
    with session_scope(session_factory) as session:
        session.add(
            Subscription(
                connection_id=connection_id,
                division=202,
                topic="Items",
                state="active",
                callback_url=settings.callback_url,
                created_at=datetime.now(UTC) - timedelta(days=3),
            )
        )
        session.execute(update(Connection).values(needs_consent=True, consent_error="invalid_grant"))
    get_settings.cache_clear()
    result = runner.invoke(app, ["status"], env=settings.child_environment(os.environ))
    assert result.exit_code == 0, result.output
    assert "needs consent" in result.output
    assert "(silent)" in result.output


def test_a_refresh_token_rotated_elsewhere_ends_in_needs_consent_and_status_says_so(
    sandboxed: Settings, session_factory: sessionmaker[Session], sandbox: ServerThread
) -> None:
    settings = sandboxed
    connection_id = connect_to(settings)
    with session_factory() as session:
        row = session.get(Connection, connection_id)
        assert row is not None
        ours = TokenCipher(settings.secret("token_encryption_key")).decrypt(row.refresh_token_enc)
    # Another integration holding the same refresh token uses it: Exact rotates it, and ours is dead.
    httpx.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 600})
    oauth_from_settings(settings).refresh(ours)
    with session_scope(session_factory) as session:
        session.execute(update(Connection).values(token_issued_at=datetime.now(UTC) - timedelta(seconds=600)))
    client = client_from_settings(settings, session_factory, connection_id)
    for _ in range(3):
        with pytest.raises(NeedsConsent):
            client.me()
    stats = httpx.get(f"{sandbox.url}/_sandbox/oauth").json()
    assert stats["rotated_token_uses"] == 1  # tried once, then no loop against the token endpoint
    [connection] = _status(settings)["connections"]  # type: ignore[misc]
    assert connection["needs_consent"] is True
    assert connection["consent_error"]


def test_commands_are_counted_by_state_and_an_unknown_one_needs_attention(
    sandboxed: Settings, session_factory: sessionmaker[Session]
) -> None:
    from commands.schema import Command
    from commands.store import finish, submit

    def command(key: str) -> Command:
        return Command(key=key, division=101, entity="Account", action="create", fields={"Name": key})

    with session_factory() as session:
        for key in ("a", "b", "c"):
            submit(session, command(key))
        finish(session, "b", "succeeded", {"exact_id": "x"})
        session.commit()
    report = _status(sandboxed)
    assert report["commands"] == {"queued": 2, "running": 0, "succeeded": 1, "failed": 0, "unknown": 0}
    assert report["needs_attention"] is False
    with session_factory() as session:
        finish(session, "c", "unknown", {"error": {"type": "Interrupted", "message": "m"}})
        session.commit()
    report = _status(sandboxed)
    assert report["commands"]["unknown"] == 1  # type: ignore[index]
    assert report["needs_attention"] is True
    get_settings.cache_clear()
    table = runner.invoke(app, ["status"], env=sandboxed.child_environment(os.environ))
    assert "1 unknown" in table.output


def test_unknown_commands_and_ones_stuck_running_are_listed_with_their_exact_id(
    sandboxed: Settings, session_factory: sessionmaker[Session]
) -> None:
    from commands.models import CommandRecord
    from commands.schema import Command
    from commands.store import claim, finish, submit

    def command(key: str) -> Command:
        return Command(key=key, division=101, entity="Account", action="create", fields={"Name": key})

    with session_factory() as session:
        for key in ("landed", "stuck", "busy"):
            submit(session, command(key))
        claim(session, "stuck", "task-a")
        claim(session, "busy", "task-b")
        session.execute(
            update(CommandRecord)
            .where(CommandRecord.key == "stuck")
            .values(updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
        finish(session, "landed", "unknown", {"exact_id": "0f9c", "error": {"type": "NotVerified", "message": "m"}})
        session.commit()
    report = _status(sandboxed)
    listed = {c["key"]: (c["status"], c["stuck"], c["exact_id"]) for c in report["commands_to_check"]}  # type: ignore[attr-defined]
    assert listed == {"landed": ("unknown", False, "0f9c"), "stuck": ("running", True, None)}
    assert report["needs_attention"] is True
    get_settings.cache_clear()
    table = runner.invoke(app, ["status"], env=sandboxed.child_environment(os.environ)).output
    assert "stuck running" in table
    assert "Exact ID 0f9c" in table


def test_a_lane_is_sync_only_an_unsupported_pair_needs_attention_and_unknown_topics_are_counted(
    sandboxed: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    from receiver.unknown_topics import UNKNOWN_TOPICS_KEY

    settings = sandboxed
    connection_id = connect_to(settings)

    def track(topic: str, state: str) -> None:
        with session_scope(session_factory) as session:
            session.add(
                Subscription(
                    connection_id=connection_id,
                    division=101,
                    topic=topic,
                    state=state,
                    callback_url=settings.callback_url,
                )
            )

    track("Accounts", "active")
    track("GLAccounts", "sync_only")
    report = _status(settings)
    shown = {s["topic"]: s for s in report["subscriptions"]}  # type: ignore[attr-defined]
    assert (shown["GLAccounts"]["sync_only"], shown["GLAccounts"]["attention"]) == (True, None)
    assert (shown["Accounts"]["sync_only"], shown["Accounts"]["supported"]) == (False, True)
    assert report["unknown_topics"] == {}
    assert report["needs_attention"] is False

    track("Nonsense", "active")
    redis_client.hset(settings.redis_prefix + UNKNOWN_TOPICS_KEY, mapping={"Nonsense": 3, "PayrollRuns": 5})
    report = _status(settings)
    nonsense = next(s for s in report["subscriptions"] if s["topic"] == "Nonsense")  # type: ignore[attr-defined]
    assert nonsense["supported"] is False
    assert "subscriptions remove" in nonsense["attention"]
    assert "--topic Nonsense" in nonsense["attention"]
    assert report["unknown_topics"] == {"PayrollRuns": 5, "Nonsense": 3}
    assert report["needs_attention"] is True
    get_settings.cache_clear()
    table = runner.invoke(app, ["status"], env=settings.child_environment(os.environ)).output
    assert "Needs attention" in table
    assert "Webhooks for unknown topics" in table
    assert "PayrollRuns 5" in table
    assert "sync only" in table


# A recording is 49 calls: two of them without waiting for the next minute (the sandbox is given the same budget).
FAST_MINUTE_LIMIT = 1000


def _record_production(settings: Settings, sessions: sessionmaker[Session], connection_id: int) -> None:
    """`schema record` through the connection, kept as its production snapshot."""
    from exact import CATALOGUE
    from schema import record
    from schema.store import save_snapshot

    fast = settings.model_copy(update={"rate_limit_per_minute": FAST_MINUTE_LIMIT})
    snapshot = record(client_from_settings(fast, sessions, connection_id), 101, CATALOGUE)
    save_snapshot(sessions, connection_id, 101, snapshot)


def test_no_schema_snapshot_is_said_plainly_and_needs_no_attention(sandboxed: Settings) -> None:
    connect_to(sandboxed)
    report = _status(sandboxed)
    assert report["schema"] == {"recorded": [], "missing_fields": []}
    assert report["needs_attention"] is False
    get_settings.cache_clear()
    table = runner.invoke(app, ["status"], env=sandboxed.child_environment(os.environ)).output
    assert "no production snapshot recorded" in table
    assert "Needs attention" not in table


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(minute_limit=FAST_MINUTE_LIMIT)])
def test_a_field_production_dropped_needs_attention_and_without_the_drop_nothing_does(
    sandboxed: Settings, session_factory: sessionmaker[Session], sandbox_http: httpx.Client
) -> None:
    connection_id = connect_to(sandboxed)
    _record_production(sandboxed, session_factory, connection_id)
    report = _status(sandboxed)
    assert report["schema"] == {"recorded": [connection_id], "missing_fields": []}
    assert report["needs_attention"] is False

    armed = sandbox_http.post("/_sandbox/faults", json={"kind": "schema", "path": "crm/Accounts", "drop": "Email"})
    assert armed.status_code == 201, armed.text
    _record_production(sandboxed, session_factory, connection_id)
    report = _status(sandboxed)
    [missing] = report["schema"]["missing_fields"]  # type: ignore[index]
    assert (missing["connection"], missing["division"], missing["resource"], missing["field"]) == (
        connection_id,
        101,
        "crm/Accounts",
        "Email",
    )
    assert "TOPIC_FIELDS" in missing["attention"]
    assert report["needs_attention"] is True
    get_settings.cache_clear()
    output = runner.invoke(app, ["status"], env=sandboxed.child_environment(os.environ)).output
    table = " ".join(output.split())  # rich wraps the long line
    assert "Needs attention" in table
    assert "crm/Accounts field Email" in table


def test_a_suspended_subscription_needs_attention_and_says_what_to_do(
    sandboxed: Settings, session_factory: sessionmaker[Session]
) -> None:
    connection_id = connect_to(sandboxed)
    with session_scope(session_factory) as session:
        session.add(
            Subscription(
                connection_id=connection_id,
                division=202,
                topic="Accounts",
                state="suspended",
                callback_url=sandboxed.callback_url,
            )
        )
    report = _status(sandboxed)
    [suspended] = [s for s in report["subscriptions"] if s["state"] == "suspended"]  # type: ignore[attr-defined]
    assert "no longer granted" in suspended["attention"]
    assert "--division 202" in suspended["attention"]
    assert report["needs_attention"] is True
