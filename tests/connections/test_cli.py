"""`exact-pipeline connect --code`, `--refresh-token` and `divisions` through the real CLI, against the sandbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli.main import _mount, app
from connections.models import Connection
from exact import OAuthApp
from runtime.settings import Settings, get_settings
from tests.conftest import free_port

runner = CliRunner()


@pytest.fixture
def cli_settings(exact_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in exact_settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(name.upper(), value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    get_settings.cache_clear()
    _mount()
    yield exact_settings
    get_settings.cache_clear()


def a_code(settings: Settings) -> str:
    oauth = OAuthApp(
        settings.exact_base_url,
        str(settings.exact_client_id),
        settings.secret("exact_client_secret"),
        settings.exact_redirect_uri,
    )
    url, _state = oauth.authorize_url()
    return httpx.URL(httpx.get(url).headers["location"]).params["code"]


def connections(sessions: sessionmaker[Session], base_url: str) -> list[Connection]:
    with sessions() as session:
        return list(session.scalars(select(Connection).where(Connection.base_url == base_url)))


class TestConnect:
    def test_code_then_divisions(self, cli_settings: Settings, session_factory: sessionmaker[Session]) -> None:
        result = runner.invoke(app, ["connect", "--code", a_code(cli_settings)])
        assert result.exit_code == 0, result.output
        assert "Sandra Sandbox" in result.output
        [connection] = connections(session_factory, cli_settings.exact_base_url)
        assert connection.current_division == 101
        listed = runner.invoke(app, ["divisions"])
        assert listed.exit_code == 0, listed.output
        for code in ("101", "202", "303"):
            assert code in listed.output
        assert "archived" in listed.output

    def test_adopting_a_refresh_token_rotates_it(
        self, cli_settings: Settings, session_factory: sessionmaker[Session]
    ) -> None:
        oauth = OAuthApp(
            cli_settings.exact_base_url,
            str(cli_settings.exact_client_id),
            cli_settings.secret("exact_client_secret"),
            cli_settings.exact_redirect_uri,
        )
        theirs = oauth.exchange_code(a_code(cli_settings))
        httpx.post(f"{cli_settings.exact_base_url}/_sandbox/clock/advance", json={"seconds": 580})
        result = runner.invoke(app, ["connect", "--refresh-token", theirs.refresh_token])
        assert result.exit_code == 0, result.output
        assert len(connections(session_factory, cli_settings.exact_base_url)) == 1
        stats = httpx.get(f"{cli_settings.exact_base_url}/_sandbox/oauth").json()
        assert stats["refreshes"] == 1

    def test_a_missing_setting_is_named(self, cli_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("EXACT_REDIRECT_URI")
        get_settings.cache_clear()
        result = runner.invoke(app, ["connect", "--code", "x"])
        assert result.exit_code != 0
        assert "EXACT_REDIRECT_URI" in str(result.exception)


def connect_idle(port: int, deadline: float) -> socket.socket:
    """A TCP connection to the callback server that never sends a byte (a browser's spare socket)."""
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the callback server never listened"
            time.sleep(0.05)


class TestCallbackServer:
    def test_an_idle_connection_does_not_hold_up_the_redirect(self, exact_settings: Settings) -> None:
        port = free_port()
        settings = exact_settings.model_copy(update={"exact_redirect_uri": f"http://127.0.0.1:{port}/callback"})
        env = settings.child_environment(os.environ) | {"COLUMNS": "2000"}  # the URL on one line
        command = [str(Path(sys.executable).parent / "exact-pipeline"), "connect", "--timeout", "60"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert process.stdout is not None
            url = ""
            while "/api/oauth2/auth?" not in url:
                url = process.stdout.readline()
                assert url, "connect ended before printing the authorize URL"
            with connect_idle(port, time.monotonic() + 30):
                location = httpx.get(url.strip()).headers["location"]
                assert httpx.get(location, timeout=15).status_code == 200
                output, _ = process.communicate(timeout=60)
            assert process.returncode == 0, output
            assert "connected Sandra Sandbox" in output
            with pytest.raises(ConnectionRefusedError):  # it served the one redirect and stopped listening
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
