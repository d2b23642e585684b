"""`exact-pipeline clients` on the run's database: add prints a token once, list never shows one, rotate and remove
end the old token; and the sub-app is mounted in `exact-pipeline`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from commands import clients
from commands.clients_cli import app
from commands.models import CommandClient
from runtime.settings import get_settings

BIN = Path(sys.executable).parent / "exact-pipeline"


@pytest.fixture
def cli(
    database_url: str, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("COMMANDS_TOKEN", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()
    with session_factory() as session:
        # The run shares one database, and a named client turns commands on without COMMANDS_TOKEN.
        session.execute(delete(CommandClient))
        session.commit()


def authenticated(session_factory: sessionmaker[Session], token: str) -> clients.Client | None:
    with session_factory() as session:
        return clients.authenticate(session, token)


def test_add_list_rotate_remove(cli: CliRunner, session_factory: sessionmaker[Session]) -> None:
    added = cli.invoke(app, ["add", "shop", "--division", "101", "--entity", "SalesInvoice", "--share", "0.2"])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert "\n" not in token
    assert "shown this once" in added.stderr
    assert authenticated(session_factory, token) == clients.Client(
        "shop", frozenset({101}), frozenset({"SalesInvoice"}), 0.2
    )

    listed = cli.invoke(app, ["list"])
    assert listed.exit_code == 0, listed.output
    for shown in ("shop", "SalesInvoice", "0.2"):
        assert shown in listed.stdout
    assert token not in listed.output
    assert token[4:12] not in listed.output

    rotated = cli.invoke(app, ["rotate", "shop"])
    assert rotated.exit_code == 0, rotated.output
    assert authenticated(session_factory, token) is None
    assert authenticated(session_factory, rotated.stdout.strip()) is not None

    assert cli.invoke(app, ["remove", "shop"]).exit_code == 0
    assert authenticated(session_factory, rotated.stdout.strip()) is None
    assert cli.invoke(app, ["remove", "shop"]).exit_code == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["add", "shop"], "--division", id="no-division"),
        pytest.param(["add", "default", "--all-divisions"], "default", id="reserved"),
        pytest.param(["add", "shop", "--all-divisions", "--share", "2"], "share", id="share"),
        pytest.param(["add", "shop", "--division", "101", "--entity", "Invoice"], "Invoice", id="entity"),
    ],
)
def test_a_client_that_makes_no_sense_is_exit_2(cli: CliRunner, args: list[str], named: str) -> None:
    result = cli.invoke(app, args)
    assert result.exit_code == 2
    assert named in result.output
    assert "epc_" not in result.output


def test_the_clients_commands_are_mounted(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run([str(BIN), "clients", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "share" in result.stdout
