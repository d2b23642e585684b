"""`exact-pipeline sync` through the real CLI against the sandbox: a backfill that stops mid-way resumes there."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli.main import _mount, app
from delivery.models import MirrorRecord
from exact import ExactUnavailable
from runtime.settings import Settings, get_settings
from sandbox.config import SandboxConfig
from sync.cli import run_sync
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.cursors import CursorStore
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()
PAGE = 100


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(sync_page_size=PAGE)


@pytest.fixture
def cli_settings(settings: Settings, sandbox: ServerThread, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = settings.model_copy(update={"exact_base_url": sandbox.url, "sinks": "sql"})
    for name, value in settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(name.upper(), value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    get_settings.cache_clear()
    _mount()
    yield settings
    get_settings.cache_clear()


def _mirrored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        query = (
            select(func.count())
            .select_from(MirrorRecord)
            .where(MirrorRecord.division == 202, MirrorRecord.topic == "Contacts")
        )
        return int(session.scalar(query) or 0)


def _calls(control: httpx.Client) -> int:
    return int(control.get("/calls", params={"division": "202"}).json()["total"])


def test_a_backfill_reports_what_the_sinks_accepted(
    cli_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    connect_to(cli_settings)
    control = httpx.Client(base_url=f"{cli_settings.exact_base_url}/_sandbox", timeout=30)
    control.post("/records/202/crm/Contacts/bulk", json={"count": 280}).raise_for_status()
    total = len(control.get("/records/202/crm/Contacts").json()["records"])
    result = runner.invoke(app, ["sync", "--division", "202", "--topic", "contacts", "--full"])
    assert result.exit_code == 0, result.output
    assert f"{total} changes from 202/Contacts" in result.output
    assert _mirrored(session_factory) == total
    again = runner.invoke(app, ["sync", "--division", "202", "--topic", "Contacts"])
    assert again.exit_code == 0, again.output
    assert "0 changes" in again.output


def test_a_backfill_stopped_mid_way_resumes_from_its_last_page(
    cli_settings: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    connection_id = connect_to(cli_settings)
    control = httpx.Client(base_url=f"{cli_settings.exact_base_url}/_sandbox", timeout=30)
    control.post("/records/202/crm/Contacts/bulk", json={"count": 280}).raise_for_status()
    total = len(control.get("/records/202/crm/Contacts").json()["records"])
    ctx = WorkerContext(cli_settings, session_factory, redis_client)
    lane = Lane(connection_id, 202, "Contacts")

    def exact_fails_after_the_first_page(count: int) -> None:
        # Exact starts failing (500) once the first page is in: the client retries, then gives up.
        control.post("/faults", json={"kind": "error", "endpoint": "*", "count": 50}).raise_for_status()

    with pytest.raises(ExactUnavailable):
        run_sync(ctx, lane, full=True, on_page=exact_fails_after_the_first_page, wait_seconds=0)
    assert _mirrored(session_factory) == PAGE
    stopped_at = CursorStore(session_factory).get(connection_id, 202, "Contacts")
    assert stopped_at.timestamp > 0
    control.delete("/faults").raise_for_status()
    before = _calls(control)
    resumed = runner.invoke(app, ["sync", "--division", "202", "--topic", "Contacts"])
    assert resumed.exit_code == 0, resumed.output
    assert f"{total - PAGE} changes" in resumed.output
    assert _mirrored(session_factory) == total
    # Only the pages after the stop were read again: the rest of the sync walk, and sync/Deleted.
    assert _calls(control) - before == math.ceil((total - PAGE) / PAGE) + 1
