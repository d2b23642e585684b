"""The console's doors: off without CONSOLE_TOKEN, the login and its cookie, 401/redirect without it, 403 without
the CSRF token; over real HTTP against a real database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console.app import create_app
from console.auth import COOKIE, ConsoleAuth, ConsoleOff
from runtime.settings import Settings
from tests.conftest import ServerThread, free_port
from tests.console.support import TOKEN, console_settings, csrf_of, logged_in, serve_console
from tests.pipeline.fresh_db import fresh_database


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with serve_console(console_settings(settings)) as server:
        yield server


def test_without_a_token_the_console_is_off_and_the_command_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(ConsoleOff):
        create_app(settings)
    env = {k: v for k, v in settings.child_environment(os.environ).items() if not k.startswith("CONSOLE_")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "exact-pipeline"), "console", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "the console is off: set CONSOLE_TOKEN" in done.stderr


@pytest.mark.parametrize(
    "path",
    [
        "/console",
        "/console/calls",
        "/console/deadletters",
        "/console/commands",
        "/console/records?division=101&topic=Accounts&key=x",
    ],
)
def test_a_page_without_the_cookie_redirects_to_the_login(server: ServerThread, path: str) -> None:
    response = httpx.get(server.url + path)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


def test_an_action_without_the_cookie_is_401(server: ServerThread) -> None:
    response = httpx.post(server.url + "/console/deadletters/replay", data={"all": "1", "csrf": "x"})
    assert response.status_code == 401


def test_a_wrong_token_is_refused_and_sets_no_cookie(server: ServerThread) -> None:
    response = httpx.post(server.url + "/console/login", data={"token": TOKEN + "x"})
    assert response.status_code == 401
    assert COOKIE not in response.cookies
    assert httpx.post(server.url + "/console/login", data={}).status_code == 401


def test_the_login_sets_a_signed_httponly_samesite_cookie_with_an_expiry(server: ServerThread) -> None:
    response = httpx.post(server.url + "/console/login", data={"token": TOKEN})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=43200" in cookie
    assert "path=/console" in cookie
    with logged_in(server) as client:
        page = client.get("/console")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert 'id="needs-attention"' in page.text
        # A cookie signed with another key is no session.
        client.cookies.set(COOKIE, client.cookies[COOKIE][:-2] + "xx", path="/console")
        assert client.get("/console").status_code == 303


def test_an_action_without_or_with_a_wrong_csrf_token_is_403(settings: Settings, tmp_path: Path) -> None:
    # A database of its own: "replay all" would replay other tests' dead letters in the shared one.
    with (
        fresh_database(tmp_path) as url,
        serve_console(console_settings(settings.model_copy(update={"database_url": url}))) as server,
        logged_in(server) as client,
    ):
        assert client.post("/console/deadletters/replay", data={"all": "1"}).status_code == 403
        assert client.post("/console/deadletters/replay", data={"all": "1", "csrf": "forged"}).status_code == 403
        # Another session's token is not this one's.
        other = ConsoleAuth.from_settings(console_settings(settings))
        foreign = other.csrf_token("another-session")
        assert client.post("/console/deadletters/replay", data={"all": "1", "csrf": foreign}).status_code == 403
        csrf = csrf_of(client.get("/console/deadletters").text)
        response = client.post("/console/deadletters/replay", data={"all": "1", "csrf": csrf})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/deadletters?replayed=0"
        assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/console").status_code == 303


def test_an_expired_session_is_no_session(settings: Settings) -> None:
    auth = ConsoleAuth.from_settings(console_settings(settings))
    cookie = auth.new_session()
    assert auth.session_of(cookie) is not None
    expired = ConsoleAuth(auth.token, auth.key, max_age_seconds=-1)
    assert expired.session_of(cookie) is None
    assert not expired.csrf_ok("sid", auth.csrf_token("sid"))
    assert auth.csrf_ok("sid", auth.csrf_token("sid"))


def test_the_command_serves_the_console_on_its_port_with_the_token_set(settings: Settings) -> None:
    port = free_port()
    env = console_settings(settings).model_copy(update={"console_port": port}).child_environment(os.environ)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "exact-pipeline"), "console"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/console/login")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the console did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert 'name="token"' in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/console").status_code == 303
    finally:
        process.terminate()
        process.wait(timeout=30)
