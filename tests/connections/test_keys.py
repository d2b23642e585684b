"""`exact-pipeline rotate-key`, and what `status` says of a connection whose tokens no key opens."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import Result
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cli.main import _mount, app
from connections.factory import client_from_settings
from connections.models import Connection
from connections.tokens import SqlTokenStore
from exact import NeedsConsent, TokenSet
from runtime.crypto import TokenCipher, generate_key
from runtime.settings import Settings, get_settings
from tests.pipeline import fresh_db
from tests.pipeline.connected import Connected

# A database of its own: rotating re-encrypts every connection there is.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()


@pytest.fixture(autouse=True)
def cli() -> Iterator[None]:
    get_settings.cache_clear()
    _mount()
    yield
    get_settings.cache_clear()


def _keyed(connected: Connected, keys: str) -> Settings:
    return connected.settings.model_copy(update={"token_encryption_key": SecretStr(keys)})


def _run(settings: Settings, *args: str) -> Result:
    get_settings.cache_clear()
    return runner.invoke(app, list(args), env=settings.child_environment(os.environ))


def _row(connected: Connected) -> Connection:
    with connected.sessions() as session:
        row = session.get(Connection, connected.connection_id)
        assert row is not None
        return row


def _connection_status(settings: Settings) -> tuple[dict[str, Any], bool]:
    result = _run(settings, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [connection] = report["connections"]
    return connection, report["needs_attention"]


class TestRotateKey:
    def test_every_token_moves_to_the_first_key_and_a_rerun_changes_nothing(self, connected: Connected) -> None:
        old, new = connected.settings.secret("token_encryption_key"), generate_key()
        before = _row(connected)
        plain = [TokenCipher(old).decrypt(t) for t in (before.access_token_enc, before.refresh_token_enc)]
        dry = _run(_keyed(connected, f"{new},{old}"), "rotate-key", "--dry-run", "--json")
        assert (json.loads(dry.output)["rotated"], _row(connected).refresh_token_enc) == (1, before.refresh_token_enc)
        first = _run(_keyed(connected, f"{new},{old}"), "rotate-key", "--json")
        assert first.exit_code == 0, first.output
        counts = {"keys": 2, "dry_run": False, "rotated": 1, "current": 0, "recovered": 0, "complete": True}
        assert json.loads(first.output) == {**counts, "undecryptable": [], "busy": []}
        after = _row(connected)
        assert [TokenCipher(new).decrypt(t) for t in (after.access_token_enc, after.refresh_token_enc)] == plain
        assert after.version == before.version  # a refresh that read the row first still wins its write
        stored = (before.access_token_enc, before.refresh_token_enc, after.access_token_enc, after.refresh_token_enc)
        assert not [value for value in (*plain, *stored) if value in first.output]
        again = _run(_keyed(connected, f"{new},{old}"), "rotate-key")
        assert again.exit_code == 0, again.output
        assert "rotated 0, already current 1" in again.output
        assert client_from_settings(_keyed(connected, new), connected.sessions, connected.connection_id).me()

    def test_tokens_no_key_opens_are_reported_and_left_alone(self, connected: Connected) -> None:
        before = _row(connected)
        result = _run(_keyed(connected, f"{generate_key()},{generate_key()}"), "rotate-key", "--json")
        assert result.exit_code == 1, result.output
        assert json.loads(result.output)["undecryptable"] == [connected.connection_id]
        assert _row(connected).refresh_token_enc == before.refresh_token_enc

    def test_a_refresh_between_read_and_write_wins(self, connected: Connected, engine: Engine) -> None:
        from connections.keys import rotate_keys  # here, not at the top: the other tests fail on their own without it

        old, new = connected.settings.secret("token_encryption_key"), generate_key()
        cipher = TokenCipher(f"{new},{old}")
        version = _row(connected).version
        fresh = TokenSet("refreshed-access", "refreshed-refresh", 600, datetime.now(UTC))
        refreshed: list[bool] = []

        def refresh_first(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            # A worker's refresh commits just before the rotation's write: that write must not undo it.
            if statement.startswith("UPDATE connections") and not refreshed:
                refreshed.append(True)
                assert SqlTokenStore(connected.sessions, cipher).save(
                    connected.connection_id, fresh, expected_version=version
                )

        event.listen(engine, "before_cursor_execute", refresh_first)
        try:
            report = rotate_keys(connected.sessions, cipher)
        finally:
            event.remove(engine, "before_cursor_execute", refresh_first)
        assert refreshed
        assert (report.rotated, report.current, report.busy) == (0, 1, [])
        row = _row(connected)
        assert (TokenCipher(new).decrypt(row.access_token_enc), row.version) == ("refreshed-access", version + 1)


class TestStatus:
    def test_unreadable_tokens_need_attention_and_rotate_key_brings_a_parked_connection_back(
        self, connected: Connected
    ) -> None:
        old, new = connected.settings.secret("token_encryption_key"), generate_key()
        wrong = _keyed(connected, generate_key())
        connection, attention = _connection_status(wrong)
        assert (connection["tokens_readable"], attention) == (False, True)
        assert "rotate-key" in connection["attention"]
        assert "connect" in connection["attention"]
        table = _run(wrong, "status")
        assert "undecryptable" in table.output, table.output
        assert "rotate-key" in table.output
        with pytest.raises(NeedsConsent):  # a worker with the wrong key parks the connection
            client_from_settings(wrong, connected.sessions, connected.connection_id).me()
        connection, attention = _connection_status(connected.settings)
        assert (connection["tokens_readable"], connection["needs_consent"], attention) == (True, True, True)
        assert "rotate-key" in connection["attention"]
        result = _run(_keyed(connected, f"{new},{old}"), "rotate-key")
        assert result.exit_code == 0, result.output
        assert "back in service 1" in result.output
        connection, attention = _connection_status(_keyed(connected, new))
        assert (connection["tokens_readable"], connection["needs_consent"], connection["attention"]) == (
            True,
            False,
            None,
        )
        assert attention is False
