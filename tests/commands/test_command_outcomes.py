"""How a command ends when something goes wrong, run by `execute` against the sandbox and the real database: never
`running` for good; `failed` when nothing was sent, `unknown` with the Exact ID once it may have landed; a database
that refuses the outcome for a while loses nothing; and commands' 4xx never pause Exact's endpoint for fetching."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from commands.models import CommandRecord
from commands.schema import Command
from commands.store import submit
from commands.tasks import COMMANDS_TOPIC, Retry, change_key, execute, settle_stale
from connections.models import Connection
from delivery.models import MirrorRecord
from exact import ErrorBudget, Query, guid_literal
from runtime.db import make_engine, make_session_factory, utc_now
from runtime.settings import Settings
from sandbox.entities import ACCOUNTS
from sync.context import WorkerContext
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to
from tests.pipeline.db_locks import impatient, locked
from tests.pipeline.push_support import await_true

# A database of its own per test: `execute` runs on the newest connection reaching the division, and in a shared
# database that may be an earlier test's, whose tokens a stopped sandbox issued (NeedsConsent in a full run).
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


@pytest.fixture
def worker_settings(settings: Settings, sandbox: ServerThread) -> Settings:
    settings = settings.model_copy(update={"exact_base_url": sandbox.url})
    connect_to(settings)  # the only connection, so the one `execute` picks for division 101
    return settings


@pytest.fixture
def ctx(worker_settings: Settings) -> WorkerContext:
    return WorkerContext.from_settings(worker_settings)


def kept(sessions: sessionmaker[Session], **overrides: Any) -> str:
    body = {
        "key": f"k-{uuid.uuid4().hex[:12]}",
        "division": 101,
        "entity": "Account",
        "action": "create",
        "fields": {"Code": str(uuid.uuid4().int % 10**8), "Name": "Outcome Co"},
        **overrides,
    }
    with sessions() as session:
        submit(session, Command.model_validate(body))
    return str(body["key"])


def row(sessions: sessionmaker[Session], key: str) -> CommandRecord:
    with sessions() as session:
        found = session.get(CommandRecord, key)
    assert found is not None
    return found


def pushed(sessions: sessionmaker[Session], key: str) -> dict[str, Any] | None:
    with sessions() as session:
        query = select(MirrorRecord).where(MirrorRecord.topic == COMMANDS_TOPIC, MirrorRecord.key == change_key(key))
        mirrored = session.scalars(query).one_or_none()
    return None if mirrored is None else mirrored.record


def fault(sandbox: ServerThread, **spec: Any) -> None:
    assert httpx.post(f"{sandbox.url}/_sandbox/faults", json=spec).status_code < 300


def calls(sandbox: ServerThread, **filters: Any) -> int:
    return int(sandbox.state.counters.total(**filters))  # type: ignore[attr-defined]


def accounts_named(sandbox: ServerThread, name: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.state.store.rows(101, ACCOUNTS) if r.get("Name") == name]  # type: ignore[attr-defined]


def test_a_command_kept_with_a_bad_date_by_an_older_version_ends_failed(
    ctx: WorkerContext, sandbox: ServerThread
) -> None:
    """Today's edge refuses `"InvoiceDate": 5`; one kept before it did must fail, not crash and stay `running`."""
    key = f"old-{uuid.uuid4().hex[:12]}"
    body = {
        "key": key,
        "division": 101,
        "entity": "SalesInvoice",
        "action": "create",
        "id": None,
        "fields": {"InvoiceTo": "1001", "InvoiceDate": 5},
        "lines": None,
    }
    with ctx.sessions() as session:
        session.add(
            CommandRecord(
                key=key,
                division=101,
                entity="SalesInvoice",
                action="create",
                body=body,
                fingerprint="0" * 64,
                status="queued",
            )
        )
        session.commit()
    assert execute(ctx, key, "task-a") == "failed"
    result = row(ctx.sessions, key).result
    assert result is not None
    assert result["error"]["type"] == "InvalidCommand"
    assert "InvoiceDate" in result["error"]["message"]
    assert calls(sandbox, endpoint="salesinvoice/SalesInvoices") == 0
    assert (pushed(ctx.sessions, key) or {}).get("status") == "failed"


def test_a_read_back_that_fails_after_the_write_landed_is_unknown_with_the_id_and_never_resent(
    ctx: WorkerContext, sandbox: ServerThread
) -> None:
    name = f"landed-{uuid.uuid4().hex[:8]}"
    key = kept(ctx.sessions, fields={"Code": "4711", "Name": name})
    fault(sandbox, kind="slow", endpoint="crm/Accounts", count=1, delay=0)  # the POST goes through
    fault(sandbox, kind="error", endpoint="crm/Accounts", count=10)  # the read-back gets 500s, retries and all
    assert execute(ctx, key, "task-a") == "unknown"
    [created] = accounts_named(sandbox, name)
    result = row(ctx.sessions, key).result
    assert result is not None
    assert result["exact_id"] == created["ID"]
    assert execute(ctx, key, "task-b") == "unknown"  # a second task does nothing
    assert len(accounts_named(sandbox, name)) == 1


def test_updates_of_ids_that_do_not_exist_fail_without_a_single_404(ctx: WorkerContext, sandbox: ServerThread) -> None:
    """Eight 404s would pause crm/Accounts for an hour (Exact blocks at ten); a list query answers 200, no rows."""
    for _ in range(8):
        key = kept(ctx.sessions, action="update", id=str(uuid.uuid4()), fields={"City": "Arnhem"})
        assert execute(ctx, key, "task-a") == "failed"
        result = row(ctx.sessions, key).result
        assert result is not None
        assert (result["error"]["type"], result["field"]) == ("UnknownReference", "id")
    assert calls(sandbox, endpoint="crm/Accounts", status=404) == 0
    existing = sandbox.state.store.rows(101, ACCOUNTS)[0]  # type: ignore[attr-defined]
    key = kept(ctx.sessions, action="update", id=existing["ID"], fields={"City": "Arnhem"})
    assert execute(ctx, key, "task-a") == "succeeded"


def test_commands_refused_by_exact_pause_only_their_own_share(ctx: WorkerContext, sandbox: ServerThread) -> None:
    """Two 400s spend the commands' share (COMMANDS_ERROR_BUDGET=2) of crm/Accounts: the next command waits, unsent,
    and fetching still reads the endpoint, its own share untouched."""
    fault(sandbox, kind="error", status=400, endpoint="crm/Accounts", count=2)
    for _ in range(2):
        key = kept(ctx.sessions)
        assert execute(ctx, key, "task-a") == "failed"
        assert (row(ctx.sessions, key).result or {}).get("status") == 400
    waiting = kept(ctx.sessions)
    with pytest.raises(Retry):
        execute(ctx, waiting, "task-a")
    assert row(ctx.sessions, waiting).status == "queued"
    assert calls(sandbox, endpoint="crm/Accounts", status=201) == 0
    with ctx.sessions() as session:
        connection_id = session.scalars(select(Connection.id).order_by(Connection.id.desc())).first()
    assert connection_id is not None
    fetching = ctx.client(connection_id)
    existing = sandbox.state.store.rows(101, ACCOUNTS)[0]  # type: ignore[attr-defined]
    assert list(fetching.iter_records(101, "crm/Accounts", Query(filter=f"ID eq {guid_literal(existing['ID'])}")))
    settings = ctx.settings
    shares = ErrorBudget(ctx.redis, prefix=settings.redis_prefix, client_id=str(settings.exact_client_id))
    assert shares.count(101, "crm/Accounts") == 0


# -- a database that refuses the outcome after the write landed
def _impatient(settings: Settings) -> WorkerContext:
    """A worker whose database gives up on a lock after 0.2 s."""
    engine = make_engine(impatient(settings.database_url, 0.2))
    return WorkerContext(settings, make_session_factory(engine), redis.Redis.from_url(settings.redis_url))


def _run_with_lock_after_the_write(ctx: WorkerContext, sandbox: ServerThread, key: str, name: str) -> Future[str]:
    """Start `execute` and return once its POST landed; its read-back is held 1 s, so the lock comes first."""
    fault(sandbox, kind="slow", endpoint="crm/Accounts", count=1, delay=0)
    fault(sandbox, kind="slow", endpoint="crm/Accounts", count=1, delay=1.0)
    pool = ThreadPoolExecutor(1)
    running = pool.submit(execute, ctx, key, "task-a")
    pool.shutdown(wait=False)
    await_true(lambda: bool(accounts_named(sandbox, name)) or running.done(), what="the POST to land")
    return running


def test_an_outcome_the_database_refuses_for_a_while_is_recorded_once_it_takes_it(
    worker_settings: Settings, sandbox: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="commands.tasks")
    ctx = _impatient(worker_settings)
    name = f"locked-{uuid.uuid4().hex[:8]}"
    key = kept(ctx.sessions, fields={"Code": "4712", "Name": name})
    running = _run_with_lock_after_the_write(ctx, sandbox, key, name)
    with locked(worker_settings.database_url, "commands"):
        await_true(lambda: "workers.command.finish_retry" in caplog.messages or running.done(), what="a refusal")
    assert running.result(timeout=60) == "succeeded"
    [created] = accounts_named(sandbox, name)
    assert (row(ctx.sessions, key).result or {}).get("exact_id") == created["ID"]
    assert (pushed(ctx.sessions, key) or {}).get("status") == "succeeded"


def test_an_outcome_the_database_refuses_for_longer_is_recorded_by_the_sweeper_with_the_id(
    worker_settings: Settings, sandbox: ServerThread
) -> None:
    settings = worker_settings.model_copy(update={"commands_finish_retry_seconds": 0.5})
    ctx = _impatient(settings)
    name = f"locked-{uuid.uuid4().hex[:8]}"
    key = kept(ctx.sessions, fields={"Code": "4713", "Name": name})
    running = _run_with_lock_after_the_write(ctx, sandbox, key, name)
    with locked(settings.database_url, "commands"):
        with pytest.raises(OperationalError):
            running.result(timeout=60)
    assert row(ctx.sessions, key).status == "running"
    # Past the run's time limit: the sweeper records what the worker could not.
    with ctx.sessions() as session:
        session.execute(
            update(CommandRecord).where(CommandRecord.key == key).values(updated_at=utc_now() - timedelta(hours=1))
        )
        session.commit()
    assert settle_stale(ctx) >= 1  # the run's database may hold other old claims
    [created] = accounts_named(sandbox, name)
    settled = row(ctx.sessions, key)
    assert settled.status == "succeeded"
    assert (settled.result or {}).get("exact_id") == created["ID"]
    assert (pushed(ctx.sessions, key) or {}).get("status") == "succeeded"
